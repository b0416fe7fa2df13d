"""Script steps (subprocesses), the SDK endpoints they and outside services report through (the real
orchestra-sdk 0.2.0 and the legacy 0.0.9 orcProcess client, unmodified), and external steps in push mode
(a signed trigger) and pull mode (outside workers claiming a queue)."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client

from orchestra.client import OrchestraAPIError, OrchestraClient, SignatureError, verify_trigger
from orchestra.models import Project, Task, TaskLog, TaskRun
from orchestra.services.access import apikey_create
from orchestra.services.projects import project_create
from orchestra.services.runs import run_key
from tests.support.workflows import load, machine

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # orchestra-sdk warns when its log file's directory does not exist yet; it creates it.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]
REPO = Path(__file__).resolve().parents[2]
LEGACY_SDK = REPO / ".venv" / "legacy-sdk"
NO_RETRY = {"max_attempts": 1}
WEBHOOK = "/orchestra/api/sdk/webhook/"


def script(slug: str, code: str, *deps: str, **extra: Any) -> dict[str, Any]:
    """A script step running `code` with this Python (written next to the workflow by `with_scripts`)."""
    execution = extra.pop("execution", {})
    return {
        "slug": slug,
        "name": slug.title(),
        "kind": "script",
        "creation_depends_on": list(deps),
        "execution": {"command": [sys.executable, f"{slug}.py"], **execution},
        "_code": textwrap.dedent(code),
        **extra,
    }


def with_scripts(tmp_path: Path, steps: list[dict[str, Any]], **kwargs: Any) -> str:
    """Load a workflow whose script steps' code lies in the workflow directory (their working directory)."""
    codes = {s["slug"]: s.pop("_code") for s in steps if "_code" in s}
    slug = load(tmp_path, steps, **kwargs)
    for name, code in codes.items():
        (tmp_path / slug / f"{name}.py").write_text(code)
    return slug


def task_of(project: Project, step: str) -> Task:
    return Task.objects.get(project=project, step__slug=step)


def logs(task: Task, source: str) -> str:
    return "".join(TaskLog.objects.filter(task=task, source=source).values_list("message", flat=True))


# --- script steps ---------------------------------------------------------------------------------------


def test_a_script_reads_its_input_on_stdin_and_prints_its_output(tmp_path):
    code = """
        import json, os, sys
        data = json.load(sys.stdin)
        print("working...", file=sys.stderr)
        print(json.dumps({
            "url": data["project_data"]["url"],
            "prep": data["prerequisites"]["prep"],
            "run": os.environ["ORCHESTRA_TASK_RUN_ID"],
            "webhook": os.environ["ORCHESTRA_WEBHOOK_URL"],
            "key": os.environ["ORCHESTRA_API_KEY"],
            "greeting": os.environ["GREETING"],
            "server_secret": os.environ.get("ORCHESTRA_SECRET_KEY"),
            "cwd": os.getcwd(),
        }))
    """
    steps = [machine("prep"), script("report", code, "prep", execution={"env": {"GREETING": "hi"}})]
    with_scripts(tmp_path, steps)
    project = project_create(workflow_slug="wf", version_slug="v1", project_data={"url": "https://x.test"})
    task = task_of(project, "report")
    assert task.status == "Complete", task.last_error
    run = TaskRun.objects.get(task=task)
    assert run.status == "Succeeded" and run.exit_code == 0
    assert task.data["url"] == "https://x.test"
    assert task.data["prep"] == {"ok": True}
    assert task.data["run"] == str(run.pk)
    assert task.data["webhook"] == "http://testserver/orchestra/api/sdk/webhook/"
    assert task.data["key"] == run_key(run.pk)
    assert task.data["greeting"] == "hi"
    assert task.data["server_secret"] is None  # the server's environment stays out
    assert task.data["cwd"] == str(tmp_path / "wf")
    assert "working..." in logs(task, "stderr")
    assert str(run.pk) in logs(task, "stdout")
    assert Project.objects.get(pk=project.pk).status == "Completed"


def test_a_non_zero_exit_fails_the_attempt_and_the_retry_policy_applies(tmp_path):
    code = """
        import sys
        print("disk full", file=sys.stderr)
        sys.exit(3)
    """
    retry = {"max_attempts": 2, "backoff_seconds": 0, "jitter": False}
    with_scripts(tmp_path, [script("work", code, retry=retry)])
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = task_of(project, "work")
    assert task.status == "Failed"
    assert task.attempts == 2
    assert "exited with status 3: disk full" in task.last_error
    assert list(TaskRun.objects.filter(task=task).values_list("status", "exit_code")) == [("Failed", 3)] * 2


