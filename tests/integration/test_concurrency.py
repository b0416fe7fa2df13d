"""Races with real threads on the real database (SQLite in WAL mode, and PostgreSQL in CI)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from orchestra.engine.errors import OrchestraError
from orchestra.models import Task, TaskAssignment
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_assign, task_pull, task_save, task_submit
from orchestra.services.workers import worker_create
from tests.support.workflows import NO_REVIEW, human, load

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return run


def test_32_concurrent_pulls_over_10_tasks_give_exactly_10_assignments(tmp_path):
    load(tmp_path, [human("write", review=NO_REVIEW)])
    for i in range(10):
        project_create(workflow_slug="wf", version_slug="v1", priority=i % 3)
    names = [f"w{i:02d}" for i in range(16)]
    for name in names:
        worker_create(username=name)
    barrier = threading.Barrier(32)

    @_in_thread
    def pull(i: int):
        barrier.wait()
        try:
            return task_pull(worker=names[i % 16], role="entry_level").task_id
        except OrchestraError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(pull, range(32)))
    assigned = [r for r in results if isinstance(r, int)]
    assert len(assigned) == 10, results
    assert len(set(assigned)) == 10
    assert Counter(r for r in results if not isinstance(r, int)) == Counter({"NoTaskAvailable": 22})
    assert TaskAssignment.objects.count() == 10
    assert Task.objects.filter(status="Processing").count() == 10
    seats = list(TaskAssignment.objects.values_list("task_id", "worker_id"))
    assert len(seats) == len(set(seats))


def test_concurrent_pulls_for_review_never_seat_the_author_or_two_reviewers(tmp_path):
    load(tmp_path, [human("write")])
    workers = [worker_create(username=f"r{i}") for i in range(8)]
    for i in range(4):
        project = project_create(workflow_slug="wf", version_slug="v1")
        task = Task.objects.get(project=project)
        task_assign(task_id=task.pk, worker=workers[i])
        task_submit(task_id=task.pk, worker=workers[i], data={})
    barrier = threading.Barrier(8)

    @_in_thread
    def pull(i: int):
        barrier.wait()
        try:
            return task_pull(worker=workers[i], role="reviewer").task_id
        except OrchestraError:
            return None

    with ThreadPoolExecutor(8) as pool:
        results = [r for r in pool.map(pull, range(8)) if r is not None]
    assert len(results) == len(set(results)) == 4
    for task in Task.objects.all():
        levels = list(TaskAssignment.objects.filter(task=task).values_list("level", "worker_id"))
        assert sorted(level for level, _ in levels) == [0, 1]
        assert len({w for _, w in levels}) == 2


@pytest.mark.parametrize("round_", range(5))
def test_a_save_racing_a_submit_never_leaves_a_complete_task_with_a_processing_assignment(tmp_path, round_):
    load(tmp_path, [human("write", review=NO_REVIEW)])
    worker = worker_create(username="ann")
    tasks = []
    for _ in range(6):
        project = project_create(workflow_slug="wf", version_slug="v1")
        task = Task.objects.get(project=project)
        task_assign(task_id=task.pk, worker=worker)
        tasks.append(task.pk)
    barrier = threading.Barrier(len(tasks) * 4)

    @_in_thread
    def act(args):
        task_id, what = args
        barrier.wait()
        try:
            if what == "submit":
                task_submit(task_id=task_id, worker="ann", data={"final": True})
            else:
                task_save(task_id=task_id, worker="ann", data={"draft": what})
        except OrchestraError:
            pass

    jobs = [(t, w) for t in tasks for w in ("save-1", "submit", "save-2", "save-3")]
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(act, jobs))
    for task in Task.objects.filter(pk__in=tasks):
        assignment = TaskAssignment.objects.get(task=task)
        assert task.status == "Complete"
        assert assignment.status == "Submitted"
        assert task.data == {"final": True}
