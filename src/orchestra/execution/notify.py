"""Waking other processes' executors on PostgreSQL, with LISTEN/NOTIFY, instead of leaving them to their poll.

A process that queues machine steps it will not run itself (a web process, or one whose threads are busy), or
writes outbox deliveries, announces it after the commit: `NOTIFY orchestra_work` (or `orchestra_outbox`), with
its own name as the payload. Every local executor listens on a connection of its own and wakes its dispatcher
(or its outbox threads) when another process announces something, so a step queued by a web host starts within
milliseconds instead of up to ORCHESTRA_POLL_SECONDS later. The poll stays: a notification sent while nobody
listened (a restart, a lost connection) is not kept, and retries that come due are found by it.

SQLite has no such channel; its executors poll.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from django.db import connection

log = logging.getLogger(__name__)

WORK = "orchestra_work"
OUTBOX = "orchestra_outbox"


def announce(channel: str) -> None:
    """Tell the other processes' executors (after a commit; outside a transaction it is sent at once)."""
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, _sender()])
    except Exception:  # the work is queued; their poll finds it
        log.warning("could not announce %s; other processes will find the work on their poll", channel, exc_info=True)


def _sender() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"  # after a fork, the child's own


class Listener(threading.Thread):
    """Calls `wake[channel]()` when another process announces on `channel`. Reconnects after a lost connection,
    after `retry_seconds`; stops with `stop()`."""

    def __init__(self, wake: dict[str, Callable[[], None]], retry_seconds: float = 5.0) -> None:
        super().__init__(name="orchestra-listener", daemon=True)
        self.wake = wake
        self.retry_seconds = retry_seconds
        self._stopping = threading.Event()

    @staticmethod
    def wanted() -> bool:
        return connection.vendor == "postgresql"

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        import psycopg
        from psycopg import sql

        params = connection.get_connection_params()
        for name in ("cursor_factory", "context", "prepare_threshold"):  # Django's, for its own connections
            params.pop(name, None)
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    for channel in self.wake:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    log.info("listening for work other processes announce (%s)", ", ".join(self.wake))
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.payload != _sender() and note.channel in self.wake:
                                self.wake[note.channel]()
            except Exception:
                log.warning("listening for other processes' work failed; polling meanwhile", exc_info=True)
            self._stopping.wait(self.retry_seconds)
