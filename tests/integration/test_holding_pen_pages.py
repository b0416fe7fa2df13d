"""The Holding Pen pages through Django's test client: who may see them, filters and paging, bulk actions
with per-object results, decisions and edits from an object's page, and query counts that stay the same
however many tasks are stopped."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orchestra import workflows
from orchestra.models import Project, WorkflowObject
from orchestra.services.workers import worker_create
from orchestra.workflows.sample_tasks import add_data

pytestmark = pytest.mark.django_db(transaction=True)

PEN = "/orchestra/app/holdingpen/"
HTMX = {"HX-Request": "true"}
# Queries per page view: session, user, caller; the list's count and rows; the object's task, its object
# and its step's version (for the task list's outline).
LIST_QUERIES = 5
OBJECT_QUERIES = 5


def _explode(obj, eng):
    """Divide by nothing."""
    raise ZeroDivisionError("no dividing by zero here")


class breaking:  # noqa: N801 - registered by its dotted path, as Invenio names workflows
    """Add one, then fail."""

    workflow = [add_data(1), _explode]


@pytest.fixture
def pen():
    """Two objects halted for approval (25 and 30) and one failed (8), with a project admin and a worker."""
    workflows.register("orchestra.workflows.examples.myworkflow")
    workflows.register("tests.integration.test_holding_pen_pages.breaking")
    halted = workflows.start("myworkflow", data=[5, 10]).current
    failed = workflows.start("breaking", data=[7]).current
    assert [o.status for o in halted + failed] == ["HALTED", "HALTED", "ERROR"]
    worker_create(username="boss", password="pw", project_admin=True)
    worker_create(username="ann", password="pw")
    return {"halted": halted, "failed": failed[0]}


def _login(client, username):
    assert client.login(username=username, password="pw")
    return client


def _rows(html: str) -> list[int]:
    return [int(chunk.split('"', 1)[0]) for chunk in html.split('data-object="')[1:]]


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_only_project_admins_see_the_holding_pen(client, pen):
    first = pen["halted"][0]
    _login(client, "ann")
    for url in (PEN, f"{PEN}{first.id}/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Only project admins" in response.content.decode()
    assert client.post(f"{PEN}{first.id}/resolve/", {"choice": "accept"}).status_code == 403
    assert client.post(f"{PEN}bulk/", {"operation": "approve", "ids": [first.id]}).status_code == 403
    assert workflows.get_object(first.id).status == "HALTED"
    assert "Holding Pen" not in client.get("/orchestra/app/").content.decode()  # no link for a worker
    client.logout()
    assert client.get(PEN).url.startswith("/orchestra/accounts/login/")

    _login(client, "boss")
    assert 'href="/orchestra/app/holdingpen/"' in client.get("/orchestra/app/").content.decode()
    assert client.get(f"{PEN}999999/").status_code == 404


def test_filters_narrow_the_list(client, pen):
    (a, b), failed = pen["halted"], pen["failed"]
    _login(client, "boss")
    page = client.get(PEN).content.decode()
    assert _rows(page) == [failed.id, b.id, a.id]  # most recently stopped first
    assert "3 stopped tasks" in page and "Data higher than 20." in page
    assert "no dividing by zero here" in page  # a failure shows its error

    assert _rows(client.get(PEN, {"status": "Failed"}).content.decode()) == [failed.id]
    assert _rows(client.get(PEN, {"status": "Halted", "action": "approval"}).content.decode()) == [b.id, a.id]
    assert _rows(client.get(PEN, {"workflow": "breaking"}).content.decode()) == [failed.id]
    assert _rows(client.get(PEN, {"workflow": "myworkflow", "step": "myworkflow"}).content.decode()) == [b.id, a.id]
    assert _rows(client.get(PEN, {"message": "higher than"}).content.decode()) == [b.id, a.id]
    assert _rows(client.get(PEN, {"message": "dividing"}).content.decode()) == [failed.id]
    today = dt.datetime.now(dt.UTC).date()
    assert len(_rows(client.get(PEN, {"from": today.isoformat(), "to": today.isoformat()}).content.decode())) == 3
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    nothing = client.get(PEN, {"from": tomorrow}).content.decode()
    assert _rows(nothing) == [] and "Nothing is waiting in the Holding Pen that matches these filters" in nothing
    assert _rows(client.get(PEN, {"to": (today - dt.timedelta(days=1)).isoformat()}).content.decode()) == []
    bad = client.get(PEN, {"from": "yesterday", "status": "Bogus"}).content.decode()
    assert "&#x27;yesterday&#x27; is not a date (YYYY-MM-DD); this filter is not applied." in bad
    assert len(_rows(bad)) == 3  # the bad date and the unknown status are ignored, said so for the date


def test_paging(client, pen, monkeypatch):
    from orchestra.web import holdingpen

    monkeypatch.setattr(holdingpen, "PAGE_SIZE", 2)
    _login(client, "boss")
    first = client.get(PEN, {"status": "", "message": ""}).content.decode()
    assert len(_rows(first)) == 2 and "Page 1 of 2" in first and "page=2" in first
    second = client.get(PEN, {"page": 2}).content.decode()
    assert _rows(second) == [pen["halted"][0].id] and "Page 2 of 2" in second


def test_bulk_approve_reports_each_object(client, pen):
    (a, b), failed = pen["halted"], pen["failed"]
    _login(client, "boss")
    response = client.post(
        f"{PEN}bulk/", {"operation": "approve", "ids": [a.id, b.id, failed.id], "query": "status=Halted"}, follow=True
    )
    assert response.redirect_chain == [(f"{PEN}?status=Halted", 302)]
    [message] = _messages(response)
    assert message.startswith(f"Approve: 2 done; task {failed.id} refused: object {failed.id} has no pending action")
    for obj in (a, b):
        done = workflows.get_object(obj.id)
        assert (done.status, done.task_status) == ("COMPLETED", "Complete")
        assert Project.objects.get(pk=done.project_id).status == "Completed"
    assert workflows.get_object(failed.id).status == "ERROR"
    assert _rows(response.content.decode()) == []  # the filtered list, now empty

    nothing = client.post(f"{PEN}bulk/", {"operation": "approve"}, headers=HTMX)
    assert nothing.status_code == 400 and "Tick at least one object first." in nothing.content.decode()
    unknown = client.post(f"{PEN}bulk/", {"operation": "explode", "ids": [failed.id]}, follow=True)
    assert "There is no bulk action 'explode'" in _messages(unknown)[0]
    retried = client.post(f"{PEN}bulk/", {"operation": "retry", "ids": [failed.id]}, headers=HTMX)
    assert retried.status_code == 204 and retried["HX-Redirect"] == PEN
    assert workflows.get_object(failed.id).status == "ERROR"  # ran again, and failed again


def test_an_edit_with_bad_json_changes_nothing(client, pen):
    obj = pen["halted"][0]
    _login(client, "boss")
    url = f"{PEN}{obj.id}/edit/"
    before = WorkflowObject.objects.get(task_id=obj.id).updated_at

    inline = client.post(url, {"data": '{"a": 1,}'}, headers=HTMX)
    assert inline.status_code == 400
    assert "The data is not valid JSON: Expecting property name enclosed in double quotes (line 1, column 9)" in (
        inline.content.decode()
    )
    page = client.post(url, {"data": "[1, 2"})
    assert page.status_code == 400
    html = page.content.decode()
    assert "not valid JSON" in html and "nothing was saved" in html
    assert ">[1, 2</textarea>" in html  # what was typed stays in the form, open
    assert '<details class="card" id="pen-edit" open>' in html
    saved = WorkflowObject.objects.get(task_id=obj.id)
    assert (saved.data, saved.updated_at) == (25, before)

    good = client.post(url, {"data": '{"n": 26}'}, follow=True)
    assert _messages(good) == [f"Object {obj.id}: data saved."]
    assert WorkflowObject.objects.get(task_id=obj.id).data == {"n": 26}
    assert "&quot;n&quot;: 26" in good.content.decode()


def test_resolve_through_the_page(client, pen):
    (a, b) = pen["halted"]
    _login(client, "boss")
    page = client.get(f"{PEN}{a.id}/").content.decode()
    assert 'data-choice="accept"' in page and 'data-choice="reject"' in page
    assert 'hx-confirm="Approve object' in page and 'data-operation="retry"' not in page  # as offered
    assert 'aria-current="step" data-position="1"' in page  # where it halted

    wrong = client.post(f"{PEN}{a.id}/resolve/", {"choice": "maybe"}, headers=HTMX)
    assert wrong.status_code == 400
    assert "&#x27;maybe&#x27; is not a choice of the &#x27;approval&#x27; action" in wrong.content.decode()

    done = client.post(f"{PEN}{a.id}/resolve/", {"choice": "accept"}, headers=HTMX)
    assert done.status_code == 204 and done["HX-Redirect"] == f"{PEN}{a.id}/"
    finished = workflows.get_object(a.id)
    assert (finished.status, finished.data, finished.task_status) == ("COMPLETED", 25, "Complete")
    assert Project.objects.get(pk=finished.project_id).status == "Completed"
    after = client.get(f"{PEN}{a.id}/")
    assert _messages(after) == [f"Object {a.id}: decided 'accept'; it runs on."]
    assert "Not in the Holding Pen" in after.content.decode()

    again = client.post(f"{PEN}{a.id}/resolve/", {"choice": "accept"}, headers=HTMX)
    assert again.status_code == 409 and f"Task {a.id} is &#x27;Complete&#x27;" in again.content.decode()
    rejected = client.post(f"{PEN}{b.id}/resolve/", {"choice": "reject"}, follow=True)
    assert _messages(rejected) == [f"Object {b.id}: decided 'reject'; it stopped here."]
    assert workflows.get_object(b.id).extra_data["approved"] is False


def test_a_failed_object_shows_its_error(client, pen):
    failed = pen["failed"]
    _login(client, "boss")
    html = client.get(f"{PEN}{failed.id}/").content.decode()
    assert "ZeroDivisionError" in html and 'id="pen-traceback"' in html and "Traceback (most recent" in html
    assert 'data-operation="retry"' in html and 'data-choice="accept"' not in html
    assert 'aria-current="step" data-position="1"' in html  # the task that raised


def _count(client, url: str) -> int:
    client.get(url)  # warm the per-process caches (compiled versions, the action registry) first
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def test_page_queries_do_not_grow_with_the_stopped_tasks(client):
    workflows.register("orchestra.workflows.examples.myworkflow")
    first = workflows.start("myworkflow", data=[5, 10]).current[0].id
    worker_create(username="boss", password="pw", project_admin=True)
    _login(client, "boss")
    pages = (PEN, f"{PEN}{first}/", f"{PEN}?status=Halted&action=approval&message=20&from=2000-01-01&page=1")
    two = [_count(client, url) for url in pages]
    workflows.start("myworkflow", data=list(range(1, 19)))  # all over 20 once 20 is added: 20 halted
    assert len(_rows(client.get(PEN).content.decode())) == 20
    twenty = [_count(client, url) for url in pages]
    assert two == twenty == [LIST_QUERIES, OBJECT_QUERIES, LIST_QUERIES]
