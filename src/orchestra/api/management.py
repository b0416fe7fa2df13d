"""Project management API for project admins (B12's `/orchestra/api/interface/project_management/`)."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from orchestra.api.auth import admin_auth
from orchestra.api.main import route
from orchestra.api.schemas import Body, Id, Page, Text
from orchestra.engine.lifecycle import ProjectStatus
from orchestra.selectors.projects import project_information, project_list
from orchestra.services.machine import task_retry
from orchestra.services.projects import project_end, project_pause, project_resume
from orchestra.services.tasks import assignment_reassign, task_assign, task_complete_and_skip, task_revert
from orchestra.services.workers import worker_get

router = Router(auth=admin_auth, tags=["project management"])


def _actor(request: HttpRequest) -> Any:
    return request.auth.user  # type: ignore[attr-defined]


class ProjectFilter(Schema):
    status: ProjectStatus | None = None
    workflow: Text | None = None
    page: Page = 1
    page_size: int = Field(50, ge=1, le=500)


@route(router, "GET", "/projects")
def projects(request: HttpRequest, filters: Query[ProjectFilter]) -> dict[str, Any]:
    return project_list(
        status=filters.status, workflow=filters.workflow, page=filters.page, page_size=filters.page_size
    )


class ProjectId(Body):
    project_id: Id


@route(router, "POST", "/project_information")
def get_project_information(request: HttpRequest, payload: ProjectId) -> dict[str, Any]:
    return project_information([payload.project_id])[payload.project_id]


class AssignTask(Body):
    worker_username: Text
    task_id: Id


@route(router, "POST", "/assign_task")
def assign_task(request: HttpRequest, payload: AssignTask) -> dict[str, Any]:
    assignment = task_assign(task_id=payload.task_id, worker=worker_get(payload.worker_username), actor=_actor(request))
    return {"assignment_id": assignment.pk, "task_id": assignment.task_id, "level": assignment.level}


class Reassign(Body):
    worker_username: Text
    assignment_id: Id


@route(router, "POST", "/reassign_assignment")
def reassign_assignment(request: HttpRequest, payload: Reassign) -> dict[str, Any]:
    assignment = assignment_reassign(
        assignment_id=payload.assignment_id, worker=worker_get(payload.worker_username), actor=_actor(request)
    )
    return {"assignment_id": assignment.pk, "worker": payload.worker_username}


class TaskId(Body):
    task_id: Id


@route(router, "POST", "/complete_and_skip_task")
def complete_and_skip_task(request: HttpRequest, payload: TaskId) -> dict[str, Any]:
    task = task_complete_and_skip(task_id=payload.task_id, actor=_actor(request))
    return {"task_id": task.pk, "status": task.status}


class Revert(Body):
    task_id: Id
    iteration_id: Id
    revert_before: bool = False


@route(router, "POST", "/revert_task")
def revert_task(request: HttpRequest, payload: Revert) -> dict[str, Any]:
    task = task_revert(
        task_id=payload.task_id,
        iteration_id=payload.iteration_id,
        revert_before=payload.revert_before,
        actor=_actor(request),
    )
    return {"task_id": task.pk, "status": task.status}


@route(router, "POST", "/end_project")
def end_project(request: HttpRequest, payload: ProjectId) -> dict[str, Any]:
    project = project_end(project_id=payload.project_id, actor=_actor(request))
    return {"project_id": project.pk, "status": project.status}


class SetStatus(Body):
    project_id: int
    status: Literal["Active", "Paused"] = Field(..., description="Active resumes, Paused pauses")


@route(router, "POST", "/set_project_status")
def set_project_status(request: HttpRequest, payload: SetStatus) -> dict[str, Any]:
    change = project_resume if payload.status == "Active" else project_pause
    project = change(project_id=payload.project_id, actor=_actor(request))
    return {"project_id": project.pk, "status": project.status, "success": True}


@route(router, "POST", "/retry_task")
def retry_task(request: HttpRequest, payload: TaskId) -> dict[str, Any]:
    task = task_retry(task_id=payload.task_id, actor=_actor(request))
    return {"task_id": task.pk, "status": task.status}
