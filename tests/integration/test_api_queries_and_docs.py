"""Every API endpoint runs a bounded number of queries, the same with 1 or 20 projects; the OpenAPI
document and docs page are served; `orchestra apikey` and `orchestra token` work from the command line."""

from __future__ import annotations

import email.utils
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from httpsig.requests_auth import HTTPSignatureAuth
from requests import Request

from orchestra.models import ApiKey, PersonalToken, Task
from orchestra.services.access import apikey_create, token_create
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_pull, task_save
from orchestra.services.workers import worker_create
from tests.integration.test_cli import REPO
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)

# Queries per request, authentication included (on SQLite, BEGIN counts as a query).
# create_project: 17 since the audit ledger (one statement per transaction moves the project chain's head).
# The worker API's token, its user and worker are one statement; project_information is five plus the key.
CLIENT_BOUNDS = {"create_project": 17, "project_information": 6, "workflow_types": 2, "projects": 3}
WORKER_BOUNDS = {"dashboard_tasks": 5, "task_assignment_information": 5, "save_task_assignment": 7, "time_entries": 2}


def request_counts(calls: dict[str, Callable[[], Any]]) -> dict[str, int]:
    """Queries each request ran (each must answer 200), without the sweep of expired replay-guard rows
    that one signed request in about 200 also runs (upkeep shared by all requests, not work of this one)."""
    counts = {}
    for name, call in calls.items():
        with CaptureQueriesContext(connection) as queries:
            response = call()
        assert response.status_code == 200, (name, response.content)
        sweep = 'DELETE FROM "orchestra_seensignature"'
        counts[name] = sum(1 for q in queries.captured_queries if not q["sql"].startswith(sweep))
    return counts


def signed(client: Client, key_id: str, secret: str, method: str, path: str, body: Any = None) -> Any:
    """A request signed by the real httpsig client, sent through Django's test client."""
    data = json.dumps(body) if body is not None else None
    headers = {"Date": email.utils.formatdate(usegmt=True), "X-Api-Key": key_id}
    prepared = Request(method, "http://testserver" + path, data=data, headers=headers).prepare()
    HTTPSignatureAuth(key_id=key_id, secret=secret, algorithm="hmac-sha256")(prepared)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in prepared.headers.items() if k != "Content-Length"}
    if method == "GET":
        return client.get(path, **extra)
    return client.post(path, data or "", content_type="application/json", **extra)


def _setup(tmp_path: Any, projects: int) -> tuple[str, str, str, list[int]]:
    load(tmp_path, [machine("prep"), human("rate", "prep", review=NO_REVIEW)], slug="qc")
    worker = worker_create(username="ann")
    ids = [project_create(workflow_slug="qc", version_slug="v1").pk for _ in range(projects)]
    for _ in range(projects - 1):
        task = task_pull(worker=worker, role="entry_level")
        task_save(task_id=task.task_id, worker=worker, data={"rating": 3})
    issued = apikey_create(name=f"qc{projects}")
    _, raw = token_create(user="ann")
    return issued.key.key_id, issued.secret, raw, ids


def _counts(tmp_path: Any, projects: int) -> dict[str, int]:
    key_id, secret, raw, ids = _setup(tmp_path, projects)
    client = Client()
    worker = Client(HTTP_AUTHORIZATION=f"Token {raw}")
    task_id = Task.objects.filter(project_id=ids[0], step__slug="rate").values_list("id", flat=True).get()
    calls = {
        "create_project": lambda: signed(
            client,
            key_id,
            secret,
            "POST",
            "/orchestra/api/project/create_project/",
            {"workflow_slug": "qc", "workflow_version_slug": "v1"},
        ),
        "project_information": lambda: signed(
            client, key_id, secret, "POST", "/orchestra/api/project/project_information/", {"project_ids": ids}
        ),
        "workflow_types": lambda: signed(client, key_id, secret, "GET", "/orchestra/api/project/workflow_types/"),
        "projects": lambda: signed(client, key_id, secret, "GET", "/orchestra/api/project/projects/"),
        "dashboard_tasks": lambda: worker.get("/orchestra/api/interface/dashboard_tasks/"),
        "task_assignment_information": lambda: worker.post(
            "/orchestra/api/interface/task_assignment_information/",
            json.dumps({"task_id": task_id}),
            content_type="application/json",
        ),
        "save_task_assignment": lambda: worker.post(
            "/orchestra/api/interface/save_task_assignment/",
            json.dumps({"task_id": task_id, "task_data": {"rating": 4}}),
            content_type="application/json",
        ),
        "time_entries": lambda: worker.get("/orchestra/api/interface/time_entries/"),
    }
    return request_counts(calls)


