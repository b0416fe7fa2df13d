"""The database floor under a benchmark: the statements Orchestra sent, replayed through the bare driver.

`Recording` notes every statement Django's default connection runs, with its parameters, and where transactions
begin and end; `mark()` starts a new group (a project, a request). `snapshot` keeps the database as it was before
the recording and makes copies of it (`drop` and `drop_snapshot` remove them), and `replay` runs the recorded
groups on such a copy through a bare `sqlite3` or `psycopg` connection, with nothing around them but the loop,
and times each group.

On PostgreSQL a group's statements go in one pipeline: one exchange with the server for the whole group, which
no code that reads results between statements can beat. On SQLite they run one after the other in-process. The
copies keep the recorded ids valid (SQLite: a file copy; PostgreSQL: `CREATE DATABASE … TEMPLATE`, sequences
included), so every compare-and-set matches the rows it matched when recorded.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BEGIN, COMMIT, ROLLBACK = "BEGIN", "COMMIT", "ROLLBACK"


@dataclass
class Recording:
    """Groups of (sql, params, many); BEGIN / COMMIT / ROLLBACK appear as bare strings."""

    groups: list[list[Any]] = field(default_factory=list)

    def mark(self) -> None:
        self.groups.append([])

    def add(self, entry: Any) -> None:
        if not self.groups:
            self.mark()
        self.groups[-1].append(entry)

    @property
    def statements(self) -> int:
        return sum(1 for g in self.groups for e in g if not isinstance(e, str))

    @property
    def commits(self) -> int:
        return sum(1 for g in self.groups for e in g if e == COMMIT)


@contextmanager
def recording() -> Iterator[Recording]:
    """Record what Django's default connection sends while the block runs."""
    from django.db import connection

    rec = Recording()
    connection.ensure_connection()

    def sql_wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        rec.add((sql, params, many))
        return execute(sql, params, many, context)

    real_commit, real_rollback, real_autocommit = (
        connection._commit,
        connection._rollback,
        connection._set_autocommit,
    )

    def commit() -> Any:
        rec.add(COMMIT)
        return real_commit()

    def rollback() -> Any:
        rec.add(ROLLBACK)
        return real_rollback()

    def set_autocommit(autocommit: bool) -> Any:
        if not autocommit:
            rec.add(BEGIN)  # psycopg sends it before the next statement; SQLite's BEGIN IMMEDIATE is a statement
        return real_autocommit(autocommit)

    connection._commit, connection._rollback, connection._set_autocommit = commit, rollback, set_autocommit
    try:
        with connection.execute_wrapper(sql_wrapper):
            yield rec
    finally:
        del connection._commit, connection._rollback, connection._set_autocommit


def snapshot(label: str) -> Callable[[int], str]:
    """Copy the default database as it is now; returns `make(k)`, which makes copy k of it (a SQLite path or a
    PostgreSQL URL). Django's connections are closed (PostgreSQL copies need the database to have none)."""
    from django.db import connection, connections

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        source = Path(settings["NAME"])
        snap = source.with_name(f"{label}-snapshot.sqlite3")
        connection.ensure_connection()
        target = sqlite3.connect(snap)
        connection.connection.backup(target)
        target.close()

        def make_sqlite(k: int) -> str:
            copy = source.with_name(f"{label}-{k}.sqlite3")
            shutil.copy(snap, copy)
            return str(copy)

        return make_sqlite
    import psycopg

    connections.close_all()
    url = _postgres_url(settings)
    snap_name = f"{settings['NAME']}_{label}_snapshot"
    with psycopg.connect(_maintenance(url), autocommit=True) as conn:
        _copy_database(conn, settings["NAME"], snap_name)

    def make_postgres(k: int) -> str:
        name = f"{settings['NAME']}_{label}_{k}"
        with psycopg.connect(_maintenance(url), autocommit=True) as conn:
            _copy_database(conn, snap_name, name)
        return _with_name(url, name)

    return make_postgres


def drop(where: str) -> None:
    """Remove a copy (or a snapshot) made by `snapshot`."""
    if "://" not in where:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{where}{suffix}").unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    name = urlsplit(where).path.lstrip("/")
    with psycopg.connect(_maintenance(where), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def drop_snapshot(label: str) -> None:
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        drop(str(Path(settings["NAME"]).with_name(f"{label}-snapshot.sqlite3")))
    else:
        drop(_with_name(_postgres_url(settings), f"{settings['NAME']}_{label}_snapshot"))


@dataclass
class Replayed:
    seconds: list[float]  # per group
    commit_seconds: float | None  # in COMMIT, in all (SQLite; a PostgreSQL pipeline does not tell)


def replay(where: str, rec: Recording, init: str = "", *, pipelined: bool = True) -> Replayed:
    """How long each group takes through a bare connection to `where` (a copy from `snapshot`). `init`: the
    SQLite connection's pragmas (Orchestra's, so the floor commits as Orchestra does). On PostgreSQL,
    `pipelined=False` sends each statement (and each BEGIN and COMMIT) in an exchange of its own."""
    if "://" in where:
        return _replay_postgres(where, rec, pipelined)
    return _replay_sqlite(where, rec, init)


def _replay_sqlite(path: str, rec: Recording, init: str) -> Replayed:
    from orchestra.db.sqlite3.base import _qmark

    def plain(value: Any) -> Any:  # TextChoices and the like, as sqlite3 stores them
        return str(value) if isinstance(value, str) and type(value) is not str else value

    groups = []
    for group in rec.groups:
        steps: list[tuple[str, Any, bool]] = []
        for entry in group:
            if entry == BEGIN:
                continue  # SQLite's BEGIN IMMEDIATE was recorded as a statement
            if isinstance(entry, str):
                steps.append((entry, (), False))
                continue
            sql, params, many = entry
            params = [[plain(v) for v in row] for row in params] if many else [plain(v) for v in params or ()]
            steps.append((_qmark(sql), params, many))
        groups.append(steps)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.executescript(init + "; PRAGMA foreign_keys = ON;")
        cursor = raw.cursor()
        times = []
        in_commit = 0.0
        for steps in groups:
            start = time.perf_counter()
            for sql, params, many in steps:
                if many:
                    cursor.executemany(sql, params)
                elif sql == COMMIT:
                    t0 = time.perf_counter()
                    cursor.execute(sql)
                    in_commit += time.perf_counter() - t0
                else:
                    cursor.execute(sql, params)
                    cursor.fetchall()
            times.append(time.perf_counter() - start)
        return Replayed(times, in_commit)
    finally:
        raw.close()


def _replay_postgres(url: str, rec: Recording, pipelined: bool) -> Replayed:
    import psycopg

    times = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        cursor = conn.cursor()
        for group in rec.groups:
            start = time.perf_counter()
            with conn.pipeline() if pipelined else nullcontext():
                for entry in group:
                    if isinstance(entry, str):
                        cursor.execute(entry)
                    elif entry[2]:
                        cursor.executemany(entry[0], entry[1])
                    else:
                        cursor.execute(entry[0], entry[1])
            times.append(time.perf_counter() - start)
    return Replayed(times, None)


def _copy_database(conn: Any, source: str, target: str) -> None:
    """`target` made anew as a copy of `source` (which must have no connections)."""
    from psycopg import sql

    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(target)))
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source)))


def _postgres_url(settings: dict[str, Any]) -> str:
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "localhost"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    at = f"{user}{password}@" if user else ""
    return f"postgresql://{at}{host}{port}/{settings['NAME']}"


def _with_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _maintenance(url: str) -> str:
    return _with_name(url, "postgres")