def test_a_script_past_its_timeout_is_killed_with_its_children(tmp_path):
    code = """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(120)
    """
    # 2 s: time for a cold interpreter to start the child before the timeout.
    with_scripts(tmp_path, [script("slow", code, timeout_seconds=2, retry=NO_RETRY)])
    project = project_create(workflow_slug="wf", version_slug="v1")
    task = task_of(project, "slow")
    assert task.status == "Failed"
    assert "timed out after 2 s" in task.last_error
    child = int((tmp_path / "wf" / "child.pid").read_text())
    status = Path(f"/proc/{child}/status")

    def stopped() -> bool:  # gone, or a zombie waiting for a parent that is not reaping
        try:
            return "State:\tZ" in status.read_text()
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 10  # a signal lands when the process is next scheduled
    while not stopped() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stopped(), status.read_text()


def test_a_missing_program_fails_the_task_without_retrying(tmp_path):
    step = {
        "slug": "gone",
        "name": "Gone",
        "kind": "script",
        "execution": {"command": "/nonexistent/bin/report --fast"},
        "retry": {"max_attempts": 5},
    }
    load(tmp_path, [step])
    task = task_of(project_create(workflow_slug="wf", version_slug="v1"), "gone")
    assert task.status == "Failed"
    assert task.attempts == 1
    assert "could not start '/nonexistent/bin/report'" in task.last_error
    assert TaskRun.objects.get(task=task).status == "Cancelled"


def test_stdout_that_is_not_a_json_object_fails_with_a_clear_error(tmp_path):
    with_scripts(tmp_path, [script("chatty", "print('all good!')", retry=NO_RETRY)])
    task = task_of(project_create(workflow_slug="wf", version_slug="v1"), "chatty")
    assert task.status == "Failed"
    assert "stdout is not a JSON object: print one JSON object" in task.last_error
    assert "all good!" in logs(task, "stdout")


# --- the SDK: orchestra-sdk 0.2.0 and the legacy orcProcess client, unmodified ---------------------------

SDK_USER_CODE = """
    import os

    from orchestra_sdk.enum import TaskRunStatus
    from orchestra_sdk.orchestra import OrchestraSDK

    orchestra = OrchestraSDK(api_key=os.environ["ORCHESTRA_API_KEY"])


    @orchestra.run()
    def export_users():
        orchestra.update_task(TaskRunStatus.WARNING, "3 rows skipped")
        orchestra.set_output("row_count", 123)
        orchestra.set_output("table", {"name": "users", "columns": ["id", "email"]})


    export_users()
"""


@pytest.fixture
def served(live_server, settings):
    settings.ORCHESTRA_URL = live_server.url  # what script steps get as ORCHESTRA_WEBHOOK_URL
    return live_server


def test_unmodified_orchestra_sdk_code_completes_a_script_step_with_its_outputs(tmp_path, served):
    with_scripts(tmp_path, [script("export", SDK_USER_CODE, retry=NO_RETRY)])
    task = task_of(project_create(workflow_slug="wf", version_slug="v1"), "export")
    assert task.status == "Complete", task.last_error
    assert task.data == {"row_count": 123, "table": {"name": "users", "columns": ["id", "email"]}}
    run = TaskRun.objects.get(task=task)
    assert (run.status, run.reported_status) == ("Succeeded", "SUCCEEDED")
    reported = list(TaskLog.objects.filter(task=task, source="sdk").values_list("level", "message"))
    assert ("WARNING", "3 rows skipped") in reported
    assert [level for level, _ in reported] == ["RUNNING", "WARNING", "SUCCEEDED"]


def test_an_sdk_step_that_raises_fails_with_the_error_it_reported(tmp_path, served):
    code = """
        import os
        from orchestra_sdk.orchestra import OrchestraSDK

        orchestra = OrchestraSDK(api_key=os.environ["ORCHESTRA_API_KEY"])

        @orchestra.run()
        def load():
            raise RuntimeError("warehouse unreachable")

        load()
    """
    with_scripts(tmp_path, [script("load", code, retry=NO_RETRY)])
    task = task_of(project_create(workflow_slug="wf", version_slug="v1"), "load")
    # The SDK's decorator swallows the exception (exit status 0); its FAILED report fails the attempt.
    assert task.status == "Failed"
    assert "warehouse unreachable" in task.last_error
    assert TaskRun.objects.get(task=task).exit_code == 0


