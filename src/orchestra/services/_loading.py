"""Loading the rows a lifecycle service works on, with the project locked first (one lock order)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestra.engine.definitions import StepDef
from orchestra.engine.errors import NotFound, ProjectNotActive, ValidationError
from orchestra.engine.lifecycle import ProjectStatus, TaskStatus
from orchestra.models import Project, Task, Worker
from orchestra.services._base import CompiledVersion, compiled


@dataclass
class Loaded:
    project: Project
    task: Task
    step: StepDef
    cv: CompiledVersion
    # Every task of the project by step slug, read after the lock; update it with the call's own change
    # before handing it to `advance`.
    statuses: dict[str, TaskStatus]
    # Every task's output by step slug (for prerequisites, without reading them again).
    outputs: dict[str, Any]

    def changed(self, status: TaskStatus, data: Any) -> None:
        """Record this call's change to its own task before handing the state to `advance`."""
        self.task.status = self.statuses[self.step.slug] = status
        self.task.data = self.outputs[self.step.slug] = data


def load_task(task_id: int) -> Loaded:
    """Lock the task's project (every lifecycle service locks the project first), then read the task."""
    try:
        project = (
            Project.objects.select_for_update(of=("self",), no_key=True)
            .select_related("version")
            .get(tasks__id=task_id)
        )
    except Project.DoesNotExist:
        raise NotFound(f"task {task_id} does not exist", task_id=task_id) from None
    # Read after the lock (a new statement), so a change committed by the previous lock holder is seen.
    tasks = list(Task.objects.filter(project=project))
    task = next(t for t in tasks if t.pk == task_id)
    cv = compiled(project.version)
    slugs = cv.slugs_by_step_id
    statuses = {slugs[t.step_id]: TaskStatus(t.status) for t in tasks}
    outputs = {slugs[t.step_id]: t.data for t in tasks}
    return Loaded(project, task, cv.definition.step(slugs[task.step_id]), cv, statuses, outputs)


def require_active(project: Project, doing: str) -> None:
    if project.status != ProjectStatus.ACTIVE:
        raise ProjectNotActive(
            f"project {project.pk} is '{project.status}'; {doing} needs it to be Active"
            + (" (resume it first)" if project.status == ProjectStatus.PAUSED else ""),
            project_id=project.pk,
            current=project.status,
        )


def require_open_project(project: Project, doing: str) -> None:
    if project.status not in (ProjectStatus.ACTIVE, ProjectStatus.PAUSED):
        raise ProjectNotActive(
            f"project {project.pk} is '{project.status}'; {doing} needs it to be Active or Paused",
            project_id=project.pk,
            current=project.status,
        )


def check_data(data: Any, field: str = "data") -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(f"{field}: expected a JSON object, got {type(data).__name__}", field=field)
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field}: not JSON-serializable ({exc})", field=field) from None
    return data


def as_worker(worker: Worker | str) -> Worker:
    if isinstance(worker, Worker):
        return worker
    from orchestra.services.workers import worker_get

    return worker_get(worker)
