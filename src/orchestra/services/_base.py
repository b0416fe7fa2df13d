"""What every service shares: the actor, the event buffer, compare-and-set, compiled versions."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.utils import timezone

from orchestra.engine.definitions import VersionDef
from orchestra.engine.errors import Conflict
from orchestra.models import Step, Worker, WorkflowVersion

ActorLike = AbstractBaseUser | Worker | str | None
M = TypeVar("M", bound=Model)


def actor_parts(actor: ActorLike) -> tuple[int | None, str]:
    """(user id, label) for the event log; a missing actor is the system itself."""
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    if isinstance(actor, Worker):
        return actor.user_id, actor.user.get_username()
    return actor.pk, actor.get_username()


class Tx:
    """One service call: its clock reading, its actor, and the events it appends on commit."""

    def __init__(self, actor: ActorLike) -> None:
        self.now: datetime = timezone.now()
        self.actor_user_id, self.actor = actor_parts(actor)
        self.events: list[tuple[Any, ...]] = []
        self.after_commit: list[Callable[[], None]] = []

    def event(
        self,
        action: str,
        *,
        project_id: int | None,
        task_id: int | None = None,
        from_status: str = "",
        to_status: str = "",
        **data: Any,
    ) -> None:
        self.events.append(
            (
                self.now,
                self.actor_user_id,
                self.actor,
                action,
                project_id,
                task_id,
                str(from_status),
                str(to_status),
                data,
            )
        )

    def flush(self) -> None:
        if self.events:
            # The ledger's hash chain and the outbox rows are written with the events (orchestra.events.log).
            from orchestra.events.log import append

            append(self.events)
            self.events = []
        for callback in self.after_commit:
            transaction.on_commit(callback)
        self.after_commit = []


def db() -> BaseDatabaseWrapper:
    """The connection itself. `django.db.connection` is a proxy that looks the connection up again on every
    attribute; the prepared-statement helpers below touch it dozens of times per call."""
    return connections[DEFAULT_DB_ALIAS]


def quote(name: str) -> str:
    """A quoted identifier; the cached SQL builders below take the vendor as part of their cache key."""
    return str(db().ops.quote_name(name))


@contextmanager
def service(actor: ActorLike) -> Iterator[Tx]:
    """One transaction; events are written at its end, inside it. A unique-constraint clash is a Conflict."""
    tx = Tx(actor)
    try:
        with transaction.atomic():
            yield tx
            tx.flush()
    except IntegrityError as exc:
        raise Conflict(f"the change clashed with a concurrent one ({exc}); reload and try again") from exc


@functools.lru_cache(maxsize=256)
def _column(model: type[Model], vendor: str, name: str) -> tuple[Any, str]:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return field, quote(field.column)  # type: ignore[union-attr]


def _prep(field: Any, value: Any, conn: BaseDatabaseWrapper) -> Any:
    if isinstance(value, Model):
        value = value.pk
    return field.get_db_prep_save(value, conn)


@functools.lru_cache(maxsize=512)
def _update_sql(model: type[Model], vendor: str, sets: tuple[str, ...], where: tuple[tuple[str, bool], ...]) -> str:
    assignments = ", ".join(f"{_column(model, vendor, name)[1]} = %s" for name in sets)
    conditions = " AND ".join(
        f"{_column(model, vendor, name)[1]} IS NULL" if is_null else f"{_column(model, vendor, name)[1]} = %s"
        for name, is_null in where
    )
    return f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {conditions}"


def update_rows(model: type[Model], where: dict[str, Any], **updates: Any) -> int:
    """`UPDATE … SET updates WHERE` each `where` column equals its value (None: IS NULL); rows changed.

    A prepared statement instead of `QuerySet.update`: these run several times on every lifecycle call,
    and building them through the ORM cost several times more than running them.
    """
    conn = db()
    vendor = conn.vendor
    sql = _update_sql(model, vendor, tuple(updates), tuple((name, value is None) for name, value in where.items()))
    params = [_prep(_column(model, vendor, name)[0], value, conn) for name, value in updates.items()]
    params += [
        _prep(_column(model, vendor, name)[0], value, conn) for name, value in where.items() if value is not None
    ]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def cas(model: type[Model], where: dict[str, Any], what: str, **updates: Any) -> None:
    """Compare-and-set: `where` names the expected state; exactly one row must change."""
    if update_rows(model, where, **updates) != 1:
        raise Conflict(f"{what} was changed by someone else first; reload and try again")


@functools.lru_cache(maxsize=64)
def _insert_fields(model: type[Model]) -> list[Any]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@functools.lru_cache(maxsize=256)
def _insert_sql(model: type[Model], vendor: str, rows: int) -> str:
    fields = _insert_fields(model)
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES"
        f" {', '.join([row] * rows)} RETURNING {quote(model._meta.pk.column)}"  # type: ignore[union-attr]
    )


def insert_objects(objects: Sequence[M]) -> list[M]:
    """Insert unsaved instances of one model with one statement and set their primary keys.

    Like `bulk_create`, without its per-call ORM cost (`INSERT … RETURNING`, SQLite 3.35+ and PostgreSQL).
    """
    if not objects:
        return list(objects)
    conn = db()
    model = type(objects[0])
    fields = _insert_fields(model)
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), conn) for obj in objects for f in fields]
    with conn.cursor() as cursor:
        cursor.execute(_insert_sql(model, conn.vendor, len(objects)), params)
        ids = [r[0] for r in cursor.fetchall()]
    for obj, pk in zip(objects, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, conn.alias
    return list(objects)


def lock(model: type[Model], **filters: Any) -> Any:
    """Fetch one row, locked FOR UPDATE on PostgreSQL (SQLite serialises writers with IMMEDIATE)."""
    return model._default_manager.select_for_update(of=("self",), no_key=True).get(**filters)  # type: ignore[misc]


def supports_skip_locked() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


@dataclass(frozen=True)
class CompiledVersion:
    """A version's definition, rebuilt once per process and kept while its digest is unchanged."""

    id: int
    digest: str
    definition: VersionDef
    order: list[str]
    ancestors: dict[str, list[str]]
    step_ids: dict[str, int]
    slugs_by_step_id: dict[int, str]


_cache_lock = threading.Lock()


@functools.lru_cache(maxsize=256)
def _compile(version_id: int, digest: str) -> CompiledVersion:
    row = WorkflowVersion.objects.only("definition").get(pk=version_id)
    definition = VersionDef.model_validate(row.definition)
    step_ids = dict(Step.objects.filter(version_id=version_id).values_list("slug", "id"))
    return CompiledVersion(
        id=version_id,
        digest=digest,
        definition=definition,
        order=definition.topological_order(),
        ancestors={s.slug: definition.ancestors(s.slug) for s in definition.steps},
        step_ids=step_ids,
        slugs_by_step_id={v: k for k, v in step_ids.items()},
    )


def compiled(version: WorkflowVersion) -> CompiledVersion:
    with _cache_lock:
        return _compile(version.pk, version.digest)
