"""Running one claimed task: call the step's code outside any transaction, then apply the result."""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback as tb
from collections import deque
from collections.abc import Sequence
from typing import Any

from django.db import close_old_connections

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


def execute(claim: Claim) -> None:
    """Run `claim`'s step and record the outcome. A refused result (lost lease) is logged, not raised."""
    try:
        spec = machine_run_spec(claim)
        step = spec.step
        if step.kind in (StepKind.SCRIPT, StepKind.EXTERNAL):
            _run_elsewhere(claim, spec)
            return
        if step.execution_function is None:
            raise OrchestraError(f"step '{step.slug}' has no execution_function to run")
        function = step.execution_function.resolve()
    except Exception as exc:
        _record_failure(claim, exc, retry=False)
        return
    try:
        output: Any = function(spec.project_data, spec.prerequisites, **step.execution_function.kwargs)
        if output is None:
            output = {}
        if not isinstance(output, dict):
            raise TypeError(
                f"{step.execution_function.path} returned {type(output).__name__}; a machine step returns a dict"
            )
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


class Heartbeat:
    """Extends a claim's lease every `interval` seconds while its step runs."""

    def __init__(self, claim: Claim, interval: float) -> None:
        self._claim = claim
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{claim.task_id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                if not machine_heartbeat(task_id=self._claim.task_id, token=self._claim.token):
                    return
        finally:
            close_old_connections()
