#!/usr/bin/env python
"""Execution benchmark: how fast machine steps start and how many run per second, local and Celery executors.

    .venv/bin/python benchmarks/execution.py [--database-url URL] [--executors local,celery]
                                             [--samples 200] [--poll-samples 50] [--noop-projects 200]
                                             [--cpu-steps 100] [--cpu-ms 50] [--redis-url URL] [--json] [--keep]

Real processes: `orchestra worker` (local executor) and `orchestra worker --celery` (prefork pool, Redis)
on the same database as this script, which queues the work through the services. Figures:

- dispatch latency: from the commit of the transaction that queues a one-step project to the moment the
  step's function starts (its output records `time.time()`; same host, same clock). Local: the in-process
  executor that `orchestra serve` runs (the task is claimed in the creating transaction and handed to a
  thread), and a separate `orchestra worker` (ORCHESTRA_POLL_SECONDS 1.0, the default, and 0.1), woken by the
  announcement of the queued work (orchestra.execution.notify: NOTIFY on PostgreSQL, a Unix socket on SQLite).
  Celery: a `run_task` message to a worker.
- no-op throughput: projects of ten no-op machine steps in a chain, all queued before the workers start;
  steps/s over the middle 80% of completions (start-up and the tail left out) and over the whole run.
- CPU-bound throughput: one-step projects whose step keeps a CPU busy `--cpu-ms` (pure Python), with one
  and with two worker processes (local: 1 and 2 `orchestra worker`; Celery: --concurrency 1 and 2).

Targets (printed, never asserted): local dispatch p50 <= 10 ms, Celery <= 50 ms; >= 500 no-op steps/s on
the local executor with SQLite; two workers >= 1.7x one on CPU-bound steps.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks.engine, tests.support.*

TARGET_LOCAL_P50_MS = 10.0
TARGET_CELERY_P50_MS = 50.0
TARGET_NOOP_STEPS_PER_S = 500.0
TARGET_CPU_SPEEDUP = 1.7
NOOP_CHAIN = 10
WARMUP = 5


# --- setup ----------------------------------------------------------------------------------------------


def configure(database_url: str | None) -> Path:
    from benchmarks.engine import configure as configure_engine

    return configure_engine(database_url, prefix="orchestra-exec-bench-", ORCHESTRA_LOG_LEVEL="WARNING")


def load_workflows(home: Path, cpu_ms: float) -> None:
    from tests.support.workflows import load, machine

    steps = "tests.support.execution_steps"
    latency = machine("start")
    latency["execution_function"] = {"path": f"{steps}.started_at"}
    load(home / "workflows", [latency], slug="latency")
    load(
        home / "workflows",
        [machine(f"s{i}", *([f"s{i - 1}"] if i else [])) for i in range(NOOP_CHAIN)],
        slug="noop",
    )
    cpu = machine("spin")
    cpu["execution_function"] = {"path": f"{steps}.spin_ms", "kwargs": {"ms": cpu_ms}}
    load(home / "workflows", [cpu], slug="cpu")


def set_executor(mode: str) -> None:
    """This process's ORCHESTRA_EXECUTOR: how the work it queues reaches the workers."""
    from django.conf import settings

    settings.ORCHESTRA_EXECUTOR = mode


