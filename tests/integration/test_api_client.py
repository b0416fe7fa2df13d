"""The client (project) API over real HTTP: B12's `httpsig` snippet, RFC 9421, the Python client.

Requests go to Django's live server through `requests`, signed by the real `httpsig` and
`http-message-signatures` libraries, as a B12 integration would send them.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import time
from typing import Any

import pytest
import requests
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from httpsig.requests_auth import HTTPSignatureAuth

from orchestra.client import OrchestraAPIError, OrchestraClient
from orchestra.models import Event, Project, Task
from orchestra.services.access import apikey_create, apikey_revoke
from orchestra.services.tasks import task_pull, task_submit
from orchestra.services.workers import worker_create
from tests.support import functions
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.filterwarnings("ignore:No directory at:UserWarning")]

API = "/orchestra/api/project/"


@pytest.fixture
def workflow(tmp_path: Any) -> str:
    """crawl-like machine step, then a human step with no review (as the simple workflow)."""
    return load(
        tmp_path,
        [machine("fetch", function="echo"), human("rate", "fetch", review=NO_REVIEW)],
        slug="simple",
    )


@pytest.fixture
def key() -> tuple[str, str]:
    issued = apikey_create(name="b12-integration")
    return issued.key.key_id, issued.secret


def seed_auth(key_id: str, secret: str) -> HTTPSignatureAuth:
    # The seed documentation's snippet, unchanged but for where the key and secret come from.
    return HTTPSignatureAuth(key_id=key_id, secret=secret, algorithm="hmac-sha256")


def b12_headers(key_id: str) -> dict[str, str]:
    # What B12's orchestra_api sends beside the signature (httpsig signs the Date but does not add it).
    return {"Date": email.utils.formatdate(usegmt=True), "X-Api-Key": key_id, "X-Api-Version": "~6.5"}


def post(url: str, body: Any, auth: Any, key_id: str, **headers: str) -> requests.Response:
    # B12's client: raw JSON in `data`.
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(url, data=data, auth=auth, headers={**b12_headers(key_id), **headers}, timeout=30)


CREATE = {
    "workflow_slug": "simple",
    "workflow_version_slug": "v1",
    "description": "A test run of our simple workflow",
    "priority": 10,
    "task_class": "real",
    "project_data": {"url": "http://example.invalid/"},
}


def test_seed_snippet_creates_a_project_and_reads_it_back(live_server, workflow, key):
    key_id, secret = key
    auth = seed_auth(key_id, secret)
    response = post(live_server.url + API + "create_project", CREATE, auth, key_id)
    assert response.status_code == 200, response.text
    project_id = response.json()["project_id"]
    project = Project.objects.get(pk=project_id)
    assert (project.priority, project.short_description) == (10, "A test run of our simple workflow")

    info = post(live_server.url + API + "project_information", {"project_id": project_id}, auth, key_id).json()
    # The structure of the seed's demo transcript.
    assert set(info) == {"project", "steps", "tasks"}
    assert {
        "id",
        "priority",
        "project_data",
        "short_description",
        "start_datetime",
        "task_class",
        "workflow_slug",
    } <= set(info["project"])
    assert info["project"]["project_data"] == {"url": "http://example.invalid/"}
    assert info["steps"] == [["fetch", "machine step fetch"], ["rate", "human step rate"]]
    fetch, rate = info["tasks"]["fetch"], info["tasks"]["rate"]
    assert {"id", "latest_data", "project", "status", "step_slug", "assignments"} <= set(fetch)
    assert (fetch["status"], fetch["project"], fetch["step_slug"]) == ("Complete", project_id, "fetch")
    assert fetch["latest_data"]["project_data"]["url"] == "http://example.invalid/"
    assert (rate["status"], rate["latest_data"], rate["assignments"]) == ("Awaiting Processing", None, [])

    # A worker rates the image; the assignment and its iteration appear as in the transcript's second call.
    demo = worker_create(username="demo", password="demo")
    task_pull(worker=demo, role="entry_level")
    task_submit(task_id=rate["id"], worker=demo, data={"rating": "5"})
    info = post(live_server.url + API + "project_information", {"project_id": project_id}, auth, key_id).json()
    rate = info["tasks"]["rate"]
    assert (rate["status"], rate["latest_data"]) == ("Complete", {"rating": "5"})
    (assignment,) = rate["assignments"]
    assert {"id", "in_progress_task_data", "iterations", "start_datetime", "status", "task", "worker"} <= set(
        assignment
    )
    assert (assignment["worker"], assignment["status"], assignment["task"]) == ("demo", "Submitted", rate["id"])
    (iteration,) = assignment["iterations"]
    assert iteration["submitted_data"] == {"rating": "5"}
    assert {"start_datetime", "end_datetime", "status", "assignment"} <= set(iteration)


def test_project_ids_return_a_mapping_by_id_with_b12s_current_shape(live_server, workflow, key):
    key_id, secret = key
    client = OrchestraClient(live_server.url, key_id, secret)
    ids = [client.create_project("simple", "v1", f"p{i}") for i in range(3)]
    info = client.projects_information(ids)
    assert set(info) == {str(i) for i in ids}
    one = info[str(ids[0])]
    assert [s["slug"] for s in one["steps"]] == ["fetch", "rate"]
    assert one["project"]["status"] == "Active"
    assert one["tasks"]["rate"]["status"] == "Awaiting Processing"


def test_settings_credentials_work_as_in_b12(live_server, workflow, settings):
    settings.ORCHESTRA_PROJECT_API_CREDENTIALS = {"b12-key": "b12-secret"}
    response = post(live_server.url + API + "create_project/", CREATE, seed_auth("b12-key", "b12-secret"), "b12-key")
    assert response.status_code == 200, response.text


def _refused(response: requests.Response, header: str, *words: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "bad_signature"
    assert body["header"] == header
    for word in words:
        assert word in body["message"]


def test_stale_replayed_tampered_wrongly_keyed_and_unsigned_requests_get_401(live_server, workflow, key):
    key_id, secret = key
    url = live_server.url + API + "create_project/"
    before = Project.objects.count()

    stale = email.utils.formatdate(time.time() - 600, usegmt=True)
    _refused(post(url, CREATE, seed_auth(key_id, secret), key_id, Date=stale), "Date", "300")

    # Replay: the very same signed request, sent twice.
    prepared = requests.Request(
        "POST", url, data=json.dumps(CREATE), headers=b12_headers(key_id), auth=seed_auth(key_id, secret)
    ).prepare()
    with requests.Session() as session:
        assert session.send(prepared, timeout=30).status_code == 200
        _refused(session.send(prepared, timeout=30), "Authorization", "replay")

    # Tampered: the body changed after signing, under a signed Digest.
    auth = HTTPSignatureAuth(
        key_id=key_id, secret=secret, algorithm="hmac-sha256", headers=["(request-target)", "host", "date", "digest"]
    )
    body = json.dumps(CREATE).encode()
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    prepared = requests.Request(
        "POST", url, data=body, headers={**b12_headers(key_id), "Digest": digest}, auth=auth
    ).prepare()
    prepared.body = json.dumps({**CREATE, "priority": 99}).encode()
    prepared.headers["Content-Length"] = str(len(prepared.body))
    with requests.Session() as session:
        _refused(session.send(prepared, timeout=30), "Digest", "body")

    _refused(post(url, CREATE, seed_auth(key_id, "not-the-secret"), key_id), "Authorization", "match")
    _refused(post(url, CREATE, seed_auth("okey_unknown", secret), "okey_unknown"), "Authorization", "unknown")
    unsigned = requests.post(url, data=json.dumps(CREATE), timeout=30)
    _refused(unsigned, "Authorization", "not signed")

    apikey_revoke(key=key_id)
    _refused(post(url, CREATE, seed_auth(key_id, secret), key_id), "Authorization", "unknown")

    assert Project.objects.count() == before + 1  # only the first of the replayed pair


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, secrets: dict[str, bytes]) -> None:
        self.secrets = secrets

    def resolve_public_key(self, key_id: str) -> bytes:
        return self.secrets[key_id]

    def resolve_private_key(self, key_id: str) -> bytes:
        return self.secrets[key_id]


def test_rfc9421_signatures_from_http_message_signatures_are_accepted(live_server, workflow, key):
    key_id, secret = key
    body = json.dumps(CREATE).encode()
    request = requests.Request(
        "POST", live_server.url + API + "create_project/", data=body, headers={"Content-Type": "application/json"}
    ).prepare()
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256, key_resolver=_Keys({key_id: secret.encode()})
    )
    # With the body given, the library adds Content-Digest and covers it.
    signer.sign(request, key_id=key_id, covered_component_ids=("@method", "@authority", "@target-uri"), body=body)
    assert "content-digest" in request.headers["Signature-Input"]
    with requests.Session() as session:
        response = session.send(request, timeout=30)
    assert response.status_code == 200, response.text
    assert Project.objects.filter(pk=response.json()["project_id"]).exists()

    request.body = json.dumps({**CREATE, "priority": 1}).encode()
    request.headers["Content-Length"] = str(len(request.body))
    with requests.Session() as session:
        _refused(session.send(request, timeout=30), "Content-Digest")


def test_validation_errors_name_every_bad_field_and_change_nothing(live_server, workflow, key):
    key_id, secret = key
    bad = {"workflow_version_slug": "v1", "priority": "high", "task_class": "gold"}
    response = post(live_server.url + API + "create_project/", bad, seed_auth(key_id, secret), key_id)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid"
    assert {e["field"] for e in body["errors"]} == {"workflow_slug", "priority", "task_class"}
    assert "workflow_slug" in body["message"] and "priority" in body["message"]

    response = post(live_server.url + API + "create_project/", b"{not json", seed_auth(key_id, secret), key_id)
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]
    for body in (b"", b"[]", b"3"):  # no object at all: the body is named, not the view's argument
        response = post(live_server.url + API + "create_project/", body, seed_auth(key_id, secret), key_id)
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "body", response.text
        assert response.json()["message"].startswith("body: send a JSON object ("), response.text

    client = OrchestraClient(live_server.url, key_id, secret)
    with pytest.raises(OrchestraAPIError) as caught:
        client.create_project("simple", "v9")
    assert caught.value.status == 404 and "workflow_version_slug" in caught.value.message
    with pytest.raises(OrchestraAPIError) as caught:
        client.create_project("nope", "v1")
    assert caught.value.status == 404 and caught.value.message.startswith("workflow_slug: no workflow 'nope'")
    assert Project.objects.count() == 0


def test_python_client_covers_the_client_api(live_server, workflow, key):
    key_id, secret = key
    client = OrchestraClient(live_server.url, key_id, secret)
    assert client.workflow_types()["simple"]["versions"]["v1"]["name"] == "simple v1"
    project_id = client.create_project("simple", "v1", "one", priority=3, project_data={"n": 1})
    assert client.project_details_url(project_id) == f"http://testserver/orchestra/app/projects/{project_id}/"

    worker_create(username="ann", password="pw")
    rate = Task.objects.get(project_id=project_id, step__slug="rate")
    assert client.assign_worker_to_task("ann", rate.pk) == {"success": True, "errors": {}}
    with pytest.raises(OrchestraAPIError) as caught:
        client.assign_worker_to_task("ann", rate.pk)
    assert caught.value.status == 409
    assert caught.value.body["success"] is False and caught.value.body["errors"]

    listing = client.projects(status="Active", workflow="simple")
    assert listing["count"] == 1 and listing["projects"][0]["id"] == project_id
    assert client.end_project(project_id) == {"project_id": project_id, "status": "Aborted"}
    assert client.projects(status="Active")["count"] == 0


def test_create_projects_is_all_or_nothing(live_server, workflow, key):
    key_id, secret = key
    client = OrchestraClient(live_server.url, key_id, secret)
    ids = client.create_projects("simple", "v1", [{"n": 1}, {"n": 2}])
    assert [Project.objects.get(pk=i).project_data for i in ids] == [{"n": 1}, {"n": 2}]
    with pytest.raises(OrchestraAPIError) as caught:
        client.create_projects("simple", "v1", [{"n": 3}, "not an object"])  # type: ignore[list-item]
    assert caught.value.status == 400 and "project_data" in caught.value.message
    assert Project.objects.count() == 2


def test_retry_a_failed_machine_task(live_server, tmp_path, key):
    functions.CALLS.pop("api-retry", None)
    once = {"max_attempts": 1}
    load(
        tmp_path,
        [machine("flaky", function="fail_times", kwargs={"key": "api-retry", "times": 1}, retry=once)],
        slug="flaky",
    )
    key_id, secret = key
    client = OrchestraClient(live_server.url, key_id, secret)
    project_id = client.create_project("flaky", "v1")
    task = Task.objects.get(project_id=project_id)
    assert task.status == "Failed"
    assert client.retry_task(task.pk)["task_id"] == task.pk
    task.refresh_from_db()
    assert task.status == "Complete"
    assert Event.objects.filter(task=task, action="task_retried", actor=f"api:{key_id}").exists()


def test_b12_module_functions_port_by_changing_the_import(live_server, workflow, key, settings):
    from orchestra import client as orchestra_api

    key_id, secret = key
    settings.ORCHESTRA_URL = live_server.url
    settings.ORCHESTRA_PROJECT_API_KEY = key_id
    settings.ORCHESTRA_PROJECT_API_SECRET = secret
    assert "simple" in orchestra_api.get_workflow_types()
    project_id = orchestra_api.create_orchestra_project(None, "simple", "v1", "ported", 10, {"url": "x"}, "real")
    assert orchestra_api.get_project_information(project_id)["project"]["priority"] == 10
    assert str(project_id) in orchestra_api.get_project_information([project_id])
    assert orchestra_api.get_project_details_url(project_id).endswith(f"/projects/{project_id}/")
