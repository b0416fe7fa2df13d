"""Appending to the event log, inside the service's transaction: the ledger's hash chain and the outbox.

`append(rows)` is what `Tx.flush` calls with the transaction's events, just before it commits:

1. the chain heads of the projects the events belong to are locked (`SELECT … FOR UPDATE` on PostgreSQL, in
   chain order so two transactions never wait for each other in a circle; SQLite has one writer at a time)
   and each event gets its seq, the hash of the row before it and its own hash;
2. the events are inserted and the heads moved on;
3. one outbox row (Delivery) per event and matching subscription, and one per event that concerns workers
   by email, in the same transaction, so a delivery exists if and only if its event does.

Appends to different projects lock different heads and never wait for each other.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from orchestra import conf
from orchestra.engine.ledger import GENESIS, Content, chain_hashes, chain_of
from orchestra.events.catalogue import event_type, matches
from orchestra.models import Channel, Delivery, Event, LedgerHead, Project, Subscription
from orchestra.services._base import db, quote

# The log's actions that may concern a worker by email (orchestra.events.notifications says whom).
EMAIL_ACTIONS = frozenset(
    {"task_assigned", "task_reassigned", "task_returned", "task_accepted", "task_skipped", "project_ended"}
)

# An event's content, in the order of Tx.event's tuples and engine.ledger.Content.
CONTENT_COLUMNS = (
    "at",
    "actor_user_id",
    "actor",
    "action",
    "project_id",
    "task_id",
    "from_status",
    "to_status",
    "data",
)
_EVENT_COLUMNS = (*CONTENT_COLUMNS, "seq", "prev_hash", "hash")  # the last three in the order _links gives them
# status, attempts, owner, body, state and last_error take their database defaults (pending, 0, empty).
_DELIVERY_COLUMNS = (
    "uuid",
    "event_id",
    "channel",
    "subscription_id",
    "event_type",
    "stream",
    "next_attempt_at",
    "created_at",
)


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], vendor: str, rows: int, returning: bool) -> str:
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) VALUES {', '.join([row] * rows)}"
    return sql + f" RETURNING {quote('id')}" if returning else sql


def _generation_sql() -> str:
    # What tells a process its list of subscriptions is stale: their count and newest change.
    table = quote(Subscription._meta.db_table)
    return f"(SELECT COUNT(*) FROM {table}), (SELECT MAX({quote('updated_at')}) FROM {table})"


@functools.lru_cache(maxsize=64)
def _heads_sql(vendor: str, count: int, lock: bool) -> str:
    table = quote(LedgerHead._meta.db_table)
    where = f"{quote('chain')} = %s" if count == 1 else f"{quote('chain')} IN ({', '.join(['%s'] * count)})"
    sql = (
        f"SELECT {quote('chain')}, {quote('seq')}, {quote('hash')} FROM {table} WHERE {where} ORDER BY {quote('chain')}"
    )
    return sql + " FOR UPDATE" if lock else sql


@functools.lru_cache(maxsize=8)
def _generation_only_sql(vendor: str) -> str:
    return f"SELECT {_generation_sql()}"


@functools.lru_cache(maxsize=8)
def _head_cas_sql(vendor: str) -> str:
    table = quote(LedgerHead._meta.db_table)
    seq, hash_, chain = quote("seq"), quote("hash"), quote("chain")
    return (
        f"UPDATE {table} SET {seq} = %s, {hash_} = %s WHERE {chain} = %s AND {seq} = %s AND {hash_} = %s"
        f" RETURNING {_generation_sql()}"
    )


@functools.lru_cache(maxsize=64)
def _append_sql(vendor: str, rows: int, new_chain: bool) -> str:
    """PostgreSQL: the head's move (a compare-and-set, or a new chain's insert) and the events' insert in one
    statement, returning the subscriptions' generation and the events' ids; no row if the compare-and-set found
    the head moved (then nothing was inserted). One round trip and one statement fewer per transaction."""
    table, head = quote(Event._meta.db_table), quote(LedgerHead._meta.db_table)
    columns = ", ".join(quote(c) for c in _EVENT_COLUMNS)
    if new_chain:
        row = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
        move = f"INSERT INTO {head} ({quote('seq')}, {quote('hash')}, {quote('chain')}) VALUES (%s, %s, %s)"
        events = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * rows)}"
    else:
        # INSERT … SELECT, so the rows go in only if the head moved; the casts give the VALUES their types.
        fields = {f.attname: f for f in Event._meta.concrete_fields}
        row = "(" + ", ".join(f"CAST(%s AS {fields[c].db_type(db())})" for c in _EVENT_COLUMNS) + ")"
        seq, hash_, chain = quote("seq"), quote("hash"), quote("chain")
        move = f"UPDATE {head} SET {seq} = %s, {hash_} = %s WHERE {chain} = %s AND {seq} = %s AND {hash_} = %s"
        events = (
            f"INSERT INTO {table} ({columns}) SELECT * FROM (VALUES {', '.join([row] * rows)}) AS v"
            " WHERE EXISTS (SELECT 1 FROM moved)"
        )
    return (
        f"WITH moved AS ({move} RETURNING {_generation_sql()}), added AS ({events} RETURNING {quote('id')})"
        f" SELECT moved.*, ARRAY(SELECT {quote('id')} FROM added ORDER BY {quote('id')}) FROM moved"
    )


@functools.lru_cache(maxsize=8)
def _head_insert_sql(vendor: str) -> str:
    table = quote(LedgerHead._meta.db_table)
    columns = ", ".join(quote(c) for c in ("seq", "hash", "chain"))
    return f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s) RETURNING {_generation_sql()}"


@functools.lru_cache(maxsize=8)
def _head_update_sql(vendor: str) -> str:
    table = quote(LedgerHead._meta.db_table)
    return f"UPDATE {table} SET {quote('seq')} = %s, {quote('hash')} = %s WHERE {quote('chain')} = %s"


@functools.lru_cache(maxsize=8)
def _subscriptions_sql(vendor: str) -> str:
    table = quote(Subscription._meta.db_table)
    columns = ", ".join(quote(c) for c in ("id", "channel", "event_types", "workflow_id", "project_id"))
    return f"SELECT {columns} FROM {table} WHERE {quote('active')} = %s"


@dataclass(frozen=True)
class _Sub:
    id: int
    channel: str
    patterns: tuple[str, ...]
    workflow_id: int | None
    project_id: int | None


# This process's view of the chain heads it appended to last (validated by a compare-and-set on every use)
# and of the subscriptions (reloaded when their generation, read with the head, moves).
_heads_seen: dict[int, tuple[int, str]] = {}
_subs_seen: tuple[Any, list[_Sub]] = (None, [])
_seen_lock = threading.Lock()
_MAX_HEADS_SEEN = 10_000


def saw_head(chain: int, seq: int, hash_: str) -> None:
    """This process's view of a chain's head: after its own append, or read with the project
    (services._loading.load_task, project_and_task). The next append to that chain tries it first; a head that
    moved meanwhile only costs that append its compare-and-set."""
    with _seen_lock:
        if len(_heads_seen) > _MAX_HEADS_SEEN:
            _heads_seen.clear()
        _heads_seen[chain] = (seq, hash_)


def _subscriptions(conn: BaseDatabaseWrapper, generation: Any) -> list[_Sub]:
    global _subs_seen
    seen_generation, subs = _subs_seen
    if generation == seen_generation:
        return subs
    field = Subscription._meta.get_field("event_types")
    with conn.cursor() as cursor:
        cursor.execute(_subscriptions_sql(conn.vendor), [True])
        rows = cursor.fetchall()
    subs = []
    for sub_id, channel, patterns, workflow_id, project_id in rows:
        if isinstance(patterns, str):  # SQLite hands JSON back as text
            patterns = field.from_db_value(patterns, None, conn)  # type: ignore[attr-defined]
        subs.append(_Sub(sub_id, channel, tuple(patterns or ()), workflow_id, project_id))
    _subs_seen = (generation, subs)
    return subs


@functools.lru_cache(maxsize=4096)
def _workflow_of(project_id: int) -> int | None:
    # A project's workflow never changes, so the answer can be kept for the life of the process.
    return Project.objects.filter(pk=project_id).values_list("version__workflow_id", flat=True).first()


def _links(rows: Sequence[tuple[Any, ...]], indices: list[int], seq: int, prev: str) -> list[tuple[int, str, str]]:
    contents = [Content(*rows[i][:9]) for i in indices]
    return [(seq + n + 1, p, h) for n, (p, h) in enumerate(chain_hashes(contents, prev))]


def append(rows: Sequence[tuple[Any, ...]]) -> None:
    """Append one transaction's events (Tx.event tuples: at, actor_user_id, actor, action, project_id,
    task_id, from_status, to_status, data) to their chains, with their outbox rows.

    The usual case, one chain whose head this process knows (it appended last, or read the head with the
    project in services._loading), costs one statement besides the insert: a compare-and-set of the head,
    which also reads the subscriptions' generation. On PostgreSQL the two are one statement
    (_append_sql). Otherwise the heads are read (locked) and then moved on.
    """
    conn = db()
    by_chain: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        by_chain.setdefault(chain_of(row[4]), []).append(index)
    chains = sorted(by_chain)
    links: dict[int, tuple[int, str, str]] = {}
    generation: Any = None
    event_ids: list[int] | None = None
    params: list[Any] | None = None
    done = False
    combined = conn.vendor == "postgresql"
    with conn.cursor() as cursor:
        if len(chains) == 1:
            chain = chains[0]
            indices = by_chain[chain]
            chain_links: list[tuple[int, str, str]] | None = None
            new_chain = rows[indices[0]][3] == "project_created"  # a new project: its chain starts here
            if new_chain:
                chain_links = _links(rows, indices, 0, GENESIS)
                head = [chain_links[-1][0], chain_links[-1][2], chain]
            elif (seen := _heads_seen.get(chain)) is not None:
                chain_links = _links(rows, indices, *seen)
                head = [chain_links[-1][0], chain_links[-1][2], chain, seen[0], seen[1]]
            if chain_links is not None:
                chain_links_by_row = dict(zip(indices, chain_links, strict=True))
                if combined:
                    params = _event_params(conn, rows, chain_links_by_row)
                    cursor.execute(_append_sql(conn.vendor, len(rows), new_chain), head + params)
                else:
                    cursor.execute((_head_insert_sql if new_chain else _head_cas_sql)(conn.vendor), head)
                found = cursor.fetchone()
                if found is not None:
                    generation = tuple(found[:2])
                    event_ids = list(found[2]) if combined else None
                    links.update(chain_links_by_row)
                    done = True
                else:
                    params = None  # linked to a head that had moved: nothing was inserted
        if not done:
            lock = bool(conn.features.has_select_for_update)
            cursor.execute(_heads_sql(conn.vendor, len(chains), lock), chains)
            heads = {chain: (seq, hash_) for chain, seq, hash_ in cursor.fetchall()}
            moved, new = [], []
            for chain in chains:
                indices = by_chain[chain]
                chain_links = _links(rows, indices, *heads.get(chain, (0, GENESIS)))
                links.update(zip(indices, chain_links, strict=True))
                (moved if chain in heads else new).append((chain_links[-1][0], chain_links[-1][2], chain))
            if moved:
                cursor.executemany(_head_update_sql(conn.vendor), moved)
            if new:
                cursor.execute(
                    _insert_sql(LedgerHead._meta.db_table, ("seq", "hash", "chain"), conn.vendor, len(new), False),
                    [value for head in new for value in head],
                )
            cursor.execute(_generation_only_sql(conn.vendor))
            generation = tuple(cursor.fetchone())
        for chain in chains:
            last = links[by_chain[chain][-1]]
            saw_head(chain, last[0], last[2])

        deliveries = _outbox(conn, rows, _subscriptions(conn, generation))
        if event_ids is None:
            params = _event_params(conn, rows, links)
            sql = _insert_sql(Event._meta.db_table, _EVENT_COLUMNS, conn.vendor, len(rows), bool(deliveries))
            cursor.execute(sql, params)
            if not deliveries:
                return
            event_ids = [r[0] for r in cursor.fetchall()]
        if not deliveries or params is None:
            return
        width = len(_EVENT_COLUMNS)
        _insert_deliveries(conn, cursor, deliveries, event_ids, [params[i * width] for i in range(len(rows))])
    from orchestra.events import outbox

    outbox.queued_in_transaction()


def _event_params(conn: BaseDatabaseWrapper, rows: Sequence[tuple[Any, ...]], links: dict[int, Any]) -> list[Any]:
    """The events' values in _EVENT_COLUMNS order, row after row."""
    at_field, data_field = Event._meta.get_field("at"), Event._meta.get_field("data")
    params: list[Any] = []
    for i, row in enumerate(rows):
        params += [at_field.get_db_prep_value(row[0], conn), *row[1:8], data_field.get_db_prep_value(row[8], conn)]
        params += links[i]
    return params


