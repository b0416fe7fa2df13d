"""The worker's pages: the dashboard, "new task" buttons, and the task page with its form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import Template, TemplateDoesNotExist
from django.template.engine import Engine
from django.template.loader import get_template
from django.urls import reverse
from django.views.decorators.http import require_POST

from orchestra.engine.errors import FormInvalid, NoTaskAvailable, NotFound, OrchestraError, ValidationError
from orchestra.engine.forms import step_form
from orchestra.engine.lifecycle import Role
from orchestra.selectors.pages import TaskPage, task_page
from orchestra.selectors.work import STATES, dashboard_tasks
from orchestra.services.tasks import task_pull, task_return, task_save, task_submit
from orchestra.web._access import PageCaller, refuse, sentence, worker_page
from orchestra.web.forms import Uploads, bound_fields, values_from_post

PAGE_SIZE = 25
BUCKET_NAMES = {
    "returned": "Returned",
    "in_progress": "In progress",
    "pending_review": "Pending review",
    "pending_processing": "Awaiting processing",
    "paused": "Paused",
    "complete": "Complete",
}


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("page", "1")), 100_000))
    except ValueError:
        return 1


@worker_page
def dashboard(request: HttpRequest, caller: PageCaller) -> HttpResponse:
    """The worker's tasks in B12's buckets, one bucket at a time, with counts and "new task" buttons."""
    assert caller.worker is not None
    state = request.GET.get("state") or None
    if state not in STATES:
        state = None
    page = _page_number(request)
    board = dashboard_tasks(caller.worker, state=state, page=page, page_size=PAGE_SIZE)
    shown = board["count"] if state is None else board["counts"][state]
    context = {
        "caller": caller,
        "section": "dashboard",
        "board": board,
        "state": state,
        "buckets": [(key, BUCKET_NAMES[key], board["counts"][key]) for key in STATES],
        "page": page,
        "has_next": page * PAGE_SIZE < shown,
        "total": sum(board["counts"].values()),
    }
    return render(request, "orchestra/app/dashboard.html", context)


@require_POST
@worker_page
def new_task(request: HttpRequest, caller: PageCaller, role: str) -> HttpResponse:
    """B12's "New delivery task" / "New review task": take the next task, or say why there is none."""
    assert caller.worker is not None
    if role not in (Role.ENTRY_LEVEL, Role.REVIEWER):
        return refuse(request, f"No such kind of task: {role!r}.", status=404)
    try:
        assignment = task_pull(worker=caller.worker, role=role)
    except NoTaskAvailable as error:
        messages.info(request, sentence(error.message))
        return redirect("orchestra:dashboard")
    except OrchestraError as error:
        messages.error(request, sentence(error.message))
        return redirect("orchestra:dashboard")
    messages.success(request, f"You have a new {'review' if role == Role.REVIEWER else 'delivery'} task.")
    return redirect("orchestra:task", task_id=assignment.task_id)


def _step_template(page: TaskPage) -> Template | Any | None:
    """The step's own template (`user_interface.template`): an app template, or a file beside the
    workflow's definition."""
    name = page.step.user_interface.get("template")
    if not name:
        return None
    try:
        return get_template(name)
    except TemplateDoesNotExist:
        directory = page.task.project.version.workflow.code_directory
        path = (Path(directory) / name).resolve() if directory else None
        if path is None or not path.is_relative_to(Path(directory).resolve()) or not path.is_file():
            raise
        return Template(path.read_text(encoding="utf-8"), engine=Engine.get_default())


def _act(request: HttpRequest, caller: PageCaller, page: TaskPage, action: str, data: dict[str, Any]) -> str:
    """Call the service for `action`; returns the success message."""
    assert caller.worker is not None
    task_id = page.task.pk
    if action == "save":
        task_save(task_id=task_id, worker=caller.worker, data=data)
        return "Draft saved."
    if action == "return":
        task_return(task_id=task_id, worker=caller.worker, data=data, feedback=request.POST.get("feedback", ""))
        return "Returned to the worker with your feedback."
    task = task_submit(task_id=task_id, worker=caller.worker, data=data, command=action)
    verb = "Accepted" if action == "accept" else "Submitted"
    return f"{verb}: the task is now {task.status}."


@worker_page
def task_detail(request: HttpRequest, caller: PageCaller, task_id: int) -> HttpResponse:
    """A task's page: step, project, prerequisites, the form, and its iteration history."""
    assert caller.worker is not None
    try:
        page = task_page(task_id, caller.worker, is_project_admin=caller.is_project_admin)
    except NotFound:
        return refuse(request, f"Task {task_id} is not one of your tasks.", status=404)
    form = step_form(page.step.user_interface)
    data, errors, problem = page.data, dict[str, str](), ""
    raw_json = json.dumps(data, indent=2, ensure_ascii=False)
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in page.actions:
            why = "it is read-only for you now" if not page.actions else f"you can: {', '.join(page.actions)}"
            return refuse(request, f"You cannot {action or 'change'} task {task_id}: {why}.", status=409)
        uploads = Uploads()
        if form is not None:
            data, uploads = values_from_post(
                form,
                request.POST,
                request.FILES,
                current=data,
                project_id=page.project.pk,
                task_id=task_id,
                prerequisites=page.prerequisites,
            )
            errors.update(uploads.errors)
        else:
            raw_json = request.POST.get("task_data", "")
            try:
                data = json.loads(raw_json or "{}")
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:
                errors["task_data"] = 'Enter a JSON object, such as {"answer": "yes"}.'
        if not errors:
            try:
                done = _act(request, caller, page, action, data)
            except FormInvalid as error:
                errors = error.errors
            except ValidationError as error:
                problem = error.message
                if getattr(error, "field", "") == "feedback":
                    errors["feedback"] = "Say what the worker should change: returning work needs feedback."
            except OrchestraError as error:
                uploads.discard()
                messages.error(request, sentence(error.message))
                return redirect("orchestra:task", task_id=task_id)
            else:
                uploads.commit()
                messages.success(request, done)
                if action == "save":
                    return redirect("orchestra:task", task_id=task_id)
                return redirect("orchestra:dashboard")
        uploads.discard()
        if errors and not problem:
            problem = "Some fields need attention; nothing was saved."
    context = {
        "caller": caller,
        "section": "dashboard",
        "page": page,
        "form": form,
        "fields": bound_fields(form, data, errors, page.prerequisites) if form is not None else [],
        "errors": errors,
        "problem": problem,
        "raw_json": raw_json,
        "feedback": request.POST.get("feedback", "") if request.method == "POST" else "",
        "step_template": _step_template(page),
        "action_url": reverse("orchestra:task", kwargs={"task_id": task_id}),
    }
    status = 400 if errors or problem else 200
    return render(request, "orchestra/app/task.html", context, status=status)
