"""Django's SQLite backend, with each statement's placeholder conversion done once instead of on every run, and
the write-ahead log checkpointed by a thread instead of by whichever commit happens to fill it.

Django's SQLite cursor turns `%s` into `?` with a regular expression on every execute, however often the
same statement runs: 2.5% of a diamond project's time in benchmarks/engine.py. The lifecycle services run a
few dozen statements over and over (their SQL is built once and kept), so the converted text is kept too.

Checkpoints. In WAL mode SQLite copies the log back into the database file (a checkpoint, with two fsyncs
under synchronous=NORMAL) inside the commit that takes the log past 1,000 pages: that commit, every tenth
project or so, waits for the disk (about a tenth of benchmarks/engine.py's diamond time on a shared
machine). Here each process runs one thread per database file that checkpoints after commits, at most every
CHECKPOINT_SECONDS (PASSIVE: it never blocks readers or writers), and commits checkpoint only past
SAFETY_PAGES, should that thread fall behind or not run: the log stays bounded either way. What it saves is
the commit's wait, not the work: the diamond workload (one thread) ran 8-45% faster in seven paired runs, while
under a load that keeps both cores busy (benchmarks/http_api.py's create_project) six pairs differed by -14% to
+21%, within the shared machine's noise.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from typing import Any

from django.db.backends.sqlite3 import base

__all__ = ["DatabaseWrapper"]


@functools.lru_cache(maxsize=2048)
def _qmark(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class _Cursor(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None:
            return _qmark(query)
        return str(super().convert_query(query, param_names=param_names))


CHECKPOINT_SECONDS = 0.25
SAFETY_PAGES = 10_000  # about 40 MB of log with 4 KB pages

log = logging.getLogger(__name__)


class _Checkpointer(threading.Thread):
    """PASSIVE checkpoints of one database file after commits (`wanted`), at most every CHECKPOINT_SECONDS, on a
    connection of its own (opened for each checkpoint: the file may be replaced, as the test runner does)."""

    _running: dict[tuple[int, str], _Checkpointer] = {}
    _lock = threading.Lock()

    def __init__(self, path: str) -> None:
        super().__init__(name=f"orchestra-sqlite-checkpoint {path}", daemon=True)
        self.path = path
        self.wanted = threading.Event()

    @classmethod
    def of(cls, path: str) -> _Checkpointer:
        """The process's thread for `path`, started on first use (threads do not survive a fork: the key has
        the process id, so a forked worker starts its own)."""
        key = (os.getpid(), path)
        with cls._lock:
            thread = cls._running.get(key)
            if thread is None:
                cls._running[key] = thread = cls(path)
                thread.start()
            return thread

    def run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            self.checkpoint()
            time.sleep(CHECKPOINT_SECONDS)

    def checkpoint(self) -> None:
        try:
            # mode=rw: a file that is gone is not made again
            conn = sqlite3.connect(f"file:{urllib.parse.quote(self.path)}?mode=rw", uri=True, timeout=1)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error as error:  # gone, locked, not a database: next time
            log.debug("checkpoint of %s skipped: %s", self.path, error)


def checkpointed_file(conn: sqlite3.Connection) -> str | None:
    """The file of a connection's database when it is in WAL mode (so the thread should checkpoint it)."""
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    path = conn.execute("PRAGMA database_list").fetchone()[2]  # "" for an in-memory database
    return str(path) if mode == "wal" and path else None


class DatabaseWrapper(base.DatabaseWrapper):
    _checkpointer: _Checkpointer | None = None

    def get_new_connection(self, conn_params: Any) -> Any:
        conn = super().get_new_connection(conn_params)
        path = checkpointed_file(conn)
        self._checkpointer = None if path is None else _Checkpointer.of(path)
        if path is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_PAGES}")
        return conn

    def _commit(self) -> None:
        super()._commit()
        if self._checkpointer is not None:
            self._checkpointer.wanted.set()

    def create_cursor(self, name: Any = None) -> Any:
        return self.connection.cursor(factory=_Cursor)
