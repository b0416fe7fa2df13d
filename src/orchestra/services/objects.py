"""Task-list objects (`tasks` steps): starting and finishing a run, and the Holding Pen's decisions.

A run of a tasks step starts with `object_begin` (the object is made on the first run) and ends with
`object_finish`, which saves the object and moves its task in the same transaction: Complete, Halted,
queued again after a failure, or Failed. A halted or failed object is then resumed, restarted, stopped,
aborted, edited or decided on (an action such as approval) by the functions below, each one transaction.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from orchestra import execution
from orchestra.actions import Resolution, get_action
from orchestra.engine.errors import Conflict, DefinitionChanged, ValidationError
from orchestra.engine.execution import task_list
from orchestra.engine.lifecycle import StepKind, TaskAction, TaskStatus, task_transition
from orchestra.engine.tasklist import ObjectStatus, StartPoint, tasklist_hash
from orchestra.engine.tasklist import WorkflowObject as EngineObject
from orchestra.models import Task, WorkflowObject
from orchestra.services._base import ActorLike, Tx, cas, service
from orchestra.services._loading import Loaded, check_data, load_task, require_open_project
from orchestra.services._progress import Claim
from orchestra.services.machine import machine_fail, machine_succeed
from orchestra.services.projects import project_end
from orchestra.services.tasks import task_complete_and_skip

# Keys of extra_data that describe one stop of the run; cleared when it runs on.
_STOP_KEYS = ("_action", "_message", "_error_msg")


@dataclass(frozen=True)
class ObjectState:
    """Where a run of a tasks step starts from."""

    data: Any
    extra_data: dict[str, Any]
    engine_data: dict[str, Any]
    callback_pos: list[int]
    start_point: StartPoint
    first_run: bool


def initial_data(project_data: dict[str, Any]) -> Any:
    """A tasks step's object starts as `project_data["data"]` when the project has one (so any JSON
    value can be an object, as with `orchestra.workflows.start(name, data=[5, 10])`), else all of it."""
    return copy.deepcopy(project_data.get("data", project_data))


def object_begin(*, claim: Claim, tasks_hash: str) -> ObjectState:
    """Mark the claimed task's object RUNNING (making it on the first run). DefinitionChanged when the
    task list is not the one the object stopped in (its task is then failed, not run at a guess)."""
    with service(claim.owner) as tx:
        if not Task.objects.filter(pk=claim.task_id, status=TaskStatus.PROCESSING, claim_token=claim.token).exists():
            raise Conflict(f"task {claim.task_id}: claim {claim.token} is no longer current", task_id=claim.task_id)
        obj = WorkflowObject.objects.filter(task_id=claim.task_id).first()
        if obj is None:
            data = initial_data(claim.project_data)
            obj = WorkflowObject.objects.create(
                task_id=claim.task_id,
                status=ObjectStatus.RUNNING,
                data=data,
                initial_data=copy.deepcopy(data),
                tasks_hash=tasks_hash,
                created_at=tx.now,
                updated_at=tx.now,
            )
            return ObjectState(data, {}, {}, [], StartPoint.RESTART_TASK, True)
        if obj.tasks_hash != tasks_hash:
            raise DefinitionChanged(_changed_message(obj), task_id=claim.task_id)
        WorkflowObject.objects.filter(pk=obj.pk).update(status=ObjectStatus.RUNNING, updated_at=tx.now)
        return ObjectState(
            obj.data, obj.extra_data, obj.engine_data, obj.callback_pos, StartPoint(obj.start_point), False
        )


def _changed_message(obj: WorkflowObject) -> str:
    return (
        f"object {obj.task_id}: the task list changed since it stopped at position {obj.callback_pos}"
        f" (definition {obj.tasks_hash[:12]}); resuming would have to guess where it is."
        " Restart it from the first task (start point 'first'), or stop or abort it"
    )


def object_finish(*, claim: Claim, obj: EngineObject, engine_data: dict[str, Any], outcome: Any) -> None:
    """Save the object as the run left it and move its task accordingly, in one transaction.

    `outcome` is the engine's `tasklist.Outcome`. ERROR is an attempt failure (the step's retry policy
    applies; the next attempt re-runs the failing task); an abort fails the task without retry."""
    status = ObjectStatus(outcome.status)
    with service(claim.owner) as tx:
        if status == ObjectStatus.COMPLETED:
            machine_succeed(task_id=claim.task_id, token=claim.token, output={"data": obj.data}, actor=claim.owner)
        elif status in (ObjectStatus.HALTED, ObjectStatus.WAITING):
            _halt(tx, claim, status, outcome)
        else:
            last_line = outcome.error.strip().splitlines()[-1] if outcome.error.strip() else "the task list failed"
            machine_fail(
                task_id=claim.task_id,
                token=claim.token,
                error=outcome.message or last_line,
                traceback=outcome.error,
                retry=not outcome.aborted,
                actor=claim.owner,
            )
        _save(
            tx,
            claim.task_id,
            status=status,
            data=obj.data,
            extra_data=obj.extra_data,
            engine_data=engine_data,
            callback_pos=list(outcome.callback_pos),
            start_point=StartPoint.CONTINUE_NEXT if status != ObjectStatus.ERROR else StartPoint.RESTART_TASK,
            action=(outcome.action or "") if status == ObjectStatus.HALTED else "",
            message=outcome.message,
        )


def _save(tx: Tx, task_id: int, **fields: Any) -> None:
    for name in ("data", "extra_data", "engine_data"):
        if name in fields:
            check_data({"value": fields[name]}, field=name)  # JSON only, said before anything is written
    WorkflowObject.objects.filter(task_id=task_id).update(updated_at=tx.now, **fields)


def _halt(tx: Tx, claim: Claim, status: ObjectStatus, outcome: Any) -> None:
    loaded = load_task(claim.task_id)
    task, step = loaded.task, loaded.step
    if task.status != TaskStatus.PROCESSING or task.claim_token != claim.token:
        raise Conflict(f"task {task.pk}: halt refused; claim {claim.token} is no longer current", task_id=task.pk)
    new = task_transition(task.status, TaskAction.HALT, kind=step.kind, task_id=task.pk)
    cas(
        Task,
        {"pk": task.pk, "status": task.status, "claim_token": claim.token},
        f"task {task.pk}",
        status=new,
        claim_token=None,
        lease_expires_at=None,
        updated_at=tx.now,
    )
    tx.event(
        "task_halted",
        project_id=loaded.project.pk,
        task_id=task.pk,
        from_status=task.status,
        to_status=new,
        object_status=str(status),
        message=outcome.message,
        halt_action=outcome.action or "",
        position=list(outcome.callback_pos),
    )


# --- Holding Pen decisions -----------------------------------------------------------------------------


def _stopped(task_id: int) -> tuple[Loaded, WorkflowObject | None]:
    """The task (its project locked) and its object; refuses unless it is Halted or Failed."""
    loaded = load_task(task_id)
    if loaded.task.status not in (TaskStatus.HALTED, TaskStatus.FAILED):
        raise Conflict(
            f"task {task_id} is '{loaded.task.status}'; the Holding Pen acts on 'Halted' and 'Failed' tasks only",
            task_id=task_id,
            current=str(loaded.task.status),
        )
    return loaded, WorkflowObject.objects.filter(task_id=task_id).first()


def _object_of(loaded: Loaded, obj: WorkflowObject | None) -> WorkflowObject:
    if obj is None:
        what = f"a {loaded.step.kind} step" if loaded.step.kind != StepKind.TASKS else "a tasks step that never ran"
        raise ValidationError(
            f"task {loaded.task.pk} belongs to {what}; it has no task-list object to change (retry it instead)",
            task_id=loaded.task.pk,
        )
    return obj


def _run_on(tx: Tx, loaded: Loaded, obj: WorkflowObject | None, start_point: StartPoint, **changes: Any) -> None:
    """Queue a Halted or Failed task again, its object to start at `start_point`."""
    task, step = loaded.task, loaded.step
    require_open_project(loaded.project, f"resuming task {task.pk}")
    if obj is None and step.kind == StepKind.TASKS and start_point != StartPoint.RESTART_TASK:
        raise ValidationError(f"task {task.pk} never ran; it can only be retried from its first task", field="start")
    action = TaskAction.RESUME if task.status == TaskStatus.HALTED else TaskAction.RETRY
    new = task_transition(task.status, action, kind=step.kind, task_id=task.pk)
    if obj is not None:
        current = tasklist_hash(task_list(step.execution))
        fields: dict[str, Any] = {"status": ObjectStatus.RUNNING, "start_point": start_point, "action": ""}
        extra = dict(changes.pop("extra_data", obj.extra_data))
        if start_point == StartPoint.FIRST:
            history = extra.get("_task_history", [])
            extra = {"_task_history": history} if history else {}
            fields.update(data=copy.deepcopy(obj.initial_data), engine_data={}, callback_pos=[], tasks_hash=current)
        elif obj.tasks_hash != current:
            raise DefinitionChanged(_changed_message(obj), task_id=task.pk)
        for key in _STOP_KEYS:
            extra.pop(key, None)
        fields.update(extra_data=extra, message="", **changes)
        _save(tx, task.pk, **fields)
    cas(
        Task,
        {"pk": task.pk, "status": task.status},
        f"task {task.pk}",
        status=new,
        attempts=0,  # a decision starts a fresh set of attempts; a halt was not a failure
        run_after=None,
        claim_token=None,
        lease_expires_at=None,
        updated_at=tx.now,
    )
    tx.event(
        "task_resumed" if action == TaskAction.RESUME else "task_retried",
        project_id=loaded.project.pk,
        task_id=task.pk,
        from_status=task.status,
        to_status=new,
        start_point=str(start_point),
    )
    tx.after_commit.append(functools.partial(execution.work_queued, [task.pk]))


def object_resume(
    *, task_id: int, start_point: StartPoint | str = StartPoint.CONTINUE_NEXT, actor: ActorLike = None
) -> None:
    """Run a halted or failed object on from `start_point`: continue_next (after the task that stopped it),
    restart_task (that task again), restart_prev (the one before) or first (from the start, with its
    initial data). A failed automated step of another kind is retried."""
    point = _start_point(start_point)
    with service(actor) as tx:
        loaded, obj = _stopped(task_id)
        _run_on(tx, loaded, obj, point)


def _start_point(value: StartPoint | str) -> StartPoint:
    try:
        return StartPoint(value)
    except ValueError:
        choices = ", ".join(p.value for p in StartPoint)
        raise ValidationError(f"'{value}' is not a start point; use one of: {choices}", field="start_point") from None


def object_resolve(*, task_id: int, choice: str, data: Any = None, actor: ActorLike = None) -> str:
    """Decide a halted object's pending action (e.g. approval: accept or reject). Returns the outcome."""
    with service(actor) as tx:
        loaded, row = _stopped(task_id)
        obj = _object_of(loaded, row)
        if loaded.task.status != TaskStatus.HALTED or not obj.action:
            raise Conflict(f"object {task_id} has no pending action to decide; resume, restart or stop it instead")
        action = get_action(obj.action)
        if not choice:
            raise ValidationError(
                f"resolving '{obj.action}' needs 'choice', e.g. {action.choices[0][0]}", field="choice"
            )
        action.check_choice(choice)
        view = EngineObject(data=copy.deepcopy(obj.data), extra_data=copy.deepcopy(obj.extra_data), id=task_id)
        resolution: Resolution = action.resolve(view, choice, data)
        tx.event(
            "object_decided",
            project_id=loaded.project.pk,
            task_id=task_id,
            pen_action=obj.action,
            choice=choice,
            outcome=resolution.outcome,
        )
        if resolution.outcome == "proceed":
            _run_on(tx, loaded, obj, resolution.start_point, data=view.data, extra_data=view.extra_data)
        else:
            _save(tx, task_id, data=view.data, extra_data=view.extra_data)
            _finish_early(tx, loaded, resolution.outcome, actor)
        return resolution.outcome


