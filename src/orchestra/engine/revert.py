"""Reverting a human task to an earlier iteration: what to delete, reopen, and which status results.

B12's rules (`orchestra/utils/revert.py`) with its bug fixed: the task's data rolls back too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestra.engine.errors import NotFound, StateError
from orchestra.engine.lifecycle import AssignmentStatus, IterationStatus, TaskStatus


@dataclass(frozen=True)
class IterationInfo:
    id: int
    assignment_id: int
    level: int
    status: IterationStatus
    submitted_data: Any


@dataclass(frozen=True)
class RevertPlan:
    task_status: TaskStatus
    task_data: Any
    delete_iterations: tuple[int, ...]
    reopen_iteration: int | None
    delete_assignments: tuple[int, ...]
    assignment_status: dict[int, AssignmentStatus] = field(default_factory=dict)
    # Data of the assignment that holds the task after the revert (its in-progress data).
    processing_assignment: int | None = None


def plan_revert(
    iterations: Sequence[IterationInfo],
    *,
    target_id: int,
    revert_before: bool,
    current_data: dict[int, Any],
) -> RevertPlan:
    """`iterations` in chronological order; `current_data` is each assignment's in-progress data.

    Reverting *to* an iteration reopens it with the data it was submitted with; reverting *before* it
    removes it too, leaving the task as it was when that iteration began.
    """
    index = next((i for i, it in enumerate(iterations) if it.id == target_id), None)
    if index is None:
        raise NotFound(f"iteration_id: {target_id} is not an iteration of this task", field="iteration_id")
    target = iterations[index]
    if revert_before and any(it.assignment_id == target.assignment_id for it in iterations[:index]):
        raise StateError(
            f"iteration_id: revert_before is only allowed for the first iteration of an assignment;"
            f" iteration {target_id} is not the first of its assignment (revert to it instead)",
            field="revert_before",
        )
    remaining = list(iterations[: index if revert_before else index + 1])
    removed = [it.id for it in iterations[index + (0 if revert_before else 1) :]]
    remaining_assignments = {it.assignment_id for it in remaining}
    all_assignments = {it.assignment_id for it in iterations}

    if not remaining:
        status, data = TaskStatus.AWAITING_PROCESSING, None
    elif revert_before:
        status, data = TaskStatus.PENDING_REVIEW, remaining[-1].submitted_data
    else:
        if len(remaining) == 1:
            status = TaskStatus.PROCESSING
        elif remaining[-2].status == IterationStatus.REQUESTED_REVIEW:
            status = TaskStatus.REVIEWING
        else:
            status = TaskStatus.POST_REVIEW_PROCESSING
        data = target.submitted_data if target.submitted_data is not None else current_data.get(target.assignment_id)

    processing = target.assignment_id if (remaining and not revert_before) else None
    assignment_status = {
        a: (AssignmentStatus.PROCESSING if a == processing else AssignmentStatus.SUBMITTED)
        for a in remaining_assignments
    }
    return RevertPlan(
        task_status=status,
        task_data=data,
        delete_iterations=tuple(removed),
        reopen_iteration=None if revert_before else target.id,
        delete_assignments=tuple(sorted(all_assignments - remaining_assignments)),
        assignment_status=assignment_status,
        processing_assignment=processing,
    )
