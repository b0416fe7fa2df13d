"""The audit ledger's chain check, in memory: each way of tampering is named, with the row it shows at."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestra.engine.ledger import GENESIS, Content, Head, Row, Tamper, chain_hashes, row_hash, verify_chain

CHAIN = 7
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def content(n: int, **data: object) -> Content:
    return Content(
        at=T0 + timedelta(seconds=n),
        actor_user_id=3,
        actor="ann",
        action="task_saved",
        project_id=CHAIN,
        task_id=40 + n,
        from_status="Processing",
        to_status="Processing",
        data={"n": n, **data},
    )


def chain(count: int = 5, first_id: int = 101) -> tuple[list[Row], Head]:
    """`count` well-linked rows with ids first_id, first_id+1, ... at seqs 1..count, and their head."""
    contents = [content(n) for n in range(1, count + 1)]
    links = chain_hashes(contents, GENESIS)
    rows = [
        Row(first_id + i, i + 1, prev, own, c) for i, (c, (prev, own)) in enumerate(zip(contents, links, strict=True))
    ]
    return rows, Head(count, links[-1][1])


def forged(row_id: int, seq: int, prev_hash: str, n: int = 99) -> Row:
    """A fabricated row whose hash is right for its content and the predecessor it claims."""
    c = content(n, forged=True)
    return Row(row_id, seq, prev_hash, row_hash(c, prev_hash), c)


def shifted(rows: list[Row], by: int = 1) -> list[Row]:
    return [dataclasses.replace(r, seq=r.seq + by) for r in rows]


def check(rows: list[Row], head: Head | None, kind: Tamper, event_id: int | None, *words: str) -> None:
    problem = verify_chain(CHAIN, rows, head)
    assert problem is not None, "the tampering went unnoticed"
    assert (problem.kind, problem.event_id) == (kind, event_id), str(problem)
    assert problem.chain == CHAIN
    text = str(problem)
    assert text.startswith(f"project {CHAIN}: ")
    assert kind.value in text
    for word in words:
        assert word in text


# --- an untouched chain ----------------------------------------------------------------------------------


def test_a_good_chain_verifies_in_any_row_order():
    rows, head = chain()
    assert verify_chain(CHAIN, rows, head) is None
    assert verify_chain(CHAIN, list(reversed(rows)), head) is None  # the database may hand them back unsorted


def test_an_empty_chain_without_head_verifies():
    assert verify_chain(CHAIN, [], None) is None


def test_hashes_link_each_row_to_the_one_before_from_genesis():
    rows, head = chain(3)
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert head.hash == rows[-1].hash
    assert len({r.hash for r in rows}) == 3


# --- edited ----------------------------------------------------------------------------------------------


def test_edited_content_is_named():
    rows, head = chain()
    rows[2] = dataclasses.replace(rows[2], content=dataclasses.replace(rows[2].content, data={"n": 3, "x": 1}))
    check(rows, head, Tamper.EDITED, 103, "event #103 (seq 3)", "no longer matches its hash")


@pytest.mark.parametrize(
    "change",
    [
        {"actor": "mallory"},
        {"action": "task_accepted"},
        {"to_status": "Complete"},
        {"task_id": 1},
        {"actor_user_id": None},
        {"at": T0 + timedelta(microseconds=1)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_field_of_the_content_is_covered_by_the_hash(change):
    rows, head = chain()
    rows[1] = dataclasses.replace(rows[1], content=dataclasses.replace(rows[1].content, **change))
    check(rows, head, Tamper.EDITED, 102)


def test_an_edited_prev_hash_is_named():
    rows, head = chain()
    rows[3] = dataclasses.replace(rows[3], prev_hash="f" * 64)
    check(rows, head, Tamper.EDITED, 104)


def test_edited_and_rehashed_row_is_named_as_its_successor_no_longer_follows_it():
    rows, head = chain()
    changed = dataclasses.replace(rows[2].content, data={"n": 3, "x": 1})
    rows[2] = dataclasses.replace(rows[2], content=changed, hash=row_hash(changed, rows[2].prev_hash))
    check(rows, head, Tamper.EDITED, 103, "event #103 (seq 3)", "rehashed")


def test_edited_and_rehashed_last_row_is_named_as_the_head_no_longer_matches_it():
    rows, head = chain()
    changed = dataclasses.replace(rows[-1].content, data={"n": 5, "x": 1})
    rows[-1] = dataclasses.replace(rows[-1], content=changed, hash=row_hash(changed, rows[-1].prev_hash))
    check(rows, head, Tamper.EDITED, 105, "event #105 (seq 5)", "head")


# --- deleted ---------------------------------------------------------------------------------------------


def test_deleted_middle_row_is_named_by_the_rows_around_the_gap():
    rows, head = chain()
    del rows[2]  # event #103
    check(rows, head, Tamper.DELETED, 104, "the row before event #104 (seq 4) was deleted", "after event #102 (seq 2)")


def test_deleted_middle_rows_with_seqs_closed_up_still_break_the_chain_there():
    # With later seqs moved down to hide the gap, a deletion looks just like the row before it having been
    # edited and rehashed (its hash is what nothing points at any more): either way it is named.
    rows, head = chain()
    rows = rows[:1] + shifted(rows[3:], -2)  # #102 and #103 gone
    problem = verify_chain(CHAIN, rows, head)
    assert problem is not None
    assert problem.kind in (Tamper.DELETED, Tamper.EDITED)
    assert "event #101 (seq 1)" in str(problem)


def test_deleted_first_row_is_named():
    rows, head = chain()
    check(rows[1:], head, Tamper.DELETED, 102, "the row before event #102 (seq 2)", "at the chain's start")


@pytest.mark.parametrize("gone", [1, 2])
def test_deleted_last_rows_show_as_the_head_is_ahead(gone):
    rows, head = chain()
    check(
        rows[:-gone],
        head,
        Tamper.DELETED,
        None,
        f"the last {gone} row(s) were deleted",
        f"ends at seq {5 - gone} (event #{105 - gone})",
        "head at seq 5",
    )


def test_all_rows_deleted_shows_as_the_head_remains():
    _, head = chain()
    check([], head, Tamper.DELETED, None, "all 5 rows")


# --- inserted --------------------------------------------------------------------------------------------


def test_row_inserted_at_the_end_is_named_though_its_hash_is_right():
    rows, head = chain()
    rows.append(forged(106, 6, rows[-1].hash))
    check(rows, head, Tamper.INSERTED, 106, "event #106 (seq 6)")


def test_row_inserted_in_the_middle_with_later_seqs_shifted_is_named():
    rows, head = chain()
    fake = forged(200, 3, rows[1].hash)  # a new id, as the database would give it
    rows = rows[:2] + [fake] + shifted(rows[2:])
    check(rows, Head(6, head.hash), Tamper.INSERTED, 200, "event #200 (seq 3)")
    check(rows, head, Tamper.INSERTED, 200)  # whether or not the forger moved the head's seq too


def test_row_inserted_at_the_start_is_named():
    rows, head = chain()
    rows = [forged(200, 1, GENESIS)] + shifted(rows)
    check(rows, head, Tamper.INSERTED, 200, "event #200 (seq 1)")


def test_rows_without_a_head_were_inserted():
    rows, _ = chain(2)
    check(rows, None, Tamper.INSERTED, 101)


# --- reordered -------------------------------------------------------------------------------------------


def test_two_rows_with_swapped_seqs_are_named():
    rows, head = chain()
    rows[1], rows[3] = dataclasses.replace(rows[1], seq=4), dataclasses.replace(rows[3], seq=2)
    check(rows, head, Tamper.REORDERED, 104, "event #104 (seq 2)", "it follows event #103 (seq 3)")


def test_two_adjacent_rows_with_swapped_seqs_are_named():
    rows, head = chain()
    rows[2], rows[3] = dataclasses.replace(rows[2], seq=4), dataclasses.replace(rows[3], seq=3)
    check(rows, head, Tamper.REORDERED, 104, "event #104 (seq 3)")


def test_ids_running_against_the_chain_order_are_named():
    # The links are intact but the rows' ids say they were written in another order.
    rows, head = chain()
    rows[1], rows[2] = dataclasses.replace(rows[1], id=103), dataclasses.replace(rows[2], id=102)
    check(rows, head, Tamper.REORDERED, 102, "event #102 (seq 3)", "its id is lower than that of seq 2 (#103)")


# --- what the database hands back ------------------------------------------------------------------------


def test_an_integral_float_read_back_as_an_int_still_verifies():
    # jsonb may turn 2.0 into 2; the hash of what was written must still match what is read.
    written = [content(1, score=2.0, nested={"values": [1.0, 0.5, "x"]})]
    links = chain_hashes(written, GENESIS)
    read = dataclasses.replace(written[0], data={"n": 1, "score": 2, "nested": {"values": [1, 0.5, "x"]}})
    rows = [Row(1, 1, links[0][0], links[0][1], read)]
    assert verify_chain(CHAIN, rows, Head(1, links[0][1])) is None
    # ... while a value that really changed does not.
    changed = dataclasses.replace(read, data={"n": 1, "score": 2.5, "nested": {"values": [1, 0.5, "x"]}})
    check([dataclasses.replace(rows[0], content=changed)], Head(1, links[0][1]), Tamper.EDITED, 1)


def test_key_order_does_not_change_the_hash():
    a = content(1, alpha=1, beta={"y": 2, "x": [{"q": 1, "p": 2}]})
    b = dataclasses.replace(a, data={"beta": {"x": [{"p": 2, "q": 1}], "y": 2}, "alpha": 1, "n": 1})
    assert list(a.data) != list(b.data)
    assert row_hash(a, GENESIS) == row_hash(b, GENESIS)


def test_the_same_instant_in_another_time_zone_has_the_same_hash():
    a = content(1)
    b = dataclasses.replace(a, at=a.at.astimezone(timezone(timedelta(hours=2))))
    assert row_hash(a, GENESIS) == row_hash(b, GENESIS)


def test_list_order_and_value_types_do_change_the_hash():
    a = content(1, values=[1, 2])
    assert row_hash(a, GENESIS) != row_hash(dataclasses.replace(a, data={"n": 1, "values": [2, 1]}), GENESIS)
    assert row_hash(a, GENESIS) != row_hash(dataclasses.replace(a, data={"n": 1, "values": ["1", 2]}), GENESIS)
    assert row_hash(a, GENESIS) != row_hash(a, "1" * 64)  # the predecessor is part of it


# --- every position of a six-row chain -------------------------------------------------------------------

POSITIONS = range(6)


@pytest.mark.parametrize("i", POSITIONS)
@pytest.mark.parametrize("rehash", [False, True], ids=["kept-hash", "rehashed"])
def test_an_edit_anywhere_names_that_row(i, rehash):
    rows, head = chain(6)
    changed = dataclasses.replace(rows[i].content, data={"edited": True})
    new_hash = row_hash(changed, rows[i].prev_hash) if rehash else rows[i].hash
    rows[i] = dataclasses.replace(rows[i], content=changed, hash=new_hash)
    check(rows, head, Tamper.EDITED, 101 + i)


@pytest.mark.parametrize("i", POSITIONS)
def test_a_deletion_anywhere_names_the_row_after_the_gap(i):
    rows, head = chain(6)
    del rows[i]
    check(rows, head, Tamper.DELETED, 102 + i if i < 5 else None)


@pytest.mark.parametrize("k", range(7))
def test_an_insertion_anywhere_names_the_fabricated_row(k):
    rows, head = chain(6)
    fake = forged(200, k + 1, rows[k - 1].hash if k else GENESIS)
    check(rows[:k] + [fake] + shifted(rows[k:]), head, Tamper.INSERTED, 200)


@pytest.mark.parametrize(("i", "j"), [(i, j) for i in POSITIONS for j in POSITIONS if i < j])
def test_any_two_rows_swapped_name_the_one_moved_forward(i, j):
    rows, head = chain(6)
    rows[i], rows[j] = dataclasses.replace(rows[i], seq=j + 1), dataclasses.replace(rows[j], seq=i + 1)
    check(rows, head, Tamper.REORDERED, 101 + j, f"event #{101 + j} (seq {i + 1})")
