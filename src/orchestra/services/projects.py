"""Projects: create, pause, resume, end."""

from __future__ import annotations

from typing import Any

from orchestra import execution
from orchestra.engine.errors import NotFound, ValidationError
from orchestra.engine.lifecycle import OPEN, ProjectAction, ProjectStatus, TaskClass, project_transition
from orchestra.engine.text import text_problem
from orchestra.models import Project, Workflow, WorkflowVersion
from orchestra.services._base import ActorLike, compiled, insert_objects, lock, service
from orchestra.services._loading import check_data, read_models, table
from orchestra.services._progress import abort_tasks, advance, change_project_status, task_statuses


def _version(workflow_slug: str, version_slug: str) -> WorkflowVersion:
    """The version to start a project of (its other fields load lazily if touched)."""
    found = read_models(
        WorkflowVersion,
        ("id", "workflow_id", "slug", "digest"),
        f"SELECT {{columns}} FROM {table(WorkflowVersion)} v JOIN {table(Workflow)} w ON w.id = v.workflow_id"
        " WHERE w.slug = %s AND v.slug = %s",
        workflow_slug,
        version_slug,
        prefix="v.",
    )
    if not found:
        loaded = list(WorkflowVersion.objects.values_list("workflow__slug", "slug"))
        known = ", ".join(sorted(f"{w}/{v}" for w, v in loaded)) or "none; run `orchestra loadworkflow`"
        if any(w == workflow_slug for w, _ in loaded):
            field, what = "workflow_version_slug", f"no version '{version_slug}' of workflow '{workflow_slug}'"
        else:
            field, what = "workflow_slug", f"no workflow '{workflow_slug}'"
        raise NotFound(f"{field}: {what} is loaded (loaded: {known})", field=field)
    return found[0]


def _validate_project_input(
    priority: Any, task_class: Any, project_data: Any, description: Any, *, field: str = "project_data"
) -> TaskClass:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ValidationError(f"priority: expected an integer, got {priority!r}", field="priority")
    if not isinstance(description, str):
        raise ValidationError("description: expected a string", field="description")
    if problem := text_problem(description):
        raise ValidationError(f"description: {problem}", field="description")
    try:
        klass = TaskClass(task_class)
    except ValueError:
        raise ValidationError(
            f"task_class: expected 'real' or 'training', got {task_class!r}", field="task_class"
        ) from None
    if not isinstance(project_data, dict):
        raise ValidationError(f"{field}: expected a JSON object", field=field)
    check_data(project_data, field)
    return klass


def project_create(
    *,
    workflow_slug: str,
    version_slug: str,
    description: str = "",
    priority: int = 0,
    task_class: TaskClass | str = TaskClass.REAL,
    project_data: dict[str, Any] | None = None,
    actor: ActorLike = None,
) -> Project:
    """Start a project of a workflow version; the first tasks are created (and machine steps queued)."""
    (project,) = projects_create(
        workflow_slug=workflow_slug,
        version_slug=version_slug,
        description=description,
        priority=priority,
        task_class=task_class,
        project_datas=[{} if project_data is None else project_data],
        actor=actor,
    )
    return project


def projects_create(
    *,
    workflow_slug: str,
    version_slug: str,
    project_datas: list[dict[str, Any]],
    description: str = "",
    priority: int = 0,
    task_class: TaskClass | str = TaskClass.REAL,
    actor: ActorLike = None,
) -> list[Project]:
    """One project per data object, in one transaction: all are created or none (Invenio's
    `start(workflow, data=[...])`)."""
    if not isinstance(project_datas, list) or not project_datas:
        raise ValidationError("project_data: expected a non-empty list of JSON objects", field="project_data")
    klass = TaskClass.REAL
    for i, data in enumerate(project_datas):
        field = "project_data" if len(project_datas) == 1 else f"project_data[{i}]"
        klass = _validate_project_input(priority, task_class, data, description, field=field)
    version = _version(workflow_slug, version_slug)
    compiled(version)  # warm the definition cache outside the transaction
    with service(actor) as tx:
        projects = insert_objects(
            [
                Project(
                    version=version,
                    short_description=description,
                    priority=priority,
                    task_class=klass,
                    project_data=data,
                    created_at=tx.now,
                    updated_at=tx.now,
                )
                for data in project_datas
            ]
        )
        for project in projects:
            tx.event(
                "project_created",
                project_id=project.pk,
                to_status=ProjectStatus.ACTIVE,
                workflow=workflow_slug,
                version=version_slug,
                priority=priority,
                task_class=str(klass),
            )
            advance(tx, project, {})
    return projects


def _locked_project(project_id: int) -> Project:
    try:
        return lock(Project, pk=project_id)
    except Project.DoesNotExist:
        raise NotFound(f"project {project_id} does not exist", project_id=project_id) from None


def _change_status(project_id: int, action: ProjectAction, actor: ActorLike) -> Project:
    with service(actor) as tx:
        project = _locked_project(project_id)
        change_project_status(tx, project, action)
        if action == ProjectAction.RESUME:
            # Work that finished while paused may have completed the project, and queued machine work
            # can run again.
            advance(tx, project)
            tx.after_commit.append(execution.work_queued)
    return project


def project_pause(*, project_id: int, actor: ActorLike = None) -> Project:
    """A paused project hands out no work and accepts no submissions until resumed."""
    return _change_status(project_id, ProjectAction.PAUSE, actor)


def project_resume(*, project_id: int, actor: ActorLike = None) -> Project:
    return _change_status(project_id, ProjectAction.RESUME, actor)


def project_end(*, project_id: int, actor: ActorLike = None) -> Project:
    """Abort the project and its unfinished tasks; Complete tasks stay Complete (B12 aborted them all)."""
    with service(actor) as tx:
        project = _locked_project(project_id)
        project_transition(project.status, ProjectAction.END, project_id=project.pk)  # refuse before any change
        cv = compiled(project.version)
        statuses = task_statuses(project, cv)
        abort_tasks(tx, project, cv, [s for s, st in statuses.items() if st in OPEN], statuses)
        change_project_status(tx, project, ProjectAction.END)
    return project
