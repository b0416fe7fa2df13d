"""Acceptance: 1,000 machine steps run exactly once while worker processes are SIGKILLed and restarted.

Real `orchestra worker` processes (the local executor; or Celery workers with Redis, each killed with its
whole pool) share the test database, SQLite or PostgreSQL, with a 2-second lease, so the steps of a
killed worker are taken over quickly. At the end every project is Completed, every task's completion is
in the event log exactly once, and some tasks were taken over from a killed worker.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestra.models import Event, Project, Task
from orchestra.services.projects import project_create
from tests.support.processes import Worker, forget_queue, redis_url, wait_for, worker_env
from tests.support.workflows import load, machine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.acceptance, pytest.mark.slow]

PROJECTS = 100
STEPS = 10
STEP_MS = 15
WORKERS = 3
KILLS = 8
LEASE_SECONDS = "2"


def chain() -> list[dict[str, object]]:
    """Ten machine steps one after the other, each sleeping STEP_MS, retried often enough to outlive kills
    (a step whose worker is killed has used an attempt)."""
    steps = []
    for i in range(STEPS):
        step = machine(f"s{i}", *([f"s{i - 1}"] if i else []), retry={"max_attempts": 50, "backoff_seconds": 0.1})
        step["execution_function"] = {"path": "tests.support.execution_steps.sleep_ms", "kwargs": {"ms": STEP_MS}}
        steps.append(step)
    return steps


def run_with_kills(start: Callable[[int], Worker], seed: int) -> tuple[list[Project], int, str]:
    """Start WORKERS workers on PROJECTS queued projects; every 0.3-1 s, SIGKILL one that is running work
    and start another in its place, KILLS times; then let them finish. Returns the projects, the kills and
    the workers' logs."""
    projects = [project_create(workflow_slug="wf", version_slug="v1") for _ in range(PROJECTS)]
    ids = [p.pk for p in projects]

    def remaining() -> int:
        return PROJECTS - Project.objects.filter(pk__in=ids, status="Completed").count()

    rng = random.Random(seed)
    workers = [start(i) for i in range(WORKERS)]
    retired: list[Worker] = []
    kills = 0
    try:
        deadline = time.monotonic() + 60
        while kills < KILLS and time.monotonic() < deadline and remaining():
            time.sleep(rng.uniform(0.3, 1.0))
            # Only a worker that has started can be holding work; killing one still starting proves nothing.
            running = [i for i, worker in enumerate(workers) if worker.ready()]
            if not running:
                continue
            victim = rng.choice(running)
            workers[victim].kill()
            kills += 1
            retired.append(workers[victim])
            workers[victim] = start(WORKERS + kills)
        done = wait_for(lambda: remaining() == 0, timeout=120, interval=0.2)
    finally:
        for worker in workers:
            worker.stop()
    logs = "\n".join(f"--- {w.log.name}\n{w.output()[-3000:]}" for w in [*retired, *workers])
    assert done, f"{remaining()} projects not completed (seed {seed})\n{logs}"
    return projects, kills, logs


def assert_each_step_ran_exactly_once(projects: list[Project], kills: int, logs: str) -> None:
    tasks = list(Task.objects.filter(project__in=projects).values_list("id", "status"))
    assert len(tasks) == PROJECTS * STEPS
    assert {status for _, status in tasks} == {"Complete"}
    completions = Counter(
        Event.objects.filter(project__in=projects, action="task_completed").values_list("task_id", flat=True)
    )
    assert completions == Counter({task_id: 1 for task_id, _ in tasks})
    assert Event.objects.filter(project__in=projects, action="project_completed").count() == PROJECTS
    takeovers = [
        data
        for data in Event.objects.filter(project__in=projects, action="task_claimed").values_list("data", flat=True)
        if data.get("took_over")
    ]
    assert kills >= 2, f"the work finished after {kills} kill(s); too few to prove anything"
    # A kill that hit running work leaves claims behind, which other workers take over once the lease ends.
    assert takeovers, f"{kills} kills, but no task was taken over from a killed worker\n{logs}"


def test_local_workers_killed_at_random_lose_and_repeat_no_step(tmp_path: Path, settings):
    load(tmp_path, chain())
    settings.ORCHESTRA_EXECUTOR = "local"  # this process queues the work; the worker processes run it
    env = worker_env(ORCHESTRA_EXECUTOR="local", ORCHESTRA_LEASE_SECONDS=LEASE_SECONDS, ORCHESTRA_POLL_SECONDS="0.2")

    def start(i: int) -> Worker:
        return Worker(["--threads", "4"], env, tmp_path / f"worker-{i}.log")

    seed = random.randrange(1_000_000)
    assert_each_step_ran_exactly_once(*run_with_kills(start, seed))


def test_celery_workers_killed_at_random_lose_and_repeat_no_step(tmp_path: Path, settings):
    url = redis_url()
    queue = f"orchestra-crash-{uuid.uuid4().hex[:12]}"
    load(tmp_path, chain())
    settings.ORCHESTRA_EXECUTOR = "celery"
    settings.ORCHESTRA_BROKER_URL = url
    settings.ORCHESTRA_CELERY_QUEUE = queue
    from orchestra.execution import celery

    celery.app.conf.broker_url = url
    env = worker_env(
        ORCHESTRA_EXECUTOR="celery",
        ORCHESTRA_BROKER_URL=url,
        ORCHESTRA_CELERY_QUEUE=queue,
        ORCHESTRA_LEASE_SECONDS=LEASE_SECONDS,
        ORCHESTRA_POLL_SECONDS="0.25",
    )

    def start(i: int) -> Worker:
        return Worker(["--celery", "--concurrency", "3"], env, tmp_path / f"worker-{i}.log")

    seed = random.randrange(1_000_000)
    try:
        assert_each_step_ran_exactly_once(*run_with_kills(start, seed))
    finally:
        forget_queue(url, queue)
