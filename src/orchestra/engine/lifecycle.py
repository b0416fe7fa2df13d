"""The task and project lifecycles as declared transition tables.

Every status change in Orchestra is one row of `TASK_TRANSITIONS` or `PROJECT_TRANSITIONS`; services look
the row up with `task_transition` / `project_transition` and persist the result with a compare-and-set
update. Nothing else decides what status comes next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from orchestra.engine.errors import IllegalTransition


class StepKind(StrEnum):
    HUMAN = "human"  # done by a certified worker through the dashboard, optionally reviewed
    MACHINE = "machine"  # a Python callable(project_data, prerequisites, **kwargs) -> dict
    SCRIPT = "script"  # a command run in a subprocess, JSON in, JSON out
    EXTERNAL = "external"  # an outside service reports back through the SDK endpoints
    TASKS = "tasks"  # an Invenio-style list of callables(obj, eng) that can halt and resume


AUTOMATED_KINDS = frozenset(StepKind) - {StepKind.HUMAN}


class TaskStatus(StrEnum):
    AWAITING_PROCESSING = "Awaiting Processing"  # created; no worker yet / machine work queued
    PROCESSING = "Processing"  # the entry-level worker (or a machine attempt) is working
    PENDING_REVIEW = "Pending Review"  # submitted; waiting for the next reviewer to take it
    REVIEWING = "Reviewing"  # a reviewer is working on it
    POST_REVIEW_PROCESSING = "Post-review Processing"  # returned to the level below with feedback
    COMPLETE = "Complete"  # its output is final; later steps may start
    ABORTED = "Aborted"  # its project ended before it completed
    FAILED = "Failed"  # an automated step ran out of retries; an admin may retry it
    HALTED = "Halted"  # an automated step waits for a human decision (Holding Pen)


TERMINAL = frozenset({TaskStatus.COMPLETE, TaskStatus.ABORTED})
OPEN = frozenset(TaskStatus) - TERMINAL
# Statuses in which a human task waits for someone to take a seat.
NEEDS_WORKER = frozenset({TaskStatus.AWAITING_PROCESSING, TaskStatus.PENDING_REVIEW})
# Statuses in which exactly one assignment of a human task is Processing.
IN_HUMAN_HANDS = frozenset({TaskStatus.PROCESSING, TaskStatus.REVIEWING, TaskStatus.POST_REVIEW_PROCESSING})


class AssignmentStatus(StrEnum):
    PROCESSING = "Processing"  # the worker holds the task at their level
    SUBMITTED = "Submitted"  # the worker handed it on (up for review or down with feedback)
    FAILED = "Failed"  # kept for B12 compatibility; Orchestra records machine failures on the task


class IterationStatus(StrEnum):
    PROCESSING = "Processing"  # the stint of work is ongoing
    REQUESTED_REVIEW = "Requested Review"  # ended by a submission (moved up the hierarchy)
    PROVIDED_REVIEW = "Provided Review"  # ended by a return with feedback (moved back down)


class Role(StrEnum):
    ENTRY_LEVEL = "entry_level"
    REVIEWER = "reviewer"


class TaskClass(StrEnum):
    REAL = "real"
    TRAINING = "training"


class TaskAction(StrEnum):
    ASSIGN = "assign"
    SAVE = "save"
    SUBMIT = "submit"
    ACCEPT = "accept"
    RETURN = "return"
    REASSIGN = "reassign"
    COMPLETE_AND_SKIP = "complete_and_skip"
    REVERT = "revert"
    ABORT = "abort"
    CLAIM = "claim"
    SUCCEED = "succeed"
    FAIL = "fail"
    GIVE_UP = "give_up"
    RETRY = "retry"
    HALT = "halt"
    RESUME = "resume"


S = TaskStatus
A = TaskAction
HUMAN = frozenset({StepKind.HUMAN})
AUTOMATED = AUTOMATED_KINDS
ANY = frozenset(StepKind)


@dataclass(frozen=True)
class Transition:
    source: TaskStatus
    action: TaskAction
    targets: frozenset[TaskStatus]
    kinds: frozenset[StepKind]
    why: str

    @property
    def target(self) -> TaskStatus:
        (only,) = self.targets
        return only


def _t(
    source: TaskStatus,
    action: TaskAction,
    targets: Iterable[TaskStatus],
    kinds: frozenset[StepKind],
    why: str,
) -> Transition:
    return Transition(source, action, frozenset(targets), kinds, why)


_REVERTABLE = (S.PROCESSING, S.PENDING_REVIEW, S.REVIEWING, S.POST_REVIEW_PROCESSING, S.COMPLETE)
_REVERT_TARGETS = (
    S.AWAITING_PROCESSING,
    S.PROCESSING,
    S.PENDING_REVIEW,
    S.REVIEWING,
    S.POST_REVIEW_PROCESSING,
)

_TABLE: list[Transition] = [
    # --- human work ---------------------------------------------------------------------------
    _t(S.AWAITING_PROCESSING, A.ASSIGN, [S.PROCESSING], HUMAN, "an entry-level worker takes the task"),
    _t(S.PENDING_REVIEW, A.ASSIGN, [S.REVIEWING], HUMAN, "the next reviewer takes the submitted task"),
    *[
        _t(s, A.SAVE, [s], HUMAN, "the worker holding the task saves a draft; status does not change")
        for s in IN_HUMAN_HANDS
    ],
    _t(
        S.PROCESSING,
        A.SUBMIT,
        [S.PENDING_REVIEW, S.COMPLETE],
        HUMAN,
        "the entry-level worker submits; the review policy decides whether a reviewer looks next",
    ),
    _t(
        S.REVIEWING,
        A.SUBMIT,
        [S.PENDING_REVIEW, S.COMPLETE],
        HUMAN,
        "B12 clients send 'submit' for a reviewer's accept; it means the same as accept",
    ),
    _t(
        S.REVIEWING,
        A.ACCEPT,
        [S.PENDING_REVIEW, S.COMPLETE],
        HUMAN,
        "the reviewer accepts; the review policy decides whether another level reviews",
    ),
    _t(
        S.POST_REVIEW_PROCESSING,
        A.SUBMIT,
        [S.REVIEWING],
        HUMAN,
        "the returned level resubmits; the reviewer who returned it reviews again (no re-sampling)",
    ),
    _t(
        S.REVIEWING,
        A.RETURN,
        [S.POST_REVIEW_PROCESSING],
        HUMAN,
        "the reviewer returns the work with feedback; only a reviewer who is reviewing can return",
    ),
    *[
        _t(s, A.REASSIGN, [s], HUMAN, "an admin moves a seat to another worker; status does not change")
        for s in (S.PROCESSING, S.PENDING_REVIEW, S.REVIEWING, S.POST_REVIEW_PROCESSING)
    ],
    *[
        _t(s, A.REVERT, _REVERT_TARGETS, HUMAN, "an admin rolls the task back to an earlier iteration")
        for s in _REVERTABLE
    ],
    # --- automated work -----------------------------------------------------------------------
    _t(S.AWAITING_PROCESSING, A.CLAIM, [S.PROCESSING], AUTOMATED, "an executor claims the queued task"),
    _t(
        S.PROCESSING,
        A.CLAIM,
        [S.PROCESSING],
        AUTOMATED,
        "an executor takes over a task whose previous claim's lease expired (crashed worker)",
    ),
    _t(S.PROCESSING, A.SUCCEED, [S.COMPLETE], AUTOMATED, "the attempt's output is the task's output"),
    _t(
        S.PROCESSING,
        A.FAIL,
        [S.AWAITING_PROCESSING],
        AUTOMATED,
        "the attempt failed and the retry policy allows another after a backoff",
    ),
    _t(S.PROCESSING, A.GIVE_UP, [S.FAILED], AUTOMATED, "the attempt failed and no retries are left"),
    _t(S.FAILED, A.RETRY, [S.AWAITING_PROCESSING], AUTOMATED, "an admin queues a failed task again"),
    _t(S.PROCESSING, A.HALT, [S.HALTED], AUTOMATED, "the step stopped to wait for a human decision"),
    _t(S.HALTED, A.RESUME, [S.AWAITING_PROCESSING], AUTOMATED, "a decision was made; the step runs on"),
    # --- any kind -----------------------------------------------------------------------------
    *[_t(s, A.COMPLETE_AND_SKIP, [S.COMPLETE], ANY, "an admin declares the task done without review") for s in OPEN],
    *[_t(s, A.ABORT, [S.ABORTED], ANY, "the project ended; unfinished tasks are aborted") for s in OPEN],
]

TASK_TRANSITIONS: dict[tuple[TaskStatus, TaskAction], Transition] = {(t.source, t.action): t for t in _TABLE}
assert len(TASK_TRANSITIONS) == len(_TABLE), "duplicate (status, action) in the transition table"


def allowed_sources(action: TaskAction, kind: StepKind | None = None) -> list[TaskStatus]:
    """Statuses from which `action` is allowed (for a step of `kind`), in declaration order."""
    return [s for s in TaskStatus if (t := TASK_TRANSITIONS.get((s, action))) and (kind is None or kind in t.kinds)]


def available_actions(status: TaskStatus, kind: StepKind) -> list[TaskAction]:
    """Actions the table allows on a task of `kind` in `status` (before permission checks)."""
    return [a for a in TaskAction if (t := TASK_TRANSITIONS.get((status, a))) and kind in t.kinds]


def task_transition(
    status: TaskStatus | str,
    action: TaskAction,
    *,
    kind: StepKind,
    review_needed: bool | None = None,
    target: TaskStatus | None = None,
    task_id: object = None,
) -> TaskStatus:
    """The status a task of `kind` moves to when `action` is applied in `status`.

    `review_needed` picks between Pending Review and Complete for submissions; `target` picks the result
    of a revert. Raises `IllegalTransition` naming the task, its status and the allowed ones.
    """
    status = TaskStatus(status)
    t = TASK_TRANSITIONS.get((status, action))
    if t is None or kind not in t.kinds:
        allowed = allowed_sources(action, kind)
        name = f"task {task_id}" if task_id is not None else "task"
        allowed_text = ", ".join(f"'{s}'" for s in allowed) or "none (not for a step of this kind)"
        raise IllegalTransition(
            f"{name} is '{status}'; '{action}' on a {kind} step needs one of: {allowed_text}",
            task_id=task_id,
            current=str(status),
            attempted=str(action),
            allowed=[str(s) for s in allowed],
        )
    if len(t.targets) == 1:
        return t.target
    if target is not None:
        if target not in t.targets:
            raise IllegalTransition(
                f"'{action}' from '{status}' cannot land in '{target}'",
                task_id=task_id,
                current=str(status),
                attempted=str(action),
            )
        return target
    if review_needed is None:
        raise ValueError(f"'{action}' from '{status}' needs review_needed to choose its target")
    return TaskStatus.PENDING_REVIEW if review_needed else TaskStatus.COMPLETE


# --- projects -------------------------------------------------------------------------------------


class ProjectStatus(StrEnum):
    ACTIVE = "Active"  # work is handed out and accepted
    PAUSED = "Paused"  # no work is handed out or accepted until resumed
    COMPLETED = "Completed"  # every task is complete (or a step that ends the project completed)
    ABORTED = "Aborted"  # ended by an admin; unfinished tasks were aborted


class ProjectAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"
    COMPLETE = "complete"
    REOPEN = "reopen"


PROJECT_TRANSITIONS: dict[tuple[ProjectStatus, ProjectAction], ProjectStatus] = {
    (ProjectStatus.ACTIVE, ProjectAction.PAUSE): ProjectStatus.PAUSED,
    (ProjectStatus.PAUSED, ProjectAction.RESUME): ProjectStatus.ACTIVE,
    (ProjectStatus.ACTIVE, ProjectAction.END): ProjectStatus.ABORTED,
    (ProjectStatus.PAUSED, ProjectAction.END): ProjectStatus.ABORTED,
    (ProjectStatus.ACTIVE, ProjectAction.COMPLETE): ProjectStatus.COMPLETED,
    # An admin reverting a task of a completed project puts work back in hands.
    (ProjectStatus.COMPLETED, ProjectAction.REOPEN): ProjectStatus.ACTIVE,
}


def project_transition(
    status: ProjectStatus | str, action: ProjectAction, *, project_id: object = None
) -> ProjectStatus:
    status = ProjectStatus(status)
    target = PROJECT_TRANSITIONS.get((status, action))
    if target is None:
        allowed = [s for (s, a) in PROJECT_TRANSITIONS if a == action]
        allowed_text = ", ".join(f"'{s}'" for s in allowed)
        raise IllegalTransition(
            f"project {project_id} is '{status}'; '{action}' needs one of: {allowed_text}",
            project_id=project_id,
            current=str(status),
            attempted=str(action),
            allowed=[str(s) for s in allowed],
        )
    return target
