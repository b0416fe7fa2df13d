"""Invenio-Workflows' Python API, on Orchestra.

    from orchestra.workflows import start, IF, FOR

    class myworkflow:
        workflow = [add_data(20), halt_if_higher_than_20]

    register("mypackage.workflows.myworkflow")      # or list it in ORCHESTRA_TASK_WORKFLOWS
    run = start("myworkflow", data=[5, 10])          # runs here, now; returns when each object stopped
    [o.status for o in run.halted_objects]           # [HALTED, HALTED]; o.get_data() == 25, 30
    continue_object(run.halted_objects[0].id)        # runs it on from the task after the halt

Each data item becomes a project of the registered one-step workflow, and its object is that project's
`tasks` task (the object id is the task id). `start_delayed` leaves the work to the executor (local
threads or Celery) and returns at once. Halted and failed objects are listed in the Holding Pen
(/orchestra/app/holdingpen/ and /orchestra/api/holdingpen/).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestra import conf
from orchestra.actions import Action, Approval, Resolution, register_action
from orchestra.engine.errors import NotFound
from orchestra.engine.lifecycle import StepKind, TaskStatus
from orchestra.engine.tasklist import ObjectStatus, StartPoint

# Task statuses in which an object is still being worked on by the machine.
_BUSY = (TaskStatus.AWAITING_PROCESSING, TaskStatus.PROCESSING)


@dataclass
class ObjectView:
    """An object as last read from the database (Invenio's WorkflowObject, read-only here)."""

    id: int
    project_id: int
    workflow: str
    status: ObjectStatus
    task_status: str
    data: Any
    extra_data: dict[str, Any]
    callback_pos: list[int]
    message: str
    action: str
    initial: bool = False  # the snapshot of the data it started with (Invenio's INITIAL copy)

    def get_data(self) -> Any:
        return self.data

    def get_extra_data(self) -> dict[str, Any]:
        return self.extra_data

    def get_action(self) -> str | None:
        return self.action or None

    def get_action_message(self) -> str:
        return self.message

    def get_tasks_results(self) -> dict[str, Any]:
        results: dict[str, Any] = self.extra_data.get("_tasks_results", {})
        return results

    def refresh(self) -> ObjectView:
        return get_object(self.id)


@dataclass
class WorkflowRun:
    """What `start` ran: the objects as they stopped, and (as Invenio reports them) a snapshot of each
    object's initial data, so `objects` holds two entries per data item."""

    workflow: str
    current: list[ObjectView]
    snapshots: list[ObjectView] = field(default_factory=list)

    @property
    def objects(self) -> list[ObjectView]:
        return self.snapshots + self.current

    @property
    def object_ids(self) -> list[int]:
        return [o.id for o in self.current]

    def _in(self, status: ObjectStatus) -> list[ObjectView]:
        return [o for o in self.objects if o.status == status]

    @property
    def initial_objects(self) -> list[ObjectView]:
        return self._in(ObjectStatus.INITIAL)

    @property
    def halted_objects(self) -> list[ObjectView]:
        return self._in(ObjectStatus.HALTED)

    @property
    def completed_objects(self) -> list[ObjectView]:
        return self._in(ObjectStatus.COMPLETED)

    @property
    def running_objects(self) -> list[ObjectView]:
        return self._in(ObjectStatus.RUNNING)

    @property
    def waiting_objects(self) -> list[ObjectView]:
        return self._in(ObjectStatus.WAITING)

    @property
    def error_objects(self) -> list[ObjectView]:
        return self._in(ObjectStatus.ERROR)

    @property
    def has_completed(self) -> bool:
        return all(o.status == ObjectStatus.COMPLETED for o in self.current)

    def refresh(self) -> WorkflowRun:
        return WorkflowRun(self.workflow, [get_object(i) for i in self.object_ids], self.snapshots)


class AsyncResult:
    """What the delayed calls return (Invenio's AsynchronousResultWrapper): `.status`, `.get()`."""

    def __init__(self, workflow: str, object_ids: list[int], snapshots: list[ObjectView]) -> None:
        self.workflow = workflow
        self.object_ids = object_ids
        self._snapshots = snapshots

    @property
    def status(self) -> str:
        """PENDING while any object is still queued or running, else SUCCESS."""
        return "PENDING" if _busy(self.object_ids) else "SUCCESS"

    def get(self, timeout: float = 60.0, interval: float = 0.05) -> WorkflowRun:
        """Wait until every object has stopped (completed, halted, waiting or failed), then report them."""
        deadline = time.monotonic() + timeout
        while self.status == "PENDING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"objects {self.object_ids} still running after {timeout:g} s")
            time.sleep(interval)
        return WorkflowRun(self.workflow, [get_object(i) for i in self.object_ids], self._snapshots)


def register(workflow: str, *, name: str | None = None) -> str:
    """Register a task list by dotted path (a list, or a class whose `workflow` is one) as a workflow;
    returns its name. Registering again is harmless."""
    from orchestra.services.workflows import workflow_register_tasks

    return workflow_register_tasks(path=workflow, slug=name).workflow


def _registered(name: str) -> str:
    """The slug of workflow `name`, registering it from ORCHESTRA_TASK_WORKFLOWS on first use."""
    from orchestra.models import Workflow

    if Workflow.objects.filter(slug=name).exists():
        return name
    for path in conf.get("ORCHESTRA_TASK_WORKFLOWS"):
        if path.rsplit(".", 1)[-1] == name:
            return register(path)
    raise NotFound(
        f"no workflow named '{name}'; register its task list first with"
        f" orchestra.workflows.register('package.module.{name}') or list it in ORCHESTRA_TASK_WORKFLOWS",
        workflow=name,
    )


def _create(workflow_name: str, data: Any, priority: int, description: str) -> tuple[str, list[int], list[ObjectView]]:
    from orchestra.models import Task
    from orchestra.services.projects import projects_create

    slug = _registered(workflow_name)
    items = list(data) if isinstance(data, list | tuple) else [data]
    version = _latest_version(slug)
    projects = projects_create(
        workflow_slug=slug,
        version_slug=version,
        project_datas=[{"data": item} for item in items],
        description=description,
        priority=priority,
    )
    project_ids = [p.pk for p in projects]
    tasks = dict(
        Task.objects.filter(project_id__in=project_ids, step__kind=StepKind.TASKS).values_list("project_id", "id")
    )
    ids = [tasks[p] for p in project_ids if p in tasks]
    snapshots = [_snapshot(i, p, slug, item) for i, p, item in zip(ids, project_ids, items, strict=False)]
    return slug, ids, snapshots


def _latest_version(slug: str) -> str:
    from orchestra.models import WorkflowVersion

    versions = list(WorkflowVersion.objects.filter(workflow__slug=slug).values_list("slug", flat=True))
    if not versions:
        raise NotFound(f"workflow '{slug}' has no versions", workflow=slug)
    return max(versions, key=lambda v: (len(v), v))


def _snapshot(object_id: int, project_id: int, workflow: str, data: Any) -> ObjectView:
    return ObjectView(object_id, project_id, workflow, ObjectStatus.INITIAL, "", data, {}, [], "", "", True)


def start(
    workflow_name: str, data: Any = None, *, priority: int = 0, description: str = "", timeout: float = 300.0
) -> WorkflowRun:
    """Run each data item through the workflow now, in this thread, until it completes, halts, waits or
    fails; returns the objects as they stopped (Invenio's synchronous `start`)."""
    slug, ids, snapshots = _create(workflow_name, data, priority, description)
    _run_here(ids, timeout)
    return WorkflowRun(slug, [get_object(i) for i in ids], snapshots)


def start_delayed(workflow_name: str, data: Any = None, *, priority: int = 0, description: str = "") -> AsyncResult:
    """Queue each data item for the executor (local threads or Celery) and return at once."""
    slug, ids, snapshots = _create(workflow_name, data, priority, description)
    return AsyncResult(slug, ids, snapshots)


def continue_object(
    object_id: int,
    start_point: StartPoint | str = StartPoint.CONTINUE_NEXT,
    *,
    delayed: bool = False,
    timeout: float = 300.0,
) -> ObjectView | AsyncResult:
    """Run a halted or failed object on from `start_point` (continue_next, restart_task, restart_prev,
    first); with `delayed`, leave it to the executor."""
    from orchestra.services.objects import object_resume

    object_resume(task_id=object_id, start_point=start_point, actor="python-api")
    if delayed:
        view = get_object(object_id)
        return AsyncResult(view.workflow, [object_id], [])
    _run_here([object_id], timeout)
    return get_object(object_id)


def continue_object_delayed(object_id: int, start_point: StartPoint | str = StartPoint.CONTINUE_NEXT) -> AsyncResult:
    result = continue_object(object_id, start_point, delayed=True)
    assert isinstance(result, AsyncResult)
    return result


def resume_objects_in_workflow(
    workflow_name: str, start_point: StartPoint | str = StartPoint.CONTINUE_NEXT
) -> Iterator[ObjectView]:
    """Continue every halted object of the workflow, yielding each as it stopped again (Invenio's
    legacy generator)."""
    from orchestra.models import WorkflowObject

    ids = list(
        WorkflowObject.objects.filter(
            task__project__version__workflow__slug=workflow_name,
            task__status=TaskStatus.HALTED,
            status=ObjectStatus.HALTED,
        ).values_list("task_id", flat=True)
    )
    for object_id in ids:
        result = continue_object(object_id, start_point)
        assert isinstance(result, ObjectView)
        yield result


def get_object(object_id: int) -> ObjectView:
    found = _objects([object_id])
    if not found:
        raise NotFound(f"object {object_id} does not exist (an object's id is its tasks step's task id)")
    return found[0]


def _busy(ids: list[int]) -> bool:
    from orchestra.models import Task

    return Task.objects.filter(pk__in=ids, status__in=list(_BUSY)).exists()


def _objects(ids: Iterable[int]) -> list[ObjectView]:
    from orchestra.models import Task

    rows = (
        Task.objects.filter(pk__in=list(ids), step__kind=StepKind.TASKS)
        .select_related("object", "project__version__workflow")
        .order_by("id")
    )
    views = []
    for task in rows:
        workflow = task.project.version.workflow.slug
        obj = getattr(task, "object", None)
        if obj is None:  # not run yet
            data = task.project.project_data.get("data", task.project.project_data)
            views.append(_snapshot(task.pk, task.project_id, workflow, data))
            continue
        views.append(
            ObjectView(
                task.pk,
                task.project_id,
                workflow,
                ObjectStatus(obj.status),
                task.status,
                obj.data,
                obj.extra_data,
                obj.callback_pos,
                obj.message,
                obj.action,
            )
        )
    return views


def _run_here(task_ids: list[int], timeout: float) -> None:
    """Run these objects' tasks in this thread until each has stopped; wait for any that an executor
    elsewhere claimed first."""
    from orchestra.execution.runner import execute, owner_name
    from orchestra.services.machine import machine_claim

    deadline = time.monotonic() + timeout
    owner = owner_name("python-api")
    while True:
        claims = machine_claim(owner=owner, task_ids=task_ids, limit=len(task_ids))
        for claim in claims:
            execute(claim)
        if claims:
            continue
        if not _busy(task_ids):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"objects {task_ids} still running after {timeout:g} s")
        time.sleep(0.05)


# Invenio's legacy names.
continue_oid = continue_object
continue_oid_delayed = continue_object_delayed

__all__ = [
    "Action",
    "Approval",
    "AsyncResult",
    "ObjectStatus",
    "ObjectView",
    "Resolution",
    "StartPoint",
    "WorkflowRun",
    "continue_object",
    "continue_object_delayed",
    "continue_oid",
    "continue_oid_delayed",
    "get_object",
    "register",
    "register_action",
    "resume_objects_in_workflow",
    "start",
    "start_delayed",
]
