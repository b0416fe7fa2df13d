"""The Holding Pen in Chromium: Invenio's example workflow halts both objects; a project admin approves
one from its page (it runs on to completion) and rejects the other from the list in bulk."""

from __future__ import annotations

import re

import pytest

from orchestra import workflows
from orchestra.models import Project
from orchestra.services.objects import object_apply
from orchestra.services.workers import worker_create

pytestmark = pytest.mark.django_db(transaction=True)

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"


@pytest.fixture
def halted(site):
    """Invenio's example: data [5, 10] plus 20 each, both over 20, so both halt for approval."""
    workflows.register("orchestra.workflows.examples.myworkflow")
    run = workflows.start("myworkflow", data=[5, 10])
    assert [(o.status, o.data) for o in run.current] == [("HALTED", 25), ("HALTED", 30)]
    worker_create(username="boss", password="pw", first_name="Bo", project_admin=True)
    return run.current


def _accept_next_confirm(page, seen: list[str]) -> None:
    page.once("dialog", lambda dialog: (seen.append(dialog.message), dialog.accept()))


def test_approving_a_halted_object_runs_it_to_completion(site, halted):
    first, second = halted
    page = site.login("boss", "pw")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Holding Pen").click()
    page.wait_for_url("**/orchestra/app/holdingpen/")
    rows = page.locator("#pen tbody tr[data-object]")
    assert rows.count() == 2
    for obj in halted:
        row = page.locator(f"tr[data-object='{obj.id}']")
        assert row.locator("[data-status]").inner_text() == "Halted"
        assert "Data higher than 20." in row.inner_text()
    site.shot(page, "list")

    page.locator(f"tr[data-object='{first.id}'] td a").first.click()
    page.wait_for_url(f"**/holdingpen/{first.id}/")
    assert page.locator("#pen-message").inner_text() == "Data higher than 20."
    assert page.locator("#pen-data").inner_text().strip() == "25"
    history = page.locator("#pen-history tbody tr")
    assert history.count() == 2
    assert "data_param=20" in page.locator("#pen-history tr[data-task=add_data]").inner_text()
    assert page.locator("#pen-outline li.current").inner_text().count("halt_if_higher_than_20") == 1
    site.shot(page, "detail")

    dialogs: list[str] = []
    _accept_next_confirm(page, dialogs)
    page.get_by_role("button", name="Approve").click()
    page.locator("#object-status").get_by_text("Complete", exact=True).wait_for()
    assert dialogs == [f"Approve object {first.id}?"]
    assert page.locator(".messages li").all_inner_texts() == [f"Object {first.id}: decided 'accept'; it runs on."]
    assert page.get_by_role("button", name="Approve").count() == 0  # nothing left to decide
    site.shot(page, "after-approve")

    # The other one, from the list in bulk: ticked and rejected; it stops here, its task complete.
    page.get_by_role("link", name="Back to the Holding Pen").click()
    page.wait_for_url("**/orchestra/app/holdingpen/")
    assert page.locator("#pen tbody tr[data-object]").count() == 1
    page.get_by_label("Tick every row on this page").check()
    assert page.get_by_label(f"Tick object {second.id}").is_checked()
    posts: list[dict[str, str]] = []
    page.on("request", lambda r: posts.append(r.headers) if r.method == "POST" and "/bulk/" in r.url else None)
    _accept_next_confirm(page, dialogs)
    page.locator("[data-bulk=reject]").click()
    page.locator(".messages").get_by_text("Reject: 1 done.").wait_for()
    assert dialogs[-1] == "Reject the ticked objects? They stop here."
    assert page.locator(".messages li").all_inner_texts() == ["Reject: 1 done."]
    assert [headers.get("hx-request") for headers in posts] == ["true"]  # posted once, by htmx
    assert "Nothing is waiting in the Holding Pen" in page.locator("#pen").inner_text()
    site.shot(page, "after-bulk-reject")
    assert page.js_errors == []

    done = workflows.get_object(first.id)
    assert (done.status, done.data, done.task_status) == ("COMPLETED", 25, "Complete")
    assert Project.objects.get(pk=done.project_id).status == "Completed"
    rejected = workflows.get_object(second.id)
    assert (rejected.status, rejected.data, rejected.task_status) == ("COMPLETED", 30, "Complete")
    assert rejected.extra_data["approved"] is False


def test_the_object_page_on_a_phone_and_refusals_in_place(site, halted):
    first, _ = halted
    page = site.login("boss", "pw", width=390, height=844)
    page.goto(site.url(f"/orchestra/app/holdingpen/{first.id}/"))
    page.locator("#pen-edit summary").click()
    page.get_by_label("New data (JSON)").fill('{"oops": ')
    dialogs: list[str] = []
    _accept_next_confirm(page, dialogs)
    page.get_by_role("button", name="Save data").click()
    error = page.locator("#edit-data-error")
    error.get_by_text(re.compile(r"not valid JSON: Expecting value \(line 1, column 10\)")).wait_for()
    assert workflows.get_object(first.id).data == 25  # nothing saved
    assert "data_param=20" in page.locator("#pen-history tr[data-task=add_data]").inner_text()  # under the name
    site.shot(page, "detail-phone")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    # Decided elsewhere while this page was open: the button's refusal shows beside it.
    object_apply(task_id=first.id, operation="resolve", choice="accept", actor="someone-else")
    _accept_next_confirm(page, dialogs)
    page.get_by_role("button", name="Reject").click()
    refusal = page.locator("#pen-choices [data-choice=reject] + .action-error")
    refusal.get_by_text(f"Task {first.id} is 'Complete'; the Holding Pen acts on").wait_for()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    page.goto(site.url("/orchestra/app/holdingpen/"))
    site.shot(page, "list-phone")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert page.js_errors == []
