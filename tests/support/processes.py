"""Real `orchestra worker` processes against the test database, and the Redis a Celery worker needs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def database_url() -> str:
    """The test database as an ORCHESTRA_DATABASE_URL for another process (SQLite tests use a file)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{user}{password}@{host}:{port}/{db['NAME']}"


def redis_url() -> str:
    """ORCHESTRA_TEST_REDIS_URL (CI sets it: Redis must then answer), else a local Redis if one answers,
    else skip, saying how to run these tests."""
    import redis

    url = os.environ.get("ORCHESTRA_TEST_REDIS_URL")
    try:
        redis.Redis.from_url(url or "redis://127.0.0.1:6379/0", socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if url:
            pytest.fail(f"ORCHESTRA_TEST_REDIS_URL={url} but Redis does not answer: {exc}", pytrace=False)
        pytest.skip(f"no Redis at 127.0.0.1:6379 ({exc}); start one or set ORCHESTRA_TEST_REDIS_URL")
    return url or "redis://127.0.0.1:6379/0"


def forget_queue(url: str, queue: str) -> None:
    """Remove a Celery queue from Redis: its list, its binding, and messages killed workers left unacked."""
    import redis

    client = redis.Redis.from_url(url)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, payload in client.hscan_iter("unacked"):
        try:
            routing_key = json.loads(payload)[2]
        except (ValueError, IndexError):
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


class Worker:
    """One `orchestra worker` process in a process group of its own (a Celery worker's pool included), its
    output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.log = args, log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchestra.cli", "worker", *args],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ready(self) -> bool:
        """Whether it says it runs work: a Celery worker is "ready", the local executor "running"."""
        output = self.output()
        return " ready." in output or "orchestra worker running" in output

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not wait_for(lambda: self.ready() or self.process.poll() is not None, timeout, 0.1):
            raise AssertionError(f"the worker did not start in {timeout} s:\n{self.output()}")
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited with {self.process.returncode}:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: nothing gets to clean up, as in a power cut."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a warm shutdown), then SIGKILL if it has not exited after `timeout` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # A Celery pool's children leave with their parent; make sure nothing is left behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker process on the test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orchestra.settings",
        "ORCHESTRA_DATABASE_URL": database_url(),
        "PYTHONPATH": str(REPO),
        "ORCHESTRA_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
