"""The audit ledger on a real database: real projects' chains, tampered with in SQL behind Orchestra's back,
caught by `orchestra audit verify`; exports a third party can check; chains that hold under concurrency."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from orchestra.engine.ledger import GENESIS, Content, row_hash
from orchestra.models import Delivery, DeliveryAttempt, Event, LedgerHead, Project, Task
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_assign, task_return, task_save, task_submit
from orchestra.services.workers import worker_create
from tests.support.processes import REPO, worker_env
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = pytest.mark.django_db

FEEDBACK = "Bitte überarbeiten: the title is wrong ✓"


# --- helpers -----------------------------------------------------------------------------------------------


@pytest.fixture
def workflow(tmp_path):
    load(tmp_path, [machine("fetch"), human("write", "fetch"), human("check", "write", review=NO_REVIEW)])
    for name in ("ann", "bob", "cat"):
        worker_create(username=name, email=f"{name}@example.com")


@pytest.fixture
def make_project(workflow, django_capture_on_commit_callbacks):
    def make() -> Project:
        """A project taken through machine and human steps, a return and a review: about 15 events."""
        # The eager executor runs machine steps after commit; the test's transaction never commits.
        with django_capture_on_commit_callbacks(execute=True):
            project = project_create(workflow_slug="wf", version_slug="v1", priority=2)
        write = Task.objects.get(project=project, step__slug="write")
        task_assign(task_id=write.pk, worker="ann", actor="admin")
        task_save(task_id=write.pk, worker="ann", data={"title": "draft"})
        task_submit(task_id=write.pk, worker="ann", data={"title": "first"})
        task_assign(task_id=write.pk, worker="bob", actor="admin")
        task_return(task_id=write.pk, worker="bob", data={"title": "first"}, feedback=FEEDBACK)
        task_submit(task_id=write.pk, worker="ann", data={"title": "second"})
        task_submit(task_id=write.pk, worker="bob", data={"title": "second"}, command="accept")
        check = Task.objects.get(project=project, step__slug="check")
        task_assign(task_id=check.pk, worker="cat", actor="admin")
        task_save(task_id=check.pk, worker="cat", data={"ok": True})
        return project

    return make


def events(project: Project) -> list[Event]:
    return list(Event.objects.filter(project=project).order_by("seq"))


def middle(project: Project, *, without_deliveries: bool = False) -> Event:
    """An event in the middle of the project's chain."""
    rows = events(project)
    candidates = rows[len(rows) // 3 : -2]
    if without_deliveries:
        candidates = [e for e in candidates if not Delivery.objects.filter(event=e).exists()]
    return candidates[0]


def sql(statement: str, params: list[Any] = ()) -> None:
    """Raw SQL straight at the tables, as someone with database access would tamper (Event.save refuses)."""
    tables = {
        "event": Event._meta.db_table,
        "delivery": Delivery._meta.db_table,
        "attempt": DeliveryAttempt._meta.db_table,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement.format(**{k: connection.ops.quote_name(v) for k, v in tables.items()}), params)


CONTENT_FIELDS = ("at", "actor_user_id", "actor", "action", "project_id", "task_id", "from_status", "to_status", "data")


def content_of(event: Event, **changes: Any) -> Content:
    """What the event's hash covers, with `changes`: what a forger hashes."""
    return dataclasses.replace(Content(*(getattr(event, f) for f in CONTENT_FIELDS)), **changes)


def json_value(value: Any) -> Any:
    return Event._meta.get_field("data").get_db_prep_value(value, connection)


def audit(*args: str) -> tuple[bool, str]:
    """`orchestra audit ...` through call_command: (succeeded, everything it wrote or raised)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return False, f"{out.getvalue()}{err.getvalue()}CommandError: {exc}"
    return True, out.getvalue() + err.getvalue()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`orchestra ...` as a real process on the test database (the test must commit: transaction=True)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestra.cli", *args],
        env=worker_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def names(text: str, event_id: int) -> bool:
    return re.search(rf"event #{event_id}\b", text) is not None


def broken_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("BROKEN ")]


def assert_caught(project: Project, other: Project, event_id: int, kind: str, *more: str) -> None:
    """`audit verify` fails naming the project, the event and the kind; the other project still verifies."""
    ok, output = audit("verify")
    assert not ok, output
    lines = broken_lines(output)
    assert len(lines) == 1, output  # the other chains are untouched
    line = lines[0]
    assert line.startswith(f"BROKEN project {project.pk}: "), line
    assert names(line, event_id) and kind in line, line
    for text in more:
        assert text in line, line
    assert "1 chain(s) broken" in output
    ok, output = audit("verify", "--project", str(project.pk))
    assert not ok and names(output, event_id) and kind in output, output
    ok, output = audit("verify", "--project", str(other.pk))
    assert ok and output.startswith(f"ok: 1 chain(s), {len(events(other))} event(s) checked"), output


# --- a clean ledger ----------------------------------------------------------------------------------------


def test_a_clean_ledger_verifies_for_every_chain_and_one_project(make_project):
    first, second = make_project(), make_project()
    total = Event.objects.count()
    ok, output = audit("verify")
    chains = 3  # two projects and the global chain (the workflow loaded)
    assert ok and output.strip() == f"ok: {chains} chain(s), {total} event(s) checked; every hash and link matches"
    ok, output = audit("verify", "--project", str(first.pk))
    assert ok and output.startswith(f"ok: 1 chain(s), {len(events(first))} event(s) checked"), output
    assert len(events(first)) == len(events(second)) >= 15


def test_verify_of_an_unknown_project_says_so(make_project):
    make_project()
    ok, output = audit("verify", "--project", "987654")
    assert not ok and "project 987654 has no events (is the id right?)" in output


def test_each_project_has_its_own_chain_from_genesis(make_project, tmp_path):
    first, second = make_project(), make_project()
    for project in (first, second):
        rows = events(project)
        assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
        assert rows[0].action == "project_created" and rows[0].prev_hash == GENESIS
        assert [e.prev_hash for e in rows[1:]] == [e.hash for e in rows[:-1]]
        head = LedgerHead.objects.get(chain=project.pk)
        assert (head.seq, head.hash) == (rows[-1].seq, rows[-1].hash)
    # Same story, different chains: no row of one is linked to a row of the other.
    assert not {e.hash for e in events(first)} & {e.prev_hash for e in events(second)}
    # Events of no project (the workflow loaded) are the global chain, 0.
    global_rows = list(Event.objects.filter(project__isnull=True).order_by("seq"))
    assert global_rows and global_rows[0].seq == 1 and global_rows[0].prev_hash == GENESIS
    assert LedgerHead.objects.get(chain=0).seq == len(global_rows)


# --- tampering in SQL --------------------------------------------------------------------------------------


def test_an_edited_row_is_caught(make_project):
    project, other = make_project(), make_project()
    target = middle(project)
    sql("UPDATE {event} SET data = %s WHERE id = %s", [json_value({**target.data, "worker": "mallory"}), target.pk])
    assert_caught(project, other, target.pk, "edited", f"(seq {target.seq})", "no longer matches its hash")


def test_an_edited_and_rehashed_row_is_caught_as_its_successor_no_longer_follows_it(make_project):
    project, other = make_project(), make_project()
    target = middle(project)
    forged = {**target.data, "worker": "mallory"}
    content = content_of(target, data=forged)
    sql(
        "UPDATE {event} SET data = %s, hash = %s WHERE id = %s",
        [json_value(forged), row_hash(content, target.prev_hash), target.pk],
    )
    assert_caught(project, other, target.pk, "edited", "rehashed")


def test_a_deleted_middle_row_is_caught_by_the_rows_around_the_gap(make_project):
    project, other = make_project(), make_project()
    rows = events(project)
    target = middle(project)
    i = rows.index(target)
    # Deliveries protect their event; a tamperer removes them too.
    sql("DELETE FROM {attempt} WHERE delivery_id IN (SELECT id FROM {delivery} WHERE event_id = %s)", [target.pk])
    sql("DELETE FROM {delivery} WHERE event_id = %s", [target.pk])
    sql("DELETE FROM {event} WHERE id = %s", [target.pk])
    before, after = rows[i - 1], rows[i + 1]
    assert_caught(
        project,
        other,
        after.pk,
        "deleted",
        f"the row before event #{after.pk} (seq {after.seq}) was deleted",
        f"after event #{before.pk} (seq {before.seq})",
    )


def test_a_deleted_row_with_deliveries_is_caught_too(make_project):
    project, other = make_project(), make_project()
    target = Event.objects.filter(project=project, action="task_returned").get()
    assert Delivery.objects.filter(event=target).exists()  # the returned-work email
    sql("DELETE FROM {delivery} WHERE event_id = %s", [target.pk])
    sql("DELETE FROM {event} WHERE id = %s", [target.pk])
    after = Event.objects.get(project=project, seq=target.seq + 1)
    assert_caught(project, other, after.pk, "deleted")


def test_deleted_last_rows_are_caught_by_the_chain_head(make_project):
    project, other = make_project(), make_project()
    rows = events(project)
    sql(
        "DELETE FROM {delivery} WHERE event_id IN (SELECT id FROM {event} WHERE project_id = %s AND seq > %s)",
        [project.pk, rows[-3].seq],
    )
    sql("DELETE FROM {event} WHERE project_id = %s AND seq > %s", [project.pk, rows[-3].seq])
    assert_caught(
        project,
        other,
        rows[-3].pk,
        "deleted",
        "the last 2 row(s) were deleted",
        f"head at seq {rows[-1].seq}",
    )


def _fabricate(project: Project, seq: int, prev_hash: str, template: Event) -> int:
    """Insert a row at `seq` with a hash that is right for its content and claimed predecessor: the best a
    forger without the chain head can do. Returns its id."""
    content = content_of(
        template,
        actor_user_id=None,
        actor="mallory",
        action="task_accepted",
        from_status="Reviewing",
        to_status="Complete",
        data={"worker": "mallory", "level": 1},
    )
    columns = [*CONTENT_FIELDS, "seq", "prev_hash", "hash"]
    values = [getattr(content, f) for f in CONTENT_FIELDS] + [seq, prev_hash, row_hash(content, prev_hash)]
    values[0] = Event._meta.get_field("at").get_db_prep_value(content.at, connection)
    values[8] = json_value(content.data)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql(f"INSERT INTO {{event}} ({names}) VALUES ({', '.join(['%s'] * len(values))})", values)
    return Event.objects.get(project=project, seq=seq).pk


def test_a_row_inserted_in_the_middle_is_caught(make_project):
    project, other = make_project(), make_project()
    rows = events(project)
    target = middle(project)
    i = rows.index(target)
    # Make room: the (project, seq) constraint forbids two rows at one seq, even for a moment.
    sql("UPDATE {event} SET seq = seq + 1000000 WHERE project_id = %s AND seq >= %s", [project.pk, target.seq])
    sql("UPDATE {event} SET seq = seq - 999999 WHERE project_id = %s AND seq >= 1000000", [project.pk])
    fake = _fabricate(project, target.seq, rows[i - 1].hash, target)
    assert_caught(project, other, fake, "inserted", f"event #{fake} (seq {target.seq}) was inserted")


def test_a_row_inserted_at_the_end_is_caught(make_project):
    project, other = make_project(), make_project()
    last = events(project)[-1]
    fake = _fabricate(project, last.seq + 1, last.hash, last)
    assert_caught(project, other, fake, "inserted", f"(seq {last.seq + 1})")


def test_two_rows_with_swapped_seqs_are_caught(make_project):
    project, other = make_project(), make_project()
    rows = events(project)
    a, b = rows[4], rows[7]
    # Through a free seq: the (project, seq) constraint holds at every statement.
    sql("UPDATE {event} SET seq = %s WHERE id = %s", [10**9, a.pk])
    sql("UPDATE {event} SET seq = %s WHERE id = %s", [a.seq, b.pk])
    sql("UPDATE {event} SET seq = %s WHERE id = %s", [b.seq, a.pk])
    assert_caught(project, other, b.pk, "reordered", f"event #{b.pk} (seq {a.seq})", f"follows event #{rows[6].pk}")


@pytest.mark.django_db(transaction=True)
def test_the_cli_process_exits_1_naming_the_tampered_rows_and_passes_untouched_projects(make_project):
    edited, reordered, clean = make_project(), make_project(), make_project()
    target = middle(edited)
    sql("UPDATE {event} SET actor = %s WHERE id = %s", ["mallory", target.pk])
    rows = events(reordered)
    sql("UPDATE {event} SET seq = %s WHERE id = %s", [10**9, rows[2].pk])
    sql("UPDATE {event} SET seq = %s WHERE id = %s", [rows[2].seq, rows[3].pk])
    sql("UPDATE {event} SET seq = %s WHERE id = %s", [rows[3].seq, rows[2].pk])

    result = cli("audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken_lines(result.stderr) == [
        f"BROKEN project {edited.pk}: event #{target.pk} (seq {target.seq}) was edited: its content no longer"
        " matches its hash",
        f"BROKEN project {reordered.pk}: event #{rows[3].pk} (seq {rows[2].seq}) was reordered: it follows event"
        f" #{rows[2].pk} (seq {rows[3].seq}), which comes after it",
    ]
    assert "2 chain(s) broken" in result.stderr and "Traceback" not in result.stderr

    result = cli("audit", "verify", "--project", str(clean.pk))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ok: 1 chain(s), {len(events(clean))} event(s) checked")
    assert cli("audit", "verify", "--project", str(edited.pk)).returncode == 1


# --- export ------------------------------------------------------------------------------------------------


def third_party_hash(record: dict[str, Any]) -> str:
    """The row hash, recomputed from an exported line alone, as engine/ledger.py's `canonical` documents it:
    SHA-256 of the compact JSON array [prev_hash, at, actor_user_id, actor, action, project_id, task_id,
    from_status, to_status, data] with sorted keys, UTF-8 (not ASCII-escaped), integral floats as integers."""

    def normal(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [normal(v) for v in value]
        return value

    fields = (
        "prev_hash",
        "at",
        "actor_user_id",
        "actor",
        "action",
        "project_id",
        "task_id",
        "from_status",
        "to_status",
    )
    body = [record[f] for f in fields] + [normal(record["data"])]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_export(lines: list[str]) -> dict[int, list[dict[str, Any]]]:
    """Check an export as someone without Orchestra would: every hash, every link, every head."""
    records = [json.loads(line) for line in lines]
    chains: dict[int, list[dict[str, Any]]] = {}
    heads = {}
    for record in records:
        if record["record"] == "head":
            heads[record["chain"]] = record
        else:
            assert record["record"] == "event"
            chains.setdefault(record["chain"], []).append(record)
    assert set(heads) == set(chains)
    for chain, rows in chains.items():
        prev = "0" * 64
        for n, row in enumerate(rows, start=1):
            assert row["seq"] == n and row["prev_hash"] == prev, row
            assert third_party_hash(row) == row["hash"], row
            prev = row["hash"]
        assert (heads[chain]["seq"], heads[chain]["hash"]) == (len(rows), prev)
    return chains


def test_an_export_can_be_checked_by_a_third_party(make_project, tmp_path):
    first, second = make_project(), make_project()
    path = tmp_path / "ledger.jsonl"
    ok, output = audit("export", "-o", str(path))
    assert ok, output
    lines = path.read_text(encoding="utf-8").splitlines()
    assert f"wrote {len(lines)} line(s) to {path}" in output
    chains = check_export(lines)
    assert set(chains) == {0, first.pk, second.pk}
    assert [r["id"] for r in chains[first.pk]] == [e.pk for e in events(first)]
    returned = [r for r in chains[first.pk] if r["action"] == "task_returned"]
    assert returned[0]["data"]["feedback"] == FEEDBACK  # not ASCII-escaped away, and still verifies


def test_a_project_export_holds_only_its_chain_and_shows_an_edit(make_project, tmp_path):
    project, other = make_project(), make_project()
    path = tmp_path / "project.jsonl"
    assert audit("export", "--project", str(project.pk), "--output", str(path))[0]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert set(check_export(lines)) == {project.pk}
    assert len(lines) == len(events(project)) + 1  # the events and the head

    # An export taken after an edit fails the third party's check at that row.
    target = middle(project)
    sql("UPDATE {event} SET data = %s WHERE id = %s", [json_value({"worker": "mallory"}), target.pk])
    assert audit("export", "--project", str(project.pk), "--output", str(path))[0]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    bad = [r["id"] for r in records if r["record"] == "event" and third_party_hash(r) != r["hash"]]
    assert bad == [target.pk]
    assert audit("export", "--project", str(other.pk), "--output", str(path))[0]
    check_export(path.read_text(encoding="utf-8").splitlines())


# --- concurrency -------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_threads_appending_to_one_project_leave_a_gapless_chain(tmp_path):
    steps = [f"s{i}" for i in range(8)]
    load(tmp_path, [human(s, review=NO_REVIEW) for s in steps])
    project = project_create(workflow_slug="wf", version_slug="v1")
    for i, step in enumerate(steps):
        worker_create(username=f"w{i}")
        task_assign(task_id=Task.objects.get(project=project, step__slug=step).pk, worker=f"w{i}")
    before = Event.objects.filter(project=project).count()
    barrier = threading.Barrier(len(steps))
    saves = 6

    def work(i: int) -> None:
        try:
            task = Task.objects.get(project=project, step__slug=steps[i])
            barrier.wait()
            for n in range(saves):
                task_save(task_id=task.pk, worker=f"w{i}", data={"n": n})
            task_submit(task_id=task.pk, worker=f"w{i}", data={"n": saves})
        finally:
            connections.close_all()

    with ThreadPoolExecutor(len(steps)) as pool:
        list(pool.map(work, range(len(steps))))

    rows = events(project)
    assert len(rows) == before + len(steps) * (saves + 1) + 1  # saves, submissions, the project completed
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    assert [e.prev_hash for e in rows] == [GENESIS] + [e.hash for e in rows[:-1]]
    assert [e.id for e in rows] == sorted(e.id for e in rows)  # ids follow the chain order
    head = LedgerHead.objects.get(chain=project.pk)
    assert (head.seq, head.hash) == (len(rows), rows[-1].hash)
    ok, output = audit("verify")
    assert ok, output


@pytest.mark.django_db(transaction=True)
def test_threads_appending_to_different_projects_keep_each_chain_whole(tmp_path):
    load(tmp_path, [human("write", review=NO_REVIEW)])
    projects = [project_create(workflow_slug="wf", version_slug="v1") for _ in range(4)]
    for i, project in enumerate(projects):
        worker_create(username=f"w{i}")
        task_assign(task_id=Task.objects.get(project=project).pk, worker=f"w{i}")
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            project = projects[i % 4]
            task = Task.objects.get(project=project)
            barrier.wait()
            for n in range(5):
                task_save(task_id=task.pk, worker=f"w{i % 4}", data={"thread": i, "n": n})
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    for project in projects:
        rows = events(project)
        assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
        assert sum(e.action == "task_saved" for e in rows) == 10
    ok, output = audit("verify")
    assert ok, output


@pytest.mark.django_db(transaction=True)
def test_a_chain_moved_by_another_process_is_continued_not_forked(workflow):
    """This process remembers the project's head after its own change; another process (the CLI) then appends
    to the chain. The next change here finds its remembered head stale, appends after the other process's
    events (on PostgreSQL the head's move and the insert are one statement, which inserts nothing when the
    head has moved), and the chain verifies."""
    project = project_create(workflow_slug="wf", version_slug="v1")
    write = Task.objects.get(project=project, step__slug="write")
    task_assign(task_id=write.pk, worker="ann", actor="admin")
    pause = (
        "from orchestra.services.projects import project_pause, project_resume;"
        f"project_pause(project_id={project.pk}, actor='other-process');"
        f"project_resume(project_id={project.pk}, actor='other-process')"
    )
    done = cli("shell", "-c", pause)
    assert done.returncode == 0, done.stderr
    before = Event.objects.filter(project=project).count()

    # project_end locks the project itself (not through load_task), so it appends from the stale memory.
    from orchestra.services.projects import project_end

    project_end(project_id=project.pk, actor="admin")
    rows = events(project)
    assert len(rows) > before
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    assert {e.actor for e in rows} >= {"other-process", "admin"}
    ok, output = audit("verify", "--project", str(project.pk))
    assert ok, output
