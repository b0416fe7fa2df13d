"""The timer bar on every page (htmx) and the timecards page, in the browser."""

from __future__ import annotations

import pytest

from orchestra.models import TimeEntry
from orchestra.services.workers import worker_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_timer_and_timecards(site):
    worker_create(username="tess", password="tess", first_name="Tess")
    page = site.login("tess", "tess")
    bar = page.locator("#timer")
    bar.get_by_label("What are you working on?").fill("Reading the brief")
    bar.get_by_role("button", name="Start timer").click()
    bar.get_by_role("button", name="Stop timer").wait_for()
    page.wait_for_function("document.querySelector('#timer-elapsed').textContent.startsWith('0:00:')")

    page.goto(site.url("/orchestra/app/timecards/"))  # another page: the timer is still running there
    bar = page.locator("#timer")
    assert bar.get_by_label("What are you working on?").input_value() == "Reading the brief"
    with page.expect_response("**/timer/stop/"):
        bar.get_by_role("button", name="Stop timer").click()
    bar.get_by_role("button", name="Start timer").wait_for()
    entry = TimeEntry.objects.get()
    assert entry.description == "Reading the brief"

    page.reload()
    assert page.locator(f"tr[data-entry='{entry.pk}']").count() == 1
    page.get_by_label("Time worked").fill("1:15")
    page.get_by_label("Description").fill("Editing")
    page.get_by_role("button", name="Add entry").click()
    added = page.locator("tr[data-entry]", has_text="Editing")
    added.wait_for()
    assert "1:15:00" in added.inner_text()
    site.shot(page, "timecards")

    page.once("dialog", lambda dialog: dialog.accept())
    added.get_by_role("button", name="Delete").click()
    page.locator("tr[data-entry]", has_text="Editing").wait_for(state="detached")
    assert list(TimeEntry.objects.values_list("description", flat=True)) == ["Reading the brief"]
    assert page.js_errors == []
