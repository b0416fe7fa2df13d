"""The audit ledger, read side: verifying chains, exporting them, a project's history and lineage.

Every event row is a link in its project's hash chain (orchestra.engine.ledger says how, and
orchestra.events.log writes the links). `verify` recomputes the chains from the database and names the first
row of each that was edited, deleted, inserted or reordered; `export` writes the rows as JSON lines, with
the chain heads, so anyone can recompute the hashes elsewhere; `lineage` says, for each task of a project,
which outputs it was given, who or what code produced its output, and when.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from orchestra.engine.ledger import GLOBAL_CHAIN, Content, Head, Problem, Row, canonical_time, verify_chain
from orchestra.engine.lifecycle import TaskStatus
from orchestra.events.log import CONTENT_COLUMNS
from orchestra.models import Event, LedgerHead, Project, Task, TaskAssignment

_ROW_FIELDS = ("id", "seq", "prev_hash", "hash", *CONTENT_COLUMNS)


def _row(values: tuple[Any, ...]) -> Row:
    return Row(values[0], values[1], values[2], values[3], Content(*values[4:]))


def _chain_rows(chain: int) -> list[Row]:
    events = (
        Event.objects.filter(project__isnull=True) if chain == GLOBAL_CHAIN else Event.objects.filter(project_id=chain)
    )
    return [_row(v) for v in events.order_by("seq", "id").values_list(*_ROW_FIELDS)]


def chains() -> list[int]:
    """Every chain that has a head or rows."""
    found = set(LedgerHead.objects.values_list("chain", flat=True))
    found |= {p for p in Event.objects.values_list("project_id", flat=True).distinct() if p is not None}
    if Event.objects.filter(project__isnull=True).exists():
        found.add(GLOBAL_CHAIN)
    return sorted(found)


@dataclass
class Report:
    chains: int = 0
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(project_id: int | None = None) -> Report:
    """Check one project's chain (`project_id`), or every chain; one problem at most per chain, its first."""
    wanted = [project_id] if project_id is not None else chains()
    heads = {h.chain: Head(h.seq, h.hash) for h in LedgerHead.objects.filter(chain__in=wanted)}
    report = Report()
    for chain in wanted:
        rows = _chain_rows(chain)
        report.chains += 1
        report.rows += len(rows)
        problem = verify_chain(chain, rows, heads.get(chain))
        if problem is not None:
            report.problems.append(problem)
    return report


def _jsonable(row: Row) -> dict[str, Any]:
    c = row.content
    return {
        "record": "event",
        "id": row.id,
        "chain": c.project_id if c.project_id is not None else GLOBAL_CHAIN,
        "seq": row.seq,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "at": canonical_time(c.at),
        "actor_user_id": c.actor_user_id,
        "actor": c.actor,
        "action": c.action,
        "project_id": c.project_id,
        "task_id": c.task_id,
        "from_status": c.from_status,
        "to_status": c.to_status,
        "data": c.data,
    }


def export_lines(project_id: int | None = None) -> Iterator[str]:
    """JSON lines: each event (chain order), then each chain's head ({"record": "head", ...})."""
    wanted = [project_id] if project_id is not None else chains()
    for chain in wanted:
        for row in _chain_rows(chain):
            yield json.dumps(_jsonable(row), ensure_ascii=False, sort_keys=True)
    for head in LedgerHead.objects.filter(chain__in=wanted).order_by("chain"):
        yield json.dumps({"record": "head", "chain": head.chain, "seq": head.seq, "hash": head.hash}, sort_keys=True)


def export(out: TextIO, project_id: int | None = None) -> int:
    lines = 0
    for line in export_lines(project_id):
        out.write(line + "\n")
        lines += 1
    return lines


# --- a project's history and lineage ---------------------------------------------------------------------


def output_hash(data: Any) -> str:
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _code(step: Any) -> str:
    """What code a step's output comes from: a function's path, a script's command, a task list."""
    if step.execution_function is not None:
        return str(step.execution_function.path)
    execution = step.execution if isinstance(step.execution, dict) else {}
    for key in ("command", "workflow", "url", "queue"):
        if execution.get(key):
            value = execution[key]
            return " ".join(value) if isinstance(value, list) else str(value)
    return ""


_DONE_ACTIONS = {"task_completed", "task_submitted", "task_accepted", "task_skipped"}


def history(project_id: int, limit: int = 200, before_seq: int | None = None) -> list[dict[str, Any]]:
    """The project's events, newest first, with their place in the chain."""
    events = Event.objects.filter(project_id=project_id)
    if before_seq is not None:
        events = events.filter(seq__lt=before_seq)
    rows = events.order_by("-seq").values_list(*_ROW_FIELDS)[:limit]
    return [_jsonable(_row(v)) for v in rows]


def lineage(
    project: Project,
    *,
    tasks: dict[str, Task] | None = None,
    seats: dict[int, list[TaskAssignment]] | None = None,
) -> list[dict[str, Any]]:
    """For each task in step order: its inputs (the outputs it was given, by step, with their hashes), who or
    what produced its output and when, and the output's hash. Four queries whatever the project's size; two
    when the caller has read the project's tasks (by step slug) and seats (by task id, in level order)."""
    from orchestra.services._base import compiled

    cv = compiled(project.version)
    steps = {s.slug: s for s in cv.definition.steps}
    if tasks is None:
        tasks = {t.step.slug: t for t in Task.objects.filter(project_id=project.pk).select_related("step")}
    if seats is None:
        seats = {}
        for seat in (
            TaskAssignment.objects.filter(task__project_id=project.pk).select_related("worker__user").order_by("level")
        ):
            seats.setdefault(seat.task_id, []).append(seat)
    done: dict[int, Event] = {}
    for event in Event.objects.filter(
        project_id=project.pk, action__in=_DONE_ACTIONS, to_status=TaskStatus.COMPLETE
    ).order_by("seq"):
        if event.task_id is not None:
            done[event.task_id] = event  # the latest completion (a reverted task may complete twice)
    out = []
    for slug in cv.order:
        task = tasks.get(slug)
        if task is None:
            continue
        step = steps[slug]
        event = done.get(task.pk)
        complete = task.status == TaskStatus.COMPLETE
        out.append(
            {
                "task_id": task.pk,
                "step": slug,
                "kind": str(step.kind),
                "status": task.status,
                "inputs": [
                    {
                        "step": ancestor,
                        "task_id": tasks[ancestor].pk if ancestor in tasks else None,
                        "output_hash": output_hash(tasks[ancestor].data) if ancestor in tasks else None,
                    }
                    for ancestor in cv.ancestors[slug]
                ],
                "code": _code(step),
                "workers": [
                    {"username": seat.worker.username, "level": seat.level, "status": seat.status}
                    for seat in seats.get(task.pk, [])
                ],
                "completed_by": event.actor if event and complete else None,
                "completed_at": canonical_time(event.at) if event and complete else None,
                "event_id": event.pk if event and complete else None,
                "event_hash": event.hash if event and complete else None,
                "output_hash": output_hash(task.data) if complete else None,
            }
        )
    return out


__all__ = ["Report", "chains", "export", "export_lines", "history", "lineage", "output_hash", "verify"]