def object_stop(*, task_id: int, actor: ActorLike = None) -> None:
    """End a halted or failed object here: its task completes with the data as it is; later tasks of the
    list do not run (Invenio's stop). The workflow's next steps start as after any completion."""
    with service(actor) as tx:
        loaded, obj = _stopped(task_id)
        _object_of(loaded, obj)
        _finish_early(tx, loaded, "stop", actor)


def object_abort(*, task_id: int, actor: ActorLike = None) -> None:
    """Reject a halted or failed object outright: its project is aborted."""
    with service(actor) as tx:
        loaded, _ = _stopped(task_id)
        _finish_early(tx, loaded, "abort", actor)


def _finish_early(tx: Tx, loaded: Loaded, how: str, actor: ActorLike) -> None:
    task_id = loaded.task.pk
    if how == "stop":
        obj = WorkflowObject.objects.get(task_id=task_id)
        task_complete_and_skip(task_id=task_id, data={"data": obj.data}, actor=actor)
        status, message = ObjectStatus.COMPLETED, "stopped in the Holding Pen"
    else:
        project_end(project_id=loaded.project.pk, actor=actor)
        status, message = ObjectStatus.ERROR, "aborted in the Holding Pen"
    WorkflowObject.objects.filter(task_id=task_id).update(status=status, action="", message=message, updated_at=tx.now)


