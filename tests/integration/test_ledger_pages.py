"""The ledger on the pages: a project's lineage and its chain check (intact, then after someone edits an event
row by hand), and the account page's notification settings, through Django's test client."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orchestra.engine.errors import PermissionDenied, ValidationError
from orchestra.events.ledger import output_hash
from orchestra.events.notifications import KINDS
from orchestra.models import Event, Project, Task, Worker
from orchestra.services.projects import project_create, project_pause, project_resume
from orchestra.services.tasks import task_assign, task_submit
from orchestra.services.workers import worker_create, worker_set_notifications
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def done(tmp_path):
    """A completed project: a machine step, then a human step ann did."""
    load(tmp_path, [machine("prepare"), human("write", "prepare", review=NO_REVIEW)])
    worker_create(username="ann", password="pw", email="ann@example.com")
    worker_create(username="bob", password="pw")
    worker_create(username="boss", password="pw", project_admin=True)
    project = project_create(workflow_slug="wf", version_slug="v1", description="Ledger me")
    write = Task.objects.get(project=project, step__slug="write")
    task_assign(task_id=write.pk, worker="ann")
    task_submit(task_id=write.pk, worker="ann", data={"title": "Done"})
    project.refresh_from_db()
    assert project.status == "Completed"
    return project


def _login(client, username):
    assert client.login(username=username, password="pw")
    return client


def _page(client, project) -> str:
    response = client.get(f"/orchestra/app/projects/{project.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _row(html: str, step: str) -> str:
    found = re.search(rf'<tr data-step="{step}".*?</tr>', html, re.S)
    assert found, f"no lineage row for {step}"
    return found.group(0)


def test_lineage_and_the_verified_chain_on_the_project_page(client, done):
    html = _page(_login(client, "boss"), done)
    tasks = {t.step.slug: t for t in Task.objects.filter(project=done).select_related("step")}
    assert 'id="lineage"' in html
    prepare, write = _row(html, "prepare"), _row(html, "write")
    assert "tests.support.functions.noop" in prepare and "none" in prepare  # code, and no inputs
    assert "ann" in write and "(worker)" in write and "by ann" in write
    given = output_hash(tasks["prepare"].data)
    assert f'title="{given}">{given[:10]}</code>' in write  # its input: prepare's output, by hash
    made = output_hash(tasks["write"].data)
    assert f'title="{made}" data-output-hash>{made[:10]}</code>' in write
    assert "None" not in prepare + write

    events = list(Event.objects.filter(project=done).order_by("seq"))
    assert f"Ledger verified: {len(events)} events, chain intact" in html
    assert 'role="alert"' not in html
    for event in events:  # each event with its place in the chain
        assert f'id="event-{event.pk}" data-seq="{event.seq}"' in html
        assert f'#{event.seq} <code class="hash">{event.hash[:10]}</code>' in html


def test_an_edited_event_row_shows_a_warning_naming_it(client, done):
    event = Event.objects.get(project=done, action="task_submitted")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Event._meta.db_table)} SET data = %s WHERE id = %s",
            [json.dumps({"worker": "mallory"}), event.pk],
        )
    html = _page(_login(client, "boss"), done)
    status = re.search(r'<div class="alert ledger-status" id="ledger-status" role="alert".*?</div>', html, re.S)
    assert status, "no ledger warning"
    assert f"Event #{event.pk} (seq {event.seq}) was edited: its content no longer matches its hash." in status.group(0)
    assert f'href="#event-{event.pk}"' in status.group(0)
    assert f'id="event-{event.pk}" data-seq="{event.seq}" class="broken"' in html
    assert "chain intact" not in html


def test_the_project_page_reads_the_same_number_of_queries_for_two_tasks_or_many_events(client, done):
    busy = project_create(workflow_slug="wf", version_slug="v1", description="busy")
    for _ in range(60):
        project_pause(project_id=busy.pk)
        project_resume(project_id=busy.pk)
    assert Event.objects.filter(project=busy).count() > 120
    _login(client, "boss")

    def count(project: Project) -> int:
        _page(client, project)  # warm the compiled-version cache: it is per process, not per request
        with CaptureQueriesContext(connection) as queries:
            _page(client, project)
        return len(queries)

    assert count(done) == count(busy) <= 11  # the lineage reuses the page's tasks and seats


def test_notifications_are_saved_and_shown_as_saved(client, done):
    _login(client, "ann")
    html = client.get("/orchestra/accounts/").content.decode()
    for kind in KINDS:
        assert f'value="{kind}" data-kind="{kind}" checked' in html
    kept = [kind for kind in KINDS if kind != "assigned"]
    response = client.post("/orchestra/accounts/notifications/", {"notify": kept}, follow=True)
    assert response.redirect_chain[-1] == ("/orchestra/accounts/#notifications", 302)
    assert "Notifications saved: no emails about: a task is assigned to me." in response.content.decode()
    assert Worker.objects.get(user__username="ann").notifications == {"assigned": False}
    event = Event.objects.get(action="notifications_updated")
    assert (event.actor, event.project_id, event.data) == ("ann", None, {"user": "ann", "off": ["assigned"]})

    again = client.get("/orchestra/accounts/").content.decode()
    assert 'value="assigned" data-kind="assigned">' in again
    for kind in kept:
        assert f'value="{kind}" data-kind="{kind}" checked' in again
    client.post("/orchestra/accounts/notifications/", {"notify": kept})  # the same again: nothing new to log
    assert Event.objects.filter(action="notifications_updated").count() == 1


def test_an_unknown_kind_is_refused_in_place(client, done):
    _login(client, "ann")
    response = client.post("/orchestra/accounts/notifications/", {"notify": ["assigned", "spam"]})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="notifications-error">Enabled: no notification kind &#x27;spam&#x27;', html), html
    assert Worker.objects.get(user__username="ann").notifications == {}
    with pytest.raises(ValidationError) as error:
        worker_set_notifications(user="ann", enabled={"assigned": "no"}, actor="ann")
    assert error.value.field == "enabled.assigned"


def test_nobody_changes_someone_elses_notifications(client, done):
    _login(client, "bob")
    # The form has no say over whose settings change: a smuggled username is ignored.
    client.post("/orchestra/accounts/notifications/", {"notify": [], "user": "ann", "worker": "ann"})
    assert Worker.objects.get(user__username="ann").notifications == {}
    assert Worker.objects.get(user__username="bob").notifications == {kind: False for kind in KINDS}
    bob = get_user_model().objects.get(username="bob")
    with pytest.raises(PermissionDenied, match="'bob' may not change the notifications of 'ann'"):
        worker_set_notifications(user="ann", enabled={"assigned": False}, actor=bob)
    assert Worker.objects.get(user__username="ann").notifications == {}
    boss = get_user_model().objects.get(username="boss")  # a project admin may
    assert worker_set_notifications(user="ann", enabled={"completed": False}, actor=boss).notifications == {
        "completed": False
    }


def test_a_user_who_is_no_worker_sees_a_note_instead(client, done):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    _login(client, "root")
    html = client.get("/orchestra/accounts/").content.decode()
    assert 'id="notifications-none"' in html and 'name="notify"' not in html
    response = client.post("/orchestra/accounts/notifications/", {"notify": ["assigned"]})
    assert response.status_code == 403 and "not an Orchestra worker" in response.content.decode()
    client.logout()
    assert client.post("/orchestra/accounts/notifications/", {}).status_code == 302  # to the sign-in page
