"""Running one claimed task: call the step's code outside any transaction, then apply the result."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import socket
import threading
import time
import traceback as tb
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connections

from orchestra import conf, files
from orchestra.engine.errors import Conflict, OrchestraError
from orchestra.engine.lifecycle import StepKind
from orchestra.services._progress import Claim
from orchestra.services.machine import (
    RunSpec,
    machine_claim,
    machine_fail,
    machine_heartbeat,
    machine_run_spec,
    machine_succeed,
)

log = logging.getLogger(__name__)


def owner_name(label: str = "local") -> str:
    return f"{label}:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_claim(claim: Claim) -> None:
    """Run a claimed task as executors do: the lease kept alive, the step's timeout enforced."""
    with Watchdog(claim) as watchdog:
        execute(claim, watchdog)


def execute(claim: Claim, watchdog: Watchdog | None = None) -> None:
    """Run `claim`'s step and record the outcome. A refused result (lost lease) is logged, not raised."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(files.working_on(claim.project_id))  # files the step saves belong to its project
        try:
            spec = machine_run_spec(claim)
            step = spec.step
            if step.kind in (StepKind.SCRIPT, StepKind.EXTERNAL):
                _run_elsewhere(claim, spec)  # a subprocess enforces its own timeout
                return
            if step.timeout_seconds is not None:
                if watchdog is None:  # eager mode watches only steps that have a timeout
                    watchdog = stack.enter_context(Watchdog(claim))
                watchdog.set_timeout(step.timeout_seconds)
            guard = watchdog.guard if watchdog is not None else contextlib.nullcontext
            if step.kind == StepKind.TASKS:
                from orchestra.execution.tasks import run_tasks_step

                run_tasks_step(claim, spec, guard)
                return
            if step.execution_function is None:
                raise OrchestraError(f"step '{step.slug}' has no execution_function to run")
            function = step.execution_function.resolve()
        except StepTimedOut:
            _record_failure(claim, TimeoutError(timed_out(step.timeout_seconds)), retry=True)
            return
        except StepCancelled:
            return
        except Exception as exc:
            _record_failure(claim, exc, retry=False)
            return
        try:
            with guard():
                output: Any = function(spec.project_data, spec.prerequisites, **step.execution_function.kwargs)
            if output is None:
                output = {}
            if not isinstance(output, dict):
                raise TypeError(
                    f"{step.execution_function.path} returned {type(output).__name__}; a machine step returns a dict"
                )
        except StepTimedOut:
            _record_failure(claim, TimeoutError(timed_out(step.timeout_seconds)), retry=True)
            return
        except StepCancelled:
            return  # no longer ours
        except Exception as exc:
            _record_failure(claim, exc, retry=True)
            return
    try:
        machine_succeed(task_id=claim.task_id, token=claim.token, output=output, actor=claim.owner)
    except Conflict as exc:
        log.warning("%s", exc.message)
    except OrchestraError as exc:
        # The output was unusable (not JSON, say): that attempt failed.
        _record_failure(claim, exc, retry=True)


def _run_elsewhere(claim: Claim, spec: RunSpec) -> None:
    """A script step (a subprocess) or an external step (a trigger): they record their own outcome."""
    from orchestra.execution import external, script

    try:
        if spec.step.kind == StepKind.SCRIPT:
            script.run_script(claim, spec)
        else:
            external.trigger(claim, spec)
    except Conflict as exc:
        log.warning("%s", exc.message)
    except Exception as exc:
        _record_failure(claim, exc, retry=True)


def _record_failure(claim: Claim, exc: BaseException, *, retry: bool) -> None:
    text = "".join(tb.format_exception(exc))
    log.info("task %s attempt %s failed: %r", claim.task_id, claim.attempt, exc)
    try:
        machine_fail(
            task_id=claim.task_id,
            token=claim.token,
            error=repr(exc),
            traceback=text,
            retry=retry,
            actor=claim.owner,
        )
    except Conflict as conflict:
        log.warning("%s", conflict.message)


_state = threading.local()


def eager_owner() -> str:
    owner: str | None = getattr(_state, "owner", None)
    if owner is None:
        owner = _state.owner = owner_name("eager")
    return owner


def run_eagerly(claims: Sequence[Claim]) -> None:
    """Run claimed tasks in this thread (eager mode), after whatever this thread is already running."""
    _queue().extend(claims)
    _loop()


def drain(limit: int | None = None) -> int:
    """Claim and run runnable tasks in this thread until none is left (eager mode). Returns how many ran."""
    _state.poll = True
    return _loop(limit=limit)


def _queue() -> deque[Claim]:
    queue: deque[Claim] | None = getattr(_state, "queue", None)
    if queue is None:
        queue = _state.queue = deque()
    return queue


def _loop(limit: int | None = None) -> int:
    """Work through queued claims, polling the database when asked to.

    Re-entrant calls (a completed step queues the next one from inside this loop) only add to the queue;
    the outer loop runs it, so the stack stays flat however long the chain of steps is.
    """
    if getattr(_state, "running", False):
        return 0
    _state.running = True
    queue = _queue()
    ran = 0
    try:
        while limit is None or ran < limit:
            if not queue and getattr(_state, "poll", False):
                _state.poll = False
                queue.extend(machine_claim(owner=eager_owner(), limit=1))
                _state.poll = bool(queue)  # keep polling while the database has work
            if not queue:
                break
            execute(queue.popleft())
            ran += 1
    finally:
        _state.running = False
    return ran


class StepCancelled(BaseException):
    """Raised inside a step's thread when it must stop: it lost its claim, or ran past its timeout.

    A BaseException, so a step's own `except Exception` does not swallow it."""


