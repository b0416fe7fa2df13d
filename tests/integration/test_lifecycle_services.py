"""The lifecycle services on a real database: policies, assignment rules, admin actions, machine steps."""

from __future__ import annotations

import pytest

from orchestra.engine.errors import (
    AssignmentError,
    CertificationError,
    IllegalTransition,
    NoTaskAvailable,
    NotFound,
    PermissionDenied,
    ProjectNotActive,
    StateError,
    ValidationError,
)
from orchestra.models import Event, Iteration, Project, Task, TaskAssignment
from orchestra.services.machine import task_retry
from orchestra.services.projects import project_create, project_end, project_pause, project_resume
from orchestra.services.tasks import (
    assignment_reassign,
    task_assign,
    task_complete_and_skip,
    task_pull,
    task_return,
    task_revert,
    task_save,
    task_submit,
)
from orchestra.services.workers import worker_certify, worker_create
from tests.support import functions
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)


def task_of(project: Project, slug: str) -> Task:
    return Task.objects.get(project=project, step__slug=slug)


def status_of(project: Project, slug: str) -> str:
    return task_of(project, slug).status


@pytest.fixture
def workers():
    return {name: worker_create(username=name, password="pw") for name in ("ann", "bob", "cat", "dan")}


class FixedRng:
    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


# --- creation and completion ----------------------------------------------------------------------


def test_machine_chain_completes_and_passes_prerequisites(tmp_path):
    load(
        tmp_path,
        [machine("a"), machine("b", "a"), machine("c", "a"), machine("d", "b", "c", function="echo")],
    )
    project = project_create(workflow_slug="wf", version_slug="v1", project_data={"x": 1})
    project.refresh_from_db()
    assert project.status == "Completed"
    d = task_of(project, "d").data
    assert d["project_data"] == {"x": 1, "project_id": project.pk}
    assert set(d["prerequisites"]) == {"a", "b", "c"}  # transitive ancestors, not only direct ones


def test_human_step_without_policy_is_reviewed_once_like_b12(tmp_path, workers):
    load(tmp_path, [human("write")])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    task_submit(task_id=t.pk, worker="ann", data={"v": 1})
    assert status_of(project, "write") == "Pending Review"
    task_assign(task_id=t.pk, worker="bob")
    task_submit(task_id=t.pk, worker="bob", data={"v": 2}, command="accept")
    assert status_of(project, "write") == "Complete"
    project.refresh_from_db()
    assert project.status == "Completed"


def test_sampled_review_uses_the_injected_rng_and_caps_levels(tmp_path, workers):
    load(tmp_path, [human("write", review={"policy": "sampled_review", "rate": 0.5, "max_reviews": 2})])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    task_submit(task_id=t.pk, worker="ann", data={}, rng=FixedRng(0.4))  # 0.4 < 0.5: review
    task_assign(task_id=t.pk, worker="bob")
    task_submit(task_id=t.pk, worker="bob", data={}, command="accept", rng=FixedRng(0.1))  # second level
    task_assign(task_id=t.pk, worker="cat")
    task_submit(task_id=t.pk, worker="cat", data={}, command="accept", rng=FixedRng(0.0))  # max_reviews reached
    assert status_of(project, "write") == "Complete"
    assert TaskAssignment.objects.filter(task=t).count() == 3

    project2 = project_create(workflow_slug="wf", version_slug="v1")
    t2 = task_of(project2, "write")
    task_assign(task_id=t2.pk, worker="ann")
    task_submit(task_id=t2.pk, worker="ann", data={}, rng=FixedRng(0.9))  # 0.9 >= 0.5: no review
    assert status_of(project2, "write") == "Complete"


def test_custom_review_policy_by_dotted_path(tmp_path, workers):
    load(tmp_path, [human("write", review={"policy": "tests.support.functions.two_reviews"})])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    for level, name in enumerate(["ann", "bob", "cat"]):
        task_assign(task_id=t.pk, worker=name)
        task_submit(task_id=t.pk, worker=name, data={}, command="submit" if level == 0 else "accept")
    assert status_of(project, "write") == "Complete"


