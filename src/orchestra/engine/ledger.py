"""The audit ledger's arithmetic: canonical content, the hash chain, and verifying a chain.

Every event belongs to one chain: its project's, or the global chain (0) for events of no project
(workflows loaded, keys made). Each row stores its position in the chain (`seq`, from 1), the hash of
the row before it (`prev_hash`; the first row's is GENESIS) and its own `hash`: SHA-256 of the
canonical JSON of its content and `prev_hash`. A chain's head (its last seq and hash) is kept apart, so
deleting the last rows shows too. Anyone can recompute the hashes from an export: they are not keyed.

`verify_chain` names the first row that breaks the chain and says how:

- edited: the row no longer matches its own hash (or it was rehashed, so its successor no longer
  points at it);
- deleted: a row points at a predecessor that is gone (a gap), or the chain ends before its head;
- inserted: a row nobody points at, between two rows that point at each other (or after the head);
- reordered: a row points at a predecessor that comes after it, or rows' ids run against their order.

Pure Python; the services compute hashes when they append, `orchestra audit verify` checks them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64
GLOBAL_CHAIN = 0


def chain_of(project_id: int | None) -> int:
    return project_id if project_id is not None else GLOBAL_CHAIN


def _normal(value: Any) -> Any:
    # PostgreSQL's jsonb may hand an integral float back as an int (1e20) and key order is not kept:
    # the canonical form writes integral floats as ints and sorts keys, so a row reads back to its hash.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Content:
    """What a row's hash covers: everything the event says, and the hash of the row before it."""

    at: datetime
    actor_user_id: int | None
    actor: str
    action: str
    project_id: int | None
    task_id: int | None
    from_status: str
    to_status: str
    data: Mapping[str, Any]


def canonical(content: Content, prev_hash: str) -> bytes:
    """The bytes a row's hash is the SHA-256 of, so a third party can recompute it from an export:

    the UTF-8 JSON array `[prev_hash, at, actor_user_id, actor, action, project_id, task_id, from_status,
    to_status, data]`, with `at` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (as exported), absent ids as null,
    object keys sorted, no whitespace (separators "," and ":"), non-ASCII characters as themselves (not
    \\u escapes), and floats with an integral value in `data` (at any depth) written as integers (2.0 as 2).
    """
    body = [
        prev_hash,
        canonical_time(content.at),
        content.actor_user_id,
        content.actor,
        content.action,
        content.project_id,
        content.task_id,
        content.from_status,
        content.to_status,
        _normal(content.data),
    ]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def row_hash(content: Content, prev_hash: str) -> str:
    return hashlib.sha256(canonical(content, prev_hash)).hexdigest()


def chain_hashes(contents: Iterable[Content], prev_hash: str) -> list[tuple[str, str]]:
    """(prev_hash, hash) for rows appended in order after a row whose hash is `prev_hash`."""
    out = []
    for content in contents:
        own = row_hash(content, prev_hash)
        out.append((prev_hash, own))
        prev_hash = own
    return out


class Tamper(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"


@dataclass(frozen=True)
class Row:
    id: int
    seq: int
    prev_hash: str
    hash: str
    content: Content


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class Problem:
    chain: int
    kind: Tamper
    event_id: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = "global chain" if self.chain == GLOBAL_CHAIN else f"project {self.chain}"
        return f"{where}: {self.message}"


def verify_chain(chain: int, rows: Sequence[Row], head: Head | None) -> Problem | None:
    """The first break in one chain, or None when every row and the head agree."""
    rows = sorted(rows, key=lambda r: (r.seq, r.id))
    pointed_at = {r.prev_hash for r in rows}
    if head is not None:
        pointed_at.add(head.hash)
    position = {r.hash: i for i, r in enumerate(rows)}

    def problem(kind: Tamper, row: Row | None, message: str) -> Problem:
        return Problem(chain, kind, row.id if row else None, row.seq if row else None, message)

    prev_hash, prev_row = GENESIS, None
    for i, row in enumerate(rows):
        following = rows[i + 1] if i + 1 < len(rows) else None
        name = f"event #{row.id} (seq {row.seq})"
        successor_points_back = (
            (following.prev_hash == row.hash) if following else (head is not None and head.hash == row.hash)
        )
        if row.hash not in pointed_at and (
            (following is not None and following.prev_hash == prev_hash)
            or (following is None and head is not None and head.hash == prev_hash)
            or (head is not None and row.seq > head.seq and following is None)
        ):
            return problem(Tamper.INSERTED, row, f"{name} was inserted: no row or chain head follows from it")
        if row_hash(row.content, row.prev_hash) != row.hash:
            return problem(Tamper.EDITED, row, f"{name} was edited: its content no longer matches its hash")
        if row.prev_hash != prev_hash:
            later = position.get(row.prev_hash)
            if later is not None and later > i:
                return problem(
                    Tamper.REORDERED,
                    row,
                    f"{name} was reordered: it follows event #{rows[later].id} (seq {rows[later].seq}), which comes"
                    " after it",
                )
            if row.prev_hash not in position:
                after = f"after event #{prev_row.id} (seq {prev_row.seq})" if prev_row else "at the chain's start"
                return problem(
                    Tamper.DELETED,
                    row,
                    f"the row before {name} was deleted ({after}): the row it follows is gone",
                )
            return problem(Tamper.EDITED, row, f"{name} was edited: it no longer follows the row before it")
        if row.seq != (prev_row.seq + 1 if prev_row else 1):
            return problem(
                Tamper.DELETED,
                row,
                f"a row before {name} was deleted: seq jumps from {prev_row.seq if prev_row else 0}",
            )
        if prev_row is not None and row.id < prev_row.id:
            return problem(
                Tamper.REORDERED,
                row,
                f"{name} was reordered: its id is lower than that of seq {prev_row.seq} (#{prev_row.id})",
            )
        if (
            not successor_points_back
            and following is not None
            and following.prev_hash not in position
            # Only when the successor is whole and right after this row: a seq gap is a deleted row (named
            # at the successor), and a successor that fails its own hash is the edited one.
            and following.seq == row.seq + 1
            and row_hash(following.content, following.prev_hash) == following.hash
        ):
            return problem(Tamper.EDITED, row, f"{name} was edited and rehashed: the next row no longer follows it")
        prev_hash, prev_row = row.hash, row
    if head is None:
        if rows:
            return problem(Tamper.INSERTED, rows[0], "the chain has rows but no head: its rows were inserted")
        return None
    if prev_row is None:
        if head.seq:
            return problem(Tamper.DELETED, None, f"all {head.seq} rows of the chain were deleted")
        return None
    if head.seq > prev_row.seq:
        return problem(
            Tamper.DELETED,
            None,
            f"the last {head.seq - prev_row.seq} row(s) were deleted: the chain ends at seq {prev_row.seq}"
            f" (event #{prev_row.id}), its head at seq {head.seq}",
        )
    if head.hash != prev_row.hash:
        return problem(
            Tamper.EDITED,
            prev_row,
            f"event #{prev_row.id} (seq {prev_row.seq}) was edited and rehashed: the chain head no longer matches it",
        )
    return None


__all__ = [
    "GENESIS",
    "GLOBAL_CHAIN",
    "Content",
    "Head",
    "Problem",
    "Row",
    "Tamper",
    "canonical",
    "canonical_time",
    "chain_hashes",
    "chain_of",
    "row_hash",
    "verify_chain",
]