class WorkerProcess:
    """`orchestra worker ARGS` on this script's database, in a process group of its own."""

    profile = False  # --py-spy: run each worker under `py-spy record`, its samples in HOME/NAME.pyspy

    def __init__(self, home: Path, name: str, args: list[str], **env: str) -> None:
        self.log = home / f"{name}.log"
        command = [sys.executable, "-m", "orchestra.cli", "worker", *args]
        if self.profile:
            spy = Path(sys.executable).with_name("py-spy")
            out = home / f"{name}.pyspy"
            command = [
                str(spy),
                "record",
                "--subprocesses",
                "--idle",
                "--format",
                "raw",
                "-o",
                str(out),
                "--",
                *command,
            ]
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "orchestra.settings",
            "ORCHESTRA_LOG_LEVEL": "WARNING",
            **env,
        }
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command,
                env=environment,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "orchestra worker running" in text or " ready." in text:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"worker did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.profile:  # SIGINT, as Ctrl-C would: py-spy writes its samples, the worker stops
                os.killpg(self.process.pid, signal.SIGINT)
            else:
                self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def group_cpu_seconds(group: list[WorkerProcess]) -> float:
    """User + system CPU of every process in the workers' process groups (a Celery pool included)."""
    groups = {w.process.pid for w in group}
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def workers(home: Path, name: str, count: int, args: list[str], **env: str) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(home, f"{name}-{i}", args, **env) for i in range(count)]
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.stop()


def celery_env(redis_url: str, queue: str, **extra: str) -> dict[str, str]:
    return {
        "ORCHESTRA_EXECUTOR": "celery",
        "ORCHESTRA_BROKER_URL": redis_url,
        "ORCHESTRA_CELERY_QUEUE": queue,
        **extra,
    }


@contextmanager
def celery_queue(redis_url: str) -> Iterator[str]:
    """A Celery queue of the run's own: this process queues work to it (ORCHESTRA_EXECUTOR=celery); it is
    removed from Redis afterwards."""
    from django.conf import settings

    from orchestra.execution import celery
    from tests.support.processes import forget_queue

    queue = f"orchestra-bench-{uuid.uuid4().hex[:8]}"
    settings.ORCHESTRA_BROKER_URL = redis_url
    settings.ORCHESTRA_CELERY_QUEUE = queue
    celery.app.conf.broker_url = redis_url
    set_executor("celery")
    try:
        yield queue
    finally:
        forget_queue(redis_url, queue)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# --- dispatch latency -----------------------------------------------------------------------------------


def latency_samples(n: int, timeout: float = 30, jitter: float = 0.0) -> dict[str, Any]:
    """`n` one-step projects one after the other (plus WARMUP first): commit → step start, in ms.

    `jitter`: wait a random 0 to `jitter` seconds before each, so that work arrives at random points of a
    polling worker's cycle (one after the other, it would arrive at the same point every time)."""
    from django.db import transaction

    from orchestra.models import Task
    from orchestra.services.projects import project_create

    samples = []
    for i in range(n + WARMUP):
        committed: list[float] = []
        if jitter:
            time.sleep(random.uniform(0, jitter))
        with transaction.atomic():
            # Registered before the service's own after-commit work, so it runs first after the commit.
            transaction.on_commit(functools.partial(lambda times: times.append(time.time()), committed))
            project = project_create(workflow_slug="latency", version_slug="v1")
        row: list[Any] = []

        def done(project_id: int = project.pk, row: list[Any] = row) -> bool:
            found = Task.objects.filter(project_id=project_id, status="Complete").values_list("data", flat=True)
            row[:] = list(found)
            return bool(row)

        wait_until(done, timeout, f"the step of project {project.pk}")
        if i >= WARMUP:
            samples.append((row[0]["started_at"] - committed[0]) * 1000)
    return {
        "samples": n,
        "p50_ms": statistics.median(samples),
        "p90_ms": percentile(samples, 90),
        "p99_ms": percentile(samples, 99),
        "min_ms": min(samples),
        "max_ms": max(samples),
    }


def latency_local_in_process(samples: int) -> dict[str, Any]:
    from orchestra.execution.local import LocalExecutor

    set_executor("local")
    executor = LocalExecutor(threads=4).start()
    try:
        return {"what": "local, in-process executor (orchestra serve)", **latency_samples(samples)}
    finally:
        executor.stop()


def latency_local_worker(home: Path, samples: int, poll: float) -> dict[str, Any]:
    set_executor("local")  # and no executor in this process: the task waits for the worker's poll
    with workers(
        home, f"latency-local-poll-{poll:g}", 1, [], ORCHESTRA_EXECUTOR="local", ORCHESTRA_POLL_SECONDS=str(poll)
    ):
        result = latency_samples(samples, timeout=poll + 30, jitter=poll)
    return {"what": f"local, `orchestra worker` process, poll {poll:g} s", **result}


