"""The public event types webhooks and Slack subscribe to, and how the event log's actions map onto them.

A type names what happened to what, `<object>.<verb>`; the log's own action stays in the payload
(`event.action`) for finer distinctions (a reviewer's accept and a worker's submit are both a
`task.submitted` unless they complete the task). A transition into Complete, Failed or Halted is always
that type (`task.completed`, `task.failed`, `task.halted`), whatever action caused it.
"""

from __future__ import annotations

from collections.abc import Iterable

# type: what it means (shown by `orchestra webhook types`, the API and the README).
EVENT_TYPES: dict[str, str] = {
    "project.created": "a project was created (data: workflow, version, priority, task_class)",
    "project.paused": "a project admin paused the project: it hands out and accepts no work",
    "project.resumed": "a paused project was resumed",
    "project.completed": "every task of the project is Complete (or a step that ends the project completed)",
    "project.aborted": "a project admin ended the project; its open tasks were aborted",
    "project.reopened": "a completed project became active again (a task was reverted)",
    "task.created": "a task was created for a step whose dependencies completed (data: step)",
    "task.assigned": "a worker took a seat on a human task (data: worker, level, role, cause)",
    "task.reassigned": "a project admin moved a seat to another worker (data: from_worker, to_worker, level)",
    "task.started": "a machine, script, external or tasks step was claimed to run (data: attempt, owner)",
    "task.submitted": "a worker submitted work, or a reviewer accepted it, and it went on to review",
    "task.returned": "a reviewer returned work to the level below with feedback (data: feedback)",
    "task.completed": "a task became Complete (submitted without review, accepted, machine step done, skipped)",
    "task.failed": "an automated step failed; data.retry says whether it will run again",
    "task.halted": "a tasks step halted for a decision in the Holding Pen (data: action, message)",
    "task.resumed": "a halted or failed object was resumed from the Holding Pen",
    "task.retried": "a project admin retried a failed task",
    "task.reverted": "a project admin reverted a task to an earlier iteration",
    "task.aborted": "an open task was aborted because its project ended or completed",
    "task.decided": "a decision was recorded on a Holding Pen object (data: decision)",
    "workflow.loaded": "a workflow or one of its versions was created or updated",
}

_BY_ACTION = {
    "project_created": "project.created",
    "project_paused": "project.paused",
    "project_resumed": "project.resumed",
    "project_completed": "project.completed",
    "project_ended": "project.aborted",
    "project_reopened": "project.reopened",
    "task_created": "task.created",
    "task_assigned": "task.assigned",
    "task_reassigned": "task.reassigned",
    "task_claimed": "task.started",
    "task_run_started": "task.started",
    "task_submitted": "task.submitted",
    "task_accepted": "task.submitted",
    "task_resubmitted": "task.submitted",
    "task_returned": "task.returned",
    "task_completed": "task.completed",
    "task_skipped": "task.completed",
    "task_failed": "task.failed",
    "task_halted": "task.halted",
    "task_resumed": "task.resumed",
    "task_retried": "task.retried",
    "task_reverted": "task.reverted",
    "task_aborted": "task.aborted",
    "object_decided": "task.decided",
    "object_edited": "task.decided",
    "workflow_created": "workflow.loaded",
    "workflow_updated": "workflow.loaded",
    "version_created": "workflow.loaded",
    "version_updated": "workflow.loaded",
}

_BY_STATUS = {"Complete": "task.completed", "Failed": "task.failed", "Halted": "task.halted"}


def event_type(action: str, task_id: int | None, to_status: str) -> str | None:
    """The public type of a log entry, or None for entries no subscription receives (keys, tokens,
    timers, drafts saved: they concern one person, not the work)."""
    if task_id is not None and to_status in _BY_STATUS and action.startswith(("task_", "object_")):
        return _BY_STATUS[to_status]
    return _BY_ACTION.get(action)


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns that match no type: each must be a type, "*", or "<family>.*" ("task.*")."""
    families = {name.split(".")[0] for name in EVENT_TYPES}
    bad = []
    for pattern in patterns:
        if pattern == "*" or pattern in EVENT_TYPES:
            continue
        if pattern.endswith(".*") and pattern[:-2] in families:
            continue
        bad.append(pattern)
    return bad


def matches(patterns: Iterable[str], type_: str) -> bool:
    family = type_.split(".")[0] + ".*"
    return any(p in ("*", type_, family) for p in patterns)
