"""The worker interface API and the project-management API, through HTTP (Django's test client).

A worker is authenticated by session (writes need the CSRF token) or by a personal token. Every endpoint
is also called by someone who may not use it, and the test checks the refusal and that nothing changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from orchestra.models import Event, Project, Task, TaskAssignment, TimeEntry
from orchestra.services.access import token_create, token_revoke
from orchestra.services.projects import project_create
from orchestra.services.workers import worker_create
from tests.support.workflows import human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/orchestra/api/interface/"
PM = BASE + "project_management/"


class Api:
    """A worker calling the API with a personal token, as a script would."""

    def __init__(self, username: str) -> None:
        _, raw = token_create(user=username)
        self.client = Client(HTTP_AUTHORIZATION=f"Token {raw}")

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(BASE + path, params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(BASE + path, json.dumps(body or {}), content_type="application/json")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if method in ("GET", "DELETE"):
            return getattr(self.client, method.lower())(BASE + path)
        return getattr(self.client, method.lower())(
            BASE + path, json.dumps(body or {}), content_type="application/json"
        )


@pytest.fixture
def setup(tmp_path):
    load(
        tmp_path,
        [machine("prep"), human("write", "prep", review={"policy": "sampled_review", "rate": 1, "max_reviews": 1})],
        slug="article",
    )
    for name in ("ann", "bob", "eve"):
        worker_create(username=name, password="pw")
    worker_create(username="boss", password="pw", project_admin=True)
    project = project_create(workflow_slug="article", version_slug="v1", description="story")
    task = Task.objects.get(project=project, step__slug="write")
    return project, task


def snapshot() -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    return (
        list(Task.objects.order_by("id").values_list("id", "status", "data")),
        list(TaskAssignment.objects.order_by("id").values_list("id", "worker_id", "status", "in_progress_task_data")),
        list(TimeEntry.objects.order_by("id").values_list("id", "worker_id", "time_worked", "description")),
        list(Project.objects.order_by("id").values_list("id", "status")),
        Event.objects.count(),
    )


def test_a_task_done_and_reviewed_through_the_worker_api(setup):
    project, task = setup
    ann, bob = Api("ann"), Api("bob")
    response = ann.post("new_task_assignment/entry_level")
    assert response.status_code == 200, response.content
    assert response.json()["task_id"] == task.pk

    info = ann.post("task_assignment_information/", {"task_id": task.pk}).json()
    assert (info["step"]["slug"], info["is_read_only"], info["is_reviewer"]) == ("write", False, False)
    assert info["prerequisites"] == {"prep": {"ok": True}}
    assert info["project"]["details"] == "story"

    assert ann.post("save_task_assignment", {"task_id": task.pk, "task_data": {"text": "draft"}}).json() == {}
    dashboard = ann.get("dashboard_tasks/").json()
    assert dashboard["counts"]["in_progress"] == 1
    assert dashboard["tasks"][0]["step"] == "Write"

    submitted = ann.post("submit_task_assignment", {"task_id": task.pk, "task_data": {"text": "v1"}})
    assert submitted.json() == {"task_id": task.pk, "status": "Pending Review"}
    assert ann.get("dashboard_tasks", state="pending_review").json()["count"] == 1

    assert bob.post("new_task_assignment/reviewer").json()["task_id"] == task.pk
    no_feedback = bob.post("submit_task_assignment", {"task_id": task.pk, "command_type": "reject"})
    assert no_feedback.status_code == 400 and no_feedback.json()["field"] == "feedback"
    returned = bob.post(
        "submit_task_assignment", {"task_id": task.pk, "command_type": "reject", "feedback": "more quotes"}
    )
    assert returned.json()["status"] == "Post-review Processing"
    assert ann.get("dashboard_tasks").json()["counts"]["returned"] == 1

    ann.post("submit_task_assignment", {"task_id": task.pk, "task_data": {"text": "v2"}})
    accepted = bob.post("submit_task_assignment", {"task_id": task.pk, "command_type": "accept", "task_data": {}})
    assert accepted.json()["status"] == "Complete"
    assert ann.get("dashboard_tasks").json()["counts"]["complete"] == 1

    nothing = ann.post("new_task_assignment/entry_level")
    assert nothing.status_code == 404 and nothing.json()["error"] == "no_task_available"


def test_another_workers_task_is_refused_and_unchanged(setup):
    project, task = setup
    ann, eve = Api("ann"), Api("eve")
    ann.post("new_task_assignment/entry_level")
    before = snapshot()
    refusals = [
        eve.post("task_assignment_information", {"task_id": task.pk}),
        eve.post("save_task_assignment", {"task_id": task.pk, "task_data": {"text": "mine now"}}),
        eve.post("submit_task_assignment", {"task_id": task.pk, "task_data": {"text": "mine now"}}),
        eve.post("submit_task_assignment", {"task_id": task.pk, "command_type": "reject", "feedback": "x"}),
    ]
    for response in refusals:
        assert response.status_code in (403, 404, 409), response.content
        assert set(response.json()) >= {"error", "message"}
    assert eve.get("dashboard_tasks").json()["count"] == 0
    assert snapshot() == before


def test_session_writes_need_the_csrf_token(setup):
    project, task = setup
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="ann", password="pw")
    assert browser.get(BASE + "dashboard_tasks/").status_code == 200
    before = snapshot()
    refused = browser.post(BASE + "new_task_assignment/entry_level/", "{}", content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    assert snapshot() == before

    browser.get("/orchestra/admin/login/")  # any page that sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    allowed = browser.post(
        BASE + "new_task_assignment/entry_level/", "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert allowed.status_code == 200, allowed.content


def test_unauthenticated_and_revoked_tokens_get_401(setup):
    assert Client().get(BASE + "dashboard_tasks/").status_code == 401
    bad = Client(HTTP_AUTHORIZATION="Token otk_nonsense").get(BASE + "dashboard_tasks/")
    assert bad.status_code == 401 and "unknown or revoked" in bad.json()["message"]
    token, raw = token_create(user="ann")
    assert Client(HTTP_AUTHORIZATION=f"Token {raw}").get(BASE + "timer/").status_code == 200
    token_revoke(token_id=token.pk)
    assert Client(HTTP_AUTHORIZATION=f"Token {raw}").get(BASE + "timer/").status_code == 401


def test_time_entries_and_timer_belong_to_their_worker(setup):
    project, task = setup
    ann, eve = Api("ann"), Api("eve")
    assignment_id = ann.post("new_task_assignment/entry_level").json()["assignment_id"]

    created = ann.post(
        "time_entries/",
        {"date": "2026-11-23", "time_worked": "01:30", "description": "drafting", "assignment": assignment_id},
    )
    assert created.status_code == 201, created.content
    entry = created.json()
    assert (entry["seconds"], entry["time_worked"], entry["assignment"]) == (5400, "01:30:00", assignment_id)
    ann.post("time_entries/", {"date": "2026-11-01", "time_worked": 600})
    assert len(ann.get("time_entries/", min_date="2026-11-20").json()) == 1
    assert len(ann.get("time_entries/", max_date="2026-11-20").json()) == 1
    assert len(ann.get("time_entries/", assignment=assignment_id).json()) == 1

    bad = ann.post("time_entries/", {"date": "2026-11-23", "time_worked": "soon"})
    assert bad.status_code == 400 and bad.json()["field"] == "time_worked"
    foreign = ann.post("time_entries/", {"date": "2026-11-23", "time_worked": 60, "assignment": 999999})
    assert foreign.status_code == 404 and foreign.json()["field"] == "assignment"

    before = snapshot()
    path = f"time_entries/{entry['id']}/"
    assert eve.call("GET", path).status_code == 404
    assert eve.call("PATCH", path, {"description": "stolen"}).status_code == 404
    assert eve.call("PUT", path, {"date": "2026-11-23", "time_worked": 1}).status_code == 404
    assert eve.call("DELETE", path).status_code == 404
    assert eve.get("time_entries/").json() == []
    assert eve.post("timer/update", {"assignment": assignment_id}).status_code == 404
    assert snapshot() == before

    patched = ann.call("PATCH", path, {"description": "outline"}).json()
    assert (patched["description"], patched["seconds"]) == ("outline", 5400)
    put = ann.call("PUT", path, {"date": "2026-11-22", "time_worked": "00:45:00"}).json()
    assert (put["date"], put["seconds"], put["description"], put["assignment"]) == ("2026-11-22", 2700, "", None)
    assert ann.call("DELETE", path).status_code == 204
    assert ann.call("GET", path).status_code == 404

    assert ann.get("timer/").json()["running"] is False
    started = ann.post("timer/start/", {"assignment": assignment_id, "description": "edit"}).json()
    assert started["running"] is True and started["assignment"] == assignment_id
    again = ann.post("timer/start/")
    assert again.status_code == 409 and "already running" in again.json()["message"]
    ann.post("timer/update/", {"description": "editing"})
    stopped = ann.post("timer/stop/").json()
    assert (stopped["description"], stopped["assignment"]) == ("editing", assignment_id)
    assert stopped["seconds"] >= 1
    assert ann.post("timer/stop/").status_code == 409
    assert Event.objects.filter(action="timer_stopped").count() == 1


def test_project_management_is_for_project_admins_only(setup):
    project, task = setup
    ann, boss = Api("ann"), Api("boss")
    ann.post("new_task_assignment/entry_level")
    assignment = TaskAssignment.objects.get(task=task)
    calls = [
        ("GET", "projects/", None),
        ("POST", "project_information/", {"project_id": project.pk}),
        ("POST", "assign_task/", {"worker_username": "bob", "task_id": task.pk}),
        ("POST", "reassign_assignment/", {"worker_username": "bob", "assignment_id": assignment.pk}),
        ("POST", "complete_and_skip_task/", {"task_id": task.pk}),
        ("POST", "revert_task/", {"task_id": task.pk, "iteration_id": 1}),
        ("POST", "end_project/", {"project_id": project.pk}),
        ("POST", "set_project_status/", {"project_id": project.pk, "status": "Paused"}),
        ("POST", "retry_task/", {"task_id": task.pk}),
    ]
    before = snapshot()
    for method, path, body in calls:
        response = ann.call(method, "project_management/" + path, body)
        assert response.status_code == 403, (path, response.content)
        assert "not a project admin" in response.json()["message"]
    assert snapshot() == before

    assert boss.call("GET", "project_management/projects/").json()["count"] == 1
    info = boss.call("POST", "project_management/project_information/", {"project_id": project.pk}).json()
    assert info["tasks"]["write"]["assignments"][0]["worker"]["username"] == "ann"
    moved = boss.call(
        "POST", "project_management/reassign_assignment/", {"worker_username": "bob", "assignment_id": assignment.pk}
    )
    assert moved.status_code == 200, moved.content
    paused = boss.call("POST", "project_management/set_project_status/", {"project_id": project.pk, "status": "Paused"})
    assert paused.json()["status"] == "Paused"
    resumed = boss.call(
        "POST", "project_management/set_project_status/", {"project_id": project.pk, "status": "Active"}
    )
    assert resumed.json()["status"] == "Active"
    skipped = boss.call("POST", "project_management/complete_and_skip_task/", {"task_id": task.pk})
    assert skipped.json()["status"] == "Complete"
    assert Project.objects.get(pk=project.pk).status == "Completed"
    ended = boss.call("POST", "project_management/end_project/", {"project_id": project.pk})
    assert ended.status_code == 409 and ended.json()["error"] == "illegal_transition"