class StepTimedOut(StepCancelled):
    """The step ran past its timeout_seconds: its thread records the failed attempt."""


class Watchdog:
    """Watches one running attempt, from the process's one monitor thread (no thread per step).

    It extends the claim's lease every third of the lease; stops the step when its claim is lost (the
    project ended, an admin acted, another executor took over); and when the step runs past its
    `timeout_seconds` it records the attempt as failed (the retry policy applies) and stops the step.
    Python code is stopped by raising StepCancelled in its thread; a step blocked in C code stops when it
    returns, and whatever it then reports is refused because the claim is no longer current.
    """

    def __init__(self, claim: Claim, interval: float | None = None, timeout: float | None = None) -> None:
        self._claim = claim
        self._interval = interval or max(conf.get("ORCHESTRA_LEASE_SECONDS") / 3, 0.2)
        self._timeout = timeout
        self._started = time.monotonic()
        self._next_beat = self._started + self._interval
        self._lock = threading.Lock()
        self._step_thread: int | None = None
        self._not_before = 0.0  # after a failed check, when to try again
        self._timed_out_at: float | None = None
        self.finished = False

    def __enter__(self) -> Watchdog:
        _MONITOR.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.finished = True
        _MONITOR.remove(self)

    def set_timeout(self, seconds: float | None) -> None:
        self._timeout = seconds
        _MONITOR.poke()

    def due(self) -> float:
        """When (time.monotonic) this attempt next needs looking at."""
        due = self._next_beat if self._timeout is None else min(self._next_beat, self._started + self._timeout)
        return max(due, self._not_before)

    def check_later(self, now: float) -> None:
        self._not_before = now + 1.0

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """The stretch of code the watchdog may interrupt: the step's own code, not its bookkeeping."""
        with self._lock:
            self._step_thread = threading.get_ident()
        try:
            yield
        finally:
            with self._lock:
                self._step_thread = None

    def _interrupt(self, exception: type[StepCancelled] = StepCancelled) -> None:
        with self._lock:
            if self._step_thread is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._step_thread), ctypes.py_object(exception)
                )

    def check(self, now: float) -> bool:
        """Act on what is due; False once there is nothing more to watch."""
        if self.finished:
            return False
        if self._timeout is not None and now >= self._started + self._timeout:
            if self._timed_out_at is None:
                # The step's thread records the failure when the exception reaches it; if it is stuck in C
                # code and has not within a second, the failure is recorded from here.
                self._timed_out_at = now
                self._not_before = now + 1.0
                self._interrupt(StepTimedOut)
                return True
            self._time_out()
            return False
        if now < self._next_beat:
            return True
        self._next_beat = now + self._interval
        if not machine_heartbeat(task_id=self._claim.task_id, token=self._claim.token):
            log.info("task %s: claim lost while running; stopping the step", self._claim.task_id)
            self._interrupt()
            return False
        return True

    def _time_out(self) -> None:
        try:
            machine_fail(
                task_id=self._claim.task_id,
                token=self._claim.token,
                error=timed_out(self._timeout),
                retry=True,
                actor=self._claim.owner,
            )
        except Conflict:
            return  # the step's thread recorded it, or the step finished first
        self._interrupt()


def timed_out(seconds: float | None) -> str:
    return f"timed out after {seconds or 0:g} s (the step's timeout_seconds); stopped"


class _Monitor:
    """The thread that watches every running attempt of this process, started when first needed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watched: set[Watchdog] = set()
        self._thread: threading.Thread | None = None

    def add(self, watchdog: Watchdog) -> None:
        with self._cond:
            self._watched.add(watchdog)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="orchestra-watchdog")
                self._thread.start()
            self._cond.notify()

    def remove(self, watchdog: Watchdog) -> None:
        with self._cond:
            self._watched.discard(watchdog)

    def poke(self) -> None:
        with self._cond:
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [w for w in self._watched if w.due() <= now]
                if not due:
                    soonest = min((w.due() for w in self._watched), default=now + 30)
                    self._cond.wait(timeout=min(max(soonest - now, 0.001), 30))
                    continue
            try:
                for watchdog in due:
                    try:
                        keep = watchdog.check(now)
                    except Exception:  # the database is unreachable, say: try again in a second
                        log.exception("watching a running step failed; trying again")
                        watchdog.check_later(now)
                        keep = True
                    if not keep:
                        self.remove(watchdog)
            finally:
                # Heartbeats are rare: hold no connection between them (a test database can then be dropped).
                connections.close_all()


_MONITOR = _Monitor()


def in_monitor_thread() -> bool:
    return threading.current_thread() is _MONITOR._thread