def test_creation_policy_and_completion_ends_project(tmp_path, workers):
    load(
        tmp_path,
        [
            machine("a"),
            machine(
                "flagged",
                "a",
                creation_policy={"policy_function": {"path": "tests.support.functions.only_if_flag"}},
            ),
            human("finish", "a", review=NO_REVIEW, completion_ends_project=True),
            human("other", "a", review=NO_REVIEW),
        ],
    )
    project = project_create(workflow_slug="wf", version_slug="v1", project_data={"flag": False})
    assert not Task.objects.filter(project=project, step__slug="flagged").exists()
    finish = task_of(project, "finish")
    task_assign(task_id=finish.pk, worker="ann")
    task_submit(task_id=finish.pk, worker="ann", data={})
    project.refresh_from_db()
    assert project.status == "Completed"
    assert status_of(project, "other") == "Aborted"  # nobody works on a finished project

    flagged = project_create(workflow_slug="wf", version_slug="v1", project_data={"flag": True})
    assert status_of(flagged, "flagged") == "Complete"


def test_submission_depends_on_blocks_early_submission(tmp_path, workers):
    load(
        tmp_path,
        [human("draft", review=NO_REVIEW), human("notes", review=NO_REVIEW, submission_depends_on=["draft"])],
    )
    project = project_create(workflow_slug="wf", version_slug="v1")
    notes, draft = task_of(project, "notes"), task_of(project, "draft")
    task_assign(task_id=notes.pk, worker="ann")
    with pytest.raises(StateError, match="cannot be submitted until step\\(s\\) 'draft' are Complete"):
        task_submit(task_id=notes.pk, worker="ann", data={})
    task_assign(task_id=draft.pk, worker="bob")
    task_submit(task_id=draft.pk, worker="bob", data={})
    task_submit(task_id=notes.pk, worker="ann", data={})
    assert status_of(project, "notes") == "Complete"


# --- assignment rules -----------------------------------------------------------------------------


def test_certifications_and_task_class(tmp_path, workers):
    load(tmp_path, [human("write", certs=["writer"], review=NO_REVIEW)], certifications=["writer"])
    worker_certify(worker="ann", workflow_slug="wf", certification_slug="writer", task_class="real")
    worker_certify(worker="bob", workflow_slug="wf", certification_slug="writer", task_class="training")
    real = project_create(workflow_slug="wf", version_slug="v1", task_class="real")
    training = project_create(workflow_slug="wf", version_slug="v1", task_class="training")
    with pytest.raises(CertificationError, match="worker 'bob' cannot take the entry_level seat .* for real projects"):
        task_assign(task_id=task_of(real, "write").pk, worker="bob")
    with pytest.raises(CertificationError, match="'writer'"):
        task_assign(task_id=task_of(real, "write").pk, worker="cat")
    task_assign(task_id=task_of(training, "write").pk, worker="bob")  # training cert, training project
    task_assign(task_id=task_of(real, "write").pk, worker="ann")
    assert not Event.objects.filter(action="task_assigned", data__worker="cat").exists()


def test_reviewer_certification_needs_entry_level_first(tmp_path, workers):
    load(tmp_path, [human("write", certs=["writer"])], certifications=["writer"])
    with pytest.raises(ValidationError, match="needs the entry_level real certification 'writer' before the reviewer"):
        worker_certify(worker="ann", workflow_slug="wf", certification_slug="writer", role="reviewer")


def test_nobody_reviews_their_own_work(tmp_path, workers):
    load(tmp_path, [human("write")])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    task_submit(task_id=t.pk, worker="ann", data={})
    with pytest.raises(AssignmentError, match="already holds a seat on task"):
        task_assign(task_id=t.pk, worker="ann")
    with pytest.raises(NoTaskAvailable):
        task_pull(worker="ann", role="reviewer")


