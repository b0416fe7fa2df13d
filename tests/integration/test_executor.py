"""The local executor with real threads and a real `orchestra worker` process; leases and late results."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from orchestra.engine.errors import Conflict
from orchestra.execution.local import LocalExecutor
from orchestra.models import Event, Project, Task
from orchestra.services.machine import machine_claim, machine_succeed
from orchestra.services.projects import project_create
from tests.support.workflows import load, machine

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


DIAMOND = [machine("a"), machine("b", "a"), machine("c", "a"), machine("d", "b", "c")]


def test_local_executor_runs_queued_work_in_threads(tmp_path, settings):
    load(tmp_path, DIAMOND)
    settings.ORCHESTRA_EXECUTOR = "local"
    projects = [project_create(workflow_slug="wf", version_slug="v1") for _ in range(5)]
    assert Task.objects.filter(status="Awaiting Processing").count() == 5  # nothing runs in the request
    executor = LocalExecutor(threads=3, poll_seconds=0.1).start()
    try:
        assert wait_for(lambda: Project.objects.filter(status="Completed").count() == 5)
    finally:
        executor.stop()
    for project in projects:
        assert Event.objects.filter(project=project, action="task_completed").count() == 4


def test_an_expired_lease_is_taken_over_and_the_late_result_refused(tmp_path, settings):
    load(tmp_path, [machine("a")])
    settings.ORCHESTRA_EXECUTOR = "local"
    project = project_create(workflow_slug="wf", version_slug="v1")
    (dead,) = machine_claim(owner="dead-worker", limit=1)
    assert machine_claim(owner="other", limit=1) == []  # still leased
    Task.objects.filter(pk=dead.task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    (alive,) = machine_claim(owner="alive-worker", limit=1)
    assert alive.task_id == dead.task_id and alive.attempt == 2
    machine_succeed(task_id=alive.task_id, token=alive.token, output={"by": "alive"})
    with pytest.raises(Conflict, match="result refused"):
        machine_succeed(task_id=dead.task_id, token=dead.token, output={"by": "dead"})
    task = Task.objects.get(pk=dead.task_id)
    assert task.status == "Complete" and task.data == {"by": "alive"}
    assert Event.objects.filter(task=task, action="task_completed").count() == 1
    assert (
        Event.objects.get(task=task, action="task_claimed", data__owner="alive-worker").data["took_over"]
        == "dead-worker"
    )
    project.refresh_from_db()
    assert project.status == "Completed"


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgresql://{user}@{host}:{port}/{db['NAME']}"


def test_orchestra_worker_process_picks_up_work_queued_before_it_started(tmp_path, settings):
    load(tmp_path, DIAMOND)
    settings.ORCHESTRA_EXECUTOR = "local"
    projects = [project_create(workflow_slug="wf", version_slug="v1") for _ in range(3)]
    env = {
        **os.environ,
        "ORCHESTRA_DATABASE_URL": _database_url(),
        "ORCHESTRA_EXECUTOR": "local",
        "ORCHESTRA_POLL_SECONDS": "0.1",
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "orchestra.settings",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "orchestra.cli", "worker", "--threads", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        done = wait_for(
            lambda: Project.objects.filter(pk__in=[p.pk for p in projects], status="Completed").count() == 3
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)[0]
    assert done, output
    assert "orchestra worker running" in output
    assert worker.returncode == 0, output


def test_ending_a_project_stops_its_running_step(tmp_path, settings):
    from tests.support import functions

    functions.RAN_TO_THE_END.clear()
    settings.ORCHESTRA_LEASE_SECONDS = 1.5  # the watchdog looks every half second
    load(tmp_path, [machine("slow", function="runs_long", kwargs={"seconds": 20})])
    settings.ORCHESTRA_EXECUTOR = "local"
    project = project_create(workflow_slug="wf", version_slug="v1")
    executor = LocalExecutor(threads=1, poll_seconds=0.05).start()
    try:
        assert wait_for(lambda: Task.objects.filter(project=project, status="Processing").exists())
        from orchestra.services.projects import project_end

        project_end(project_id=project.pk)
        assert wait_for(lambda: executor.idle() == 1, timeout=5)  # the step was stopped, not left to run 20 s
    finally:
        executor.stop()
    assert functions.RAN_TO_THE_END == []
    assert Task.objects.get(project=project).status == "Aborted"


def test_a_worker_starts_work_another_process_queued_without_waiting_for_its_poll(tmp_path, settings):
    """execution.notify: the web process (no executor here) announces the queued steps; the worker, polling only
    every minute, is woken (PostgreSQL's NOTIFY; on SQLite, its Unix socket) and runs the whole chain at once."""
    from tests.support.processes import Worker, worker_env
    from tests.support.processes import wait_for as wait

    load(tmp_path, DIAMOND)
    settings.ORCHESTRA_EXECUTOR = "local"
    worker = Worker(["--threads", "2"], worker_env(ORCHESTRA_POLL_SECONDS="60"), tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert wait(lambda: "listening for work other processes announce" in worker.output(), 30), worker.output()
        started = time.monotonic()
        project = project_create(workflow_slug="wf", version_slug="v1")
        assert wait(lambda: Project.objects.get(pk=project.pk).status == "Completed", 20), worker.output()
        assert time.monotonic() - started < 20  # the poll would have taken a minute
    finally:
        worker.stop()


def test_on_sqlite_an_announcement_reaches_other_processes_sockets_and_clears_dead_ones():
    """execution.notify on SQLite: the channel's name goes to every listener's socket but this process's own,
    and the socket of a listener that is gone (killed, so it could not remove it) is removed."""
    from orchestra.execution import notify

    directory = notify._socket_directory()
    if directory is None:
        pytest.skip("SQLite (a database file) only: PostgreSQL announces with NOTIFY")
    directory.mkdir(mode=0o700, exist_ok=True)
    other = directory / "999999999-test.sock"  # another process's listener
    dead = directory / "999999998-test.sock"  # a killed one's
    own = directory / f"{os.getpid()}-test.sock"  # this process wakes its own executor directly
    listening, gone, mine = (socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(3))
    try:
        for sock, path in ((listening, other), (gone, dead), (mine, own)):
            sock.bind(str(path))
            sock.settimeout(2)
        gone.close()
        notify.announce(notify.WORK)
        assert listening.recv(64) == b"orchestra_work"
        assert not dead.exists()
        mine.settimeout(0.2)
        with pytest.raises(TimeoutError):
            mine.recv(64)
    finally:
        for sock in (listening, mine):
            sock.close()
        for path in (other, own):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # unless a listener is there
            directory.rmdir()
