"""The planner, review/assignment/creation policies, backoff and revert planning, in memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra.engine.definitions import (
    AssignmentPolicy,
    CallableRef,
    RetryPolicy,
    ReviewPolicy,
    parse_version,
    parse_workflow,
)
from orchestra.engine.errors import StateError
from orchestra.engine.lifecycle import AssignmentStatus, IterationStatus, Role, TaskStatus
from orchestra.engine.planner import plan
from orchestra.engine.policies.assignment import AssignmentContext, candidates
from orchestra.engine.policies.review import ReviewContext, review_needed
from orchestra.engine.retry import attempts_left, backoff_seconds
from orchestra.engine.revert import IterationInfo, plan_revert

WORKFLOW, _ = parse_workflow({"slug": "w", "name": "W"})


def version(steps):
    definition, _ = parse_version({"slug": "v1", "name": "v1", "steps": steps}, workflow=WORKFLOW, check_imports=False)
    return definition


def m(slug, *deps, **extra):
    return {
        "slug": slug,
        "name": slug,
        "is_human": False,
        "execution_function": {"path": "x.y"},
        "creation_depends_on": list(deps),
        **extra,
    }


ALWAYS = lambda step: True  # noqa: E731
C = TaskStatus.COMPLETE


def test_plan_creates_steps_whose_dependencies_are_complete_in_order():
    v = version([m("a"), m("b", "a"), m("c", "a"), m("d", "b", "c")])
    assert plan(v, {}, creation_allowed=ALWAYS).create == ("a",)
    assert plan(v, {"a": C}, creation_allowed=ALWAYS).create == ("b", "c")
    assert plan(v, {"a": C, "b": C, "c": TaskStatus.PROCESSING}, creation_allowed=ALWAYS).create == ()
    done = plan(v, {"a": C, "b": C, "c": C, "d": C}, creation_allowed=ALWAYS)
    assert done.project_complete and done.reason == "every task is complete"


def test_plan_respects_creation_policy_and_completion_ends_project():
    v = version([m("a"), m("b", "a"), m("end", "a", completion_ends_project=True)])
    result = plan(v, {"a": C}, creation_allowed=lambda step: step.slug != "b")
    assert result.create == ("end",)
    assert plan(v, {"a": C, "end": C}, creation_allowed=ALWAYS).project_complete
    # b was never created (policy said no): the project still completes once the rest is complete.
    assert plan(v, {"a": C, "end": C}, creation_allowed=lambda s: False).project_complete


@st.composite
def dags(draw):
    n = draw(st.integers(1, 8))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        steps.append(m(f"s{i}", *[f"s{d}" for d in deps]))
    return version(steps)


@settings(max_examples=60, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_running_the_planner_to_the_end_creates_every_step_once_after_its_dependencies(v, rnd):
    tasks: dict[str, TaskStatus] = {}
    created_order: list[str] = []
    while True:
        result = plan(v, tasks, creation_allowed=ALWAYS)
        if result.project_complete:
            break
        assert result.create or any(s != C for s in tasks.values())
        for slug in result.create:
            assert slug not in tasks
            assert all(tasks.get(dep) == C for dep in v.step(slug).creation_depends_on)
            tasks[slug] = TaskStatus.AWAITING_PROCESSING
            created_order.append(slug)
        # complete one open task at random
        open_ = sorted(s for s, st_ in tasks.items() if st_ != C)
        tasks[rnd.choice(open_)] = C
    assert sorted(created_order) == sorted(s.slug for s in v.steps)


class Seq:
    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def ctx(level):
    return ReviewContext(step_slug="s", reviews_so_far=level)


def test_review_policies():
    assert not review_needed(ReviewPolicy(policy="no_review"), ctx(0), Seq())
    sampled = ReviewPolicy(policy="sampled_review", rate=0.5, max_reviews=2)
    assert review_needed(sampled, ctx(0), Seq(0.49))
    assert not review_needed(sampled, ctx(0), Seq(0.5))
    assert review_needed(sampled, ctx(1), Seq(0.0))
    assert not review_needed(sampled, ctx(2), Seq())  # cap reached: the rng is not even consulted
    never = ReviewPolicy(policy="sampled_review", rate=1, max_reviews=0)
    assert not review_needed(never, ctx(0), Seq())
    rng = random.Random(7)
    rate = sum(review_needed(sampled, ctx(0), rng) for _ in range(2000)) / 2000
    assert 0.45 < rate < 0.55


def test_assignment_policies():
    context = AssignmentContext(
        step_slug="edit", role=Role.ENTRY_LEVEL, entry_workers_by_step={"write": "ann", "draw": "bob"}
    )
    default = AssignmentPolicy()
    assert candidates(default.entry_level, context) == []
    assert candidates(CallableRef(path="specified_worker", kwargs={"username": "cat"}), context) == ["cat"]
    ref = CallableRef(path="previously_completed_steps", kwargs={"related_steps": ["draw", "missing", "write"]})
    assert candidates(ref, context) == ["bob", "ann"]


def test_backoff_grows_is_capped_and_jittered():
    policy = RetryPolicy(max_attempts=5, backoff_seconds=1, backoff_factor=2, max_backoff_seconds=5, jitter=False)
    assert [backoff_seconds(policy, n, Seq()) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    jittered = RetryPolicy(backoff_seconds=4, jitter=True)
    assert backoff_seconds(jittered, 1, Seq(0.0)) == 2.0 and backoff_seconds(jittered, 1, Seq(1.0)) == 4.0
    assert attempts_left(policy, 4) and not attempts_left(policy, 5)


RR, PR, P = IterationStatus.REQUESTED_REVIEW, IterationStatus.PROVIDED_REVIEW, IterationStatus.PROCESSING
# entry (assignment 1) submits, reviewer (2) returns, entry resubmits, reviewer works
HISTORY = [
    IterationInfo(10, 1, 0, RR, {"v": 1}),
    IterationInfo(11, 2, 1, PR, {"v": 1, "fb": True}),
    IterationInfo(12, 1, 0, RR, {"v": 2}),
    IterationInfo(13, 2, 1, P, None),
]
CURRENT = {1: {"v": 2}, 2: {"v": 2, "draft": True}}


@pytest.mark.parametrize(
    ("target", "before", "status", "data", "deleted", "gone", "holder"),
    [
        (13, False, TaskStatus.REVIEWING, {"v": 2, "draft": True}, (), (), 2),
        (12, False, TaskStatus.POST_REVIEW_PROCESSING, {"v": 2}, (13,), (), 1),
        (11, False, TaskStatus.REVIEWING, {"v": 1, "fb": True}, (12, 13), (), 2),
        (11, True, TaskStatus.PENDING_REVIEW, {"v": 1}, (11, 12, 13), (2,), None),
        (10, False, TaskStatus.PROCESSING, {"v": 1}, (11, 12, 13), (2,), 1),
        (10, True, TaskStatus.AWAITING_PROCESSING, None, (10, 11, 12, 13), (1, 2), None),
    ],
)
def test_revert_plans(target, before, status, data, deleted, gone, holder):
    result = plan_revert(HISTORY, target_id=target, revert_before=before, current_data=CURRENT)
    assert result.task_status == status
    assert result.task_data == data
    assert result.delete_iterations == deleted
    assert result.delete_assignments == gone
    assert result.processing_assignment == holder
    for assignment, assignment_status in result.assignment_status.items():
        expected = AssignmentStatus.PROCESSING if assignment == holder else AssignmentStatus.SUBMITTED
        assert assignment_status == expected


def test_revert_before_only_for_the_first_iteration_of_an_assignment():
    with pytest.raises(StateError, match="only allowed for the first iteration"):
        plan_revert(HISTORY, target_id=12, revert_before=True, current_data=CURRENT)