LEGACY_USER_CODE = """
    import os

    from orchestra_sdk.orcProcess.orcProcess import orcProcess


    def nightly_export():
        process = orcProcess(
            os.environ["ORCHESTRA_TASK_RUN_ID"], {"clientid": "acme", "apikey": os.environ["ORCHESTRA_API_KEY"]}
        )
        process.sendStageComplete("extracted", stage="extract", custom_data={"rows": 10})
        process.sendCompletion("Completed", custom_data={"rows": 10, "table": "users"})


    nightly_export()
"""


@pytest.fixture
def on_port_8000(transactional_db):
    """The legacy client posts to http://localhost:8000 (hard-coded): our server where it looks."""
    from pytest_django.live_server_helper import LiveServer

    try:
        server = LiveServer("localhost:8000")
    except Exception as exc:  # the port is taken: the test cannot stand where the client looks
        pytest.fail(f"port 8000 must be free for the legacy orcProcess test (its URL is hard-coded): {exc}")
    yield server
    server.stop()


def test_the_legacy_orcprocess_client_completes_a_script_step(tmp_path, on_port_8000):
    assert LEGACY_SDK.is_dir(), "run `make install`: it puts orchestra-sdk 0.0.9 in .venv/legacy-sdk"
    step = script("nightly", LEGACY_USER_CODE, retry=NO_RETRY, execution={"env": {"PYTHONPATH": str(LEGACY_SDK)}})
    with_scripts(tmp_path, [step])
    task = task_of(project_create(workflow_slug="wf", version_slug="v1"), "nightly")
    assert task.status == "Complete", task.last_error
    assert task.data == {"rows": 10, "table": "users"}
    run = TaskRun.objects.get(task=task)
    assert run.reported_status == "SUCCEEDED"
    stage = TaskLog.objects.get(task=task, source="sdk", name="extract")
    assert stage.message == 'extracted {"rows": 10}'


