"""Running automated steps after their transaction commits.

Services call these (after commit) when they queue automated work:
- `new_work_owner(n)`: inside the transaction that creates runnable tasks: if this process will run them
  right after commit, the name to claim them for (saves each task a claim transaction); else None.
- `run_claims(claims)`: run tasks claimed that way.
- `work_queued(task_ids, delay)`: work was queued for whoever polls (retries, resumed projects, unclaimed
  tasks); `task_ids` names the tasks when known, `delay` says when the first of them is due.

Modes (ORCHESTRA_EXECUTOR):
- eager: run everything runnable now, in this thread (tests, benchmarks, one-off scripts);
- local: the in-process executor of `orchestra serve` / `orchestra worker`, when this process has one;
  other processes' executors are woken too (execution.notify);
- celery: a `run_task(task_id)` message per task for Celery workers (`orchestra worker --celery`); without
  task ids, a message that makes a worker look for due work in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestra import conf

if TYPE_CHECKING:
    from orchestra.services._progress import Claim


def new_work_owner(count: int) -> str | None:
    mode = conf.get("ORCHESTRA_EXECUTOR")
    if mode == "eager":
        from orchestra.execution.runner import eager_owner

        return eager_owner()
    if mode == "local":
        from orchestra.execution.local import owner_if_idle

        return owner_if_idle(count)
    return None


def run_claims(claims: Sequence[Claim]) -> None:
    mode = conf.get("ORCHESTRA_EXECUTOR")
    if mode == "eager":
        from orchestra.execution.runner import run_eagerly

        run_eagerly(claims)
    else:
        from orchestra.execution.local import submit

        submit(claims)


def work_queued(task_ids: Sequence[int] = (), delay: float | None = None) -> None:
    mode = conf.get("ORCHESTRA_EXECUTOR")
    if mode == "celery":
        from orchestra.execution.celery import send

        send(task_ids, delay)
    elif mode == "eager":
        from orchestra.execution.runner import drain, in_monitor_thread

        if not in_monitor_thread():  # the watchdog's thread watches steps; it never runs them
            drain()
    elif mode == "local":
        from orchestra.execution.local import wake

        wake(task_ids)