def test_pull_order_priority_then_oldest_project_then_oldest_task(tmp_path, workers):
    load(tmp_path, [human("one", review=NO_REVIEW), human("two", review=NO_REVIEW)])
    low = project_create(workflow_slug="wf", version_slug="v1", priority=1)
    high_old = project_create(workflow_slug="wf", version_slug="v1", priority=9)
    high_new = project_create(workflow_slug="wf", version_slug="v1", priority=9)
    paused = project_create(workflow_slug="wf", version_slug="v1", priority=100)
    project_pause(project_id=paused.pk)
    got = [task_pull(worker="ann" if i % 2 == 0 else "bob", role="entry_level").task for i in range(6)]
    assert [(t.project_id, t.step.slug) for t in got] == [
        (high_old.pk, "one"),
        (high_old.pk, "two"),
        (high_new.pk, "one"),
        (high_new.pk, "two"),
        (low.pk, "one"),
        (low.pk, "two"),
    ]
    with pytest.raises(
        NoTaskAvailable,
        match="no delivery task is available for worker 'cat': no task is waiting for an entry-level worker",
    ):
        task_pull(worker="cat", role="entry_level")


def test_pull_explains_missing_certification_and_refuses_with_returned_work(tmp_path, workers):
    load(tmp_path, [human("write", certs=["writer"]), human("open")], certifications=["writer"])
    project = project_create(workflow_slug="wf", version_slug="v1")
    with pytest.raises(NoTaskAvailable) as info:
        task_pull(worker="ann", role="reviewer")
    assert "no task is waiting" in info.value.message
    worker_certify(worker="bob", workflow_slug="wf", certification_slug="writer")
    worker_certify(worker="bob", workflow_slug="wf", certification_slug="writer", role="reviewer")
    write = task_of(project, "write")
    worker_certify(worker="ann", workflow_slug="wf", certification_slug="writer")
    task_assign(task_id=write.pk, worker="ann")
    task_submit(task_id=write.pk, worker="ann", data={})
    with pytest.raises(NoTaskAvailable, match="none matches your reviewer certifications"):
        task_pull(worker="cat", role="reviewer")
    task_pull(worker="bob", role="reviewer")
    task_return(task_id=write.pk, worker="bob", data={}, feedback="redo")
    with pytest.raises(AssignmentError, match=f"returned work outstanding on task {write.pk}"):
        task_pull(worker="ann", role="entry_level")


# --- doing the work -------------------------------------------------------------------------------


def test_only_the_holder_saves_and_submits(tmp_path, workers):
    load(tmp_path, [human("write")])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    task_save(task_id=t.pk, worker="ann", data={"draft": 1})
    assert TaskAssignment.objects.get(task=t).in_progress_task_data == {"draft": 1}
    with pytest.raises(PermissionDenied, match="worker 'bob' has no seat on task"):
        task_save(task_id=t.pk, worker="bob", data={})
    with pytest.raises(PermissionDenied):
        task_submit(task_id=t.pk, worker="bob", data={})
    with pytest.raises(ValidationError, match="data: expected a JSON object"):
        task_submit(task_id=t.pk, worker="ann", data=[1, 2])
    with pytest.raises(IllegalTransition, match="'return' on a human step needs one of: 'Reviewing'"):
        task_return(task_id=t.pk, worker="ann", data={}, feedback="x")
    task_submit(task_id=t.pk, worker="ann", data={"final": 1})
    with pytest.raises(IllegalTransition, match="is 'Pending Review'; 'save' on a human step needs one of"):
        task_save(task_id=t.pk, worker="ann", data={})


def test_return_needs_feedback_and_resubmission_goes_back_to_the_reviewer(tmp_path, workers):
    load(tmp_path, [human("write")])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    task_submit(task_id=t.pk, worker="ann", data={"v": 1})
    task_assign(task_id=t.pk, worker="bob")
    with pytest.raises(ValidationError, match="feedback"):
        task_return(task_id=t.pk, worker="bob", data={"v": 1}, feedback="  ")
    task_return(task_id=t.pk, worker="bob", data={"v": 1, "note": "x"}, feedback="more")
    assert status_of(project, "write") == "Post-review Processing"
    # The entry-level worker cannot return further down; they fix and resubmit.
    with pytest.raises(IllegalTransition):
        task_return(task_id=t.pk, worker="ann", data={}, feedback="no")
    assert TaskAssignment.objects.get(task=t, level=0).in_progress_task_data == {"v": 1, "note": "x"}
    task_submit(task_id=t.pk, worker="ann", data={"v": 2})
    assert status_of(project, "write") == "Reviewing"
    assert TaskAssignment.objects.get(task=t, level=1).status == "Processing"