def test_the_webhook_refuses_a_wrong_key_bad_events_and_late_outputs(tmp_path):
    with_scripts(tmp_path, [script("work", "print('{}')", retry={"max_attempts": 1})])
    task = task_of(project_create(workflow_slug="wf", version_slug="v1"), "work")
    run = TaskRun.objects.get(task=task)
    client = Client()

    def post(body: dict[str, Any], key: str) -> Any:
        return client.post(WEBHOOK, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")

    other = uuid.uuid4()
    wrong = post({"event_type": "LOG", "task_run_id": str(run.pk), "data": "x"}, run_key(other))
    assert wrong.status_code == 401 and "not the key of task run" in wrong.json()["message"]
    assert client.post(WEBHOOK, {}, content_type="application/json").status_code == 401
    missing = post({"event_type": "UPDATE_STATUS", "task_run_id": str(run.pk)}, run_key(run.pk))
    assert missing.status_code == 400 and missing.json()["field"] == "status"
    bad = post({"event_type": "UPDATE_STATUS", "task_run_id": str(run.pk), "status": "DONE"}, run_key(run.pk))
    assert bad.status_code == 400 and "status" in bad.json()["message"]
    unknown = post({"event_type": "LOG", "task_run_id": str(other), "data": "x"}, run_key(other))
    assert unknown.status_code == 404
    # The run finished: a late output is refused (409), a log is still kept.
    late = post(
        {"event_type": "SET_OUTPUT", "task_run_id": str(run.pk), "output_name": "x", "output_value": 1},
        run_key(run.pk),
    )
    assert late.status_code == 409 and "is Succeeded" in late.json()["message"]
    assert (
        post({"event_type": "LOG", "task_run_id": str(run.pk), "data": "late line"}, run_key(run.pk)).status_code == 200
    )
    assert Task.objects.get(pk=task.pk).data == {}
    assert "late line" in logs(task, "sdk")


# --- external steps: push (a signed trigger) -------------------------------------------------------------


class Receiver:
    """An outside service: records each trigger it receives, answering `status`."""

    def __init__(self, status: int = 202) -> None:
        self.triggers: list[tuple[bytes, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.triggers.append((body, self.headers.get("X-Orchestra-Signature", "")))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    service = Receiver()
    yield service
    service.close()


def external(slug: str, *deps: str, **execution: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": slug.title(),
        "kind": "external",
        "creation_depends_on": list(deps),
        "execution": execution,
        "retry": {"max_attempts": 2, "backoff_seconds": 0, "jitter": False},
    }


def test_an_external_step_is_triggered_and_completed_through_the_sdk(tmp_path, served, receiver, settings):
    from orchestra_sdk.enum import TaskRunStatus
    from orchestra_sdk.orchestra import OrchestraSDK

    settings.ORCHESTRA_TRIGGER_SECRET = "shared-secret"
    load(tmp_path, [machine("prep"), external("publish", "prep", url=receiver.url, wait_seconds=600)])
    project = project_create(workflow_slug="wf", version_slug="v1", project_data={"article": 7})
    task = task_of(project, "publish")
    assert task.status == "Processing"  # waiting for the service to report
    ((body, signature),) = receiver.triggers
    with pytest.raises(SignatureError, match="does not match"):
        verify_trigger("another-secret", body, signature)
    trigger = verify_trigger("shared-secret", body, signature)
    assert trigger["input"] == {
        "project_data": {"article": 7, "project_id": project.pk},
        "prerequisites": {"prep": {"ok": True}},
    }
    assert trigger["webhook_url"] == served.url + WEBHOOK

    # The outside service reports with the unmodified SDK, given the run id, webhook URL and key.
    orchestra = OrchestraSDK(api_key=trigger["api_key"])
    orchestra.configure_aws_lambda_event(
        {"orchestra_task_run_id": trigger["task_run_id"], "orchestra_webhook_url": trigger["webhook_url"]}
    )
    assert orchestra.update_task(TaskRunStatus.RUNNING, "publishing")
    assert orchestra.set_output("url", "https://news.test/7")
    assert orchestra.update_task(TaskRunStatus.SUCCEEDED)
    task.refresh_from_db()
    assert task.status == "Complete"
    assert task.data == {"url": "https://news.test/7"}
    assert Project.objects.get(pk=project.pk).status == "Completed"


def test_external_failed_retries_and_cancelled_fails_for_good(tmp_path, served, receiver, settings):
    settings.ORCHESTRA_TRIGGER_SECRET = "s"
    load(tmp_path, [external("publish", url=receiver.url)])
    project = project_create(workflow_slug="wf", version_slug="v1")

    def report(status: str) -> requests.Response:
        trigger = json.loads(receiver.triggers[-1][0])
        body = {"event_type": "UPDATE_STATUS", "task_run_id": trigger["task_run_id"], "status": status}
        return requests.post(
            trigger["webhook_url"], json=body, headers={"Authorization": f"Bearer {trigger['api_key']}"}
        )

    first = report("FAILED")
    assert first.json()["task_status"] == "Processing"  # retried at once: a second trigger went out
    assert len(receiver.triggers) == 2
    assert report("CANCELLED").json() == {
        "ok": True,
        "task_run_id": json.loads(receiver.triggers[-1][0])["task_run_id"],
        "run_status": "Cancelled",
        "task_status": "Failed",
    }
    assert len(receiver.triggers) == 2
    assert task_of(project, "publish").status == "Failed"


def test_a_trigger_without_a_secret_or_a_reachable_service_fails_the_attempt(tmp_path, receiver):
    load(tmp_path, [external("publish", url=receiver.url)], slug="nosecret")
    task = task_of(project_create(workflow_slug="nosecret", version_slug="v1"), "publish")
    assert task.status == "Failed"
    assert "no secret to sign the trigger with: set ORCHESTRA_TRIGGER_SECRET" in task.last_error
    assert receiver.triggers == []


# --- external steps: pull mode --------------------------------------------------------------------------


@pytest.fixture
def pull_client(served):
    issued = apikey_create(name="gpu-workers")
    return OrchestraClient(served.url, issued.key.key_id, issued.secret)


def test_two_competing_pull_workers_never_get_the_same_task(tmp_path, pull_client):
    load(tmp_path, [external("render", queue="gpu")])
    projects = [project_create(workflow_slug="wf", version_slug="v1", project_data={"n": n}) for n in range(12)]
    assert Task.objects.filter(status="Awaiting Processing").count() == 12  # nobody runs pull-mode tasks itself
    got: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def work(name: str) -> None:
        start.wait()
        while runs := pull_client.claim_tasks("gpu", worker=name, max_tasks=2):
            for run in runs:
                got[name].append(run)
                pull_client.complete_run(run, {"by": name, "n": run["input"]["project_data"]["n"]})

    threads = [threading.Thread(target=work, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [run["task_id"] for runs in got.values() for run in runs]
    assert len(claimed) == len(set(claimed)) == 12
    for project in projects:
        task = task_of(project, "render")
        assert task.status == "Complete"
        assert task.data["n"] == project.project_data["n"]


def test_pull_heartbeat_fail_and_an_expired_lease(tmp_path, pull_client):
    step = external("render", queue="gpu")
    step["retry"]["max_attempts"] = 3
    load(tmp_path, [step])
    project = project_create(workflow_slug="wf", version_slug="v1")
    with pytest.raises(OrchestraAPIError) as bad:
        pull_client.claim_tasks("gpu queue!")
    assert bad.value.status == 400
    assert bad.value.message == (
        "queue: 'gpu queue!' is not a queue name; use up to 100 letters, digits, '_', '.', ':' and '-',"
        " starting with a letter or digit"
    )
    (run,) = pull_client.claim_tasks("gpu", lease_seconds=60)
    assert pull_client.claim_tasks("gpu") == []
    beat = pull_client.heartbeat_run(run, lease_seconds=600)
    assert beat["lease_expires_at"] > run["lease_expires_at"]
    with pytest.raises(OrchestraAPIError) as refused:
        pull_client.complete_run({**run, "api_key": run_key(uuid.uuid4())})
    assert refused.value.status == 401
    assert pull_client.fail_run(run, "GPU out of memory")["task_status"] == "Awaiting Processing"
    with pytest.raises(OrchestraAPIError) as late:
        pull_client.complete_run(run, {"late": True})
    assert late.value.status == 409
    # The second attempt's worker vanishes: once its lease expires, the task is claimed again.
    (second,) = pull_client.claim_tasks("gpu", lease_seconds=60)
    assert second["attempt"] == 2
    Task.objects.filter(pk=second["task_id"]).update(lease_expires_at="2000-01-01T00:00:00Z")
    (third,) = pull_client.claim_tasks("gpu")
    assert third["attempt"] == 3 and third["task_run_id"] != second["task_run_id"]
    assert TaskRun.objects.get(pk=second["task_run_id"]).status == "Failed"
    with pytest.raises(OrchestraAPIError) as superseded:
        pull_client.heartbeat_run(second)
    assert superseded.value.status == 409
    pull_client.complete_run(third, {"frames": 24})
    task = task_of(project, "render")
    assert (task.status, task.data) == ("Complete", {"frames": 24})


# --- query counts ---------------------------------------------------------------------------------------

# Queries per request, authentication included (on SQLite, BEGIN counts as a query).
# `complete` includes completing the task, creating the next one and running it (eager executor).
# Since the audit ledger each transaction moves its project chain's head: one statement more per transaction.
SDK_BOUNDS = {"claim": 16, "heartbeat": 3, "log": 4, "set_output": 9, "running": 11, "complete": 24, "run": 2}


def _sdk_counts(tmp_path: Path, backlog: int) -> dict[str, int]:
    from tests.integration.test_api_queries_and_docs import request_counts, signed

    slug = f"pull{backlog}"
    load(tmp_path, [external("render", queue="gpu"), machine("after", "render")], slug=slug)
    for _ in range(backlog):
        project_create(workflow_slug=slug, version_slug="v1")
    issued = apikey_create(name=slug)
    client = Client()
    claimed = signed(
        client, issued.key.key_id, issued.secret, "POST", "/orchestra/api/sdk/runs/claim/", {"queue": "gpu"}
    )
    run_id = claimed.json()["runs"][0]["task_run_id"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {run_key(run_id)}"}

    def post(path: str, body: dict[str, Any]) -> Any:
        return client.post(path, json.dumps(body), content_type="application/json", **bearer)

    def event(kind: str, **fields: Any) -> Any:
        return post(WEBHOOK, {"event_type": kind, "task_run_id": run_id, **fields})

    runs = f"/orchestra/api/sdk/runs/{run_id}/"
    calls = {
        "claim": lambda: signed(
            client,
            issued.key.key_id,
            issued.secret,
            "POST",
            "/orchestra/api/sdk/runs/claim/",
            {"queue": "gpu", "worker": "second"},  # B12's httpsig signs only the Date: vary the body
        ),
        "heartbeat": lambda: post(runs + "heartbeat/", {}),
        "log": lambda: event("LOG", data="line"),
        "set_output": lambda: event("SET_OUTPUT", output_name="frames", output_value=24),
        "running": lambda: event("UPDATE_STATUS", status="RUNNING"),
        "complete": lambda: post(runs + "complete/", {"output": {"done": True}}),
        "run": lambda: client.get(runs, **bearer),
    }
    return request_counts(calls)


def test_sdk_endpoint_query_counts_are_bounded_and_do_not_grow(tmp_path):
    small = _sdk_counts(tmp_path / "small", 3)
    big = _sdk_counts(tmp_path / "big", 30)
    assert big == small, (small, big)
    for name, bound in SDK_BOUNDS.items():
        assert small[name] <= bound, (name, small[name], bound)
