"""The client (project) API: B12's paths and shapes, for signed requests from other systems."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from orchestra import conf
from orchestra.api.auth import Client, client_signature, client_signature_read
from orchestra.api.main import route
from orchestra.api.schemas import Body, Id, JsonObject, Page, Priority, Text
from orchestra.engine.errors import NotFound, OrchestraError, ValidationError
from orchestra.engine.lifecycle import ProjectStatus
from orchestra.selectors.projects import project_information, project_list, require_project, workflow_types
from orchestra.services.machine import task_retry
from orchestra.services.projects import project_create, project_end, projects_create
from orchestra.services.tasks import task_assign
from orchestra.services.workers import worker_by_id_or_username

router = Router(auth=client_signature, tags=["client API"])


class CreateProject(Body):
    workflow_slug: Text
    workflow_version_slug: Text
    description: Text = ""
    priority: Priority = 0
    task_class: Literal["real", "training"] = "real"
    project_data: JsonObject = Field(default_factory=dict)


class CreateProjects(Body):
    workflow_slug: Text
    workflow_version_slug: Text
    description: Text = ""
    priority: Priority = 0
    task_class: Literal["real", "training"] = "real"
    project_data: list[JsonObject] = Field(
        ..., min_length=1, description="one project per object, created together or not at all"
    )


class ProjectId(Body):
    project_id: Id


MAX_PROJECTS_PER_CALL = 200


class ProjectIds(Body):
    # Exactly one of the two, not null: the document says so with `oneOf`, the view checks it.
    model_config = {
        "json_schema_extra": {
            "oneOf": [
                {"required": ["project_id"], "properties": {"project_id": {"type": "integer"}}},
                {"required": ["project_ids"], "properties": {"project_ids": {"type": "array"}}},
            ]
        }
    }

    project_id: Id | None = Field(None, description="one project, in the shape of B12's documentation")
    project_ids: list[Id] | None = Field(
        None,
        description=f"several projects (at most {MAX_PROJECTS_PER_CALL}), as a mapping by id",
        # Documented only: the view says how many are allowed more plainly than pydantic would.
        json_schema_extra={"maxItems": MAX_PROJECTS_PER_CALL},
    )


class AssignWorker(Body):
    worker_id: Id | Text = Field(..., description="the worker's id or username")
    task_id: Id


class TaskId(Body):
    task_id: Id


def _actor(request: HttpRequest) -> str:
    client: Client = request.auth  # type: ignore[attr-defined]
    return str(client)


@route(router, "POST", "/create_project", response={200: dict[str, int]})
def create_project(request: HttpRequest, payload: CreateProject) -> dict[str, int]:
    """Create a project of a workflow version; its first machine steps are queued at once."""
    project = project_create(
        workflow_slug=payload.workflow_slug,
        version_slug=payload.workflow_version_slug,
        description=payload.description,
        priority=payload.priority,
        task_class=payload.task_class,
        project_data=payload.project_data,
        actor=_actor(request),
    )
    return {"project_id": project.pk}


@route(router, "POST", "/create_projects", response={200: dict[str, list[int]]})
def create_projects(request: HttpRequest, payload: CreateProjects) -> dict[str, list[int]]:
    """Create one project per `project_data` object, all in one transaction (all or nothing)."""
    projects = projects_create(
        workflow_slug=payload.workflow_slug,
        version_slug=payload.workflow_version_slug,
        description=payload.description,
        priority=payload.priority,
        task_class=payload.task_class,
        project_datas=payload.project_data,
        actor=_actor(request),
    )
    return {"project_ids": [p.pk for p in projects]}


def _documented_shape(info: dict[str, Any]) -> dict[str, Any]:
    """One project as B12's documentation and demo show it: steps as [slug, description] pairs and each
    assignment's worker as a username."""
    tasks = {
        slug: {
            **task,
            "assignments": [{**a, "worker": a["worker"]["username"]} for a in task["assignments"]],
        }
        for slug, task in info["tasks"].items()
    }
    return {**info, "steps": [[s["slug"], s["description"]] for s in info["steps"]], "tasks": tasks}


@route(router, "POST", "/project_information", auth=client_signature_read)
def get_project_information(request: HttpRequest, payload: ProjectIds) -> dict[str, Any]:
    """`{"project_id": N}`: that project. `{"project_ids": [...]}`: a mapping from id to project."""
    if (payload.project_id is None) == (payload.project_ids is None):
        raise ValidationError(
            "project_ids: send either project_id (one project) or project_ids (a list)", field="project_ids"
        )
    if payload.project_id is not None:
        return _documented_shape(project_information([payload.project_id])[payload.project_id])
    if len(payload.project_ids or []) > MAX_PROJECTS_PER_CALL:
        raise ValidationError(f"project_ids: at most {MAX_PROJECTS_PER_CALL} projects per call", field="project_ids")
    return {str(pk): info for pk, info in project_information(payload.project_ids or []).items()}


@route(router, "GET", "/workflow_types", auth=client_signature_read)
def get_workflow_types(request: HttpRequest) -> dict[str, Any]:
    """Every loaded workflow with its versions."""
    return {"workflows": workflow_types()}


@route(router, "POST", "/project_details_url", auth=client_signature_read)
def project_details_url(request: HttpRequest, payload: ProjectId) -> dict[str, str]:
    """Where a person can look at the project in a browser."""
    require_project(payload.project_id)
    base = str(conf.get("ORCHESTRA_URL")).rstrip("/")
    return {"project_details_url": f"{base}/orchestra/app/projects/{payload.project_id}/"}


@route(router, "POST", "/assign_worker_to_task")
def assign_worker_to_task(request: HttpRequest, payload: AssignWorker) -> dict[str, Any]:
    """Push a worker onto a task (entry level, or the next review level). B12's shape on success."""
    worker = worker_by_id_or_username(payload.worker_id)
    try:
        task_assign(task_id=payload.task_id, worker=worker, actor=_actor(request))
    except NotFound:
        raise
    except OrchestraError as exc:
        key = "worker_certification_error" if exc.code == "certification_error" else "task_assignment_error"
        exc.fields["errors"] = {key: exc.message}
        raise
    return {"success": True, "errors": {}}


class ProjectFilter(Schema):
    status: ProjectStatus | None = None
    workflow: Text | None = Field(None, description="workflow slug")
    page: Page = 1
    page_size: int = Field(50, ge=1, le=500)


@route(router, "GET", "/projects", auth=client_signature_read)
def list_projects(request: HttpRequest, filters: Query[ProjectFilter]) -> dict[str, Any]:
    """Projects, newest first, filtered by status and workflow, a page at a time."""
    return project_list(
        status=filters.status, workflow=filters.workflow, page=filters.page, page_size=filters.page_size
    )


@route(router, "POST", "/end_project")
def end_project(request: HttpRequest, payload: ProjectId) -> dict[str, Any]:
    """End a project: open tasks are aborted, completed ones stay Complete."""
    project = project_end(project_id=payload.project_id, actor=_actor(request))
    return {"project_id": project.pk, "status": project.status}


@route(router, "POST", "/retry_task")
def retry_task(request: HttpRequest, payload: TaskId) -> dict[str, Any]:
    """Queue a Failed machine task again."""
    task = task_retry(task_id=payload.task_id, actor=_actor(request))
    return {"task_id": task.pk, "status": task.status}