def latency_celery(home: Path, samples: int, redis_url: str) -> dict[str, Any]:
    with celery_queue(redis_url) as queue:
        env = celery_env(redis_url, queue)
        with workers(home, "latency-celery", 1, ["--celery", "--concurrency", "2"], **env):
            result = latency_samples(samples)
    return {"what": "celery, `orchestra worker --celery --concurrency 2` (prefork)", **result}


# --- throughput -----------------------------------------------------------------------------------------


def queue_projects(workflow: str, count: int) -> list[int]:
    """Create `count` projects of `workflow` while no worker runs (their first tasks wait, queued)."""
    from orchestra.services.projects import project_create

    return [project_create(workflow_slug=workflow, version_slug="v1").pk for _ in range(count)]


def throughput(group: list[WorkerProcess], project_ids: list[int], steps: int, timeout: float = 600) -> dict[str, Any]:
    """Wait until every project completes; steps/s from the event log's claim and completion times, and
    the workers' CPU time per step (from when they were ready)."""
    from orchestra.models import Event, Project

    cpu = group_cpu_seconds(group)
    wait_until(
        lambda: Project.objects.filter(pk__in=project_ids, status="Completed").count() == len(project_ids),
        timeout,
        f"{len(project_ids)} projects to complete",
        interval=0.05,
    )
    completed = sorted(
        Event.objects.filter(project_id__in=project_ids, action="task_completed").values_list("at", flat=True)
    )
    first_claim = Event.objects.filter(project_id__in=project_ids, action="task_claimed").order_by("at").first()
    if len(completed) != steps or first_claim is None:
        raise RuntimeError(f"expected {steps} completions, found {len(completed)}")
    low, high = int(0.1 * steps), int(0.9 * steps) - 1
    middle = (completed[high] - completed[low]).total_seconds()
    whole = (completed[-1] - first_claim.at).total_seconds()
    return {
        "steps": steps,
        "steady_steps_per_s": (high - low) / middle if middle > 0 else float("inf"),
        "overall_steps_per_s": steps / whole if whole > 0 else float("inf"),
        "wall_s": whole,
        "worker_cpu_ms_per_step": (group_cpu_seconds(group) - cpu) * 1000 / steps,
    }


def noop_local(home: Path, projects: int, processes: int, threads: int) -> dict[str, Any]:
    set_executor("local")
    ids = queue_projects("noop", projects)
    args = ["--threads", str(threads)]
    with workers(home, f"noop-local-{processes}", processes, args, ORCHESTRA_EXECUTOR="local") as group:
        result = throughput(group, ids, projects * NOOP_CHAIN)
    return {"what": f"no-op, local, {processes} `orchestra worker --threads {threads}`", **result}


def noop_celery(home: Path, projects: int, concurrency: int, redis_url: str) -> dict[str, Any]:
    args = ["--celery", "--concurrency", str(concurrency)]
    with celery_queue(redis_url) as queue:
        ids = queue_projects("noop", projects)
        with workers(home, f"noop-celery-{concurrency}", 1, args, **celery_env(redis_url, queue)) as group:
            result = throughput(group, ids, projects * NOOP_CHAIN)
    return {"what": f"no-op, celery, --concurrency {concurrency} (prefork)", **result}


def cpu_local(home: Path, steps: int, processes: int, threads: int) -> dict[str, Any]:
    set_executor("local")
    ids = queue_projects("cpu", steps)
    args = ["--threads", str(threads)]
    with workers(home, f"cpu-local-{processes}", processes, args, ORCHESTRA_EXECUTOR="local") as group:
        result = throughput(group, ids, steps)
    return {
        "what": f"CPU-bound, local, {processes} `orchestra worker --threads {threads}`",
        "processes": processes,
        **result,
    }


