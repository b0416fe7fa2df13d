"""The journalism workflow end to end through the services, as its six sample users would run it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from orchestra import files
from orchestra.models import Event, Project, Task
from orchestra.selectors.projects import project_information
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_pull, task_return, task_submit
from orchestra.services.workflows import workflow_load, workflow_load_sample_data

pytestmark = pytest.mark.django_db(transaction=True)


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 900), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _article(text: str) -> dict[str, object]:
    """What the reporter's form asks for: the article (50 characters or more) and at least one source."""
    return {
        "article": f"{text}: the mayor's race is the most expensive in the city's history.",
        "sources": [{"name": "A"}],
    }


def _photos(folder: str, *names: str) -> list[dict[str, str]]:
    return [{"name": f"{folder}/{n}", "url": files.file_url(f"{folder}/{n}")} for n in names]


@pytest.fixture
def journalism(media, settings):
    settings.STATIC_ROOT = media.parent / "static"
    workflow_load(source="journalism_workflow")
    workflow_load_sample_data(workflow_slug="journalism", version_slug="v1")


def test_journalism_project_runs_end_to_end(journalism):
    project = project_create(
        workflow_slug="journalism",
        version_slug="v1",
        description="Local elections",
        priority=5,
        project_data={"article_title": "Who runs the city?"},
        actor="newsroom-cms",
    )
    info = project_information([project.pk])[project.pk]
    docs = info["tasks"]["document_creation"]
    assert docs["status"] == "Complete"
    raw_folder = docs["latest_data"]["raw_photos_folder"]

    plan = task_pull(worker="journalism-editor", role="entry_level")
    task_submit(
        task_id=plan.task_id,
        worker="journalism-editor",
        data={"story": "Mayor race", "angle": "money", "section": "politics"},
    )

    draft = task_pull(worker="journalism-reporter-1", role="entry_level")
    task_submit(task_id=draft.task_id, worker="journalism-reporter-1", data=_article("First draft"))
    review = task_pull(worker="journalism-reporter-2", role="reviewer")
    assert review.task_id == draft.task_id and review.level == 1
    task_return(
        task_id=draft.task_id,
        worker="journalism-reporter-2",
        data=_article("First draft"),
        feedback="Add quotes",
    )
    task_submit(task_id=draft.task_id, worker="journalism-reporter-1", data=_article("Draft with quotes"))
    task_submit(task_id=draft.task_id, worker="journalism-reporter-2", data=_article("Final"), command="accept")

    shoot = task_pull(worker="journalism-photographer-1", role="entry_level")
    files.save_file(f"{raw_folder}/city-hall.png", _png((200, 30, 30)))
    task_submit(
        task_id=shoot.task_id, worker="journalism-photographer-1", data={"photos": _photos(raw_folder, "city-hall.png")}
    )
    check = task_pull(worker="journalism-photographer-2", role="reviewer")
    task_return(task_id=check.task_id, worker="journalism-photographer-2", data={}, feedback="One more angle")
    files.save_file(f"{raw_folder}/mayor.png", _png((30, 30, 200)))
    task_submit(
        task_id=shoot.task_id,
        worker="journalism-photographer-1",
        data={"photos": _photos(raw_folder, "city-hall.png", "mayor.png")},
    )
    task_submit(
        task_id=shoot.task_id,
        worker="journalism-photographer-2",
        data={"photos": _photos(raw_folder, "city-hall.png", "mayor.png")},
        command="accept",
    )

    info = project_information([project.pk])[project.pk]
    adjusted = info["tasks"]["photo_adjustment"]
    assert adjusted["status"] == "Complete"
    photos = adjusted["latest_data"]["photos"]
    assert [p["original"].rsplit("/", 1)[-1] for p in photos] == ["city-hall.png", "mayor.png"]
    for photo in photos:
        image = Image.open(io.BytesIO(files.read_file(photo["name"])))
        assert image.mode == "L" and max(image.size) == 1200

    copy = task_pull(worker="journalism-copy-editor", role="entry_level")
    copy_task = Task.objects.get(pk=copy.task_id)
    assert copy_task.step.slug == "copy_editing"
    task_submit(
        task_id=copy.task_id,
        worker="journalism-copy-editor",
        data={
            "headline": "Who runs the city?",
            "captions": [{"name": p["name"], "caption": "caption"} for p in photos],
            "ready_to_publish": True,
        },
    )

    project.refresh_from_db()
    assert project.status == "Completed"
    info = project_information([project.pk])[project.pk]
    assert {slug: t["status"] for slug, t in info["tasks"].items()} == {
        slug: "Complete"
        for slug in (
            "document_creation",
            "article_planning",
            "reporting",
            "photography",
            "photo_adjustment",
            "copy_editing",
        )
    }
    reporting = info["tasks"]["reporting"]["assignments"]
    assert [(a["level"], a["worker"]["username"]) for a in reporting] == [
        (0, "journalism-reporter-1"),
        (1, "journalism-reporter-2"),
    ]
    iterations = sorted(
        (it for a in reporting for it in a["iterations"]), key=lambda it: (it["start_datetime"], it["id"])
    )
    assert [(it["worker"], it["status"]) for it in iterations] == [
        ("journalism-reporter-1", "Requested Review"),
        ("journalism-reporter-2", "Provided Review"),
        ("journalism-reporter-1", "Requested Review"),
        ("journalism-reporter-2", "Requested Review"),
    ]
    assert iterations[1]["feedback"] == "Add quotes"

    story = [
        (e.actor, e.action, e.task.step.slug if e.task else None, e.from_status, e.to_status)
        for e in Event.objects.filter(project=project).select_related("task__step").order_by("id")
    ]
    reporting_story = [row for row in story if row[2] == "reporting"]
    assert reporting_story == [
        ("journalism-editor", "task_created", "reporting", "", "Awaiting Processing"),
        ("journalism-reporter-1", "task_assigned", "reporting", "Awaiting Processing", "Processing"),
        ("journalism-reporter-1", "task_submitted", "reporting", "Processing", "Pending Review"),
        ("journalism-reporter-2", "task_assigned", "reporting", "Pending Review", "Reviewing"),
        ("journalism-reporter-2", "task_returned", "reporting", "Reviewing", "Post-review Processing"),
        ("journalism-reporter-1", "task_resubmitted", "reporting", "Post-review Processing", "Reviewing"),
        ("journalism-reporter-2", "task_accepted", "reporting", "Reviewing", "Complete"),
    ]
    assert story[0][:2] == ("newsroom-cms", "project_created")
    assert story[-1][1:] == ("project_completed", None, "Active", "Completed")
    completions = [row[2] for row in story if row[4] == "Complete"]
    assert completions.index("document_creation") < completions.index("article_planning")
    assert completions.index("photo_adjustment") < completions.index("copy_editing")
    assert completions[-1] == "copy_editing"
    assert len(completions) == 6
    assert Project.objects.get(pk=project.pk).ended_at is not None
