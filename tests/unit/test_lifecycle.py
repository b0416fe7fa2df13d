"""Every (status, action) pair of the task table, for human and automated steps, plus the project table."""

from __future__ import annotations

import itertools

import pytest

from orchestra.engine.errors import IllegalTransition
from orchestra.engine.lifecycle import (
    ProjectAction,
    ProjectStatus,
    StepKind,
    TaskAction,
    TaskStatus,
    available_actions,
    project_transition,
    task_transition,
)

S, A = TaskStatus, TaskAction
OPEN = [s for s in S if s not in (S.COMPLETE, S.ABORTED)]
HELD = [S.PROCESSING, S.REVIEWING, S.POST_REVIEW_PROCESSING]
REVERT_TARGETS = {
    S.AWAITING_PROCESSING,
    S.PROCESSING,
    S.PENDING_REVIEW,
    S.REVIEWING,
    S.POST_REVIEW_PROCESSING,
}

# What a human step may do: (status, action) -> the set of statuses it can land in.
HUMAN_EXPECTED: dict[tuple[TaskStatus, TaskAction], set[TaskStatus]] = {
    (S.AWAITING_PROCESSING, A.ASSIGN): {S.PROCESSING},
    (S.PENDING_REVIEW, A.ASSIGN): {S.REVIEWING},
    **{(s, A.SAVE): {s} for s in HELD},
    (S.PROCESSING, A.SUBMIT): {S.PENDING_REVIEW, S.COMPLETE},
    (S.REVIEWING, A.SUBMIT): {S.PENDING_REVIEW, S.COMPLETE},
    (S.REVIEWING, A.ACCEPT): {S.PENDING_REVIEW, S.COMPLETE},
    (S.POST_REVIEW_PROCESSING, A.SUBMIT): {S.REVIEWING},
    (S.REVIEWING, A.RETURN): {S.POST_REVIEW_PROCESSING},
    **{(s, A.REASSIGN): {s} for s in (S.PROCESSING, S.PENDING_REVIEW, S.REVIEWING, S.POST_REVIEW_PROCESSING)},
    **{
        (s, A.REVERT): REVERT_TARGETS
        for s in (S.PROCESSING, S.PENDING_REVIEW, S.REVIEWING, S.POST_REVIEW_PROCESSING, S.COMPLETE)
    },
    **{(s, A.COMPLETE_AND_SKIP): {S.COMPLETE} for s in OPEN},
    **{(s, A.ABORT): {S.ABORTED} for s in OPEN},
}

MACHINE_EXPECTED: dict[tuple[TaskStatus, TaskAction], set[TaskStatus]] = {
    (S.AWAITING_PROCESSING, A.CLAIM): {S.PROCESSING},
    (S.PROCESSING, A.CLAIM): {S.PROCESSING},
    (S.PROCESSING, A.SUCCEED): {S.COMPLETE},
    (S.PROCESSING, A.FAIL): {S.AWAITING_PROCESSING},
    (S.PROCESSING, A.GIVE_UP): {S.FAILED},
    (S.FAILED, A.RETRY): {S.AWAITING_PROCESSING},
    (S.PROCESSING, A.HALT): {S.HALTED},
    (S.HALTED, A.RESUME): {S.AWAITING_PROCESSING},
    **{(s, A.COMPLETE_AND_SKIP): {S.COMPLETE} for s in OPEN},
    **{(s, A.ABORT): {S.ABORTED} for s in OPEN},
}


def _land(status: TaskStatus, action: TaskAction, kind: StepKind) -> set[TaskStatus]:
    """Every status the pair can land in, trying each way the caller can choose."""
    landed = {task_transition(status, action, kind=kind, review_needed=choice) for choice in (True, False)}
    if action == A.REVERT:
        landed = {task_transition(status, action, kind=kind, target=t) for t in REVERT_TARGETS}
    return landed


@pytest.mark.parametrize(
    ("kind", "status", "action"),
    [
        (kind, status, action)
        for kind in (StepKind.HUMAN, StepKind.MACHINE, StepKind.SCRIPT)
        for status, action in itertools.product(TaskStatus, TaskAction)
    ],
)
def test_every_status_action_pair(kind, status, action):
    expected = (HUMAN_EXPECTED if kind == StepKind.HUMAN else MACHINE_EXPECTED).get((status, action))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            task_transition(status, action, kind=kind, review_needed=False, task_id=7)
        assert f"task 7 is '{status}'" in info.value.message
        assert f"'{action}'" in info.value.message
        assert info.value.current == status
        assert info.value.attempted == action
    else:
        assert _land(status, action, kind) == expected


def test_submission_target_follows_review_decision():
    assert task_transition(S.PROCESSING, A.SUBMIT, kind=StepKind.HUMAN, review_needed=True) == S.PENDING_REVIEW
    assert task_transition(S.PROCESSING, A.SUBMIT, kind=StepKind.HUMAN, review_needed=False) == S.COMPLETE
    with pytest.raises(ValueError, match="needs review_needed"):
        task_transition(S.PROCESSING, A.SUBMIT, kind=StepKind.HUMAN)


def test_error_lists_what_would_be_allowed():
    with pytest.raises(IllegalTransition) as info:
        task_transition(S.PROCESSING, A.RETURN, kind=StepKind.HUMAN, task_id=42)
    assert info.value.message == "task 42 is 'Processing'; 'return' on a human step needs one of: 'Reviewing'"
    assert info.value.allowed == ["Reviewing"]


def test_human_actions_are_not_offered_on_machine_steps():
    with pytest.raises(IllegalTransition, match="not for a step of this kind"):
        task_transition(S.AWAITING_PROCESSING, A.ASSIGN, kind=StepKind.MACHINE)


def test_available_actions_match_the_table():
    assert set(available_actions(S.REVIEWING, StepKind.HUMAN)) == {
        A.SAVE,
        A.SUBMIT,
        A.ACCEPT,
        A.RETURN,
        A.REASSIGN,
        A.COMPLETE_AND_SKIP,
        A.REVERT,
        A.ABORT,
    }
    assert available_actions(S.COMPLETE, StepKind.MACHINE) == []
    for status, action in HUMAN_EXPECTED:
        assert action in available_actions(status, StepKind.HUMAN)


PROJECT_EXPECTED = {
    (ProjectStatus.ACTIVE, ProjectAction.PAUSE): ProjectStatus.PAUSED,
    (ProjectStatus.PAUSED, ProjectAction.RESUME): ProjectStatus.ACTIVE,
    (ProjectStatus.ACTIVE, ProjectAction.END): ProjectStatus.ABORTED,
    (ProjectStatus.PAUSED, ProjectAction.END): ProjectStatus.ABORTED,
    (ProjectStatus.ACTIVE, ProjectAction.COMPLETE): ProjectStatus.COMPLETED,
    (ProjectStatus.COMPLETED, ProjectAction.REOPEN): ProjectStatus.ACTIVE,
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(ProjectStatus, ProjectAction)))
def test_every_project_pair(status, action):
    expected = PROJECT_EXPECTED.get((status, action))
    if expected is None:
        with pytest.raises(IllegalTransition, match=f"project 3 is '{status}'"):
            project_transition(status, action, project_id=3)
    else:
        assert project_transition(status, action) == expected
