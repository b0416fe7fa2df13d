"""The `orchestra` command as a user runs it: real processes, a fresh ORCHESTRA_HOME, the default SQLite."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "DJANGO_"))}
    return {**clean, "ORCHESTRA_HOME": str(tmp_path / "home"), "ORCHESTRA_POLL_SECONDS": "0.2"}


def orchestra(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestra.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_orchestra_commands_first(env):
    result = orchestra("--help", env=env)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: orchestra <command>")
    for command in ("serve", "worker", "demo", "loadworkflow", "loadallworkflows", "loadworkflowsampledata"):
        assert f"  {command} " in result.stdout


def test_commands_on_an_unmigrated_database_say_to_migrate(env):
    result = orchestra("loadworkflow", "simple_workflow", env=env)
    assert result.returncode == 1
    assert "is not migrated: run `orchestra migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_definition_exits_1_with_the_problem_and_no_traceback(env, tmp_path):
    assert orchestra("migrate", env=env).returncode == 0
    directory = tmp_path / "broken"
    (directory / "v1").mkdir(parents=True)
    (directory / "workflow.json").write_text('{"slug": "broken", "name": "Broken"}')
    (directory / "v1" / "version.json").write_text(
        '{"slug": "v1", "name": "v1", "steps": [{"slug": "a", "name": "A", "creation_depends_on": ["b"]}]}'
    )
    result = orchestra("loadworkflow", str(directory), env=env)
    assert result.returncode == 1
    assert "steps[0].creation_depends_on[0]: unknown step 'b'" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_yes_runs_the_simple_workflow_offline(env):
    port = free_port()
    env = {**env, "ORCHESTRA_URL": f"http://127.0.0.1:{port}"}
    result = orchestra("demo", "--yes", env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Project with id 1 created!" in out
    assert f"http://127.0.0.1:{port}/orchestra/static/orchestra/demo/" in out  # the image it crawled
    assert "Task complete!" in out and "'rating': 5" in out and "Project status: Completed" in out


def test_serve_load_examples_serves_the_app_and_prints_logins(env):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestra.cli", "serve", "--load-examples", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/orchestra/demo/gallery/", timeout=2) as response:
                    body = response.read()
                break
            except OSError:
                time.sleep(0.3)
        assert b"<img" in body
        image = body.split(b'src="', 1)[1].split(b'"', 1)[0].decode()
        assert image.startswith(f"http://127.0.0.1:{port}/orchestra/static/")
        with urllib.request.urlopen(image, timeout=5) as response:
            assert response.status == 200 and b"<svg" in response.read()
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert f"Orchestra is running at http://127.0.0.1:{port}/orchestra/" in output
    for login in ("demo", "journalism-editor", "journalism-copy-editor", "admin"):
        assert login in output


def test_orchestra_check_names_a_bad_executor_and_a_missing_celery(settings, monkeypatch):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.ORCHESTRA_EXECUTOR = "threads"
    with pytest.raises(SystemCheckError, match=r"(?s)orchestra.E001.*'threads'.*one of: local, eager, celery"):
        call_command("check")
    settings.ORCHESTRA_EXECUTOR = "celery"
    call_command("check")  # installed here
    monkeypatch.setitem(sys.modules, "celery", None)  # as on a machine without it: `import celery` fails
    with pytest.raises(SystemCheckError, match=r"(?s)orchestra.E002.*Celery is not installed.*orchestra\[celery\]"):
        call_command("check")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ORCHESTRA_LEASE_SECONDS", "5m", "ORCHESTRA_LEASE_SECONDS='5m' is not a number more than 0"),
        ("ORCHESTRA_POLL_SECONDS", "0", "ORCHESTRA_POLL_SECONDS='0' is not a number more than 0"),
        (
            "ORCHESTRA_OUTBOX_MAX_ATTEMPTS",
            "2.5",
            "ORCHESTRA_OUTBOX_MAX_ATTEMPTS='2.5' is not a whole number at least 1",
        ),
        (
            "ORCHESTRA_OUTBOX_THREADS",
            "0",
            "ORCHESTRA_OUTBOX_THREADS='0' is not a whole number at least 1",
        ),
        (
            "ORCHESTRA_DATABASE_CONN_MAX_AGE",
            "-1",
            "ORCHESTRA_DATABASE_CONN_MAX_AGE='-1' is not a whole number at least 0",
        ),
        ("ORCHESTRA_DEBUG", "maybe", "ORCHESTRA_DEBUG='maybe' is not a yes/no value: set it to 1 or 0"),
        ("ORCHESTRA_LOG_LEVEL", "loud", "ORCHESTRA_LOG_LEVEL='loud' is not a log level: set it to DEBUG, INFO"),
    ],
)
def test_a_bad_setting_is_one_line_that_names_it(env, variable, value, message):
    result = orchestra("check", env={**env, variable: value})
    assert result.returncode == 1
    assert result.stderr.startswith(f"orchestra: {message}")
    assert "or unset it" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_empty_setting_counts_as_unset(env):
    blank = {
        name: "" for name in ("ORCHESTRA_LEASE_SECONDS", "ORCHESTRA_DEBUG", "ORCHESTRA_LOG_LEVEL", "ORCHESTRA_URL")
    }
    result = orchestra(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.ORCHESTRA_LEASE_SECONDS, s.DEBUG, s.ORCHESTRA_URL)",
        env={**env, **blank},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["300.0", "False", "http://127.0.0.1:8000"]


def test_serve_refuses_a_port_it_cannot_listen_on_before_saying_it_runs(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = orchestra("serve", "--port", str(port), env=env, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use): stop what uses it" in result.stderr
    assert "is running" not in result.stdout
    assert "Traceback" not in result.stderr
    result = orchestra("serve", "--port", "99999", env=env, timeout=60)
    assert result.returncode == 1
    assert "--port must be 1 to 65535 (got 99999)" in result.stderr


def test_the_demo_says_why_its_crawl_failed_in_one_line(env):
    assert orchestra("migrate", env=env).returncode == 0
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    env = {**env, "ORCHESTRA_URL": f"http://127.0.0.1:{free_port()}"}
    result = orchestra("demo", "--yes", "--url", url, env=env, timeout=120)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("CommandError: the crawl step ended 'Failed': ConnectionError(")
    assert "Connection refused" in error and "/orchestra/app/projects/" in error
    assert "Traceback" not in result.stderr


def test_a_worker_with_no_threads_is_refused(env):
    assert orchestra("migrate", env=env).returncode == 0
    result = orchestra("worker", "--threads", "0", env=env, timeout=60)
    assert result.returncode == 1
    assert "--threads must be at least 1 (got 0)" in result.stderr
    assert "Traceback" not in result.stderr
