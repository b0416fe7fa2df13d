"""The local executor: a thread pool inside `orchestra serve` or `orchestra worker`.

A dispatcher thread claims runnable tasks from the database (up to the number of free threads) and runs
them. It wakes when this process queues work, and polls every ORCHESTRA_POLL_SECONDS for work queued by
other processes, retries that became due, and leases that expired (crashed workers).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from orchestra import conf
from orchestra.execution.runner import Heartbeat, execute, owner_name
from orchestra.services.machine import Claim, machine_claim

log = logging.getLogger(__name__)

_current: LocalExecutor | None = None


def wake() -> None:
    if _current is not None:
        _current.wake()


class LocalExecutor:
    def __init__(self, threads: int | None = None, poll_seconds: float | None = None) -> None:
        self.threads = threads or conf.get("ORCHESTRA_LOCAL_EXECUTOR_THREADS")
        self.poll_seconds = poll_seconds if poll_seconds is not None else conf.get("ORCHESTRA_POLL_SECONDS")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._free = threading.Semaphore(self.threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="orchestra-step")
        self._dispatcher = threading.Thread(target=self._loop, name="orchestra-dispatcher", daemon=True)
        self.owner = owner_name("local")

    def start(self) -> LocalExecutor:
        global _current
        _current = self
        self._dispatcher.start()
        log.info("local executor started with %s threads", self.threads)
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, wait: bool = True) -> None:
        global _current
        self._stop.set()
        self._wake.set()
        self._dispatcher.join()
        self._pool.shutdown(wait=wait)
        if _current is self:
            _current = None

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                claimed = self._claim_some()
                if not claimed:
                    self._wake.wait(self.poll_seconds)
        finally:
            connections.close_all()

    def _claim_some(self) -> int:
        free = 0
        while self._free.acquire(blocking=False):
            free += 1
        if free == 0:
            # Every thread is busy; wait until one frees up (it wakes us).
            self._wake.wait(self.poll_seconds)
            return 1
        try:
            claims = machine_claim(owner=self.owner, limit=free)
        except Exception:
            log.exception("claiming work failed; retrying after %ss", self.poll_seconds)
            claims = []
        for _ in range(free - len(claims)):
            self._free.release()
        for claim in claims:
            self._pool.submit(self._run, claim)
        return len(claims)

    def _run(self, claim: Claim) -> None:
        try:
            interval = max(conf.get("ORCHESTRA_LEASE_SECONDS") / 3, 1)
            with Heartbeat(claim, interval):
                execute(claim)
        except Exception:
            log.exception("running task %s failed unexpectedly", claim.task_id)
        finally:
            connections.close_all()
            self._free.release()
            self._wake.set()
