"""Loading the rows a lifecycle service works on, with the project locked first (one lock order)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, JSONField, Model, UUIDField

from orchestra.engine.definitions import StepDef
from orchestra.engine.errors import NotFound, ProjectNotActive, ValidationError
from orchestra.engine.lifecycle import ProjectStatus, TaskStatus
from orchestra.engine.text import printable_path, text_problem_at
from orchestra.events.log import saw_head
from orchestra.models import LedgerHead, Project, Task, TaskAssignment, Worker, WorkflowVersion
from orchestra.services._base import CompiledVersion, compiled, db, quote

M = TypeVar("M", bound=Model)


@dataclass
class Loaded:
    project: Project
    task: Task
    step: StepDef
    cv: CompiledVersion
    # Every task of the project by step slug, read after the lock; update it with the call's own change
    # before handing it to `advance`.
    statuses: dict[str, TaskStatus]
    # Every task's output by step slug (for prerequisites, without reading them again).
    outputs: dict[str, Any]
    # The asking worker's assignments on the task, when load_task was given a worker (read with the rest).
    seats: list[TaskAssignment] | None = None

    def changed(self, status: TaskStatus, data: Any) -> None:
        """Record this call's change to its own task before handing the state to `advance`."""
        self.task.status = self.statuses[self.step.slug] = status
        self.task.data = self.outputs[self.step.slug] = data


def load_task(task_id: int, *, worker_id: int | None = None) -> Loaded:
    """Lock the task's project (every lifecycle service locks the project first), then read its tasks, and
    with `worker_id` that worker's assignments on the task.

    Prepared statements instead of ORM queries: this runs on every lifecycle call, and building the
    statements through the ORM cost several times more than running them. On PostgreSQL they go in one
    pipeline (rows_all): the server still runs them in order, the reads after the lock each with a snapshot
    of their own, so they see what the lock's previous holder committed.
    """
    conn = db()
    statements: list[tuple[str, Sequence[Any]]] = [
        (_project_of_task_sql(conn.vendor, "update"), [task_id]),
        (_rows_sql(Task, conn.vendor, TASK_FIELDS, _TASKS_OF_PROJECT), [task_id]),
    ]
    if worker_id is not None:
        statements.append(
            (
                _rows_sql(TaskAssignment, conn.vendor, SEAT_FIELDS, "task_id = %s AND worker_id = %s"),
                [task_id, worker_id],
            )
        )
    found = rows_all(statements)
    if not found[0]:
        raise NotFound(f"task {task_id} does not exist", task_id=task_id)
    project = _project_from_row(conn, found[0][0])
    tasks = _build(Task, _ordered(Task, TASK_FIELDS), found[1], conn)
    task = next(t for t in tasks if t.pk == task_id)
    cv = compiled(project.version)
    slugs = cv.slugs_by_step_id
    statuses = {slugs[t.step_id]: TaskStatus(t.status) for t in tasks}
    outputs = {slugs[t.step_id]: t.data for t in tasks}
    seats = None if worker_id is None else _build(TaskAssignment, _ordered(TaskAssignment, SEAT_FIELDS), found[2], conn)
    return Loaded(project, task, cv.definition.step(slugs[task.step_id]), cv, statuses, outputs, seats)


@functools.lru_cache(maxsize=32)
def _rows_sql(model: type[Model], vendor: str, names: tuple[str, ...], where: str) -> str:
    """`SELECT` the loaded fields of `model` `WHERE …`; `{table}` in `where` is the model's table."""
    name = table(model)
    return _select(model, vendor, names, f"SELECT {{columns}} FROM {name} WHERE " + where.replace("{table}", name), "")


_TASKS_OF_PROJECT = "project_id = (SELECT project_id FROM {table} WHERE id = %s)"