def test_api_query_counts_are_bounded_and_do_not_grow(tmp_path):
    small = _counts(tmp_path / "small", 2)
    big = _counts(tmp_path / "big", 20)
    assert big == small, (small, big)
    for name, bound in {**CLIENT_BOUNDS, **WORKER_BOUNDS}.items():
        assert small[name] <= bound, (name, small[name], bound)


def test_openapi_document_and_docs_page(client):
    document = client.get("/orchestra/api/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/orchestra/api/project/create_project/",
        "/orchestra/api/project/project_information/",
        "/orchestra/api/interface/submit_task_assignment/",
        "/orchestra/api/interface/project_management/revert_task/",
    ):
        assert path in paths
    assert "/orchestra/api/project/create_project" not in paths  # the slash-less alias is not documented twice
    docs = client.get("/orchestra/api/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.content


def test_wrong_paths_and_methods_get_json_errors():
    browser = Client(enforce_csrf_checks=True)  # a POST to a wrong path is not stopped by the CSRF check
    for method, path in [("get", "/orchestra/api/project/creat_project/"), ("post", "/orchestra/api/nothing")]:
        response = getattr(browser, method)(path)
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json"), response.content
        assert response.json() == {
            "error": "not_found",
            "message": f"{method.upper()} {path}: no such endpoint (see /orchestra/api/docs)",
        }
    for path in ("/orchestra/api/project/create_project/", "/orchestra/api/project/create_project"):
        response = browser.get(path)
        assert response.status_code == 405 and response["Allow"] == "POST", response.content
        assert response.json() == {"error": "method_not_allowed", "message": f"GET {path}: use POST"}
    assert browser.get("/orchestra/nothing/").status_code == 404  # outside the API, the site's own 404


def _orchestra(*args: str) -> subprocess.CompletedProcess[str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = (
        f"sqlite:///{db['NAME']}"
        if db["ENGINE"].endswith("sqlite3")
        else f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    env = {"ORCHESTRA_DATABASE_URL": url, "ORCHESTRA_SECRET_KEY": "test-secret-key-not-for-production", "PATH": ""}
    return subprocess.run(
        [sys.executable, "-m", "orchestra.cli", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_apikey_and_token_commands(tmp_path):
    worker_create(username="ann")
    created = _orchestra("apikey", "create", "billing")
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split("key id:")[1].split()[0]
    secret = created.stdout.split("secret:")[1].split()[0]
    key = ApiKey.objects.get(key_id=key_id)
    assert secret not in (key.secret_hash, key.salt)  # the secret itself is not stored

    # The printed secret signs requests.
    load(tmp_path, [human("rate", review=NO_REVIEW)], slug="cli")
    response = signed(Client(), key_id, secret, "GET", "/orchestra/api/project/workflow_types/")
    assert response.status_code == 200 and "cli" in response.json()["workflows"]

    duplicate = _orchestra("apikey", "create", "billing")
    assert duplicate.returncode == 1 and "exists already" in duplicate.stderr and "Traceback" not in duplicate.stderr
    assert "billing" in _orchestra("apikey", "list").stdout
    assert _orchestra("apikey", "revoke", "billing").returncode == 0
    assert "revoked" in _orchestra("apikey", "list").stdout
    assert signed(Client(), key_id, secret, "GET", "/orchestra/api/project/workflow_types/").status_code == 401
    missing = _orchestra("apikey", "revoke", "nope")
    assert missing.returncode == 1 and "no API key" in missing.stderr

    made = _orchestra("token", "create", "ann", "--name", "laptop")
    assert made.returncode == 0, made.stderr
    raw = made.stdout.split(": ", 1)[1].split()[0]
    assert Client(HTTP_AUTHORIZATION=f"Token {raw}").get("/orchestra/api/interface/timer/").status_code == 200
    token = PersonalToken.objects.get(name="laptop")
    assert raw not in token.token_hash
    assert "laptop" in _orchestra("token", "list", "ann").stdout
    assert _orchestra("token", "revoke", str(token.pk)).returncode == 0
    assert Client(HTTP_AUTHORIZATION=f"Token {raw}").get("/orchestra/api/interface/timer/").status_code == 401
    nobody = _orchestra("token", "create", "nobody")
    assert nobody.returncode == 1 and "no user named 'nobody'" in nobody.stderr