@dataclass(frozen=True)
class _Pending:
    row: int  # index of the event in the transaction's rows
    channel: str
    subscription_id: int | None
    event_type: str
    stream: str


def _outbox(conn: BaseDatabaseWrapper, rows: Sequence[tuple[Any, ...]], subs: list[_Sub]) -> list[_Pending]:
    email = bool(conf.get("ORCHESTRA_EMAIL_NOTIFICATIONS"))
    pending: list[_Pending] = []
    for i, (_at, _uid, actor, action, project_id, task_id, _from, to_status, data) in enumerate(rows):
        chain = chain_of(project_id)
        type_ = event_type(action, task_id, to_status)
        if type_ is not None:
            for sub in subs:
                if sub.project_id is not None and sub.project_id != project_id:
                    continue
                if not matches(sub.patterns, type_):
                    continue
                if sub.workflow_id is not None and (project_id is None or _workflow_of(project_id) != sub.workflow_id):
                    continue
                pending.append(_Pending(i, sub.channel, sub.id, type_, f"{sub.id}:{chain}"))
        if email and action in EMAIL_ACTIONS and not _self_inflicted(action, actor, data):
            pending.append(_Pending(i, Channel.EMAIL.value, None, type_ or action, f"email:{chain}"))
    return pending


def _self_inflicted(action: str, actor: str, data: dict[str, Any]) -> bool:
    # A worker who pulls a task from the dashboard needs no email saying they have it.
    return action == "task_assigned" and data.get("worker") == actor


def _insert_deliveries(
    conn: BaseDatabaseWrapper, cursor: Any, pending: list[_Pending], event_ids: list[int], event_ats: list[Any]
) -> None:
    """The outbox rows; `event_ats` are the events' times as adapted for their insert (a delivery is created,
    and first due, when its event happened)."""
    uuid_field = Delivery._meta.get_field("uuid")
    params: list[Any] = []
    for p in pending:
        at = event_ats[p.row]
        uid = uuid_field.get_db_prep_value(uuid.uuid4(), conn)
        params += [uid, event_ids[p.row], p.channel, p.subscription_id, p.event_type, p.stream, at, at]
    cursor.execute(_insert_sql(Delivery._meta.db_table, _DELIVERY_COLUMNS, conn.vendor, len(pending), False), params)


__all__ = ["CONTENT_COLUMNS", "EMAIL_ACTIONS", "append"]
