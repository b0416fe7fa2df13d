"""The Holding Pen: halted and failed automated tasks, with their task-list objects."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q

from orchestra.actions import get_action
from orchestra.engine.errors import NotFound
from orchestra.engine.execution import task_list
from orchestra.engine.lifecycle import StepKind, TaskStatus
from orchestra.engine.tasklist import describe, position_name, tasklist_hash
from orchestra.models import Task, WorkflowObject

PEN_STATUSES = (TaskStatus.HALTED, TaskStatus.FAILED)

# What can be done to a stopped task, by its step kind and status (each op is one service call).
_TASKS_HALTED = ("resolve", "resume", "restart_step", "restart_prev", "restart", "edit", "stop", "abort")
_TASKS_FAILED = ("retry", "resume", "restart_prev", "restart", "edit", "stop", "abort")
_OTHER_FAILED = ("retry", "abort")

_COLUMNS = (
    "id",
    "project_id",
    "status",
    "updated_at",
    "last_error",
    "step__slug",
    "step__name",
    "step__kind",
    "project__version__workflow__slug",
    "object__status",
    "object__action",
    "object__message",
)


def operations(kind: str, status: str, action: str = "") -> list[str]:
    if kind != StepKind.TASKS:
        return list(_OTHER_FAILED) if status == TaskStatus.FAILED else []
    if status == TaskStatus.HALTED:
        return [op for op in _TASKS_HALTED if op != "resolve" or action]
    return list(_TASKS_FAILED)


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def pen_list(
    *,
    workflow: str | None = None,
    step: str | None = None,
    action: str | None = None,
    message: str | None = None,
    status: str | None = None,
    since: date | None = None,
    until: date | None = None,
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    """Halted and Failed tasks, most recently stopped first; filters combine (message: text search; `since` and
    `until` are whole days, UTC, both included)."""
    rows = Task.objects.filter(status__in=[status] if status in PEN_STATUSES else list(PEN_STATUSES))
    if workflow:
        rows = rows.filter(project__version__workflow__slug=workflow)
    if step:
        rows = rows.filter(step__slug=step)
    if action:
        rows = rows.filter(object__action=action)
    if message:
        rows = rows.filter(Q(object__message__icontains=message) | Q(last_error__icontains=message))
    if since:
        rows = rows.filter(updated_at__gte=datetime.combine(since, time.min, tzinfo=UTC))
    if until and until < date.max:  # the last day there is has no day after it: no end
        rows = rows.filter(updated_at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC))
    total = rows.count()
    start = (page - 1) * page_size
    items = []
    for row in rows.order_by("-updated_at", "-id").values(*_COLUMNS)[start : start + page_size]:
        items.append(
            {
                "id": row["id"],
                "task_id": row["id"],
                "project_id": row["project_id"],
                "workflow": row["project__version__workflow__slug"],
                "step": row["step__slug"],
                "step_name": row["step__name"],
                "kind": row["step__kind"],
                "task_status": row["status"],
                "object_status": row["object__status"] or "",
                "action": row["object__action"] or "",
                "message": row["object__message"] or _first_line(row["last_error"]),
                "updated_at": row["updated_at"],
                "operations": operations(row["step__kind"], row["status"], row["object__action"] or ""),
            }
        )
    return {"count": total, "page": page, "page_size": page_size, "items": items}


def pen_detail(task_id: int) -> dict[str, Any]:
    """One stopped task: its object (data, extra data, history, results, message, position in the list),
    the action waiting for a decision and what can be done."""
    task = (
        Task.objects.filter(pk=task_id)
        .select_related("step", "project__version__workflow")
        .only(
            "id",
            "status",
            "updated_at",
            "last_error",
            "attempts",
            "project_id",
            "project__status",
            "project__version__workflow__slug",
            "project__version__digest",
            "step__slug",
            "step__name",
            "step__kind",
            "step__version_id",
        )
        .first()
    )
    if task is None:
        raise NotFound(f"task {task_id} does not exist", task_id=task_id)
    obj = WorkflowObject.objects.filter(task_id=task_id).first()
    detail: dict[str, Any] = {
        "id": task.pk,
        "task_id": task.pk,
        "project_id": task.project_id,
        "project_status": task.project.status,
        "workflow": task.project.version.workflow.slug,
        "step": task.step.slug,
        "step_name": task.step.name,
        "kind": task.step.kind,
        "task_status": task.status,
        "attempts": task.attempts,
        "error": task.last_error,
        "updated_at": task.updated_at,
        "in_holding_pen": task.status in PEN_STATUSES,
        "object": None,
        "action": None,
        "operations": [],
    }
    if task.status in PEN_STATUSES:
        detail["operations"] = operations(task.step.kind, task.status, obj.action if obj else "")
    if obj is None:
        return detail
    extra = obj.extra_data or {}
    outline, current, changed = _outline(task, obj)
    detail["object"] = {
        "status": obj.status,
        "data": obj.data,
        "initial_data": obj.initial_data,
        "extra_data": {k: v for k, v in extra.items() if k not in ("_task_history", "_tasks_results")},
        "history": extra.get("_task_history", []),
        "task_results": extra.get("_tasks_results", {}),
        "message": obj.message,
        "error": extra.get("_error_msg", ""),
        "callback_pos": obj.callback_pos,
        "position_name": current,
        "outline": outline,
        "definition_changed": changed,
        "created_at": obj.created_at,
        "updated_at": obj.updated_at,
    }
    if obj.action:
        try:
            action = get_action(obj.action)
            detail["action"] = {
                "name": action.name,
                "title": action.title,
                "choices": [list(c) for c in action.choices],
            }
        except NotFound as exc:
            detail["action"] = {"name": obj.action, "title": "", "choices": [], "error": exc.message}
    return detail


def _outline(task: Task, obj: WorkflowObject) -> tuple[list[dict[str, Any]], str, bool]:
    """The step's task list as it is now, the name at the object's position, and whether it changed."""
    from orchestra.services._base import compiled

    step = compiled(task.project.version).definition.step(task.step.slug)
    try:
        tasks = task_list(step.execution)
    except Exception as exc:  # the list cannot be imported any more: say so instead of failing the page
        return [{"position": [], "name": f"cannot load the task list: {exc}", "doc": "", "control": False}], "", True
    changed = tasklist_hash(tasks) != obj.tasks_hash
    current = "" if changed or not obj.callback_pos else position_name(tasks, obj.callback_pos)
    return describe(tasks), current, changed
