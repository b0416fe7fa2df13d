"""Machine steps for executor tests and benchmarks: they run in worker processes, so they keep no state in
memory that a test would read; what a test needs to see goes into the step's output or into a file."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any


def sleep_ms(project_data: dict[str, Any], prerequisites: dict[str, Any], *, ms: float) -> dict[str, Any]:
    """Waits `ms` milliseconds (a step doing I/O), then reports which process ran it."""
    time.sleep(ms / 1000)
    return {"pid": os.getpid()}


def started_at(project_data: dict[str, Any], prerequisites: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Reports the wall-clock time it started (benchmarks: dispatch latency across processes)."""
    return {"started_at": time.time(), "pid": os.getpid()}


def spin_ms(project_data: dict[str, Any], prerequisites: dict[str, Any], *, ms: float) -> dict[str, Any]:
    """Keeps a CPU busy for about `ms` milliseconds of pure Python (a CPU-bound step; holds the GIL)."""
    deadline = time.thread_time() + ms / 1000
    n = 0
    while time.thread_time() < deadline:
        for i in range(1000):
            n += i * i % 7
    return {"n": n}


def fail_first(project_data: dict[str, Any], prerequisites: dict[str, Any], *, path: str, times: int) -> dict[str, Any]:
    """Fails its first `times` calls, counted in the file at `path` (shared by every worker process)."""
    counter = Path(path)
    with counter.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        calls = len(handle.read()) + 1
        handle.write("x")
    if calls <= times:
        raise RuntimeError(f"planned failure {calls} of {times}")
    return {"calls": calls}