def object_edit(*, task_id: int, data: Any, extra_data: dict[str, Any] | None = None, actor: ActorLike = None) -> None:
    """Replace a halted or failed object's data (and, if given, its extra data) before it runs on."""
    if extra_data is not None and not isinstance(extra_data, dict):
        raise ValidationError("extra_data must be a JSON object", field="extra_data")
    with service(actor) as tx:
        loaded, row = _stopped(task_id)
        obj = _object_of(loaded, row)
        fields: dict[str, Any] = {"data": data}
        if extra_data is not None:
            fields["extra_data"] = extra_data
        _save(tx, task_id, **fields)
        tx.event(
            "object_edited",
            project_id=loaded.project.pk,
            task_id=task_id,
            before=obj.data,
            after=data,
            extra_data_replaced=extra_data is not None,
        )


# The Holding Pen's operations (API paths and page buttons), Invenio's names where it had them.
OPERATIONS = (
    "resolve",
    "resume",
    "restart_step",
    "restart_prev",
    "restart",
    "retry",
    "edit",
    "stop",
    "abort",
)
_START_POINTS = {
    "resume": StartPoint.CONTINUE_NEXT,
    "restart_step": StartPoint.RESTART_TASK,
    "retry": StartPoint.RESTART_TASK,
    "restart_prev": StartPoint.RESTART_PREV,
    "restart": StartPoint.FIRST,
}


