"""B12's journalism workflow done entirely in the browser by its six sample users: the editor plans, a
reporter writes and is returned once with feedback, a photographer uploads photos, the reviewers accept,
the machine greyscales the photos, and the copy editor captions them. The project page then shows every
step Complete."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from orchestra.services.projects import project_create
from orchestra.services.workflows import workflow_load, workflow_load_sample_data

pytestmark = pytest.mark.django_db(transaction=True)

ARTICLE = (
    "The mayor's race has become the most expensive in the city's history, with both campaigns spending"
    " heavily on television."
)


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 500), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _take(page, button: str) -> int:
    """Press a "new task" button on the dashboard; returns the task id of the page it leads to."""
    page.get_by_role("button", name=button).click()
    page.wait_for_url(re.compile(r".*/orchestra/app/tasks/\d+/$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[-1])


def _submit(page, button: str = "Submit") -> None:
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_url("**/orchestra/app/")


@pytest.fixture
def journalism(site):
    workflow_load(source="journalism_workflow")
    workflow_load_sample_data(workflow_slug="journalism", version_slug="v1")
    project = project_create(
        workflow_slug="journalism",
        version_slug="v1",
        description="Who runs the city?",
        priority=5,
        project_data={"article_title": "Who runs the city?"},
    )
    return project


def test_six_users_publish_an_article(site, journalism, tmp_path):
    # The editor plans the story; a submission without the required section is refused in place.
    editor = site.login("journalism-editor", "editor")
    site.shot(editor, "dashboard")
    plan_id = _take(editor, "New delivery task")
    editor.get_by_label("What is the story?").fill("Campaign money in the mayor's race.")
    editor.get_by_role("button", name="Submit", exact=True).click()
    assert editor.locator("[data-field=section] .error").inner_text() == "This field is required."
    assert "nothing was saved" in editor.locator("#form-problem").inner_text()
    assert editor.get_by_label("What is the story?").input_value() == "Campaign money in the mayor's race."
    editor.get_by_label("Politics").check()
    editor.get_by_label("Angle").fill("follow the money")
    site.shot(editor, "task-form")
    _submit(editor)
    assert "Submitted" in editor.locator(".messages").inner_text()

    # Reporter 1 writes the article with one source (a repeating list item added in the page).
    reporter = site.login("journalism-reporter-1", "reporter")
    report_id = _take(reporter, "New delivery task")
    assert "Campaign money" in reporter.locator("[data-prerequisite=article_planning]").inner_text()
    reporter.get_by_label("Article").fill("Draft. " + ARTICLE)
    reporter.get_by_role("button", name="Add an item").click()
    reporter.locator("[name='sources-0-name']").fill("Campaign finance office")
    reporter.get_by_role("button", name="Save draft").click()
    assert "Draft saved" in reporter.locator(".messages").inner_text()
    assert reporter.locator("[name='sources-0-name']").input_value() == "Campaign finance office"
    _submit(reporter)

    # Photographer 1 uploads two photos.
    photographer = site.login("journalism-photographer-1", "photographer")
    photo_id = _take(photographer, "New delivery task")
    (tmp_path / "city-hall.png").write_bytes(_png((200, 40, 40)))
    (tmp_path / "mayor.png").write_bytes(_png((40, 40, 200)))
    photographer.get_by_label("Photos").set_input_files([tmp_path / "city-hall.png", tmp_path / "mayor.png"])
    photographer.get_by_role("button", name="Save draft").click()
    assert photographer.locator(".files li").count() == 2
    _submit(photographer)

    # Reporter 2 reviews and returns the article: feedback is required.
    reviewer = site.login("journalism-reporter-2", "reporter")
    assert _take(reviewer, "New review task") == report_id
    assert "Draft." in reviewer.get_by_label("Article").input_value()
    reviewer.get_by_role("button", name="Return with feedback").click()
    assert "needs feedback" in reviewer.locator("[data-field=feedback], .field.has-error").first.inner_text()
    reviewer.get_by_label("Feedback").fill("Add a quote from each campaign.")
    _submit(reviewer, "Return with feedback")

    # Reporter 1 finds it under Returned, sees the feedback, and resubmits.
    reporter.goto(site.url("/orchestra/app/?state=returned"))
    reporter.locator(f"tr[data-task='{report_id}'] a").click()
    assert "Add a quote from each campaign." in reporter.locator(".feedback").first.inner_text()
    site.shot(reporter, "returned-task")
    reporter.get_by_label("Article").fill(ARTICLE + ' "We spent less," said one campaign.')
    _submit(reporter)

    # Reporter 2 accepts the resubmission; it is back in their hands.
    reviewer.goto(site.url(f"/orchestra/app/tasks/{report_id}/"))
    assert "said one campaign" in reviewer.get_by_label("Article").input_value()
    history = reviewer.locator(".history").inner_text()
    assert "returned the work" in history and "Add a quote" in history
    _submit(reviewer, "Accept")

    # Photographer 2 reviews the photos and accepts; the machine step greyscales them.
    photo_reviewer = site.login("journalism-photographer-2", "photographer")
    assert _take(photo_reviewer, "New review task") == photo_id
    assert photo_reviewer.locator(".files img").count() == 2
    _submit(photo_reviewer, "Accept")

    # The copy editor sees the greyscaled photos, captions each, and writes the headline.
    copy_editor = site.login("journalism-copy-editor", "copy-editor")
    copy_id = _take(copy_editor, "New delivery task")
    images = copy_editor.locator("[data-list=captions] .item img")
    assert images.count() == 2
    for i in range(2):
        src = images.nth(i).get_attribute("src")
        assert "/adjusted_photos/" in src
        response = copy_editor.request.get(src)
        assert response.ok
        assert Image.open(io.BytesIO(response.body())).mode == "L"  # what the browser shows is greyscale
    copy_editor.get_by_label("Headline").fill("Who runs the city? Follow the money")
    copy_editor.locator("[name='captions-0-caption']").fill("City hall at dusk.")
    copy_editor.locator("[name='captions-1-caption']").fill("The mayor's office.")
    copy_editor.get_by_label("Ready to publish").check()
    site.shot(copy_editor, "copy-editing")
    _submit(copy_editor)

    # The project page (the editor is a project admin) shows every step Complete.
    editor.goto(site.url(f"/orchestra/app/projects/{journalism.pk}/"))
    assert editor.locator("#project-status").inner_text() == "Completed"
    nodes = editor.locator("#dag .dag-node")
    assert nodes.count() == 6
    assert {nodes.nth(i).get_attribute("data-status") for i in range(6)} == {"Complete"}
    site.shot(editor, "project-page")
    for task_id in (plan_id, report_id, photo_id, copy_id):
        editor.goto(site.url(f"/orchestra/app/tasks/{task_id}/"))
        assert editor.locator("#task-status").inner_text() == "Complete"
    for page in (editor, reporter, photographer, reviewer, photo_reviewer, copy_editor):
        assert page.js_errors == []
