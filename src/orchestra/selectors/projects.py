"""Reading projects in B12's `project_information` shape, with a fixed number of queries."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

from django.contrib.auth import get_user_model

from orchestra.engine.errors import NotFound
from orchestra.engine.lifecycle import AssignmentStatus, StepKind
from orchestra.models import Iteration, Project, Step, Task, TaskAssignment, Worker, Workflow, WorkflowVersion
from orchestra.services._base import db, quote
from orchestra.services._loading import column, fetch_all, fields, placeholders, table


def _dt(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@functools.lru_cache(maxsize=64)
def _information_sql(vendor: str, count: int) -> tuple[str, str, str, str, str]:
    """The five statements of project_information for `count` project ids (prepared once per vendor)."""
    ids = placeholders(count)
    user = get_user_model()
    who = (
        f"JOIN {table(Worker)} w ON w.id = {{seat}}.worker_id JOIN {table(user)} u ON u.{quote(user._meta.pk.column)}"
        f" = w.user_id"
    )
    username = column(user, user.USERNAME_FIELD, "u")
    projects = (
        f"SELECT p.id, p.version_id, p.short_description, p.created_at, p.priority, p.project_data, p.task_class,"
        f" p.status, v.slug, wf.slug FROM {table(Project)} p JOIN {table(WorkflowVersion)} v ON v.id = p.version_id"
        f" JOIN {table(Workflow)} wf ON wf.id = v.workflow_id WHERE p.id IN ({ids}) ORDER BY p.id DESC"
    )
    steps = (
        f"SELECT s.version_id, s.slug, s.name, s.description, s.kind FROM {table(Step)} s"
        f" WHERE s.version_id IN (SELECT version_id FROM {table(Project)} WHERE id IN ({ids}))"
        " ORDER BY s.version_id, s.position, s.id"
    )
    tasks = (
        f"SELECT t.id, t.project_id, s.slug, t.status, t.created_at, t.completed_at, t.data, t.attempts,"
        f" t.last_error FROM {table(Task)} t JOIN {table(Step)} s ON s.id = t.step_id"
        f" WHERE t.project_id IN ({ids}) ORDER BY t.id"
    )
    seats = (
        f"SELECT a.id, a.task_id, a.level, a.created_at, a.worker_id, {username}, {column(user, 'first_name', 'u')},"
        f" {column(user, 'last_name', 'u')}, a.status, a.in_progress_task_data FROM {table(TaskAssignment)} a"
        f" JOIN {table(Task)} t ON t.id = a.task_id {who.format(seat='a')}"
        f" WHERE t.project_id IN ({ids}) ORDER BY a.task_id, a.level"
    )
    iterations = (
        f"SELECT i.id, i.assignment_id, {username}, i.start_datetime, i.end_datetime, i.status, i.submitted_data,"
        f" i.feedback FROM {table(Iteration)} i JOIN {table(TaskAssignment)} a ON a.id = i.assignment_id"
        f" JOIN {table(Task)} t ON t.id = a.task_id {who.format(seat='i')}"
        f" WHERE t.project_id IN ({ids}) ORDER BY i.start_datetime, i.id"
    )
    return projects, steps, tasks, seats, iterations


@functools.lru_cache(maxsize=1)
def _information_types() -> tuple[tuple[Any, ...], ...]:
    """The fields whose conversion each statement's columns need (None: the value as it comes)."""
    p = fields(Project, "id", "version", "short_description", "created_at", "priority", "project_data")
    t = fields(Task, "created_at", "completed_at", "data")
    a = fields(TaskAssignment, "created_at", "in_progress_task_data")
    i = fields(Iteration, "start_datetime", "end_datetime", "submitted_data")
    return (
        (*p, None, None, None, None),
        (None, None, None, None, None),
        (None, None, None, None, t[0], t[1], t[2], None, None),
        (None, None, None, a[0], None, None, None, None, None, a[1]),
        (None, None, None, i[0], i[1], None, i[2], None),
    )


