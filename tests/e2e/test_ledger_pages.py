"""The ledger in Chromium: a completed project's lineage table and chain check (then the warning after an
event row is edited by hand), and a worker turning an email notification off on the account page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection

from orchestra.events.ledger import output_hash
from orchestra.models import Event, Task, Worker
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_assign, task_submit
from orchestra.services.workers import worker_create
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("/tmp/orchestra-shots")
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"ledger-{name}.png"), full_page=True)


@pytest.fixture
def done(site, tmp_path):
    load(tmp_path, [machine("prepare"), human("write", "prepare", review=NO_REVIEW)])
    worker_create(username="ann", password="pw", first_name="Ann", email="ann@example.com")
    worker_create(username="boss", password="pw", first_name="Bo", project_admin=True)
    project = project_create(workflow_slug="wf", version_slug="v1", description="A finished article")
    write = Task.objects.get(project=project, step__slug="write")
    task_assign(task_id=write.pk, worker="ann")
    task_submit(task_id=write.pk, worker="ann", data={"title": "Done"})
    return project


def test_a_completed_projects_lineage_and_ledger(site, done):
    page = site.login("boss", "pw")
    page.goto(site.url(f"/orchestra/app/projects/{done.pk}/"))
    events = Event.objects.filter(project=done).count()
    assert page.locator("#ledger-status").inner_text().strip() == f"✓ Ledger verified: {events} events, chain intact"
    rows = page.locator("#lineage tbody tr")
    assert rows.count() == 2
    prepare, write = page.locator("#lineage tr[data-step=prepare]"), page.locator("#lineage tr[data-step=write]")
    assert "tests.support.functions.noop" in prepare.inner_text()
    assert "ann (worker)" in write.inner_text()
    made = output_hash(Task.objects.get(project=done, step__slug="write").data)
    output = write.locator("[data-output-hash]")
    assert (output.inner_text(), output.get_attribute("title")) == (made[:10], made)
    assert page.locator("#timeline li").count() == events
    assert page.locator("#timeline li").first.locator(".ledger-ref").inner_text().startswith(f"#{events} ")
    _shot(page, "project")

    phone = site.login("boss", "pw", width=390, height=844)
    phone.goto(site.url(f"/orchestra/app/projects/{done.pk}/"))
    phone.locator("#lineage").scroll_into_view_if_needed()
    _shot(phone, "project-phone")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)

    # Someone edits a row behind the application's back: the page says so, and which row.
    submitted = Event.objects.get(project=done, action="task_submitted")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Event._meta.db_table)} SET data = %s WHERE id = %s",
            [json.dumps({"worker": "mallory"}), submitted.pk],
        )
    page.reload()
    warning = page.get_by_role("alert")
    assert "Ledger check failed" in warning.inner_text()
    assert f"Event #{submitted.pk} (seq {submitted.seq}) was edited" in warning.inner_text()
    warning.get_by_role("link", name=f"Show event #{submitted.pk} in the timeline").click()
    page.wait_for_url(f"**#event-{submitted.pk}")
    assert page.locator(f"#event-{submitted.pk}").get_attribute("class") == "broken"
    _shot(page, "project-tampered")
    phone.reload()
    _shot(phone, "project-tampered-phone")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    assert page.js_errors == [] and phone.js_errors == []


def test_turning_an_email_notification_off(site, done):
    page = site.login("ann", "pw", width=390, height=844)
    page.get_by_role("link", name="Ann").click()
    page.wait_for_url("**/orchestra/accounts/")
    assigned = page.get_by_label("a task is assigned to me")
    assert assigned.is_checked()
    assigned.uncheck()
    page.get_by_role("button", name="Save notifications").click()
    page.locator(".messages").get_by_text("Notifications saved: no emails about: a task is assigned to me.").wait_for()
    _shot(page, "account-phone")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    page.reload()
    assert not page.get_by_label("a task is assigned to me").is_checked()
    assert page.get_by_label("my work is returned with feedback").is_checked()
    assert Worker.objects.get(user__username="ann").notifications == {"assigned": False}
    page.set_viewport_size({"width": 1200, "height": 900})
    _shot(page, "account")
    assert page.js_errors == []