def rows_all(statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
    """The rows of several statements, run in order. On PostgreSQL they go in one pipeline: one round trip
    instead of one each, and the BEGIN that psycopg sends before a transaction's first statement (an exchange
    of its own otherwise) travels with them."""
    conn = db()
    if conn.vendor != "postgresql":
        out = []
        with conn.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                out.append(cursor.fetchall())
        return out
    cursors = [conn.cursor() for _ in statements]  # before the pipeline: the connection's health check
    try:
        with conn.wrap_database_errors, conn.connection.pipeline():
            for cursor, (sql, params) in zip(cursors, statements, strict=True):
                cursor.execute(sql, params)
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


# What lifecycle services read; any other field loads lazily (Django's deferred fields) if touched.
PROJECT_FIELDS = ("id", "version_id", "priority", "project_data", "task_class", "status")
TASK_FIELDS = ("id", "project_id", "step_id", "status", "data", "attempts", "claim_token", "claimed_by")
SEAT_FIELDS = ("id", "task_id", "worker_id", "level", "status", "in_progress_task_data", "created_at", "updated_at")


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


@functools.lru_cache(maxsize=64)
def _ordered(model: type[Model], names: tuple[str, ...]) -> list[Field[Any, Any]]:
    # Model.from_db wants the loaded fields in the model's own field order.
    return [f for f in model._meta.concrete_fields if f.attname in names]


@functools.lru_cache(maxsize=256)
def _select(model: type[Model], vendor: str, names: tuple[str, ...], sql: str, prefix: str) -> str:
    return sql.format(columns=", ".join(f"{prefix}{quote(f.column)}" for f in _ordered(model, names)))


def _decoders(fields: list[Field[Any, Any]], conn: Any) -> list[Any]:
    """Per field, None or a function turning the database's value into the Python one."""
    out: list[Any] = []
    for f in fields:
        if isinstance(f, JSONField):
            out.append(lambda v, f=f: f.from_db_value(v, None, conn))
        elif isinstance(f, UUIDField):
            out.append(f.to_python)
        else:
            out.append(None)
    return out


def _build(model: type[M], fields: list[Field[Any, Any]], rows: list[tuple[Any, ...]], conn: Any) -> list[M]:
    attnames = [f.attname for f in fields]
    decoders = _decoders(fields, conn)
    return [
        model.from_db(
            conn.alias, attnames, [v if d is None or v is None else d(v) for d, v in zip(decoders, row, strict=True)]
        )
        for row in rows
    ]


def read_models(model: type[M], names: tuple[str, ...], sql: str, *params: Any, prefix: str = "") -> list[M]:
    """Model instances from one prepared statement; `sql` has a `{columns}` slot for the loaded fields."""
    conn = db()
    with conn.cursor() as cursor:
        cursor.execute(_select(model, conn.vendor, names, sql, prefix), params)
        rows = cursor.fetchall()
    return _build(model, _ordered(model, names), rows, conn)


# --- prepared reads with the ORM's conversions ------------------------------------------------------------
# The API's busiest reads (project_information, the callers' credentials) ran as ORM querysets, and building
# those statements cost several times more than running them (about 0.7 ms of Python per query against
# 0.05 ms in the database). These helpers run a statement written once and convert each column the way the
# ORM would (JSON decoded, SQLite's datetimes made aware), with the fields' and the backend's own converters.


def column(model: type[Model], name: str, alias: str) -> str:
    """`alias."column"` of a model's field."""
    field = model._meta.get_field(name)
    return f"{alias}.{quote(field.column)}"  # type: ignore[union-attr]


def fields(model: type[Model], *names: str) -> tuple[Field[Any, Any], ...]:
    return tuple(model._meta.get_field(name) for name in names)  # type: ignore[misc]


Converters = list[tuple[int, list[Any], Any]]


def _converters(conn: BaseDatabaseWrapper, types: tuple[Field[Any, Any] | None, ...]) -> Converters:
    # What the ORM's compiler applies to each selected column (SQLCompiler.get_converters), kept per
    # connection: its backend's converters are bound to it.
    cache: dict[tuple[Any, ...], Converters] = conn.__dict__.setdefault("_orchestra_converters", {})
    found = cache.get(types)
    if found is None:
        found = []
        for i, field in enumerate(types):
            if field is None:
                continue
            expression = field.get_col(field.model._meta.db_table)
            functions = conn.ops.get_db_converters(expression) + expression.get_db_converters(conn)
            if functions:
                found.append((i, functions, expression))
        cache[types] = found
    return found


def fetch(sql: str, params: Sequence[Any], types: tuple[Field[Any, Any] | None, ...]) -> list[list[Any]]:
    """Rows of one statement, each column converted as its field (None: as it comes) would be."""
    conn = db()
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _converted(conn, rows, types)


Statement = tuple[str, Sequence[Any], tuple[Any, ...]]  # SQL, parameters, the fields its columns convert as


def fetch_all(statements: Sequence[Statement]) -> list[list[list[Any]]]:
    """`fetch` for several reads, in one round trip on PostgreSQL (rows_all)."""
    conn = db()
    found = rows_all([(sql, params) for sql, params, _types in statements])
    return [_converted(conn, rows, types) for rows, (_sql, _params, types) in zip(found, statements, strict=True)]


def _converted(conn: BaseDatabaseWrapper, rows: list[tuple[Any, ...]], types: tuple[Any, ...]) -> list[list[Any]]:
    converters = _converters(conn, types)
    out = []
    for row in rows:
        values = list(row)
        for i, functions, expression in converters:
            value = values[i]
            for function in functions:
                value = function(value, expression, conn)
            values[i] = value
        out.append(values)
    return out


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


_LOCKS = {"update": " FOR NO KEY UPDATE OF p", "share": " FOR SHARE OF p", "": ""}


@functools.lru_cache(maxsize=8)
def _project_of_task_sql(vendor: str, lock: str) -> str:
    clause = _LOCKS[lock] if vendor == "postgresql" else ""
    columns = ", ".join(f"p.{quote(f.column)}" for f in _ordered(Project, PROJECT_FIELDS))
    return (
        f"SELECT {columns}, v.digest, v.workflow_id, h.seq, h.hash FROM {table(Project)} p"
        f" JOIN {table(WorkflowVersion)} v ON v.id = p.version_id"
        f" LEFT JOIN {table(LedgerHead)} h ON h.chain = p.id"
        f" WHERE p.id = (SELECT project_id FROM {table(Task)} WHERE id = %s){clause}"
    )


def project_and_task(task_id: int, *, lock: str) -> tuple[Project, Task] | None:
    """The task's project (with its version's digest and workflow), locked on PostgreSQL ("update": for
    lifecycle changes; "share": for pulls, which may run side by side; SQLite serialises writers), then the
    task, read after the lock. One round trip on PostgreSQL (rows_all).

    The project's ledger head comes with it, so the call's events move the head with one compare-and-set
    even when another process appended to the chain last (under gunicorn, every other request or so: the
    head this process remembered was missing or stale, and the append read and locked the heads again)."""
    conn = db()
    projects, tasks = rows_all(
        [
            (_project_of_task_sql(conn.vendor, lock), [task_id]),
            (_rows_sql(Task, conn.vendor, TASK_FIELDS, "id = %s"), [task_id]),
        ]
    )
    if not projects or not tasks:
        return None
    (task,) = _build(Task, _ordered(Task, TASK_FIELDS), tasks, conn)
    return _project_from_row(conn, projects[0]), task


def _project_from_row(conn: BaseDatabaseWrapper, row: Sequence[Any]) -> Project:
    *values, digest, workflow_id, head_seq, head_hash = row
    if head_seq is not None:
        saw_head(values[0], head_seq, head_hash)
    (project,) = _build(Project, _ordered(Project, PROJECT_FIELDS), [tuple(values)], conn)
    project.version = WorkflowVersion.from_db(
        conn.alias, ["id", "workflow_id", "digest"], [project.version_id, workflow_id, digest]
    )
    return project


def require_active(project: Project, doing: str) -> None:
    if project.status != ProjectStatus.ACTIVE:
        raise ProjectNotActive(
            f"project {project.pk} is '{project.status}'; {doing} needs it to be Active"
            + (" (resume it first)" if project.status == ProjectStatus.PAUSED else ""),
            project_id=project.pk,
            current=project.status,
        )


def require_open_project(project: Project, doing: str) -> None:
    if project.status not in (ProjectStatus.ACTIVE, ProjectStatus.PAUSED):
        raise ProjectNotActive(
            f"project {project.pk} is '{project.status}'; {doing} needs it to be Active or Paused",
            project_id=project.pk,
            current=project.status,
        )


def check_data(data: Any, field: str = "data") -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(f"{field}: expected a JSON object, got {type(data).__name__}", field=field)
    try:
        text = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field}: not JSON-serializable ({exc})", field=field) from None
    # JSON writes a NUL as \u0000 and leaves an unpaired surrogate as it is (then not UTF-8): only then is the
    # value walked to say where (four times slower than the dump on large data).
    suspect = "\\u0000" in text
    if not suspect:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            suspect = True
    if suspect and (found := text_problem_at(data, field)) is not None:
        raise ValidationError(f"{printable_path(found[0])}: {found[1]}", field=field)
    return data


def as_worker(worker: Worker | str) -> Worker:
    if isinstance(worker, Worker):
        return worker
    from orchestra.services.workers import worker_get

    return worker_get(worker)
