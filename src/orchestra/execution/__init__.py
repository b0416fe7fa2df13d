"""Running automated steps after their transaction commits.

`work_queued()` is what services call (on commit) when they queue automated work:
- eager: run everything runnable now, in this thread (tests, benchmarks, one-off scripts);
- local: wake the in-process executor if this process runs one (`orchestra serve` / `orchestra worker`);
  other processes notice the work on their next poll;
- celery: (scale-out) sends `run_task` to Celery workers.
"""

from __future__ import annotations

from orchestra import conf


def work_queued() -> None:
    mode = conf.get("ORCHESTRA_EXECUTOR")
    if mode == "eager":
        from orchestra.execution.runner import drain

        drain()
    elif mode == "local":
        from orchestra.execution.local import wake

        wake()
