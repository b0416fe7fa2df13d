"""Input a database cannot keep, or that breaks date arithmetic, is refused with a 4xx that says why, and
nothing is saved; what a program prints or raises is kept readable. Through the pages, the services and the
executor, on SQLite and on PostgreSQL (which refuses NUL in text and jsonb where SQLite stores it).

The sweep at the end throws the same junk at every page form and filter and asks only for no 5xx."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.test import Client
from django.utils import timezone

from orchestra.engine.errors import ValidationError
from orchestra.execution.runner import drain
from orchestra.models import Task, TaskLog, TimeEntry
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_assign
from orchestra.services.timekeeping import time_entry_create
from orchestra.services.workers import worker_create
from tests.integration.test_script_and_external_steps import NO_RETRY, script, with_scripts
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wf(tmp_path):
    load(tmp_path, [machine("prepare"), human("free", "prepare", review=NO_REVIEW)])
    worker_create(username="ann", password="pw")
    worker_create(username="boss", password="pw", project_admin=True)
    project = project_create(workflow_slug="wf", version_slug="v1")
    seat = task_assign(task_id=Task.objects.get(project=project, step__slug="free").pk, worker="ann")
    return project, seat


def _client(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password="pw")
    return client


def test_timecards_refuse_impossible_durations_and_dates(wf):
    client = _client("ann")
    today = timezone.localdate().isoformat()
    cases = [
        ({"date": today, "time_worked": "9" * 30}, "at most 24 hours"),
        ({"date": "9999-12-31", "time_worked": "1"}, "9999-12-31 is out of range; time entries are dated"),
        ({"date": "0001-01-01", "time_worked": "1"}, "0001-01-01 is out of range"),
    ]
    for form, said in cases:
        response = client.post("/orchestra/app/timecards/", form)
        assert response.status_code == 400, form
        assert said in response.content.decode(), form
    assert not TimeEntry.objects.exists()
    for week in ("0001-01-01", "0001-01-03", "9999-12-31", "9999-12-20"):  # the calendar's ends: this week instead
        response = client.get(f"/orchestra/app/timecards/?week={week}")
        assert response.status_code == 200, week
    with pytest.raises(ValidationError, match="out of range"):
        time_entry_create(worker=wf[1].worker, date=dt.date(1, 1, 1), time_worked=dt.timedelta(hours=1))
    for day in ("0001-01-01", "9999-12-31", "2026-02-30"):  # the API, whose document gives the range
        response = client.post(
            "/orchestra/api/interface/time_entries/",
            {"date": day, "time_worked": "1:00"},
            content_type="application/json",
        )
        assert response.status_code == 400, response.content
        assert response.json()["field"] == "date"
    assert not TimeEntry.objects.exists()


def test_a_nul_character_in_a_form_is_refused_and_nothing_is_saved(wf):
    project, seat = wf
    ann, boss = _client("ann"), _client("boss")
    today = timezone.localdate().isoformat()
    response = ann.post("/orchestra/app/timecards/", {"date": today, "time_worked": "1", "description": "a\x00b"})
    assert response.status_code == 400
    assert "'description' must not contain the NUL character" in html.unescape(response.content.decode())
    assert not TimeEntry.objects.exists()
    response = ann.post("/orchestra/app/timer/start/", {"description": "x\x00"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    response = ann.post("/orchestra/accounts/tokens/", {"name": "mine\x00"})
    assert response.status_code == 400
    response = boss.get("/orchestra/app/projects/?q=a%00b")
    assert response.status_code == 400 and "NUL" in response.content.decode()

    # JSON whose text escapes a NUL parses to one: the task's data is checked where it is stored.
    page = f"/orchestra/app/tasks/{seat.task_id}/"
    response = ann.post(page, {"action": "submit", "task_data": '{"answer": "a\\u0000b"}'})
    assert response.status_code == 400
    assert "data.answer: must not contain the NUL character" in html.unescape(response.content.decode())
    task = Task.objects.get(pk=seat.task_id)
    assert task.status == "Processing" and task.data in (None, {})


def test_the_services_refuse_unstorable_text_in_data_and_descriptions(wf):
    with pytest.raises(ValidationError, match=r"project_data\.notes\[1\]: must not contain the NUL character"):
        project_create(workflow_slug="wf", version_slug="v1", project_data={"notes": ["ok", "a\x00"]})
    with pytest.raises(ValidationError, match=r"project_data\.deep\.x: must be Unicode text"):
        project_create(workflow_slug="wf", version_slug="v1", project_data={"deep": {"x": "\ud800"}})
    with pytest.raises(ValidationError, match=r"project_data\.a\\u0000b: must not contain the NUL character"):
        project_create(workflow_slug="wf", version_slug="v1", project_data={"a\x00b": 1})
    with pytest.raises(ValidationError, match="description: must be Unicode text"):
        project_create(workflow_slug="wf", version_slug="v1", description="\ud800")
    project_create(workflow_slug="wf", version_slug="v1", project_data={"note": "a backslash-u0000 is text: \\u0000"})
    assert Task.objects.filter(project__project_data__has_key="notes").count() == 0


def test_the_holding_pen_accepts_the_last_day_there_is(wf):
    boss = _client("boss")
    assert boss.get("/orchestra/app/holdingpen/?to=9999-12-31&from=0001-01-01").status_code == 200
    # The API, as the same signed-in admin.
    response = boss.get("/orchestra/api/holdingpen/", {"until": "9999-12-31", "since": "0001-01-01"})
    assert response.status_code == 200, response.content


def test_what_a_step_raises_or_prints_is_kept_whatever_it_holds(tmp_path, settings):
    settings.ORCHESTRA_EXECUTOR = "eager"
    code = """
        import sys
        sys.stdout.buffer.write(b"half a character: \\xe9, a NUL: \\x00\\n")
        sys.stderr.write("and here too: \\x00\\n")
        sys.exit(3)
    """
    slug = with_scripts(
        tmp_path,
        [
            machine("shouts", function="raises_with_nul", retry=NO_RETRY),
            machine("hands_back", function="returns_nul", retry=NO_RETRY),
            script("prints", code, retry=NO_RETRY),
        ],
        slug="junk",
    )
    project = project_create(workflow_slug=slug, version_slug="v1")
    drain()
    tasks = {t.step.slug: t for t in Task.objects.filter(project=project).select_related("step")}
    assert {slug: t.status for slug, t in tasks.items()} == {
        "shouts": "Failed",
        "hands_back": "Failed",
        "prints": "Failed",
    }
    assert "bad \\x00 value" in tasks["shouts"].last_error
    assert "output.text: must not contain the NUL character" in tasks["hands_back"].last_error
    printed = "".join(TaskLog.objects.filter(task=tasks["prints"]).values_list("message", flat=True))
    assert "half a character: \ufffd, a NUL: \\x00" in printed and "and here too: \\x00" in printed


JUNK = ["", "0", "-1", "9" * 30, "abc", "1.5", "<b>x</b>", "2026-02-30", "0001-01-01", "9999-12-31", "1e309", "\x00"]


def test_no_page_answers_junk_with_a_server_error(wf):
    project, seat = wf
    pages = {
        "ann": [
            ("get", "/orchestra/app/", ["state", "page"]),
            ("get", "/orchestra/app/timecards/", ["week"]),
            ("post", "/orchestra/app/timecards/", ["date", "time_worked", "description", "assignment"]),
            ("post", "/orchestra/app/timer/start/", ["description", "assignment"]),
            ("post", "/orchestra/app/timer/update/", ["description", "assignment"]),
            ("post", "/orchestra/app/timer/stop/", ["description", "assignment"]),
            ("post", "/orchestra/app/new/entry_level/", ["role"]),
            ("post", f"/orchestra/app/tasks/{seat.task_id}/", ["action", "task_data", "feedback"]),
            ("post", "/orchestra/accounts/notifications/", ["notify"]),
            ("post", "/orchestra/accounts/tokens/", ["name"]),
        ],
        "boss": [
            ("get", "/orchestra/app/projects/", ["page", "priority", "status", "q", "workflow"]),
            ("get", "/orchestra/app/holdingpen/", ["status", "page", "from", "to", "workflow", "message"]),
            ("post", "/orchestra/app/holdingpen/bulk/", ["ids", "operation", "choice"]),
            ("post", f"/orchestra/app/projects/{project.pk}/assign/", ["task_id", "worker"]),
            ("post", f"/orchestra/app/projects/{project.pk}/reassign/", ["task_id", "worker", "assignment_id"]),
            ("post", f"/orchestra/app/projects/{project.pk}/revert/", ["task_id", "iteration_id", "before"]),
            ("post", f"/orchestra/app/projects/{project.pk}/retry/", ["task_id"]),
        ],
    }
    failures = []
    for username, forms in pages.items():
        client = _client(username)
        for method, url, fields in forms:
            for value in JUNK:
                response = getattr(client, method)(url, {name: value for name in fields})
                if response.status_code >= 500:
                    failures.append((username, method, url, value, response.status_code))
    assert not failures
