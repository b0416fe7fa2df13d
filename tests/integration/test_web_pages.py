"""The worker and admin pages through Django's test client: forms and their inline errors, accounts and
tokens, time tracking, admin actions, permissions, and query counts that do not grow with the data."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orchestra.engine.lifecycle import AssignmentStatus, TaskStatus
from orchestra.models import Iteration, PersonalToken, Project, Task, TaskAssignment, TimeEntry, Worker
from orchestra.services.projects import project_create, projects_create
from orchestra.services.tasks import task_assign, task_pull, task_submit
from orchestra.services.workers import worker_create
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)

FORM = [
    {"name": "title", "type": "text", "required": True, "max": 40},
    {"name": "score", "type": "integer", "min": 1, "max": 10},
    {"name": "site", "type": "url"},
    {"name": "contact", "type": "email"},
    {"name": "kind", "type": "choice", "choices": ["a", "b"]},
    {"name": "tags", "type": "multichoice", "choices": ["x", "y", "z"]},
    {"name": "ok", "type": "boolean"},
    {"name": "when", "type": "date"},
    {"name": "items", "type": "list", "fields": [{"name": "label", "type": "text", "required": True}]},
]


@pytest.fixture
def wf(tmp_path):
    steps = [
        machine("prepare"),
        human(
            "write",
            "prepare",
            review={"policy": "sampled_review", "rate": 1, "max_reviews": 1},
            user_interface={"form": FORM},
        ),
        human("free", "prepare", review=NO_REVIEW),
    ]
    load(tmp_path, steps)
    worker_create(username="ann", password="pw", first_name="Ann")
    worker_create(username="rev", password="pw")
    worker_create(username="boss", password="pw", project_admin=True)
    return "wf"


def _login(client, username):
    assert client.login(username=username, password="pw")
    return client


def _task(project, slug):
    return Task.objects.get(project=project, step__slug=slug)


def test_form_errors_are_shown_in_place_and_nothing_is_saved(client, wf):
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = _task(project, "write")
    task_assign(task_id=task.pk, worker="ann")
    _login(client, "ann")
    url = f"/orchestra/app/tasks/{task.pk}/"
    bad = {
        "action": "submit",
        "title": "",
        "score": "11",
        "site": "not a url",
        "contact": "nobody",
        "kind": "c",
        "tags": ["x", "q"],
        "when": "2026-13-01",
        "items-count": "1",
        "items-0-label": "",
    }
    response = client.post(url, bad)
    assert response.status_code == 400
    html = response.content.decode()
    errors = {
        chunk.split('"', 1)[0]: found.group(1)
        for chunk in html.split('data-field="')[1:]
        if (found := re.search(r'<p class="error"[^>]*>([^<]+)</p>', chunk))
    }
    assert set(errors) == {"title", "score", "site", "contact", "kind", "tags", "when", "items-0-label"}, errors
    assert "nothing was saved" in html
    assert 'value="not a url"' in html  # what was typed stays in the form
    assert TaskAssignment.objects.get(task=task).in_progress_task_data == {}

    good = {
        **bad,
        "title": "Fine",
        "score": "7",
        "site": "https://example.com",
        "contact": "a@example.com",
        "kind": "a",
        "tags": ["x", "z"],
        "ok": "true",
        "when": "2026-11-30",
        "items-0-label": "one",
    }
    response = client.post(url, {**good, "action": "save"})
    assert response.status_code == 302
    saved = TaskAssignment.objects.get(task=task).in_progress_task_data
    assert saved == {
        "title": "Fine",
        "score": 7,
        "site": "https://example.com",
        "contact": "a@example.com",
        "kind": "a",
        "tags": ["x", "z"],
        "ok": True,
        "when": "2026-11-30",
        "items": [{"label": "one"}],
    }
    response = client.post(url, {**good, "action": "submit"})
    assert response.status_code == 302 and response.url == "/orchestra/app/"
    assert _task(project, "write").status == TaskStatus.PENDING_REVIEW


def test_the_api_enforces_the_same_form(client, wf):
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = _task(project, "write")
    task_assign(task_id=task.pk, worker="ann")
    _login(client, "ann")
    response = client.post(
        "/orchestra/api/interface/submit_task_assignment",
        {"task_id": task.pk, "task_data": {"score": "eleven"}},
        content_type="application/json",
        headers={"X-CSRFToken": "x"},
        enforce_csrf_checks=False,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_form"
    assert set(body["errors"]) == {"title", "score"}


def test_review_accept_and_return_need_feedback(client, wf):
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = _task(project, "write")
    task_assign(task_id=task.pk, worker="ann")
    task_submit(task_id=task.pk, worker="ann", data={"title": "Draft"})
    task_pull(worker="rev", role="reviewer")
    _login(client, "rev")
    url = f"/orchestra/app/tasks/{task.pk}/"
    page = client.get(url).content.decode()
    assert 'value="Draft"' in page and "Return with feedback" in page and "Accept" in page
    response = client.post(url, {"action": "return", "title": "Draft", "feedback": "  "})
    assert response.status_code == 400
    assert "returning work needs feedback" in response.content.decode()
    response = client.post(url, {"action": "return", "title": "Draft", "feedback": "Longer title"})
    assert response.status_code == 302
    assert _task(project, "write").status == TaskStatus.POST_REVIEW_PROCESSING
    # The reviewer's page is read-only now; a post is refused with 409 and changes nothing.
    page = client.get(url).content.decode()
    assert 'id="read-only"' in page
    assert client.post(url, {"action": "accept", "title": "x"}).status_code == 409


def test_a_step_without_a_form_edits_json(client, wf):
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = _task(project, "free")
    task_assign(task_id=task.pk, worker="ann")
    _login(client, "ann")
    url = f"/orchestra/app/tasks/{task.pk}/"
    response = client.post(url, {"action": "submit", "task_data": "[1, 2"})
    assert response.status_code == 400 and "Enter a JSON object" in response.content.decode()
    assert client.post(url, {"action": "submit", "task_data": '{"answer": 42}'}).status_code == 302
    assert _task(project, "free").data == {"answer": 42}


def test_a_step_can_render_its_own_template(client, tmp_path):
    step = human(
        "custom",
        review=NO_REVIEW,
        user_interface={"template": "custom.html", "form": [{"name": "answer", "type": "text", "required": True}]},
    )
    load(tmp_path, [step], slug="own")
    (tmp_path / "own" / "custom.html").write_text(
        '<p id="mine">Custom for {{ page.step.name }}</p><input name="answer" value="{{ page.data.answer }}">'
    )
    worker_create(username="ann", password="pw")
    project = project_create(workflow_slug="own", version_slug="v1")
    task = _task(project, "custom")
    task_assign(task_id=task.pk, worker="ann")
    _login(client, "ann")
    url = f"/orchestra/app/tasks/{task.pk}/"
    assert '<p id="mine">Custom for Custom</p>' in client.get(url).content.decode()
    assert client.post(url, {"action": "submit", "answer": ""}).status_code == 400
    assert client.post(url, {"action": "submit", "answer": "yes"}).status_code == 302
    assert _task(project, "custom").data == {"answer": "yes"}


def test_dashboard_buckets_and_new_task_buttons(client, wf):
    _login(client, "ann")
    page = client.get("/orchestra/app/").content.decode()
    assert "New delivery task" in page  # 'free' needs no certification, so anyone may pull it
    response = client.post("/orchestra/app/new/entry_level/", follow=True)
    assert "no task is waiting for an entry-level worker" in response.content.decode()
    project_create(workflow_slug="wf", version_slug="v1", description="Story one")
    response = client.post("/orchestra/app/new/entry_level/")
    task_id = int(response.url.rstrip("/").rsplit("/", 1)[-1])
    assert TaskAssignment.objects.get(task_id=task_id).worker.username == "ann"
    page = client.get("/orchestra/app/?state=in_progress").content.decode()
    assert f'data-task="{task_id}"' in page and "Story one" in page
    assert client.get("/orchestra/app/?state=complete").content.decode().count("data-task=") == 0


def test_signing_in_out_and_passwords(client, wf):
    assert client.get("/orchestra/app/").url.startswith("/orchestra/accounts/login/")
    response = client.post("/orchestra/accounts/login/", {"username": "ann", "password": "wrong"})
    assert response.status_code == 200 and "Please enter a correct username and password" in response.content.decode()
    response = client.post("/orchestra/accounts/login/", {"username": "ann", "password": "pw"})
    assert response.url == "/orchestra/app/"
    response = client.post(
        "/orchestra/accounts/password/change/",
        {"old_password": "pw", "new_password1": "a-Better-one-42", "new_password2": "a-Better-one-42"},
    )
    assert response.status_code == 302
    client.post("/orchestra/accounts/logout/")
    assert client.get("/orchestra/app/").status_code == 302
    assert client.login(username="ann", password="a-Better-one-42")
    client.logout()

    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="ann").update(email="ann@example.com")
    client.post("/orchestra/accounts/password/reset/", {"email": "ann@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/orchestra/accounts/password/reset/\S+/", mail.outbox[0].body).group(0)
    form_url = client.get(link.split("testserver", 1)[1]).url
    response = client.post(form_url, {"new_password1": "Reset-pass-99", "new_password2": "Reset-pass-99"})
    assert response.status_code == 302
    assert client.login(username="ann", password="Reset-pass-99")


def test_registration_is_off_unless_allowed(client, settings, wf):
    assert client.get("/orchestra/accounts/register/").status_code == 404
    settings.ORCHESTRA_ALLOW_REGISTRATION = True
    data = {
        "username": "newbie",
        "email": "n@example.com",
        "password1": "Sturdy-pass-77",
        "password2": "Sturdy-pass-77",
    }
    response = client.post("/orchestra/accounts/register/", data)
    assert response.status_code == 302
    assert response.url == "/orchestra/app/"  # signed in, as a worker with no certifications
    assert "Your tasks" in client.get("/orchestra/app/").content.decode()
    assert Worker.objects.get(user__username="newbie").certifications.count() == 0


def test_personal_tokens_from_the_account_page(client, wf):
    _login(client, "ann")
    client.post("/orchestra/accounts/tokens/", {"name": "laptop"})
    page = client.get("/orchestra/accounts/").content.decode()
    raw = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    assert "laptop" in page
    assert '<code id="new-token">' not in client.get("/orchestra/accounts/").content.decode()  # shown once
    api = client.__class__()
    ok = api.get("/orchestra/api/interface/timer", headers={"Authorization": f"Token {raw}"})
    assert ok.status_code == 200
    token = PersonalToken.objects.get(name="laptop")
    client.post(f"/orchestra/accounts/tokens/{token.pk}/revoke/")
    assert api.get("/orchestra/api/interface/timer", headers={"Authorization": f"Token {raw}"}).status_code == 401


def test_timer_and_timecards(client, wf):
    project = project_create(workflow_slug="wf", version_slug="v1")
    seat = task_assign(task_id=_task(project, "free").pk, worker="ann")
    _login(client, "ann")
    bar = client.get("/orchestra/app/timer/", headers={"HX-Request": "true"}).content.decode()
    assert "Start timer" in bar and f'value="{seat.pk}"' in bar
    bar = client.post(
        "/orchestra/app/timer/start/", {"description": "reading", "assignment": seat.pk}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "Stop timer" in bar and "data-started" in bar
    again = client.post("/orchestra/app/timer/start/", {}, headers={"HX-Request": "true"}).content.decode()
    assert 'role="alert"' in again  # already running: said in place
    client.post("/orchestra/app/timer/stop/", headers={"HX-Request": "true"})
    entry = TimeEntry.objects.get()
    assert entry.description == "reading" and entry.assignment_id == seat.pk

    today = timezone.localdate()
    response = client.post("/orchestra/app/timecards/", {"date": today.isoformat(), "time_worked": "soon"})
    assert response.status_code == 400 and "hours:minutes" in response.content.decode()
    response = client.post(
        "/orchestra/app/timecards/", {"date": today.isoformat(), "time_worked": "1:30", "description": "edits"}
    )
    assert response.status_code == 302
    added = TimeEntry.objects.get(description="edits")
    assert added.time_worked == dt.timedelta(hours=1, minutes=30)
    page = client.get(response.url).content.decode()
    assert f'data-entry="{added.pk}"' in page and "edits" in page
    client.post(
        f"/orchestra/app/timecards/{added.pk}/", {"date": today.isoformat(), "time_worked": "2", "description": "more"}
    )
    added.refresh_from_db()
    assert added.time_worked == dt.timedelta(hours=2) and added.description == "more"
    worker_create(username="eve", password="pw")
    other = client.__class__()
    _login(other, "eve")
    other.post(f"/orchestra/app/timecards/{added.pk}/delete/")
    assert TimeEntry.objects.filter(pk=added.pk).exists()  # not hers
    client.post(f"/orchestra/app/timecards/{added.pk}/delete/")
    assert not TimeEntry.objects.filter(pk=added.pk).exists()


def test_project_admin_pages_and_actions(client, wf):
    project = project_create(workflow_slug="wf", version_slug="v1", description="Admin me", priority=4)
    write = _task(project, "write")
    _login(client, "ann")
    assert client.get("/orchestra/app/projects/").status_code == 403  # not a project admin
    assert client.post(f"/orchestra/app/projects/{project.pk}/pause/").status_code == 403
    client.logout()

    _login(client, "boss")
    listing = client.get("/orchestra/app/projects/?q=Admin&status=Active&priority=4&workflow=wf").content.decode()
    assert f'data-project="{project.pk}"' in listing
    assert 'data-project="' not in client.get("/orchestra/app/projects/?q=nothing-like-it").content.decode()
    page = client.get(f"/orchestra/app/projects/{project.pk}/").content.decode()
    assert page.count('class="dag-node') == 3 and 'data-action="assign"' in page
    htmx = {"HX-Request": "true"}
    url = f"/orchestra/app/projects/{project.pk}"

    other = _task(project_create(workflow_slug="wf", version_slug="v1"), "write")
    elsewhere = client.post(f"{url}/assign/", {"task_id": other.pk, "worker": "ann"}, headers=htmx)
    assert elsewhere.status_code == 404 and f"is not a task of project {project.pk}" in elsewhere.content.decode()
    assert not TaskAssignment.objects.filter(task=other).exists()
    missing = client.post(f"{url}/assign/", {"task_id": write.pk, "worker": "nobody"}, headers=htmx)
    assert missing.status_code == 404 and "No worker with username" in missing.content.decode()
    done = client.post(f"{url}/assign/", {"task_id": write.pk, "worker": "ann"}, headers=htmx)
    assert done.status_code == 204 and done["HX-Redirect"] == f"{url}/"
    seat = TaskAssignment.objects.get(task=write)
    client.post(f"{url}/reassign/", {"task_id": write.pk, "assignment_id": seat.pk, "worker": "rev"})
    assert TaskAssignment.objects.get(pk=seat.pk).worker.username == "rev"
    client.post(f"{url}/complete_and_skip/", {"task_id": _task(project, "free").pk})
    assert _task(project, "free").status == TaskStatus.COMPLETE
    client.post(f"{url}/pause/")
    assert Project.objects.get(pk=project.pk).status == "Paused"
    wrong = client.post(f"{url}/pause/", headers=htmx)
    assert wrong.status_code == 409 and "Paused" in wrong.content.decode()
    client.post(f"{url}/resume/")
    client.post(f"{url}/end/")
    assert Project.objects.get(pk=project.pk).status == "Aborted"
    timeline = client.get(f"{url}/").content.decode()
    for action in ("task_assigned", "project_paused", "project_resumed"):
        assert action in timeline
    assert "dag" in client.get("/orchestra/app/workflows/").content.decode()


def test_revert_from_the_project_page(client, wf):
    project = project_create(workflow_slug="wf", version_slug="v1")
    write = _task(project, "write")
    task_assign(task_id=write.pk, worker="ann")
    task_submit(task_id=write.pk, worker="ann", data={"title": "First"})
    first = Iteration.objects.get(assignment__task=write)
    _login(client, "boss")
    page = client.get(f"/orchestra/app/projects/{project.pk}/").content.decode()
    assert 'data-action="revert"' in page
    client.post(f"/orchestra/app/projects/{project.pk}/revert/", {"task_id": write.pk, "iteration_id": first.pk})
    assert _task(project, "write").status == TaskStatus.PROCESSING


# --- query counts ---------------------------------------------------------------------------------------


def _give(worker_name: str, n: int) -> list[Task]:
    """n more 'free' tasks in n new projects, held by the worker (half in progress, half complete)."""
    projects = projects_create(workflow_slug="wf", version_slug="v1", project_datas=[{} for _ in range(n)])
    tasks = list(Task.objects.filter(project__in=projects, step__slug="free"))
    worker = Worker.objects.get(user__username=worker_name)
    now = timezone.now()
    seats = [
        TaskAssignment(
            task=t,
            worker=worker,
            level=0,
            created_at=now,
            updated_at=now,
            status=AssignmentStatus.PROCESSING if i % 2 else AssignmentStatus.SUBMITTED,
        )
        for i, t in enumerate(tasks)
    ]
    TaskAssignment.objects.bulk_create(seats)
    Iteration.objects.bulk_create(Iteration(assignment=s, worker=worker, start_datetime=now) for s in seats)
    Task.objects.filter(pk__in=[t.pk for i, t in enumerate(tasks) if i % 2]).update(status=TaskStatus.PROCESSING)
    Task.objects.filter(pk__in=[t.pk for i, t in enumerate(tasks) if not i % 2]).update(status=TaskStatus.COMPLETE)
    return tasks


def _queries(client, url: str) -> int:
    client.get(url)  # warm caches (compiled versions) first: they are per process, not per request
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


PAGES = (
    "/orchestra/app/",
    "/orchestra/app/tasks/{task}/",
    "/orchestra/app/projects/{project}/",
    "/orchestra/app/projects/",
    "/orchestra/app/timecards/",
    "/orchestra/app/workflows/",
)


def test_page_queries_do_not_grow_with_the_workers_tasks(client, wf):
    tasks = _give("boss", 10)
    _login(client, "boss")
    few = {p: _queries(client, p.format(task=tasks[1].pk, project=tasks[1].project_id)) for p in PAGES}
    _give("boss", 990)
    many = {p: _queries(client, p.format(task=tasks[1].pk, project=tasks[1].project_id)) for p in PAGES}
    assert many == few
    # The project page also reads its lineage's completions (1 query) and checks its ledger chain (2).
    assert few[PAGES[2]] <= 10 + 3, few
    assert max(n for page, n in few.items() if page != PAGES[2]) <= 10, few


def test_the_django_admin_lists_every_model(client, wf):
    from django.apps import apps
    from django.contrib import admin

    project = project_create(workflow_slug="wf", version_slug="v1")
    task_assign(task_id=_task(project, "free").pk, worker="ann")
    worker_create(username="root", password="pw", superuser=True)
    _login(client, "root")
    registered = {model._meta.model_name for model in admin.site._registry if model._meta.app_label == "orchestra"}
    inline_only = {"tasklog"}  # shown inside its task run
    assert {m._meta.model_name for m in apps.get_app_config("orchestra").get_models()} - inline_only <= registered
    for name in sorted(registered):
        response = client.get(f"/orchestra/admin/orchestra/{name}/")
        assert response.status_code == 200, name


def test_uploads_are_checked_stored_and_removed(client, tmp_path, media):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from orchestra import files

    step = human(
        "shoot",
        review=NO_REVIEW,
        user_interface={"form": [{"name": "pics", "type": "image", "multiple": True, "required": True}]},
    )
    load(tmp_path, [step], slug="up")
    worker_create(username="ann", password="pw")
    project = project_create(workflow_slug="up", version_slug="v1")
    task = _task(project, "shoot")
    task_assign(task_id=task.pk, worker="ann")
    _login(client, "ann")
    url = f"/orchestra/app/tasks/{task.pk}/"
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(buffer, format="PNG")

    fake = SimpleUploadedFile("fake.png", b"not a picture", content_type="image/png")
    response = client.post(url, {"action": "save", "pics": [fake]})
    assert response.status_code == 400 and "fake.png is not a readable image" in response.content.decode()
    folder = f"uploads/project-{project.pk}/task-{task.pk}/pics"
    assert not files.file_exists(f"{folder}/fake.png")

    good = [SimpleUploadedFile(n, buffer.getvalue(), content_type="image/png") for n in ("a b.png", "a b.png")]
    assert client.post(url, {"action": "save", "pics": good}).status_code == 302
    saved = TaskAssignment.objects.get(task=task).in_progress_task_data["pics"]
    assert [p["name"] for p in saved] == [f"{folder}/a-b.png", f"{folder}/a-b-2.png"]
    assert all(files.file_exists(p["name"]) for p in saved)

    # Removing one in a submission that fails keeps it; in one that succeeds deletes it from the store.
    response = client.post(url, {"action": "submit", "pics-remove": [p["name"] for p in saved]})
    assert response.status_code == 400 and files.file_exists(saved[0]["name"])
    assert client.post(url, {"action": "submit", "pics-remove": [saved[0]["name"]]}).status_code == 302
    assert not files.file_exists(saved[0]["name"]) and files.file_exists(saved[1]["name"])
    assert [p["name"] for p in _task(project, "shoot").data["pics"]] == [saved[1]["name"]]


def test_stored_files_are_served_only_to_the_projects_workers_and_admins(client, tmp_path, media):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from PIL import Image

    from orchestra import files
    from orchestra.models import StoredFile

    shoot = human("shoot", review=NO_REVIEW, user_interface={"form": [{"name": "pic", "type": "image"}]})
    # A machine step that saves a file, as the journalism example's steps do.
    notes = machine("notes", function="save_notes")
    load(tmp_path, [notes, shoot], slug="up")
    for name in ("ann", "bob", "cat"):
        worker_create(username=name, password="pw")
    worker_create(username="root", password="pw", superuser=True)
    project, other = (project_create(workflow_slug="up", version_slug="v1") for _ in range(2))
    task = _task(project, "shoot")
    task_assign(task_id=task.pk, worker="ann")
    task_assign(task_id=_task(other, "shoot").pk, worker="bob")  # bob works on the other project only
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(buffer, format="PNG")
    upload = SimpleUploadedFile("cat.png", buffer.getvalue(), content_type="image/png")
    assert (
        _login(client, "ann").post(f"/orchestra/app/tasks/{task.pk}/", {"action": "save", "pic": upload}).status_code
        == 302
    )
    uploaded = TaskAssignment.objects.get(task=task).in_progress_task_data["pic"]["url"]
    saved_by_step = files.file_url(f"notes/project-{project.pk}.txt")
    files.save_file("shared/readme.txt", b"for everyone")  # saved outside any project's work
    assert {f.name: f.project_id for f in StoredFile.objects.all()} == {
        f"notes/project-{project.pk}.txt": project.pk,
        f"notes/project-{other.pk}.txt": other.pk,
        uploaded.split("/orchestra/files/", 1)[1]: project.pk,
    }

    def status(username: str | None, url: str) -> int:
        browser = Client()
        if username:
            _login(browser, username)
        response = browser.get(url.removeprefix("http://testserver"))
        response.close()
        return response.status_code

    shared = files.file_url("shared/readme.txt")
    for url in (uploaded, saved_by_step):
        assert status("ann", url) == 200  # holds a seat on the project
        assert status("root", url) == 200  # a project admin
        assert status("bob", url) == 404  # works on another project: as if there were no such file
        assert status("cat", url) == 404  # works on nothing
        assert status(None, url) == 302  # not signed in: the login page
    assert status("cat", shared) == 200 and status(None, shared) == 302
    assert status("bob", files.file_url(f"notes/project-{other.pk}.txt")) == 200
    files.delete_file(f"notes/project-{project.pk}.txt")
    assert not StoredFile.objects.filter(name=f"notes/project-{project.pk}.txt").exists()


def test_who_is_no_worker(client, wf):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    get_user_model().objects.create_user("visitor", "v@example.com", "pw")
    _login(client, "root")
    assert client.get("/orchestra/app/").url == "/orchestra/app/projects/"  # an admin who is no worker
    client.logout()
    _login(client, "visitor")
    response = client.get("/orchestra/app/")
    assert response.status_code == 403 and "not an Orchestra worker" in response.content.decode()


def test_the_timer_offers_no_task_of_an_ended_project(client, wf):
    from orchestra.services.projects import project_end

    kept, ended = (project_create(workflow_slug="wf", version_slug="v1") for _ in range(2))
    seats = [task_assign(task_id=_task(p, "free").pk, worker="ann") for p in (kept, ended)]
    project_end(project_id=ended.pk)
    _login(client, "ann")
    bar = client.get("/orchestra/app/timer/", headers={"HX-Request": "true"}).content.decode()
    assert f'value="{seats[0].pk}"' in bar and f'value="{seats[1].pk}"' not in bar