def cpu_celery(home: Path, steps: int, concurrency: int, redis_url: str) -> dict[str, Any]:
    args = ["--celery", "--concurrency", str(concurrency)]
    with celery_queue(redis_url) as queue:
        ids = queue_projects("cpu", steps)
        with workers(home, f"cpu-celery-{concurrency}", 1, args, **celery_env(redis_url, queue)) as group:
            result = throughput(group, ids, steps)
    return {"what": f"CPU-bound, celery, --concurrency {concurrency} (prefork)", "processes": concurrency, **result}


# --- report ---------------------------------------------------------------------------------------------


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def print_report(env: dict[str, Any], results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    from benchmarks.engine import table

    print("Orchestra execution benchmark")
    rows = [[k, env[k]] for k in ("date", "database", "python", "django", "cpus", "platform", "cpu_check", "commit")]
    rows.append(["celery", env.get("celery", "-")])
    rows.append(["load average at start", env["loadavg"]])
    print(table(None, rows, left=2))

    latency = results["latency"]
    if latency:
        print(f"\nDispatch latency: commit of the queuing transaction -> the step function starts ({WARMUP} warm-up)")
        print(
            table(
                ["executor", "samples", "p50 ms", "p90 ms", "p99 ms", "min ms", "max ms"],
                [
                    [r["what"], r["samples"], _f(r["p50_ms"], 2), _f(r["p90_ms"], 2), _f(r["p99_ms"], 2)]
                    + [_f(r["min_ms"], 2), _f(r["max_ms"], 2)]
                    for r in latency
                ],
            )
        )
    tput = results["noop"] + results["cpu"]
    if tput:
        print("\nThroughput: work queued first, then the workers started; steps/s from the event log")
        print(
            table(
                ["run", "steps", "steady steps/s (middle 80%)", "overall steps/s", "wall s", "worker CPU ms/step"],
                [
                    [
                        r["what"],
                        r["steps"],
                        _f(r["steady_steps_per_s"]),
                        _f(r["overall_steps_per_s"]),
                        _f(r["wall_s"], 2),
                        _f(r["worker_cpu_ms_per_step"], 2),
                    ]
                    for r in tput
                ],
            )
        )
    targets = []
    for r in latency:
        if "in-process" in r["what"]:
            targets.append(
                _target(
                    f"local dispatch p50 <= {TARGET_LOCAL_P50_MS:g} ms (in-process)",
                    r["p50_ms"],
                    r["p50_ms"] <= TARGET_LOCAL_P50_MS,
                    "ms",
                )
            )
        elif r["what"].startswith("local"):
            targets.append(
                _target(
                    f"local dispatch p50 <= {TARGET_LOCAL_P50_MS:g} ms ({r['what'].split(', ', 1)[1]})",
                    r["p50_ms"],
                    r["p50_ms"] <= TARGET_LOCAL_P50_MS,
                    "ms",
                )
            )
        else:
            targets.append(
                _target(
                    f"celery dispatch p50 <= {TARGET_CELERY_P50_MS:g} ms",
                    r["p50_ms"],
                    r["p50_ms"] <= TARGET_CELERY_P50_MS,
                    "ms",
                )
            )
    for r in results["noop"]:
        if r["what"].startswith("no-op, local") and env["database_vendor"] == "sqlite":
            value = r["steady_steps_per_s"]
            targets.append(
                _target(
                    f">= {TARGET_NOOP_STEPS_PER_S:g} no-op steps/s, local, SQLite ({r['what'].split(', ', 2)[2]})",
                    value,
                    value >= TARGET_NOOP_STEPS_PER_S,
                    "steps/s",
                )
            )
    for executor in ("local", "celery"):
        runs = {r["processes"]: r for r in results["cpu"] if f", {executor}," in r["what"]}
        if 1 in runs and 2 in runs:
            ratio = runs[2]["steady_steps_per_s"] / runs[1]["steady_steps_per_s"]
            targets.append(
                _target(
                    f"CPU-bound, {executor}: 2 workers >= {TARGET_CPU_SPEEDUP}x one",
                    ratio,
                    ratio >= TARGET_CPU_SPEEDUP,
                    "x",
                )
            )
    if targets:
        print("\nTargets (not asserted)")
        print(table(["target", "measured", ""], targets))


def _target(name: str, value: float, met: bool, unit: str) -> list[str]:
    return [name, f"{_f(value, 2)} {unit}", "met" if met else "MISSED"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url", help="default: a fresh SQLite file; a postgresql:// database is dropped and recreated"
    )
    parser.add_argument("--executors", default="local,celery", help="comma separated: local, celery")
    parser.add_argument("--samples", type=int, default=200, help="latency samples (in-process and Celery)")
    parser.add_argument("--poll-samples", type=int, default=50, help="latency samples for a polling worker")
    parser.add_argument("--noop-projects", type=int, default=200, help=f"projects of {NOOP_CHAIN} no-op steps")
    parser.add_argument("--threads", type=int, default=4, help="threads of each `orchestra worker`")
    parser.add_argument("--cpu-steps", type=int, default=100, help="CPU-bound one-step projects per run")
    parser.add_argument("--cpu-ms", type=float, default=50.0, help="CPU time each CPU-bound step spends")
    parser.add_argument("--only", default="latency,noop,cpu", help="comma separated: latency, noop, cpu")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("ORCHESTRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the broker for the Celery runs",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="run the workers under `py-spy record` (pip install py-spy); samples in HOME/*.pyspy (use --keep)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp ORCHESTRA_HOME (database, worker logs)")
    args = parser.parse_args(argv)
    executors = {e.strip() for e in args.executors.split(",") if e.strip()}
    only = {o.strip() for o in args.only.split(",") if o.strip()}
    if not executors <= {"local", "celery"} or not only <= {"latency", "noop", "cpu"}:
        parser.error("--executors takes local and/or celery; --only takes latency, noop and/or cpu")

    WorkerProcess.profile = args.py_spy
    home = configure(args.database_url)
    results: dict[str, list[dict[str, Any]]] = {"latency": [], "noop": [], "cpu": []}
    try:
        from benchmarks.engine import environment

        env = environment()
        env["loadavg"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        if "celery" in executors:
            import celery

            env["celery"] = celery.__version__
        load_workflows(home, args.cpu_ms)

        def run(kind: str, what: str, fn: Callable[[], dict[str, Any]]) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {kind}: {what} (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
            results[kind].append(fn())

        if "latency" in only:
            if "local" in executors:
                run("latency", "local in-process", lambda: latency_local_in_process(args.samples))
                for poll in (1.0, 0.1):
                    run(
                        "latency",
                        f"local worker, poll {poll}",
                        lambda poll=poll: latency_local_worker(home, args.poll_samples, poll),
                    )
            if "celery" in executors:
                run("latency", "celery", lambda: latency_celery(home, args.samples, args.redis_url))
        if "noop" in only:
            if "local" in executors:
                for processes in (1, 2):
                    run(
                        "noop",
                        f"local x{processes}",
                        lambda p=processes: noop_local(home, args.noop_projects, p, args.threads),
                    )
            if "celery" in executors:
                run("noop", "celery", lambda: noop_celery(home, args.noop_projects, 2, args.redis_url))
        if "cpu" in only:
            for n in (1, 2):
                if "local" in executors:
                    run("cpu", f"local x{n}", lambda n=n: cpu_local(home, args.cpu_steps, n, args.threads))
                if "celery" in executors:
                    run("cpu", f"celery x{n}", lambda n=n: cpu_celery(home, args.cpu_steps, n, args.redis_url))
        print_report(env, results, args)
        if args.json:
            print("\n" + json.dumps({"environment": env, "results": results}, indent=2, default=str))
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"\nkept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
