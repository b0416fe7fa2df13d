"""Django's PostgreSQL backend, with a health check that costs no round trip while the connection is quiet.

Orchestra keeps connections between requests (ORCHESTRA_DATABASE_CONN_MAX_AGE) and checks one before its
first use in a request (Django's CONN_HEALTH_CHECKS). Django checks with `SELECT 1`: one round trip to the
server per request, about a tenth of the server's CPU on the API's busiest calls under gunicorn. An idle
connection that the server closed (a restart, pg_terminate_backend, idle_session_timeout) has something to
read on its socket: the server's goodbye, or the end of the stream. So the socket is polled without waiting
first, and only a connection with something to read gets Django's `SELECT 1` (which also reads any notice
the server sent meanwhile). A connection in any state but idle gets `SELECT 1` too.

What this cannot see, `SELECT 1` could not either without waiting for the network's timeouts: a server whose
host vanished without closing the connection.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

__all__ = ["DatabaseWrapper"]


def _readable(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)  # Windows: no poll(), and no 1,024-descriptor limit
    return bool(readable)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            quiet = conn.info.transaction_status == TransactionStatus.IDLE and not _readable(conn.fileno())
        except (OSError, ValueError):  # the descriptor is gone
            return False
        return True if quiet else bool(super().is_usable())
