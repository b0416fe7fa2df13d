"""Orchestra's database backends (orchestra.db). PostgreSQL: a kept connection is checked before each request's
first query, without a round trip while it is quiet, and replaced when the server has closed it; requests are
simulated with Django's own signals, as a WSGI server sends them (the test client leaves connections alone).
SQLite: statements mean the same when their placeholder conversion is reused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from django.core.signals import request_finished, request_started
from django.db import connection, transaction

from orchestra.models import Project, SeenSignature
from orchestra.services.access import signature_expiry, signature_first_use

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to lose the connection")
    settings = connection.settings_dict
    assert settings["ENGINE"] == "orchestra.db.postgresql"
    assert settings["CONN_HEALTH_CHECKS"] and settings["CONN_MAX_AGE"]
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"] or None
    )
    with psycopg.connect(conninfo, autocommit=True) as other:
        yield other


def open_a_cursor():
    """A request's first use of the connection, where Django checks it."""
    connection.cursor().close()


def request(query):
    """What a WSGI server does around one request: signals before and after, the view's query between."""
    request_started.send(sender=None)
    try:
        return query()
    finally:
        request_finished.send(sender=None)


def last_statement(other, pid: int) -> str:
    return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def test_a_quiet_connection_is_reused_without_a_select_1(postgres):
    request(lambda: Project.objects.filter(priority=4242).count())
    pid = connection.connection.info.backend_pid
    first = last_statement(postgres, pid)
    assert '"priority" = ' in first

    request(open_a_cursor)
    assert connection.connection.info.backend_pid == pid  # kept between requests
    assert last_statement(postgres, pid) == first  # Django's own check would have run SELECT 1 here


def test_a_connection_the_server_closed_is_replaced_before_the_request_uses_it(postgres):
    request(lambda: Project.objects.count())
    pid = connection.connection.info.backend_pid
    assert postgres.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    deadline = time.monotonic() + 5
    while postgres.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
        assert time.monotonic() < deadline, "the terminated backend did not go away"
        time.sleep(0.01)

    assert request(lambda: Project.objects.count()) == 0  # no error: the check saw the closed socket
    assert connection.connection.info.backend_pid != pid


def test_a_connection_with_unread_messages_gets_the_full_check(postgres):
    """A notice the server sent while the connection sat idle makes the socket readable: the backend then asks
    with SELECT 1 (which reads the notice) rather than guess."""
    request(lambda: Project.objects.count())
    pid = connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("LISTEN orchestra_test_health")
    postgres.execute("NOTIFY orchestra_test_health")
    time.sleep(0.05)
    request(open_a_cursor)
    assert last_statement(postgres, pid) == "SELECT 1"
    assert connection.connection.info.backend_pid == pid  # usable, so kept
    with connection.cursor() as cursor:
        cursor.execute("UNLISTEN *")


def test_a_signature_is_recorded_once_and_nothing_else_loses_durability(postgres):
    """The replay record commits without waiting for the disk (its own transaction only): the setting must not
    outlive that statement, nor reach a caller's transaction."""
    expires = signature_expiry(time.time() + 300)
    assert signature_first_use("sig-outside", expires)
    assert not signature_first_use("sig-outside", expires)  # a replay
    assert show(connection, "synchronous_commit") == "on"
    with transaction.atomic():
        assert signature_first_use("sig-inside", expires)
        assert show(connection, "synchronous_commit") == "on"  # the caller's commit still waits for the disk
    assert not signature_first_use("sig-inside", expires)
    assert SeenSignature.objects.filter(signature_id__startswith="sig-").count() == 2


def show(conn, name: str) -> str:
    with conn.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_sqlite_statements_keep_their_meaning_when_their_conversion_is_reused():
    """orchestra.db.sqlite3 converts a statement's `%s` placeholders (and `%%`) once and reuses the result."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: the PostgreSQL driver takes `%s` itself")
    assert connection.settings_dict["ENGINE"] == "orchestra.db.sqlite3"
    with connection.cursor() as cursor:
        for value in (1, 2):
            cursor.execute("SELECT %s, '100%%', %s || '%%s'", [value, "x"])
            assert cursor.fetchone() == (value, "100%", "x%s")
        cursor.execute("SELECT %(a)s + %(b)s", {"a": 2, "b": 3})  # the named style still works
        assert cursor.fetchone() == (5,)


def _wal_frames(path: str) -> tuple[int, int]:
    """(frames in the log, frames of it copied back into the database) from the log's index (-shm): SQLite's
    wal-index header, documented at sqlite.org/walformat.html (mxFrame at byte 16, nBackfill at byte 96).

    Read by another process: closing a file this process opened drops every POSIX lock it holds on it,
    SQLite's included, and another process opening the database would then clear the index under it."""
    script = (
        "import struct, sys; head = open(sys.argv[1], 'rb').read(100);"
        " print(*struct.unpack_from('=I', head, 16), *struct.unpack_from('=I', head, 96))"
    )
    out = subprocess.run([sys.executable, "-c", script, f"{path}-shm"], capture_output=True, text=True, check=True)
    frames, copied = out.stdout.split()
    return int(frames), int(copied)


def test_sqlite_commits_leave_checkpoints_to_a_thread(tmp_path):
    """orchestra.db.sqlite3: commits checkpoint the log only past SAFETY_PAGES; a thread per process and file
    copies it back meanwhile, so no commit waits for it."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: its write-ahead log")
    from orchestra.db.sqlite3 import base
    from tests.support.workflows import load, machine

    connection.ensure_connection()
    path = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == base.SAFETY_PAGES
    assert any(t.name == f"orchestra-sqlite-checkpoint {path}" for t in threading.enumerate())

    from orchestra.services.projects import project_create

    load(tmp_path, [machine("a"), machine("b", "a")])
    frames, copied = _wal_frames(path)
    deadline = time.monotonic() + 5
    while frames == copied and time.monotonic() < deadline:  # until the log holds frames not yet copied back
        project_create(workflow_slug="wf", version_slug="v1", project_data={"pad": "x" * 3000})
        frames, copied = _wal_frames(path)
    assert frames > copied
    deadline = time.monotonic() + 5
    while _wal_frames(path)[1] < frames and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _wal_frames(path)[1] >= frames, "the checkpoint thread did not copy the log back"


def test_the_sqlite_checkpoint_thread_never_makes_a_database(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: its write-ahead log")
    from orchestra.db.sqlite3 import base

    gone = tmp_path / "gone.sqlite3"
    sqlite3.connect(gone).execute("PRAGMA journal_mode=WAL").close()
    thread = base._Checkpointer(str(gone))
    gone.unlink()
    thread.checkpoint()
    assert not gone.exists()
    memory = sqlite3.connect(":memory:")
    assert base.checkpointed_file(memory) is None
