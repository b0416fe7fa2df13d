"""`tasks` steps (Invenio task lists) through the public Python API, the Holding Pen API and workflow files."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orchestra import workflows
from orchestra.engine.errors import DefinitionChanged, NotFound
from orchestra.models import Event, Project, Task, WorkflowObject
from orchestra.services.objects import object_resume
from orchestra.services.projects import project_create
from orchestra.services.workers import worker_create
from orchestra.workflows import ObjectStatus
from tests.support import tasklists
from tests.support.workflows import load, machine

pytestmark = pytest.mark.django_db(transaction=True)
SUPPORT = "tests.support.tasklists"


def test_the_seeds_example_halts_both_objects_and_reports_the_documented_states():
    workflows.register(f"{SUPPORT}.myworkflow")
    run = workflows.start("myworkflow", data=[5, 10])

    # The seed: 4 objects (an initial snapshot of each, and the object), 2 initial, 2 halted, none else.
    assert len(run.objects) == 4
    assert len(run.initial_objects) == 2
    assert len(run.halted_objects) == 2
    assert len(run.completed_objects) == len(run.running_objects) == 0
    assert len(run.waiting_objects) == len(run.error_objects) == 0
    assert run.halted_objects[0].get_data() == 25
    assert [o.get_data() for o in run.initial_objects] == [5, 10]
    first = run.halted_objects[0]
    assert first.get_action() == "approval"
    assert first.get_action_message() == "Data higher than 20."  # Invenio lost halt messages; kept here
    assert first.task_status == "Halted"
    history = first.extra_data["_task_history"]
    assert [h["nicename"] for h in history] == ["add_data", "halt_if_higher_than_20"]
    assert history[0]["parameters"] == [["data_param", "20"]]

    resumed = workflows.continue_object(first.id)
    assert resumed.status == ObjectStatus.COMPLETED
    assert resumed.get_data() == 25
    assert Project.objects.get(pk=first.project_id).status == "Completed"
    assert Task.objects.get(pk=first.id).data == {"data": 25}
    # The other one is still halted; resume_objects_in_workflow continues it.
    assert [o.status for o in workflows.resume_objects_in_workflow("myworkflow")] == [ObjectStatus.COMPLETED]
    assert workflows.get_object(run.halted_objects[1].id).get_data() == 30


def test_an_object_below_the_threshold_completes_at_once_and_start_takes_a_single_item():
    workflows.register(f"{SUPPORT}.myworkflow")
    run = workflows.start("myworkflow", data=0)
    assert [o.status for o in run.current] == [ObjectStatus.COMPLETED]
    assert run.current[0].get_data() == 20
    assert run.has_completed


def test_start_names_an_unknown_workflow_and_a_bad_path():
    with pytest.raises(NotFound, match="no workflow named 'nope'"):
        workflows.start("nope", data=[1])
    with pytest.raises(NotFound, match="tests.support.tasklists.missing"):
        workflows.register(f"{SUPPORT}.missing")


def test_task_workflows_setting_registers_on_first_start(settings):
    settings.ORCHESTRA_TASK_WORKFLOWS = [f"{SUPPORT}.myworkflow"]
    run = workflows.start("myworkflow", data=[0])
    assert run.current[0].status == ObjectStatus.COMPLETED


def test_delayed_start_leaves_the_work_to_the_executor(settings):
    from orchestra.execution.local import LocalExecutor

    workflows.register(f"{SUPPORT}.myworkflow")
    settings.ORCHESTRA_EXECUTOR = "local"
    result = workflows.start_delayed("myworkflow", data=[0, 30])
    assert result.status == "PENDING"  # no executor yet: queued
    executor = LocalExecutor(threads=2, poll_seconds=0.05).start()
    try:
        run = result.get(timeout=30)
    finally:
        executor.stop()
    assert result.status == "SUCCESS"
    assert sorted(o.status for o in run.current) == [ObjectStatus.COMPLETED, ObjectStatus.HALTED]


def test_a_failing_task_sends_the_object_to_the_pen_and_retry_reruns_that_task():
    workflows.register(f"{SUPPORT}.with_failure")
    tasklists.FAILURES["flaky"] = 1
    run = workflows.start("with_failure", data=[0])
    obj = run.current[0]
    assert obj.status == ObjectStatus.ERROR
    assert obj.task_status == "Failed"  # Invenio: an error goes to the Holding Pen, no automatic retry
    assert obj.get_data() == 1  # add_data(1) ran, then flaky raised
    assert "flaky task failed on purpose" in obj.extra_data["_error_msg"]
    assert obj.callback_pos == [1]
    assert "flaky task failed on purpose" in Task.objects.get(pk=obj.id).last_error

    again = workflows.continue_object(obj.id, "restart_task")
    assert again.status == ObjectStatus.COMPLETED
    assert again.get_data() == 12  # 0 +1, flaky +1, +10: add_data(1) did not run twice
    assert "_error_msg" not in again.extra_data


def test_wait_and_restart_points():
    workflows.register(f"{SUPPORT}.waiting")
    obj = workflows.start("waiting", data=[0]).current[0]
    assert obj.status == ObjectStatus.WAITING
    assert obj.get_action() is None
    assert obj.get_action_message() == "waiting for the partner system"

    # restart_prev runs add_data(1) again, then waits again at the same place.
    again = workflows.continue_object(obj.id, "restart_prev")
    assert (again.status, again.get_data()) == (ObjectStatus.WAITING, 2)
    # first: from the initial data, with the history kept.
    again = workflows.continue_object(obj.id, "first")
    assert (again.status, again.get_data()) == (ObjectStatus.WAITING, 1)
    assert len(again.extra_data["_task_history"]) == 6
    done = workflows.continue_object(obj.id)
    assert (done.status, done.get_data()) == (ObjectStatus.COMPLETED, 2)


def test_resuming_after_the_task_list_changed_is_refused_not_guessed(monkeypatch):
    workflows.register(f"{SUPPORT}.changing")
    obj = workflows.start("changing", data=[25]).current[0]
    assert (obj.status, obj.callback_pos) == (ObjectStatus.HALTED, [1])
    monkeypatch.setattr(tasklists, "changing", [tasklists.add_data(2), *tasklists.changing])
    with pytest.raises(DefinitionChanged, match=r"changed since it stopped at position \[1\]"):
        object_resume(task_id=obj.id)
    assert Task.objects.get(pk=obj.id).status == "Halted"  # nothing changed
    # From the first task it runs the new list on the initial data: 25 + 2 + 1 > 20 halts again.
    again = workflows.continue_object(obj.id, "first")
    assert (again.status, again.get_data(), again.callback_pos) == (ObjectStatus.HALTED, 28, [2])


def test_a_tasks_step_inside_a_workflow_file_gets_its_inputs_and_feeds_the_next_step(tmp_path):
    load(
        tmp_path,
        [
            machine("before", function="noop", kwargs={"n": 7}),
            {
                "slug": "review",
                "name": "Review",
                "kind": "tasks",
                "execution": {"workflow": f"{SUPPORT}.with_inputs"},
                "creation_depends_on": ["before"],
            },
            machine("after", "review", function="echo"),
        ],
    )
    project = project_create(workflow_slug="wf", version_slug="v1", project_data={"data": 1, "label": "x"})
    tasks = {t.step.slug: t for t in Task.objects.filter(project=project).select_related("step")}
    assert {slug: t.status for slug, t in tasks.items()} == {
        "before": "Complete",
        "review": "Complete",
        "after": "Complete",
    }
    obj = WorkflowObject.objects.get(task=tasks["review"])
    assert obj.extra_data["seen"] == {"prerequisites": {"before": {"ok": True, "n": 7}}, "project": "x"}
    assert tasks["review"].data == {"data": 6}
    assert tasks["after"].data["prerequisites"]["review"] == {"data": 6}


def test_a_tasks_step_naming_a_missing_list_is_refused_at_load_time(tmp_path):
    from orchestra.engine.definitions import DefinitionError

    step = {"slug": "t", "name": "T", "kind": "tasks", "execution": {"workflow": f"{SUPPORT}.nothing_here"}}
    with pytest.raises(DefinitionError) as info:
        load(tmp_path, [step])
    assert "steps[0].execution.workflow" in str(info.value)
    assert "nothing_here" in str(info.value)


def test_a_machine_step_that_runs_past_its_timeout_fails_and_is_stopped(tmp_path):
    from tests.support import functions

    functions.RAN_TO_THE_END.clear()
    load(
        tmp_path,
        [machine("slow", function="runs_long", kwargs={"seconds": 20}, timeout_seconds=0.3, retry={"max_attempts": 1})],
    )
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = Task.objects.get(project=project)
    assert task.status == "Failed"
    assert "timed out after 0.3 s" in task.last_error
    assert functions.RAN_TO_THE_END == []  # the step's code was stopped, not left running to the end
    failed = Event.objects.get(task_id=task.pk, action="task_failed")
    assert failed.data["retry"] is False


def test_a_tasks_step_timeout_applies_the_retry_policy(tmp_path):
    load(
        tmp_path,
        [
            {
                "slug": "slow",
                "name": "Slow",
                "kind": "tasks",
                "execution": {"workflow": f"{SUPPORT}.slow"},
                "timeout_seconds": 0.3,
                "retry": {"max_attempts": 2, "backoff_seconds": 0},
            }
        ],
    )
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = Task.objects.get(project=project)
    assert (task.status, task.attempts) == ("Failed", 2)
    assert [e.data["retry"] for e in Event.objects.filter(task_id=task.pk, action="task_failed")] == [True, False]


# --- the Holding Pen API -------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    worker_create(username="pen-admin", password="pw", project_admin=True)
    client.login(username="pen-admin", password="pw")
    return client


def test_holding_pen_api_lists_filters_shows_and_approves(admin_client):
    workflows.register(f"{SUPPORT}.myworkflow")
    workflows.register(f"{SUPPORT}.with_failure")
    halted = workflows.start("myworkflow", data=[5, 10]).current
    tasklists.FAILURES["flaky"] = 1
    failed = workflows.start("with_failure", data=[0]).current[0]

    listing = admin_client.get("/orchestra/api/holdingpen/").json()
    assert listing["count"] == 3
    assert {i["id"] for i in listing["items"]} == {o.id for o in [*halted, failed]}
    only_halted = admin_client.get("/orchestra/api/holdingpen/?status=Halted&action=approval").json()
    assert {i["id"] for i in only_halted["items"]} == {o.id for o in halted}
    by_message = admin_client.get("/orchestra/api/holdingpen/?message=on+purpose").json()
    assert [i["id"] for i in by_message["items"]] == [failed.id]
    assert admin_client.get("/orchestra/api/holdingpen/?workflow=with_failure").json()["count"] == 1

    detail = admin_client.get(f"/orchestra/api/holdingpen/{halted[0].id}").json()
    assert detail["object"]["data"] == 25
    assert detail["object"]["message"] == "Data higher than 20."
    assert detail["object"]["position_name"] == "halt_if_higher_than_20"
    assert detail["action"]["choices"] == [["accept", "Approve"], ["reject", "Reject"]]
    assert "resolve" in detail["operations"]

    answer = admin_client.post(
        f"/orchestra/api/holdingpen/{halted[0].id}/action/resolve",
        {"choice": "accept"},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["object"]["task_status"] == "Complete"
    assert workflows.get_object(halted[0].id).extra_data["approved"] is True

    # Bulk: reject the other halted one and retry the failed one; a completed one is refused, alone.
    tasklists.FAILURES["flaky"] = 0
    bulk = admin_client.post(
        "/orchestra/api/holdingpen/action/resolve",
        {"object_ids": [halted[1].id, halted[0].id], "choice": "reject"},
        content_type="application/json",
    ).json()
    assert bulk["done"] == 1
    assert bulk["results"][str(halted[0].id)]["ok"] is False
    assert "Halted" in bulk["results"][str(halted[0].id)]["message"]
    stopped = workflows.get_object(halted[1].id)
    assert (stopped.status, stopped.task_status, stopped.extra_data["approved"]) == ("COMPLETED", "Complete", False)
    retried = admin_client.post(
        "/orchestra/api/holdingpen/action/retry", {"object_ids": [failed.id]}, content_type="application/json"
    ).json()
    assert retried["done"] == 1
    assert workflows.get_object(failed.id).status == ObjectStatus.COMPLETED
    assert admin_client.get("/orchestra/api/holdingpen/").json()["count"] == 0


def test_holding_pen_edit_then_resume_and_abort(admin_client):
    workflows.register(f"{SUPPORT}.myworkflow")
    first, second = workflows.start("myworkflow", data=[5, 10]).current
    bad = admin_client.post(
        f"/orchestra/api/holdingpen/{first.id}/action/resolve", {"choice": "maybe"}, content_type="application/json"
    )
    assert bad.status_code == 400
    assert "'maybe' is not a choice" in bad.json()["message"]
    edited = admin_client.post(
        f"/orchestra/api/holdingpen/{first.id}/action/edit", {"data": 3}, content_type="application/json"
    )
    assert edited.status_code == 200
    assert Event.objects.filter(task_id=first.id, action="object_edited").count() == 1
    # restart_step re-runs the halting check on the edited data: 3 is not above 20, so it completes.
    admin_client.post(f"/orchestra/api/holdingpen/{first.id}/action/restart_step", content_type="application/json")
    assert (workflows.get_object(first.id).status, workflows.get_object(first.id).get_data()) == ("COMPLETED", 3)

    aborted = admin_client.post(f"/orchestra/api/holdingpen/{second.id}/action/abort", content_type="application/json")
    assert aborted.status_code == 200
    assert Project.objects.get(pk=second.project_id).status == "Aborted"
    assert workflows.get_object(second.id).status == ObjectStatus.ERROR


def test_holding_pen_api_is_for_project_admins_only(client):
    workflows.register(f"{SUPPORT}.myworkflow")
    obj = workflows.start("myworkflow", data=[50]).current[0]
    worker_create(username="plain", password="pw")
    client.login(username="plain", password="pw")
    assert client.get("/orchestra/api/holdingpen/").status_code == 403
    refused = client.post(f"/orchestra/api/holdingpen/{obj.id}/action/resume", content_type="application/json")
    assert refused.status_code == 403
    assert Task.objects.get(pk=obj.id).status == "Halted"
    assert not User.objects.get(username="plain").is_staff


def test_holding_pen_api_query_counts_do_not_grow_with_the_pen(admin_client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    workflows.register(f"{SUPPORT}.myworkflow")
    workflows.start("myworkflow", data=[30, 31])
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get("/orchestra/api/holdingpen/").json()["count"] == 2
    workflows.start("myworkflow", data=list(range(21, 41)))
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get("/orchestra/api/holdingpen/").json()["count"] == 22
    assert len(few) == len(many) <= 6


def test_a_halt_inside_a_for_loop_resumes_at_the_right_item_after_approval(admin_client):
    workflows.register(f"{SUPPORT}.loop_with_review")
    obj = workflows.start("loop_with_review", data=[[]]).current[0]
    assert (obj.status, obj.get_data(), obj.get_action_message()) == (ObjectStatus.HALTED, ["a", "b"], "check item b")
    answer = admin_client.post(
        f"/orchestra/api/holdingpen/{obj.id}/action/resolve", {"choice": "accept"}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    done = workflows.get_object(obj.id)
    assert (done.status, done.get_data()) == (ObjectStatus.COMPLETED, ["a", "b", "c", "all"])