def test_paused_project_hands_out_and_accepts_no_work(tmp_path, workers):
    load(tmp_path, [human("write", review=NO_REVIEW), human("other", review=NO_REVIEW)])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    project_pause(project_id=project.pk, actor="admin")
    with pytest.raises(
        ProjectNotActive, match="is 'Paused'; submitting task .* needs it to be Active \\(resume it first\\)"
    ):
        task_submit(task_id=t.pk, worker="ann", data={})
    with pytest.raises(ProjectNotActive):
        task_assign(task_id=task_of(project, "other").pk, worker="bob")
    with pytest.raises(NoTaskAvailable):
        task_pull(worker="bob", role="entry_level")
    project_resume(project_id=project.pk, actor="admin")
    task_submit(task_id=t.pk, worker="ann", data={})
    assert status_of(project, "write") == "Complete"


# --- admin actions --------------------------------------------------------------------------------


def test_reassign_keeps_finished_iterations_with_who_did_them(tmp_path, workers):
    load(tmp_path, [human("write")])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    entry = task_assign(task_id=t.pk, worker="ann")
    task_submit(task_id=t.pk, worker="ann", data={})
    task_assign(task_id=t.pk, worker="bob")
    task_return(task_id=t.pk, worker="bob", data={}, feedback="fix")
    assignment_reassign(assignment_id=entry.pk, worker="cat", actor="admin")
    iterations = list(
        Iteration.objects.filter(assignment=entry).order_by("id").values_list("worker__user__username", "status")
    )
    assert iterations == [("ann", "Requested Review"), ("cat", "Processing")]
    with pytest.raises(AssignmentError, match="already holds a seat"):
        assignment_reassign(assignment_id=entry.pk, worker="bob")
    task_submit(task_id=t.pk, worker="cat", data={})
    assert status_of(project, "write") == "Reviewing"


def test_complete_and_skip_completes_without_review_and_creates_next_tasks(tmp_path, workers):
    load(tmp_path, [human("write"), human("edit", "write", review=NO_REVIEW)])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    task_save(task_id=t.pk, worker="ann", data={"text": "draft"})
    task_complete_and_skip(task_id=t.pk, actor="admin")
    t.refresh_from_db()
    assert t.status == "Complete" and t.data == {"text": "draft"}
    assert status_of(project, "edit") == "Awaiting Processing"
    with pytest.raises(IllegalTransition):
        task_complete_and_skip(task_id=t.pk)


def test_revert_rolls_status_and_data_back(tmp_path, workers):
    load(tmp_path, [human("write")])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "write")
    task_assign(task_id=t.pk, worker="ann")
    task_submit(task_id=t.pk, worker="ann", data={"v": 1})
    task_assign(task_id=t.pk, worker="bob")
    task_return(task_id=t.pk, worker="bob", data={"v": 1}, feedback="fix")
    task_submit(task_id=t.pk, worker="ann", data={"v": 2})
    task_submit(task_id=t.pk, worker="bob", data={"v": 3}, command="accept")
    project.refresh_from_db()
    assert project.status == "Completed"
    iterations = list(Iteration.objects.filter(assignment__task=t).order_by("start_datetime", "id"))
    assert len(iterations) == 4

    # Back to the entry worker's first iteration: ann holds it again, with the data she submitted.
    task_revert(task_id=t.pk, iteration_id=iterations[0].pk, actor="admin")
    t.refresh_from_db()
    assert t.status == "Processing" and t.data == {"v": 1}
    project.refresh_from_db()
    assert project.status == "Active"  # reverting work of a completed project reopens it
    assert list(
        TaskAssignment.objects.filter(task=t).values_list("worker__user__username", "status", "in_progress_task_data")
    ) == [("ann", "Processing", {"v": 1})]
    assert Iteration.objects.filter(assignment__task=t).count() == 1
    with pytest.raises(NotFound, match="not an iteration of this task"):
        task_revert(task_id=t.pk, iteration_id=iterations[3].pk)
    task_revert(task_id=t.pk, iteration_id=iterations[0].pk, revert_before=True)
    t.refresh_from_db()
    assert t.status == "Awaiting Processing" and t.data is None
    assert not TaskAssignment.objects.filter(task=t).exists()


