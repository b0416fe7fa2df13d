"""Each service call runs a bounded number of queries, the same however many rows there are."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orchestra.events import log
from orchestra.execution.runner import drain
from orchestra.models import Task, Worker
from orchestra.selectors.projects import project_information
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_assign, task_pull, task_return, task_save, task_submit
from orchestra.services.workers import worker_create
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db(transaction=True)

# Bounds per call, BEGIN/COMMIT included (SQLite reports them; PostgreSQL does not).
# Since the audit ledger and the outbox: each transaction moves its project chain's head (one statement), and
# a return also queues its notification email (one insert).
BOUNDS = {"create": 8, "machine step": 16, "pull": 14, "assign": 12, "save": 6, "submit": 13, "return": 14}


def count(fn) -> int:
    with CaptureQueriesContext(connection) as queries:
        fn()
    return len(queries)


def _workflow(tmp_path, humans: int):
    steps = [machine("a"), machine("b", "a"), machine("c", "a"), machine("d", "b", "c")]
    steps += [human(f"h{i}", "d", review=NO_REVIEW) for i in range(humans)]
    steps.append(human("reviewed", "d"))
    load(tmp_path, steps, slug=f"wf{humans}")
    return f"wf{humans}"


def _measure(tmp_path, settings, *, humans: int, backlog: int) -> dict[str, int]:
    slug = _workflow(tmp_path / str(humans), humans)
    ann: Worker = worker_create(username=f"ann{humans}")
    bob: Worker = worker_create(username=f"bob{humans}")
    for _ in range(backlog):  # other projects waiting in the pool
        project_create(workflow_slug=slug, version_slug="v1")
    settings.ORCHESTRA_EXECUTOR = "local"  # queue the machine steps; run one by hand below
    counts = {"create": count(lambda: project_create(workflow_slug=slug, version_slug="v1"))}
    settings.ORCHESTRA_EXECUTOR = "eager"
    counts["machine step"] = count(lambda: drain(limit=1))
    drain()
    holder = {}
    counts["pull"] = count(lambda: holder.setdefault("a", task_pull(worker=ann, role="entry_level")))
    task_id = holder["a"].task_id
    counts["save"] = count(lambda: task_save(task_id=task_id, worker=ann, data={"x": 1}))
    counts["submit"] = count(lambda: task_submit(task_id=task_id, worker=ann, data={"x": 2}))
    reviewed = Task.objects.filter(step__slug="reviewed", status="Awaiting Processing").first()
    counts["assign"] = count(lambda: task_assign(task_id=reviewed.pk, worker=ann))
    task_submit(task_id=reviewed.pk, worker=ann, data={})
    task_assign(task_id=reviewed.pk, worker=bob)
    counts["return"] = count(lambda: task_return(task_id=reviewed.pk, worker=bob, data={}, feedback="again"))
    return counts


def test_service_calls_run_bounded_queries_independent_of_size(tmp_path, settings):
    small = _measure(tmp_path, settings, humans=1, backlog=1)
    large = _measure(tmp_path, settings, humans=12, backlog=30)
    assert small == large, (small, large)
    for name, bound in BOUNDS.items():
        assert small[name] <= bound, (name, small[name], bound)


def test_project_information_is_five_queries_for_any_number_of_projects(tmp_path):
    load(tmp_path, [machine("a"), human("b", "a")])
    worker_create(username="ann")
    worker_create(username="bob")
    projects = [project_create(workflow_slug="wf", version_slug="v1") for _ in range(8)]
    for project in projects:
        task = Task.objects.get(project=project, step__slug="b")
        task_assign(task_id=task.pk, worker="ann")
        task_submit(task_id=task.pk, worker="ann", data={})
        task_assign(task_id=task.pk, worker="bob")
    one = count(lambda: project_information([projects[0].pk]))
    many = count(lambda: project_information([p.pk for p in projects]))
    assert one == many == 5


def test_postgresql_prepares_the_statements_a_connection_repeats(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server that prepares statements")
    load(tmp_path, [machine("a"), human("b", "a")])
    project = project_create(workflow_slug="wf", version_slug="v1")
    for _ in range(3):
        project_information([project.pk])
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "orchestra_iteration" i' in statement for statement in prepared), prepared


def test_prepared_statements_can_be_turned_off(monkeypatch):
    from orchestra.settings import database_from_url

    url = "postgresql://orchestra@db.example:5432/orchestra"
    assert database_from_url(url)["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 2}
    monkeypatch.setenv("ORCHESTRA_DATABASE_PREPARED", "0")
    assert "OPTIONS" not in database_from_url(url)


def test_home_page_query_count_does_not_grow_with_projects(tmp_path, client):
    load(tmp_path, [machine("a")])
    project_create(workflow_slug="wf", version_slug="v1", description="first")
    one = count(lambda: client.get("/orchestra/"))
    for i in range(15):
        project_create(workflow_slug="wf", version_slug="v1", description=f"p{i}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/orchestra/")
    assert response.status_code == 200
    assert b"p14" in response.content and b"Workflow wf" in response.content
    assert len(queries) == one == 3


def test_a_process_that_did_not_append_last_pays_no_more(tmp_path):
    """Under a multi-process server the previous change to a project often came from another process, so this
    one's memory of the project's ledger head is missing or stale. The head is read with the project's lock,
    so the call still moves it with one compare-and-set: the same statements either way."""
    load(tmp_path, [human("h", review=NO_REVIEW)])
    ann = worker_create(username="ann")

    def pull_and_submit(forget: bool) -> list[int]:
        project_create(workflow_slug="wf", version_slug="v1")
        if forget:
            log._heads_seen.clear()  # what a process that has not touched this project remembers
        held = []
        counts = [count(lambda: held.append(task_pull(worker=ann, role="entry_level")))]
        if forget:
            log._heads_seen.clear()
        counts.append(count(lambda: task_submit(task_id=held[0].task_id, worker=ann, data={})))
        return counts

    remembered = pull_and_submit(forget=False)
    forgotten = pull_and_submit(forget=True)
    assert forgotten == remembered, (forgotten, remembered)