def project_information(project_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Projects by id: project fields, steps in dependency order, tasks keyed by step slug with their
    assignments and iterations. Five prepared statements, however many projects, tasks or iterations."""
    project_ids = list(dict.fromkeys(project_ids))
    if not project_ids:
        return {}
    sql = _information_sql(db().vendor, len(project_ids))
    types = _information_types()
    projects, steps, tasks, seat_rows, iteration_rows = fetch_all(
        [(statement, project_ids, columns) for statement, columns in zip(sql, types, strict=True)]
    )
    missing = sorted(set(project_ids) - {p[0] for p in projects})
    if missing:
        raise NotFound(f"project(s) {', '.join(map(str, missing))} do not exist", project_ids=missing)
    steps_by_version: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for version_id, slug, name, description, kind in steps:
        steps_by_version[version_id].append(
            {"slug": slug, "name": name, "description": description, "is_human": kind == StepKind.HUMAN, "kind": kind}
        )
    iterations_by_assignment: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for it_id, assignment_id, username, start, end, status, submitted, feedback in iteration_rows:
        iterations_by_assignment[assignment_id].append(
            {
                "id": it_id,
                "assignment": assignment_id,
                "worker": username,
                "start_datetime": _dt(start),
                "end_datetime": _dt(end),
                "status": status,
                "submitted_data": submitted,
                "feedback": feedback,
            }
        )
    seats_by_task: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a_id, task_id, level, created, worker_id, username, first, last, status, data in seat_rows:
        seats_by_task[task_id].append(
            {
                "id": a_id,
                "level": level,
                "start_datetime": _dt(created),
                "worker": {"id": worker_id, "username": username, "first_name": first, "last_name": last},
                "task": task_id,
                "status": status,
                "in_progress_task_data": data,
                "iterations": iterations_by_assignment[a_id],
            }
        )
    tasks_by_project: dict[int, dict[str, Any]] = defaultdict(dict)
    for task_id, project_id, slug, status, created, completed, data, attempts, last_error in tasks:
        seats = seats_by_task[task_id]
        holder = next((a for a in seats if a["status"] == AssignmentStatus.PROCESSING), None)
        tasks_by_project[project_id][slug] = {
            "id": task_id,
            "step_slug": slug,
            "project": project_id,
            "status": status,
            "start_datetime": _dt(created),
            "completed_datetime": _dt(completed),
            "latest_data": holder["in_progress_task_data"] if holder else data,
            "attempts": attempts,
            "last_error": last_error or None,
            "assignments": seats,
        }
    return {
        pk: {
            "project": {
                "id": pk,
                "workflow_slug": workflow_slug,
                "workflow_version_slug": version_slug,
                "short_description": description,
                "start_datetime": _dt(created),
                "priority": priority,
                "project_data": data,
                "task_class": task_class,
                "status": status,
            },
            "steps": steps_by_version[version_id],
            "tasks": tasks_by_project[pk],
        }
        for pk, version_id, description, created, priority, data, task_class, status, version_slug, workflow_slug in (
            projects
        )
    }


def workflow_types() -> dict[str, Any]:
    """B12's `workflow_types` shape: {slug: {name, versions: {slug: {name, description}}}}; one query."""
    out: dict[str, Any] = {}
    for version in WorkflowVersion.objects.select_related("workflow").order_by("workflow__slug", "slug"):
        workflow = out.setdefault(
            version.workflow.slug,
            {"name": version.workflow.name, "description": version.workflow.description, "versions": {}},
        )
        workflow["versions"][version.slug] = {"name": version.name, "description": version.description}
    return out


def project_summary(p: Project) -> dict[str, Any]:
    return {
        "id": p.pk,
        "workflow_slug": p.version.workflow.slug,
        "workflow_version_slug": p.version.slug,
        "short_description": p.short_description,
        "priority": p.priority,
        "task_class": p.task_class,
        "status": p.status,
        "start_datetime": _dt(p.created_at),
    }


def project_list(
    *, status: str | None = None, workflow: str | None = None, page: int = 1, page_size: int = 50
) -> dict[str, Any]:
    """A page of projects, newest first; two queries (the count and the page)."""
    projects = Project.objects.select_related("version__workflow").order_by("-id")
    if status:
        projects = projects.filter(status=status)
    if workflow:
        projects = projects.filter(version__workflow__slug=workflow)
    count = projects.count()
    start = (page - 1) * page_size
    return {
        "count": count,
        "page": page,
        "page_size": page_size,
        "projects": [project_summary(p) for p in projects[start : start + page_size]],
    }


def require_project(project_id: int) -> None:
    """NotFound unless the project exists; one query."""
    if not Project.objects.filter(pk=project_id).exists():
        raise NotFound(f"project_id: project {project_id} does not exist", field="project_id")
