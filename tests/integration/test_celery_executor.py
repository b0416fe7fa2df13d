"""The Celery executor through real `orchestra worker --celery` processes and a real Redis.

Each test sends to a Celery queue of its own, and its workers' sweeper polls once a minute unless the
test is about the sweeper, so what runs the work is the message the test expects to run it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from django.db.models import Count

from orchestra.execution import celery
from orchestra.models import Event, Project, Task
from orchestra.services.projects import project_create, project_pause, project_resume
from tests.support.processes import Worker, forget_queue, redis_url, wait_for, worker_env
from tests.support.workflows import load, machine

pytestmark = pytest.mark.django_db(transaction=True)

STEPS = "tests.support.execution_steps"
DIAMOND = [machine("a"), machine("b", "a"), machine("c", "a"), machine("d", "b", "c")]

StartWorker = Callable[..., Worker]


@pytest.fixture
def queue(settings) -> Iterator[str]:
    url = redis_url()
    name = f"orchestra-test-{uuid.uuid4().hex[:12]}"
    settings.ORCHESTRA_EXECUTOR = "celery"
    settings.ORCHESTRA_BROKER_URL = url
    settings.ORCHESTRA_CELERY_QUEUE = name
    celery.app.conf.broker_url = url
    yield name
    forget_queue(url, name)


@pytest.fixture
def start_worker(queue, settings, tmp_path) -> Iterator[StartWorker]:
    workers: list[Worker] = []

    def start(*args: str, poll: float = 60.0) -> Worker:
        env = worker_env(
            ORCHESTRA_EXECUTOR="celery",
            ORCHESTRA_BROKER_URL=settings.ORCHESTRA_BROKER_URL,
            ORCHESTRA_CELERY_QUEUE=queue,
            ORCHESTRA_POLL_SECONDS=str(poll),
        )
        worker = Worker(["--celery", *args], env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


def completions_per_task(projects: list[Project]) -> dict[int, int]:
    rows = (
        Event.objects.filter(project__in=projects, action="task_completed")
        .values("task_id")
        .annotate(n=Count("id"))
        .values_list("task_id", "n")
    )
    return dict(rows)


def all_completed(projects: list[Project]) -> Callable[[], bool]:
    ids = [p.pk for p in projects]
    return lambda: Project.objects.filter(pk__in=ids, status="Completed").count() == len(ids)


def test_a_project_of_machine_steps_runs_to_completion_on_celery_workers(tmp_path, start_worker):
    load(tmp_path, DIAMOND)
    worker = start_worker("--concurrency", "2")
    projects = [project_create(workflow_slug="wf", version_slug="v1") for _ in range(3)]
    assert wait_for(all_completed(projects)), worker.output()
    tasks = Task.objects.filter(project__in=projects)
    assert completions_per_task(projects) == {task.pk: 1 for task in tasks} and len(tasks) == 12
    owners = Event.objects.filter(project__in=projects, action="task_claimed").values_list("data__owner", flat=True)
    assert owners and all(owner.startswith("celery:") for owner in owners)
    assert worker.output().count("succeeded") >= 12  # one run_task message per task, each run by the worker


def test_duplicate_run_task_messages_are_no_ops(tmp_path, queue, start_worker):
    load(tmp_path, [machine("a"), machine("b", "a")])
    project = project_create(workflow_slug="wf", version_slug="v1")  # one message for task a, no worker yet
    (first,) = Task.objects.filter(project=project)
    for _ in range(3):  # three more deliveries of the same message, waiting alongside the first
        celery.run_task.apply_async((first.pk,), queue=queue)
    worker = start_worker("--concurrency", "2")
    assert wait_for(all_completed([project])), worker.output()
    assert wait_for(lambda: worker.output().count(f"task {first.pk} is ") >= 3), worker.output()
    assert completions_per_task([project]) == {task.pk: 1 for task in Task.objects.filter(project=project)}
    assert Event.objects.filter(task=first, action="task_claimed").count() == 1
    celery.run_task.apply_async((first.pk,), queue=queue)  # and once more, long after it completed
    assert wait_for(lambda: f'task {first.pk} is "Complete" (project "Completed"); nothing to run' in worker.output())
    assert Event.objects.filter(task=first).exclude(action="task_created").count() == 2  # claimed, completed


def test_a_failed_step_is_retried_after_its_backoff_through_a_countdown(tmp_path, start_worker):
    retry = {"max_attempts": 3, "backoff_seconds": 1.5, "jitter": False}
    flaky = machine("a", retry=retry)
    flaky["execution_function"] = {
        "path": f"{STEPS}.fail_first",
        "kwargs": {"path": str(tmp_path / "calls"), "times": 1},
    }
    load(tmp_path, [flaky])
    worker = start_worker("--concurrency", "1")  # the sweeper would look only after a minute
    project = project_create(workflow_slug="wf", version_slug="v1")
    assert wait_for(all_completed([project])), worker.output()
    task = Task.objects.get(project=project)
    failed = Event.objects.get(task=task, action="task_failed")
    retried = Event.objects.get(task=task, action="task_claimed", data__attempt=2)
    assert failed.data["retry"] is True and failed.data["retry_in_seconds"] == 1.5
    assert (retried.at - failed.at).total_seconds() >= 1.5  # not before the backoff
    assert task.attempts == 2 and task.data == {"calls": 2}
    assert "not due" not in worker.output()  # the message waited for its countdown; it did not arrive early


def test_a_paused_projects_message_is_a_no_op_and_the_work_runs_after_resume(tmp_path, start_worker):
    load(tmp_path, [machine("a")])
    project = project_create(workflow_slug="wf", version_slug="v1")  # its message waits for a worker
    project_pause(project_id=project.pk)
    task = Task.objects.get(project=project)
    worker = start_worker("--concurrency", "1")
    assert wait_for(lambda: f'task {task.pk} is "Awaiting Processing" (project "Paused")' in worker.output())
    assert not Event.objects.filter(task=task, action="task_claimed").exists()
    project_resume(project_id=project.pk)  # sends a dispatch_due message
    assert wait_for(all_completed([project])), worker.output()
    assert "sent run_task for 1 due task(s)" in worker.output()
    assert completions_per_task([project]) == {task.pk: 1}


def test_the_sweeper_runs_work_whose_message_was_lost(tmp_path, settings, start_worker):
    load(tmp_path, DIAMOND)
    settings.ORCHESTRA_EXECUTOR = "local"  # queued without a message, as if the broker had lost it
    project = project_create(workflow_slug="wf", version_slug="v1")
    settings.ORCHESTRA_EXECUTOR = "celery"
    worker = start_worker("--concurrency", "1", poll=0.2)
    assert wait_for(all_completed([project])), worker.output()
    assert "sweeper: sending run_task for 1 due task(s)" in worker.output()
    assert len(completions_per_task([project])) == 4


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"ORCHESTRA_EXECUTOR": "local"}, ["--celery"], "needs ORCHESTRA_EXECUTOR=celery"),
        (
            {"ORCHESTRA_EXECUTOR": "celery", "ORCHESTRA_BROKER_URL": "redis://127.0.0.1:1/0"},
            [],
            "cannot reach the Celery broker at redis://127.0.0.1:1/0 (ORCHESTRA_BROKER_URL)",
        ),
        ({"ORCHESTRA_EXECUTOR": "celery"}, ["--threads", "2"], "a Celery worker takes --concurrency"),
        ({"ORCHESTRA_EXECUTOR": "local"}, ["--pool", "threads"], "--pool is for a Celery worker: add --celery"),
    ],
)
def test_a_misconfigured_worker_says_which_setting_to_fix(tmp_path, env, args, message):
    worker = Worker(args, worker_env(**env), tmp_path / "worker.log")
    assert worker.process.wait(timeout=60) == 1
    output = worker.output()
    assert message in output and "Traceback" not in output, output