def object_apply(
    *,
    task_id: int,
    operation: str,
    actor: ActorLike = None,
    choice: str | None = None,
    data: Any = None,
    extra_data: dict[str, Any] | None = None,
) -> str:
    """Apply one Holding Pen operation to a stopped task; returns what happened (for the caller's reply)."""
    if operation in _START_POINTS:
        object_resume(task_id=task_id, start_point=_START_POINTS[operation], actor=actor)
        return f"queued from {_START_POINTS[operation].value}"
    if operation == "resolve":
        return object_resolve(task_id=task_id, choice=choice or "", data=data, actor=actor)
    if operation == "edit":
        object_edit(task_id=task_id, data=data, extra_data=extra_data, actor=actor)
        return "edited"
    if operation == "stop":
        object_stop(task_id=task_id, actor=actor)
        return "stopped"
    if operation == "abort":
        object_abort(task_id=task_id, actor=actor)
        return "aborted"
    raise ValidationError(
        f"'{operation}' is not a Holding Pen operation; use one of: {', '.join(OPERATIONS)}", field="operation"
    )


__all__ = [
    "OPERATIONS",
    "object_apply",
    "ObjectState",
    "initial_data",
    "object_abort",
    "object_begin",
    "object_edit",
    "object_finish",
    "object_resolve",
    "object_resume",
    "object_stop",
]
