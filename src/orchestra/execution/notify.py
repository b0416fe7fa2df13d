"""Waking other processes' executors at once, instead of leaving them to their poll.

A process that queues machine steps it will not run itself (a web process, or one whose threads are busy), or
writes outbox deliveries, announces it after the commit, on the channel `orchestra_work` (or
`orchestra_outbox`). Every local executor listens, and wakes its dispatcher (or its outbox threads) when another
process announces something, so a step queued by a web host starts within milliseconds instead of up to
ORCHESTRA_POLL_SECONDS later. The poll stays: an announcement made while nobody listened (a restart, a lost
connection) is not kept, and retries that come due are found by it.

- PostgreSQL: `NOTIFY <channel>`, with the sender's name as the payload; each listener has a connection of its
  own (`LISTEN`), so this works across hosts.
- SQLite (a database file, so every process is on this host): each listener binds a Unix datagram socket in a
  directory of its own user's, one per database file, under the temporary directory; an announcement is the
  channel's name sent to every socket there but the sender's own. A socket whose listener is gone (killed) is
  removed by the next announcement.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from django.db import connection

log = logging.getLogger(__name__)

WORK = "orchestra_work"
OUTBOX = "orchestra_outbox"


def announce(channel: str) -> None:
    """Tell the other processes' executors (after a commit; outside a transaction it is sent at once)."""
    try:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [channel, _sender()])
        elif (directory := _socket_directory()) is not None:
            _send_to_sockets(directory, channel)
    except Exception:  # the work is queued; their poll finds it
        log.warning("could not announce %s; other processes will find the work on their poll", channel, exc_info=True)


def _sender() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"  # after a fork, the child's own


def _socket_directory() -> Path | None:
    """Where the listeners of this SQLite database file keep their sockets. None for other databases, for an
    in-memory SQLite database (no other process shares it) and on systems without Unix sockets (their executors
    poll)."""
    if connection.vendor != "sqlite" or not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
        return None
    return _directory_of(str(connection.settings_dict.get("NAME") or ""))


@functools.lru_cache(maxsize=8)
def _directory_of(name: str) -> Path | None:
    if not name or name == ":memory:" or "mode=memory" in name:
        return None
    key = hashlib.sha256(os.path.realpath(name).encode()).hexdigest()[:16]
    # Short (a socket's path has a limit of about 100 bytes) and per user (others may not wake ours).
    return Path(tempfile.gettempdir()) / f"orchestra-{os.getuid()}-{key}"


def _send_to_sockets(directory: Path, channel: str) -> None:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return  # nobody listens
    mine = f"{os.getpid()}-"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for entry in entries:
            if not entry.name.endswith(".sock") or entry.name.startswith(mine):
                continue
            try:
                sock.sendto(channel.encode(), entry.path)
            except (ConnectionRefusedError, FileNotFoundError):  # its listener is gone
                Path(entry.path).unlink(missing_ok=True)
            except BlockingIOError:
                pass  # its queue is full: it has wake-ups to read already


def _bound_socket(directory: Path) -> tuple[socket.socket, Path]:
    """A datagram socket bound in `directory`, which is made (this user's alone) if it is not there."""
    path = directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    tries = 3
    try:
        while True:
            directory.mkdir(mode=0o700, exist_ok=True)
            info = directory.stat()
            if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
                raise PermissionError(f"{directory} is not this user's alone")
            try:
                sock.bind(str(path))
                return sock, path
            except FileNotFoundError:  # the last listener removed the directory just now: make it again
                tries -= 1
                if not tries:
                    raise
    except OSError:
        sock.close()
        raise


class Listener(threading.Thread):
    """Calls `wake[channel]()` when another process announces on `channel`. Reconnects after a lost connection,
    after `retry_seconds`; stops with `stop()`."""

    def __init__(self, wake: dict[str, Callable[[], None]], retry_seconds: float = 5.0) -> None:
        super().__init__(name="orchestra-listener", daemon=True)
        self.wake = wake
        self.retry_seconds = retry_seconds
        self._stopping = threading.Event()
        self._socket_path: Path | None = None

    @staticmethod
    def wanted() -> bool:
        return connection.vendor == "postgresql" or _socket_directory() is not None

    def stop(self) -> None:
        self._stopping.set()
        if (path := self._socket_path) is not None:  # wake its recv now rather than at its next timeout
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(b"", str(path))

    def run(self) -> None:
        if connection.vendor == "postgresql":
            self._listen_postgresql()
        elif (directory := _socket_directory()) is not None:
            self._listen_socket(directory)

    def _listen_socket(self, directory: Path) -> None:
        try:
            sock, path = _bound_socket(directory)
        except OSError:
            log.warning("cannot listen for other processes' work; polling instead", exc_info=True)
            return
        self._socket_path = path
        sock.settimeout(1.0)
        log.info("listening for work other processes announce (%s)", ", ".join(self.wake))
        try:
            while not self._stopping.is_set():
                try:
                    channel = sock.recv(64).decode(errors="replace")
                except TimeoutError:
                    continue
                if channel in self.wake:
                    self.wake[channel]()
        finally:
            self._socket_path = None
            sock.close()
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the last listener of this database leaves nothing behind
                directory.rmdir()

    def _listen_postgresql(self) -> None:
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
                        for note in conn.notifies(timeout=0.2):  # looks up for stop() five times a second
                            if note.payload != _sender() and note.channel in self.wake:
                                self.wake[note.channel]()
            except Exception:
                log.warning("listening for other processes' work failed; polling meanwhile", exc_info=True)
            self._stopping.wait(self.retry_seconds)
