"""Assignment policies as a workflow author declares them, run when tasks are created or enter review."""

from __future__ import annotations

import pytest

from orchestra.models import Event, Task, TaskAssignment
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_assign, task_submit
from orchestra.services.workers import worker_certify, worker_create
from tests.support.workflows import NO_REVIEW, human, load

pytestmark = pytest.mark.django_db(transaction=True)


def policy(entry=None, reviewer=None):
    functions = {}
    if entry:
        functions["entry_level"] = entry
    if reviewer:
        functions["reviewer"] = reviewer
    return {"policy_function": functions}


def seats(project, slug):
    task = Task.objects.get(project=project, step__slug=slug)
    return task.status, list(
        TaskAssignment.objects.filter(task=task).order_by("level").values_list("worker__user__username", flat=True)
    )


@pytest.fixture(autouse=True)
def workers():
    for name in ("ann", "bob", "cat"):
        worker_create(username=name)


def test_specified_worker_for_entry_and_review(tmp_path):
    load(
        tmp_path,
        [
            human(
                "write",
                assignment_policy=policy(
                    {"path": "orchestra.assignment_policies.specified_worker", "kwargs": {"username": "ann"}},
                    {"path": "specified_worker", "kwargs": {"username": "bob"}},
                ),
            )
        ],
    )
    project = project_create(workflow_slug="wf", version_slug="v1")
    assert seats(project, "write") == ("Processing", ["ann"])
    task_submit(task_id=Task.objects.get(project=project).pk, worker="ann", data={})
    assert seats(project, "write") == ("Reviewing", ["ann", "bob"])


def test_previously_completed_steps_reuses_the_entry_worker(tmp_path):
    load(
        tmp_path,
        [
            human("draft", review=NO_REVIEW),
            human(
                "polish",
                "draft",
                review=NO_REVIEW,
                assignment_policy=policy(
                    {"path": "previously_completed_steps", "kwargs": {"related_steps": ["draft"]}}
                ),
            ),
        ],
    )
    project = project_create(workflow_slug="wf", version_slug="v1")
    draft = Task.objects.get(project=project, step__slug="draft")
    task_assign(task_id=draft.pk, worker="cat")
    task_submit(task_id=draft.pk, worker="cat", data={})
    assert seats(project, "polish") == ("Processing", ["cat"])


def test_a_named_worker_who_cannot_take_the_seat_is_skipped_and_recorded(tmp_path):
    load(
        tmp_path,
        [
            human(
                "write",
                certs=["writer"],
                review=NO_REVIEW,
                assignment_policy=policy(
                    {"path": "tests.support.functions.pick_from_project_data"},
                ),
            )
        ],
        certifications=["writer"],
    )
    worker_certify(worker="bob", workflow_slug="wf", certification_slug="writer")
    project = project_create(workflow_slug="wf", version_slug="v1", project_data={"assignees": ["ghost", "ann", "bob"]})
    assert seats(project, "write") == ("Processing", ["bob"])
    skipped = list(Event.objects.filter(action="assignment_policy_skipped").values_list("data", flat=True))
    assert [s["worker"] for s in skipped] == ["ghost", "ann"]
    assert "no worker named 'ghost'" in skipped[0]["reason"]
    assert "needs the entry_level certification(s) 'writer'" in skipped[1]["reason"]

    nobody = project_create(workflow_slug="wf", version_slug="v1", project_data={"assignees": []})
    assert seats(nobody, "write") == ("Awaiting Processing", [])  # left in the pool for workers to pull