def test_end_project_aborts_open_tasks_and_keeps_complete_ones(tmp_path, workers):
    load(tmp_path, [machine("a"), human("b", "a", review=NO_REVIEW), human("c", "a", review=NO_REVIEW)])
    project = project_create(workflow_slug="wf", version_slug="v1")
    task_assign(task_id=task_of(project, "b").pk, worker="ann")
    project_end(project_id=project.pk, actor="admin")
    assert {t.step.slug: t.status for t in Task.objects.filter(project=project)} == {
        "a": "Complete",
        "b": "Aborted",
        "c": "Aborted",
    }
    assert Event.objects.filter(project=project, action="task_aborted").count() == 2
    with pytest.raises(IllegalTransition, match="is 'Aborted'; 'end' needs one of"):
        project_end(project_id=project.pk)


# --- machine steps --------------------------------------------------------------------------------


def test_machine_step_retries_then_succeeds(tmp_path):
    functions.CALLS.pop("retry-ok", None)
    retry = {"max_attempts": 3, "backoff_seconds": 0}
    load(
        tmp_path,
        [machine("flaky", function="fail_times", kwargs={"key": "retry-ok", "times": 2}, retry=retry)],
    )
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "flaky")
    assert t.status == "Complete" and t.attempts == 3 and t.data == {"calls": 3}
    actions = list(Event.objects.filter(task=t).values_list("action", flat=True))
    assert actions == [
        "task_created",
        "task_claimed",
        "task_failed",
        "task_claimed",
        "task_failed",
        "task_claimed",
        "task_completed",
    ]


def test_machine_step_out_of_retries_fails_with_traceback_and_can_be_retried(tmp_path):
    functions.CALLS.pop("retry-fail", None)
    retry = {"max_attempts": 2, "backoff_seconds": 0}
    load(
        tmp_path,
        [
            machine("flaky", function="fail_times", kwargs={"key": "retry-fail", "times": 3}, retry=retry),
            machine("after", "flaky"),
        ],
    )
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "flaky")
    assert t.status == "Failed" and t.attempts == 2
    assert "planned failure 2 of 3" in t.last_error and "Traceback" in t.last_error
    project.refresh_from_db()
    assert project.status == "Active"
    task_retry(task_id=t.pk, actor="admin")  # third call still fails, fourth succeeds
    t.refresh_from_db()
    assert t.status == "Complete"
    project.refresh_from_db()
    assert project.status == "Completed"


def test_machine_step_returning_a_non_dict_fails_clearly(tmp_path):
    load(tmp_path, [machine("bad", function="returns_list", retry={"max_attempts": 1})])
    project = project_create(workflow_slug="wf", version_slug="v1")
    t = task_of(project, "bad")
    assert t.status == "Failed"
    assert "returned list; a machine step returns a dict" in t.last_error


def test_project_input_errors_name_the_field(tmp_path):
    load(tmp_path, [machine("a")])
    with pytest.raises(ValidationError, match="priority: expected an integer"):
        project_create(workflow_slug="wf", version_slug="v1", priority="high")
    with pytest.raises(ValidationError, match="task_class: expected 'real' or 'training'"):
        project_create(workflow_slug="wf", version_slug="v1", task_class="fake")
    with pytest.raises(Exception, match="no version 'v9' of workflow 'wf' is loaded \\(loaded: wf/v1\\)"):
        project_create(workflow_slug="wf", version_slug="v9")
    with pytest.raises(NotFound, match="workflow_slug: no workflow 'nope' is loaded \\(loaded: wf/v1\\)") as caught:
        project_create(workflow_slug="nope", version_slug="v1")
    assert caught.value.field == "workflow_slug"
    assert not Project.objects.exists()
