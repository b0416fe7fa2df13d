"""The local executor: a thread pool inside `orchestra serve` or `orchestra worker`.

Its outbox threads send webhook, Slack and email deliveries (orchestra.events.outbox).

A dispatcher thread claims runnable tasks from the database (up to the number of idle threads) and runs
them. It wakes when this process queues work or another process announces some (execution.notify), and polls
every ORCHESTRA_POLL_SECONDS for retries that became due, leases that expired (crashed workers), and work
announced while it was not listening. Tasks this process creates while it has idle threads are claimed in the
creating transaction and handed over directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, connections

from orchestra import conf
from orchestra.events.outbox import Pump
from orchestra.execution import notify
from orchestra.execution.runner import owner_name, run_claim
from orchestra.services._progress import Claim
from orchestra.services.machine import machine_claim

log = logging.getLogger(__name__)

_current: LocalExecutor | None = None
_thread = threading.local()


def wake(task_ids: Sequence[int] = ()) -> None:
    """Work was queued: this process's executor looks for it now, and unless it has a thread for each of these
    tasks, the other processes' executors are told too (execution.notify)."""
    executor = _current
    if executor is not None:
        executor.wake()
    if executor is None or not task_ids or executor.idle() < len(task_ids):
        notify.announce(notify.WORK)


def owner_if_idle(count: int) -> str | None:
    executor = _current
    if executor is None:
        return None
    # A step finishing in one of the executor's threads frees that thread right after: the chain's next step
    # is claimed in the finishing transaction and waits for it, instead of a claim transaction of its own.
    spare = executor.idle() + (1 if getattr(_thread, "executor", None) is executor else 0)
    return executor.owner if spare >= count else None


def submit(claims: Sequence[Claim]) -> None:
    executor = _current
    if executor is None:
        # The executor stopped between claim and commit: the leases expire and another executor takes over.
        log.warning("no local executor to run %s claimed task(s); they will be retried after their lease", len(claims))
        return
    for claim in claims:
        executor.run(claim)


class LocalExecutor:
    def __init__(self, threads: int | None = None, poll_seconds: float | None = None) -> None:
        self.threads = threads or conf.get("ORCHESTRA_LOCAL_EXECUTOR_THREADS")
        self.poll_seconds = poll_seconds if poll_seconds is not None else conf.get("ORCHESTRA_POLL_SECONDS")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight = 0
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="orchestra-step")
        # Each step thread keeps its database connections between steps; closed when the executor stops.
        self._connections: dict[int, list[Any]] = {}
        self._dispatcher = threading.Thread(target=self._loop, name="orchestra-dispatcher", daemon=True)
        self.owner = owner_name("local")
        # The outbox's own threads: a slow webhook receiver never holds up a step.
        self._outbox = Pump(poll_seconds=self.poll_seconds)
        # Other processes' announcements wake the dispatcher and the outbox (execution.notify).
        self._listener = notify.Listener({notify.WORK: self.wake, notify.OUTBOX: self._outbox.wake})

    def start(self) -> LocalExecutor:
        global _current
        _current = self
        self._dispatcher.start()
        self._outbox.start()
        if notify.Listener.wanted():
            self._listener.start()
        log.info("local executor started with %s threads", self.threads)
        return self

    def idle(self) -> int:
        with self._lock:
            return self.threads - self._inflight

    def wake(self) -> None:
        self._wake.set()

    def stop(self, wait: bool = True) -> None:
        global _current
        if _current is self:
            _current = None
        self._stop.set()
        self._wake.set()
        self._listener.stop()
        self._outbox.stop(wait=wait)
        self._dispatcher.join()
        if wait and self._listener.is_alive():
            self._listener.join(timeout=5)  # at once on SQLite, within 0.2 s on PostgreSQL
        self._pool.shutdown(wait=wait)
        if wait:  # the threads are gone: close what they left open
            for wrappers in self._connections.values():
                for wrapper in wrappers:
                    if wrapper.connection is not None:
                        wrapper.connection.close()
                        wrapper.connection = None

    def run(self, claim: Claim) -> None:
        with self._lock:
            self._inflight += 1
        try:
            self._pool.submit(self._run, claim)
        except RuntimeError:
            # Shutting down: the claim's lease expires and another executor takes the task over.
            with self._lock:
                self._inflight -= 1
            log.warning("executor stopping; task %s will be retried after its lease", claim.task_id)

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                if not self._claim_some():
                    self._wake.wait(self.poll_seconds)
        finally:
            connections.close_all()

    def _claim_some(self) -> int:
        idle = self.idle()
        if idle <= 0:
            return 0  # a finishing step wakes us
        try:
            claims = machine_claim(owner=self.owner, limit=idle)
        except Exception:
            log.exception("claiming work failed; retrying after %ss", self.poll_seconds)
            return 0
        for claim in claims:
            self.run(claim)
        return len(claims)

    def _run(self, claim: Claim) -> None:
        _thread.executor = self
        try:
            run_claim(claim)
        except Exception:
            log.exception("running task %s failed unexpectedly", claim.task_id)
        finally:
            _thread.executor = None
            close_old_connections()  # only broken or aged ones: reconnecting per step cost a third of a step
            with self._lock:
                self._connections.setdefault(threading.get_ident(), [connections[a] for a in connections])
                self._inflight -= 1
            self._wake.set()
