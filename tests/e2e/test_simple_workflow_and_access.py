"""The simple workflow: a project created through the signed client API, its image rated in the browser.
And what the pages refuse: another worker's task by URL (open, save, submit) and a post without CSRF."""

from __future__ import annotations

import re

import pytest

from orchestra.client import OrchestraClient
from orchestra.models import Project, Task, TaskAssignment
from orchestra.services.access import apikey_create
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_pull
from orchestra.services.workers import worker_create
from orchestra.services.workflows import workflow_load, workflow_load_sample_data

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def simple(site):
    workflow_load(source="simple_workflow")
    workflow_load_sample_data(workflow_slug="simple_workflow", version_slug="v1")


def test_project_from_the_api_is_rated_in_the_browser(site, simple):
    issued = apikey_create(name="e2e")
    client = OrchestraClient(site.base, issued.key.key_id, issued.secret)
    project_id = client.create_project(
        "simple_workflow", "v1", "Rate an image", priority=3, project_data={"url": site.url("/orchestra/demo/gallery/")}
    )
    assert client.project_information(project_id)["tasks"]["crawl"]["status"] == "Complete"

    page = site.login("demo", "demo", width=390, height=844)  # a phone-width screen
    page.get_by_role("button", name="New delivery task").click()
    page.wait_for_url(re.compile(r".*/tasks/\d+/$"))
    image = page.locator("[data-prerequisite=crawl] img")
    # The crawled image shows (once it has loaded: the page may be there before its image).
    assert image.evaluate(
        """img => img.complete ? img.naturalWidth > 0 : new Promise(done => {
            img.addEventListener("load", () => done(img.naturalWidth > 0));
            img.addEventListener("error", () => done(false));
        })"""
    )
    site.shot(page, "rate-phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll
    page.get_by_label("4", exact=True).check()
    page.get_by_label("Why?").fill("Nice colours.")
    page.get_by_role("button", name="Submit", exact=True).click()
    page.wait_for_url("**/orchestra/app/")

    info = client.project_information(project_id)
    assert info["project"]["status"] == "Completed"
    assert info["tasks"]["rate"]["latest_data"] == {"rating": 4, "comment": "Nice colours."}
    assert page.js_errors == []


def test_rating_is_keyboard_usable(site, simple):
    project = project_create(
        workflow_slug="simple_workflow", version_slug="v1", project_data={"url": site.url("/orchestra/demo/gallery/")}
    )
    page = site.login("demo", "demo")
    page.keyboard.press("Tab")  # skip link first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    button = page.get_by_role("button", name="New delivery task")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/tasks/\d+/$"))
    page.get_by_label("5", exact=True).focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Submit", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/orchestra/app/")
    assert Task.objects.get(project=project, step__slug="rate").data["rating"] == 5


def test_another_workers_task_is_refused_and_csrf_is_required(site, simple):
    project_create(
        workflow_slug="simple_workflow", version_slug="v1", project_data={"url": site.url("/orchestra/demo/gallery/")}
    )
    owner = task_pull(worker="demo", role="entry_level")
    worker_create(username="mallory", password="mallory")
    intruder = site.login("mallory", "mallory")
    task_url = site.url(f"/orchestra/app/tasks/{owner.task_id}/")

    response = intruder.goto(task_url)
    assert response.status == 404
    assert f"Task {owner.task_id} is not one of your tasks." in intruder.locator(".alert").inner_text()
    site.shot(intruder, "refused")

    # A save and a submit with a valid CSRF token of the intruder's own session: refused, nothing changes.
    intruder.goto(site.url("/orchestra/app/timecards/"))
    token = intruder.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    for action in ("save", "submit"):
        answer = intruder.request.post(
            task_url,
            form={"csrfmiddlewaretoken": token, "action": action, "rating": "1"},
            headers={"Referer": task_url},
        )
        assert answer.status == 404
    seat = TaskAssignment.objects.get(pk=owner.pk)
    assert seat.in_progress_task_data == {} and seat.status == "Processing"

    # The owner's own form posted without its CSRF token: refused by Django's CSRF protection.
    owner_page = site.login("demo", "demo")
    owner_page.goto(task_url)
    owner_page.evaluate("document.querySelector('#task-form input[name=csrfmiddlewaretoken]').remove()")
    owner_page.get_by_label("3", exact=True).check()
    with owner_page.expect_navigation():
        owner_page.get_by_role("button", name="Submit", exact=True).click()
    assert "CSRF" in owner_page.content()
    assert Task.objects.get(pk=owner.task_id).status == "Processing"


def test_admin_actions_confirm_first_and_show_errors_in_place(site, simple):
    project = project_create(
        workflow_slug="simple_workflow",
        version_slug="v1",
        description="Admin in the browser",
        project_data={"url": site.url("/orchestra/demo/gallery/")},
    )
    admin = site.login("demo", "demo")  # the simple workflow's demo user is a project admin
    admin.goto(site.url("/orchestra/app/projects/"))
    admin.get_by_label("Text").fill("Admin in")
    admin.get_by_role("button", name="Filter").click()
    admin.locator(f"tr[data-project='{project.pk}'] a").first.click()
    admin.wait_for_url(f"**/projects/{project.pk}/")
    site.shot(admin, "project-page")

    rate = admin.locator("[data-step=rate]")
    rate.get_by_label("Worker username for assign").fill("nobody")
    dialogs: list[str] = []
    admin.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    rate.locator("[data-action=assign]").click()
    error = rate.locator(".action-error")
    error.get_by_text("No worker with username 'nobody'").wait_for()
    assert dialogs == ["Assign this task to the worker named?"]

    admin.once("dialog", lambda dialog: dialog.dismiss())  # a dismissed confirm does nothing
    admin.locator("[data-action=pause]").click()
    assert Project.objects.get(pk=project.pk).status == "Active"

    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator("[data-action=pause]").click()
    admin.locator("#project-status").get_by_text("Paused").wait_for()
    assert "is now Paused" in admin.locator(".messages").inner_text()
    assert admin.locator("[data-action=resume]").count() == 1
    assert admin.js_errors == []
