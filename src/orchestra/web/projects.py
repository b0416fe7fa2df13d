"""Project admin pages: the projects list, a project's page (DAG, tasks, lineage, timeline with its ledger check,
actions) and workflows.

The buttons on a project's page offer what the transition tables allow (`available_actions`); each posts
to `project_action`, which calls one service. With htmx the answer is swapped into the button's own
error slot (or reloads the page on success); without it, a redirect with a message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from orchestra.engine.definitions import VersionDef
from orchestra.engine.errors import NotFound, OrchestraError
from orchestra.engine.lifecycle import (
    PROJECT_TRANSITIONS,
    ProjectAction,
    ProjectStatus,
    StepKind,
    TaskAction,
    TaskStatus,
    available_actions,
)
from orchestra.models import Task
from orchestra.selectors.pages import ProjectPage, project_page, projects_page, workflows_page
from orchestra.services.machine import task_retry
from orchestra.services.projects import project_end, project_pause, project_resume
from orchestra.services.tasks import assignment_reassign, task_assign, task_complete_and_skip, task_revert
from orchestra.services.workers import worker_get
from orchestra.web._access import PageCaller, admin_page, refuse, sentence
from orchestra.web.dag import DagNode, render_dag

PAGE_SIZE = 25
# Admin buttons per task, in the order shown; each appears when the transition table allows it.
TASK_BUTTONS = (TaskAction.ASSIGN, TaskAction.COMPLETE_AND_SKIP, TaskAction.RETRY, TaskAction.REVERT)
PROJECT_BUTTONS = (ProjectAction.PAUSE, ProjectAction.RESUME, ProjectAction.END)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 12 else None


@admin_page
def projects(request: HttpRequest, caller: PageCaller) -> HttpResponse:
    """Projects, newest first, filtered by workflow, status, priority and text."""
    page = max(1, _int(request.GET.get("page")) or 1)
    status = request.GET.get("status", "")
    if status not in ProjectStatus.__members__.values():
        status = ""
    priority_text = request.GET.get("priority", "").strip()
    priority = int(priority_text) if priority_text.lstrip("-").isdigit() and len(priority_text) < 10 else None
    filters = {
        "status": status,
        "workflow": request.GET.get("workflow", "")[:200],
        "priority": priority,
        "text": request.GET.get("q", "").strip()[:200],
    }
    listing = projects_page(**filters, page=page, page_size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "caller": caller,
        "section": "projects",
        "listing": listing,
        "filters": {**filters, "priority": priority_text},
        "statuses": list(ProjectStatus),
        "page": page,
        "query": query.urlencode(),
    }
    return render(request, "orchestra/app/projects.html", context)


def dag_nodes(definition: VersionDef, tasks: Mapping[str, Task] | None = None) -> list[DagNode]:
    """The version's steps as DAG nodes; with a project's `tasks` (by step slug), coloured and linked."""
    return [
        DagNode(
            slug=s.slug,
            name=s.name,
            kind=str(s.kind),
            depends_on=tuple(s.creation_depends_on),
            waits_for=tuple(s.submission_depends_on),
            status=tasks[s.slug].status if tasks and s.slug in tasks else None,
            href=f"#step-{s.slug}" if tasks is not None else None,
        )
        for s in definition.steps
    ]


def _task_rows(page: ProjectPage) -> list[dict[str, Any]]:
    rows = []
    for slug in page.cv.order:
        step = page.cv.definition.step(slug)
        task = page.tasks.get(slug)
        buttons: list[str] = []
        if task is not None and page.project.status in (ProjectStatus.ACTIVE, ProjectStatus.PAUSED):
            allowed = set(available_actions(TaskStatus(task.status), StepKind(step.kind)))
            buttons = [a.value for a in TASK_BUTTONS if a in allowed]
        seats = page.seats.get(task.pk, []) if task else []
        rows.append(
            {
                "step": step,
                "task": task,
                "buttons": buttons,
                "seats": [{"seat": a, "iterations": page.iterations.get(a.pk, [])} for a in seats],
                "iterations": [it for a in seats for it in page.iterations.get(a.pk, [])],
            }
        )
    return rows


def _lineage_rows(page: ProjectPage) -> list[dict[str, Any]]:
    """The lineage as the table shows it: step names for slugs, times as datetimes, who or what produced each."""
    names = {s.slug: s.name for s in page.cv.definition.steps}
    rows = []
    for entry in page.lineage:
        completed_at = entry["completed_at"]
        rows.append(
            {
                **entry,
                "name": names.get(entry["step"], entry["step"]),
                "completed_at": dt.datetime.fromisoformat(completed_at) if completed_at else None,
                "inputs": [{**i, "name": names.get(i["step"], i["step"])} for i in entry["inputs"]],
                "is_human": entry["kind"] == StepKind.HUMAN,
            }
        )
    return rows


@admin_page
def project_detail(request: HttpRequest, caller: PageCaller, project_id: int) -> HttpResponse:
    try:
        page = project_page(project_id)
    except NotFound:
        return refuse(request, f"Project {project_id} does not exist.", status=404)
    title = f"Workflow of project {project_id}: steps coloured by task status"
    status = ProjectStatus(page.project.status)
    # At most one problem per chain: the first row that breaks it, marked in the timeline too.
    problem = page.ledger.problems[0] if page.ledger.problems else None
    context = {
        "caller": caller,
        "section": "projects",
        "page": page,
        "project": page.project,
        "dag": mark_safe(render_dag(dag_nodes(page.cv.definition, page.tasks), title=title)),  # noqa: S308 - render_dag escapes
        "rows": _task_rows(page),
        "lineage": _lineage_rows(page),
        "ledger_problem": problem,
        "ledger_problem_text": sentence(problem.message) if problem else "",
        "problem_in_timeline": problem is not None and any(e.pk == problem.event_id for e in page.events),
        "project_buttons": [a.value for a in PROJECT_BUTTONS if (status, a) in PROJECT_TRANSITIONS],
    }
    return render(request, "orchestra/app/project.html", context)


def _do(request: HttpRequest, project_id: int, action: str) -> str:
    """Run one admin action through its service; returns what happened, in words."""
    actor = request.user
    post = request.POST
    task_id = _int(post.get("task_id"))
    if action in ("pause", "resume", "end"):
        service = {"pause": project_pause, "resume": project_resume, "end": project_end}[action]
        project = service(project_id=project_id, actor=actor)
        return f"Project {project_id} is now {project.status}."
    if task_id is None:
        raise NotFound("task_id: choose a task")
    if not Task.objects.filter(pk=task_id, project_id=project_id).exists():
        raise NotFound(f"task_id: task {task_id} is not a task of project {project_id}")
    if action == "assign":
        username = post.get("worker", "").strip()
        assignment = task_assign(task_id=task_id, worker=worker_get(username), actor=actor)
        return f"Task {task_id} assigned to {username} (level {assignment.level})."
    if action == "reassign":
        username = post.get("worker", "").strip()
        assignment_id = _int(post.get("assignment_id"))
        if assignment_id is None:
            raise NotFound("assignment_id: choose an assignment")
        assignment_reassign(assignment_id=assignment_id, worker=worker_get(username), actor=actor)
        return f"Assignment {assignment_id} of task {task_id} moved to {username}."
    if action == "complete_and_skip":
        task_complete_and_skip(task_id=task_id, actor=actor)
        return f"Task {task_id} completed and skipped."
    if action == "retry":
        task_retry(task_id=task_id, actor=actor)
        return f"Task {task_id} queued to run again."
    if action == "revert":
        iteration_id = _int(post.get("iteration_id"))
        if iteration_id is None:
            raise NotFound("iteration_id: choose the iteration to revert to")
        task = task_revert(
            task_id=task_id, iteration_id=iteration_id, revert_before=bool(post.get("before")), actor=actor
        )
        return f"Task {task_id} reverted; it is now {task.status}."
    raise NotFound(f"no action {action!r}")


@require_POST
@admin_page
def project_action(request: HttpRequest, caller: PageCaller, project_id: int, action: str) -> HttpResponse:
    page_url = reverse("orchestra:project", kwargs={"project_id": project_id})
    htmx = bool(request.headers.get("HX-Request"))
    try:
        if request.POST.get("project_id", str(project_id)) != str(project_id):
            raise NotFound("project_id: the form belongs to another project")
        done = _do(request, project_id, action)
    except OrchestraError as error:
        message = sentence(error.message)
        if htmx:
            status = getattr(error, "http_status", 400)
            return HttpResponse(format_html('<span class="error" role="alert">{}</span>', message), status=status)
        messages.error(request, message)
        return redirect(page_url)
    messages.success(request, done)
    if htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = page_url
        return response
    return redirect(page_url)


@admin_page
def workflows(request: HttpRequest, caller: PageCaller) -> HttpResponse:
    """Every loaded workflow version with its DAG and steps."""
    versions = []
    for entry in workflows_page():
        nodes = dag_nodes(entry["definition"])
        title = f"{entry['version'].workflow.name} {entry['version'].slug}: steps and dependencies"
        versions.append({**entry, "dag": mark_safe(render_dag(nodes, title=title, with_status=False))})  # noqa: S308
    return render(
        request, "orchestra/app/workflows.html", {"caller": caller, "section": "workflows", "versions": versions}
    )
