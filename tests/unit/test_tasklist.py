"""The task-list engine and its patterns, without a database: runs, halts, save-and-restore, hashing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestra.engine.errors import OrchestraError
from orchestra.engine.patterns import (
    BREAK,
    CHOICE,
    CMP,
    EMPTY_CALL,
    ENG_GET,
    ENG_SET,
    FOR,
    HALT,
    IF,
    IF_ELSE,
    IF_NOT,
    OBJ_GET,
    OBJ_NEXT,
    OBJ_SET,
    PARALLEL_SPLIT,
    RUN_WF,
    SIMPLE_MERGE,
    STOP,
    SYNCHRONIZE,
    TASK_JUMP_BWD,
    TASK_JUMP_FWD,
    TASK_JUMP_IF,
    TRY,
    WHILE,
)
from orchestra.engine.tasklist import (
    Engine,
    ObjectStatus,
    Outcome,
    PositionError,
    StartPoint,
    TaskListError,
    WorkflowObject,
    describe,
    normalize,
    position_name,
    run,
    tasklist_hash,
)

ROOT = Path(__file__).resolve().parents[2]
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOON


# --- tasks used by the tests -------------------------------------------------------------------


def add_data(data_param: int) -> Any:
    """Add data_param to the obj.data."""

    def _add_data(obj: WorkflowObject, eng: Engine) -> None:
        obj.data += data_param

    return _add_data


def halt_if_higher_than_20(obj: WorkflowObject, eng: Engine) -> None:
    """Check if current data is more than than 20."""
    if obj.data > 20:
        eng.halt("Data higher than 20.")


def log(label: Any) -> Any:
    """Append `label` to obj.data["log"]."""

    def _log(obj: WorkflowObject, eng: Engine) -> None:
        obj.data["log"].append(label)

    return _log


def log_item(obj: WorkflowObject, eng: Engine) -> None:
    """Append the FOR item to the log."""
    obj.data["log"].append(eng.extra_data["item"])


def incr(obj: WorkflowObject, eng: Engine) -> None:
    """Count one more."""
    obj.data["n"] += 1


def halt_when(key: str, value: Any) -> Any:
    """Halt when eng.extra_data["halt"] is set and obj.data[key] (or the FOR item) equals `value`."""

    def _halt_when(obj: WorkflowObject, eng: Engine) -> None:
        current = eng.extra_data.get("item") if key == "item" else obj.data[key]
        if eng.extra_data.get("halt") and current == value:
            eng.halt(f"check {key}={value}")

    return _halt_when


def n_below(limit: int) -> Any:
    return CMP(lambda obj, eng: obj.data["n"], limit, "<")


def go(tasks: list[Any], data: Any = None, **kwargs: Any) -> tuple[Outcome, WorkflowObject, Engine]:
    obj, eng = WorkflowObject(data), Engine("test", extra_data=kwargs.pop("eng_extra", None))
    return run(tasks, obj, eng, clock=clock, hostname="box", **kwargs), obj, eng


def logged(tasks: list[Any], **kwargs: Any) -> list[Any]:
    outcome, obj, _ = go(tasks, {"n": 0, "log": []}, **kwargs)
    assert outcome.status == ObjectStatus.COMPLETED, outcome
    result: list[Any] = obj.data["log"]
    return result


def resume_fresh(
    tasks: list[Any], obj: WorkflowObject, eng: Engine, outcome: Outcome, start: StartPoint = StartPoint.CONTINUE_NEXT
) -> tuple[Outcome, WorkflowObject, Engine]:
    """Persist everything as JSON, then resume on brand-new objects, as a new process would."""
    saved = json.loads(json.dumps([obj.data, obj.extra_data, eng.extra_data, outcome.callback_pos]))
    fresh_obj, fresh_eng = WorkflowObject(saved[0], saved[1]), Engine("test", extra_data=saved[2])
    result = run(tasks, fresh_obj, fresh_eng, position=saved[3], start_point=start, clock=clock, hostname="box")
    return result, fresh_obj, fresh_eng


def history(obj: WorkflowObject) -> list[tuple[str, list[int]]]:
    return [(entry["nicename"], entry["position"]) for entry in obj.extra_data["_task_history"]]


# --- the seed example --------------------------------------------------------------------------

SEED = [add_data(20), halt_if_higher_than_20]


@pytest.mark.parametrize(("start", "halted_with"), [(5, 25), (10, 30)])
def test_seed_halts_for_approval_and_resumes(start: int, halted_with: int) -> None:
    outcome, obj, eng = go(SEED, start)
    assert (outcome.status, obj.status, obj.data) == (ObjectStatus.HALTED, ObjectStatus.HALTED, halted_with)
    assert (outcome.callback_pos, outcome.message, outcome.action) == ([1], "Data higher than 20.", "approval")
    assert (obj.get_action(), obj.get_action_message()) == ("approval", "Data higher than 20.")
    first = obj.extra_data["_task_history"][0]
    assert first["nicename"] == "add_data" and first["parameters"] == [["data_param", "20"]]
    assert first["doc"] == "Add data_param to the obj.data."
    assert first["name"].endswith("test_tasklist.add_data.<locals>._add_data")
    assert (first["time"], first["hostname"], first["position"]) == (NOON.isoformat(), "box", [0])
    assert obj.extra_data["_last_task_name"] == "halt_if_higher_than_20"

    resumed, fresh, _ = resume_fresh(SEED, obj, eng, outcome)
    # nothing was left to run after the halting task, so no position was run
    assert (resumed.status, fresh.data, resumed.callback_pos) == (ObjectStatus.COMPLETED, halted_with, [])


def test_seed_completes_directly_below_the_threshold() -> None:
    outcome, obj, _ = go(SEED, 0)
    assert (outcome.status, obj.data, outcome.callback_pos) == (ObjectStatus.COMPLETED, 20, [1])
    assert history(obj) == [("add_data", [0]), ("halt_if_higher_than_20", [1])]


def test_start_points_after_a_halt() -> None:
    outcome, obj, eng = go(SEED, 5)
    again, fresh, _ = resume_fresh(SEED, obj, eng, outcome, StartPoint.RESTART_TASK)
    assert (again.status, fresh.data, again.callback_pos) == (ObjectStatus.HALTED, 25, [1])
    previous, fresh, _ = resume_fresh(SEED, obj, eng, outcome, StartPoint.RESTART_PREV)
    assert (previous.status, fresh.data) == (ObjectStatus.HALTED, 45)  # add_data ran once more
    obj.data = 0  # FIRST: the caller restores the initial data itself
    first, fresh, _ = resume_fresh(SEED, obj, eng, outcome, StartPoint.FIRST)
    assert (first.status, fresh.data) == (ObjectStatus.COMPLETED, 20)


def test_restart_prev_at_the_start_of_a_block_re_enters_it() -> None:
    tasks = [incr, IF(CMP(lambda obj, eng: obj.data["n"], 2, "<="), [halt_when("n", 1), log("in")])]
    outcome, obj, eng = go(tasks, {"n": 0, "log": []}, eng_extra={"halt": True})
    assert outcome.callback_pos == [1, 1]
    obj.data["n"] = 5  # the IF condition is now false: re-entering the block must re-evaluate it
    resumed, fresh, _ = resume_fresh(tasks, obj, eng, outcome, StartPoint.RESTART_PREV)
    assert (resumed.status, fresh.data["log"]) == (ObjectStatus.COMPLETED, [])


# --- save and restore inside control flow ------------------------------------------------------


def _halt_and_resume_equals_straight_run(tasks: list[Any], data: dict[str, Any], halted_at: list[int]) -> None:
    straight, straight_obj, _ = go(tasks, json.loads(json.dumps(data)))
    assert straight.status == ObjectStatus.COMPLETED

    outcome, obj, eng = go(tasks, json.loads(json.dumps(data)), eng_extra={"halt": True})
    assert (outcome.status, outcome.callback_pos) == (ObjectStatus.HALTED, halted_at)
    resumed, fresh, fresh_eng = resume_fresh(tasks, obj, eng, outcome)
    assert resumed.status == ObjectStatus.COMPLETED
    assert fresh.data == straight_obj.data
    assert history(fresh) == history(straight_obj)
    assert "_Iterators" not in fresh_eng.extra_data


def test_resume_inside_an_if_branch() -> None:
    tasks = [log("start"), IF(lambda obj, eng: True, [log("a"), halt_when("n", 0), log("b")]), log("end")]
    _halt_and_resume_equals_straight_run(tasks, {"n": 0, "log": []}, [1, 2])


def test_resume_inside_a_while_body() -> None:
    tasks = [WHILE(n_below(3), [incr, halt_when("n", 2), log("pass")]), log("end")]
    _halt_and_resume_equals_straight_run(tasks, {"n": 0, "log": []}, [0, 2])


def test_resume_inside_a_for_body_on_the_second_of_three_items() -> None:
    tasks = [FOR(["x", "y", "z"], "item", [log_item, halt_when("item", "y"), log("after")]), log("end")]
    _halt_and_resume_equals_straight_run(tasks, {"n": 0, "log": []}, [0, 2])
    assert logged(tasks) == ["x", "after", "y", "after", "z", "after", "end"]


def test_resume_inside_a_cached_for_over_a_callable() -> None:
    tasks = [FOR(lambda obj, eng: obj.data["items"], "item", [halt_when("item", 2), log_item], cache_data=True)]
    _halt_and_resume_equals_straight_run(tasks, {"n": 0, "log": [], "items": [1, 2, 3]}, [0, 1])


# --- patterns ----------------------------------------------------------------------------------


def test_if_if_not_and_if_else_take_the_right_branch() -> None:
    yes, no = (lambda obj, eng: True), (lambda obj, eng: False)
    assert logged([IF(yes, log("a")), IF(no, log("b")), log("end")]) == ["a", "end"]
    assert logged([IF_NOT(yes, log("a")), IF_NOT(no, [log("b"), log("c")])]) == ["b", "c"]
    assert logged([IF_ELSE(yes, [log("t1"), log("t2")], log("f")), log("end")]) == ["t1", "t2", "end"]
    assert logged([IF_ELSE(no, log("t"), [log("f1"), log("f2")]), log("end")]) == ["f1", "f2", "end"]
    with pytest.raises(ValueError, match="two branches"):
        IF_ELSE(yes, log("t"), None)


def test_patterns_nest_as_branches() -> None:
    tasks = [IF_ELSE(lambda obj, eng: True, WHILE(n_below(2), [incr, log("w")]), log("no")), log("end")]
    assert logged(tasks) == ["w", "w", "end"]


def test_while_counts_and_for_restarts_when_nested_in_while() -> None:
    assert logged([WHILE(n_below(3), [incr, log("pass")])]) == ["pass"] * 3
    tasks = [WHILE(n_below(2), [incr, FOR([1, 2], "item", log_item)])]
    assert logged(tasks) == [1, 2, 1, 2]


def test_for_over_a_callable_in_descending_order_with_a_setter() -> None:
    def remember(obj: WorkflowObject, eng: Engine, item: Any) -> None:
        obj.data["log"].append(item * 10)

    assert logged([FOR(lambda obj, eng: [1, 2, 3], remember, EMPTY_CALL, order="DSC")]) == [30, 20, 10]


def test_for_re_evaluates_the_list_unless_cached() -> None:
    def grow(obj: WorkflowObject, eng: Engine) -> None:
        obj.data["items"].append(len(obj.data["items"]))

    def items(obj: WorkflowObject, eng: Engine) -> list[int]:
        return list(obj.data["items"][:4])

    for cache, expected in ((False, [0, 1, 2, 3]), (True, [0])):
        outcome, obj, eng = go([FOR(items, "item", [log_item, grow], cache_data=cache)], {"log": [], "items": [0]})
        assert obj.data["log"] == expected
        assert "_Iterators" not in eng.extra_data and "item" not in eng.extra_data


def test_for_restores_the_setter_key_and_rejects_a_bad_order() -> None:
    outcome, obj, eng = go([FOR([1, 2], "item", log_item)], {"log": []}, eng_extra={"item": "mine"})
    assert (obj.data["log"], eng.extra_data["item"]) == ([1, 2], "mine")
    with pytest.raises(ValueError, match="ASC"):
        FOR([], "item", EMPTY_CALL, order="UP")


def test_choice_runs_the_chosen_branch_or_nothing() -> None:
    def tasks() -> list[Any]:
        choice = CHOICE(lambda obj, eng: obj.data["kind"], ("a", log("a")), ("b", [log("b1"), log("b2")]), c=log("c"))
        return [choice, log("end")]

    for kind, expected in (("a", ["a"]), ("b", ["b1", "b2"]), ("c", ["c"]), ("zzz", [])):
        outcome, obj, _ = go(tasks(), {"kind": kind, "log": []})
        assert obj.data["log"] == [*expected, "end"]


def test_simple_merge_runs_the_first_branch_then_the_final_one() -> None:
    assert logged([SIMPLE_MERGE(log("a"), log("b"), [log("final"), log("more")]), log("end")]) == [
        "a",
        "final",
        "more",
        "end",
    ]


def test_task_jumps() -> None:
    assert logged([log("a"), TASK_JUMP_FWD(2), log("skipped"), log("b")]) == ["a", "b"]
    loop = [incr, TASK_JUMP_IF(CMP(lambda obj, eng: obj.data["n"], 3, ">="), 2), TASK_JUMP_BWD(-2), log("end")]
    outcome, obj, _ = go(loop, {"n": 0, "log": []})
    assert (obj.data, outcome.callback_pos) == ({"n": 3, "log": ["end"]}, [3])
    with pytest.raises(ValueError, match="negative"):
        TASK_JUMP_BWD(2)


def test_jump_call_clamps_to_the_block() -> None:
    def far(obj: WorkflowObject, eng: Engine) -> None:
        eng.jump_call(99)

    assert logged([[log("a"), far, log("skipped")], log("after")]) == ["a", "after"]


def test_break_stop_halt_and_obj_next() -> None:
    assert logged([[log("a"), BREAK(), log("b")], log("c")]) == ["a", "c"]
    body = [incr, TASK_JUMP_IF(n_below(3), 2), BREAK()]
    assert logged([WHILE(lambda obj, eng: True, body), log("out")]) == ["out"]

    outcome, obj, _ = go([log("a"), STOP(), log("b")], {"log": []})
    assert (outcome.status, outcome.callback_pos, obj.data["log"]) == (ObjectStatus.COMPLETED, [1], ["a"])
    assert "_skipped" not in obj.extra_data

    outcome, obj, _ = go([log("a"), OBJ_NEXT(), log("b")], {"log": []})
    assert (outcome.status, obj.data["log"], obj.extra_data["_skipped"]) == (ObjectStatus.COMPLETED, ["a"], True)

    outcome, obj, _ = go([log("a"), HALT("look"), log("b")], {"log": []})
    assert (outcome.status, outcome.message, outcome.action, outcome.callback_pos) == (
        ObjectStatus.HALTED,
        "look",
        "approval",
        [1],
    )


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("eq", 1, 1, True), ("==", 1, 2, False), ("gt", 2, 1, True), (">", 1, 1, False),
        ("gte", 1, 1, True), (">=", 0, 1, False), ("lt", 0, 1, True), ("<", 1, 1, False),
        ("lte", 1, 1, True), ("<=", 2, 1, False), ("in", 1, [1, 2], True), ("in", 3, [1, 2], False),
    ],
)  # fmt: skip
def test_cmp_operators(op: str, a: Any, b: Any, expected: bool) -> None:
    eng, obj = Engine(), WorkflowObject(b)
    assert CMP(a, b, op)(obj, eng) is expected
    assert CMP(lambda obj, eng: a, lambda obj, eng: obj.data, op)(obj, eng) is expected


def test_cmp_rejects_an_unknown_operator() -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        CMP(1, 2, "~")


def test_eng_and_obj_get_set() -> None:
    tasks = [
        ENG_SET("k", 5),
        OBJ_SET("doubled", lambda obj, eng: eng.extra_data["k"] * 2),
        IF(ENG_GET("k"), log("eng")),
        IF(OBJ_GET("doubled"), log("obj")),
        IF(OBJ_GET("missing"), log("never")),
    ]
    outcome, obj, eng = go(tasks, {"log": []})
    assert (eng.extra_data["k"], obj.extra_data["doubled"], obj.data["log"]) == (5, 10, ["eng", "obj"])


def flaky(failures: dict[str, int], error: type[Exception] = RuntimeError) -> Any:
    def _flaky(obj: WorkflowObject, eng: Engine) -> None:
        failures["calls"] += 1
        if failures["calls"] <= failures["fail"]:
            raise error("flaky")
        obj.data += 1

    return _flaky


def test_try_retries_then_succeeds_or_gives_up() -> None:
    counts = {"calls": 0, "fail": 2}
    outcome, obj, _ = go([TRY(flaky(counts), retry=2, verbose=False)], 0)
    assert (outcome.status, obj.data, counts["calls"]) == (ObjectStatus.COMPLETED, 1, 3)
    assert history(obj) == [("flaky", [0])]

    counts = {"calls": 0, "fail": 2}
    outcome, obj, _ = go([TRY(flaky(counts), retry=1, verbose=False)], 0)
    assert (outcome.status, counts["calls"], type(outcome.exception)) == (ObjectStatus.ERROR, 2, RuntimeError)

    counts = {"calls": 0, "fail": 1}
    outcome, obj, _ = go([TRY(flaky(counts, KeyError), retry=3, onfailure=ValueError)], 0)
    assert (outcome.status, counts["calls"]) == (ObjectStatus.ERROR, 1)  # not the declared failure: no retry


def test_try_lets_a_halt_through_without_retrying() -> None:
    calls = []

    def halting(obj: WorkflowObject, eng: Engine) -> None:
        calls.append(1)
        eng.halt("wait for me")

    outcome, _, _ = go([TRY(halting, retry=5, onfailure=BaseException)], 0)
    assert (outcome.status, outcome.message, len(calls)) == (ObjectStatus.HALTED, "wait for me", 1)


def test_parallel_split_runs_branches_concurrently_and_joins() -> None:
    barrier, lock = threading.Barrier(2, timeout=2), threading.Lock()

    def branch(label: str) -> Any:
        def _branch(obj: WorkflowObject, eng: Engine) -> None:
            barrier.wait()  # only passes if the other branch runs at the same time
            with lock:
                obj.data["log"].append(label)

        return _branch

    def count(obj: WorkflowObject, eng: Engine) -> None:
        obj.data["seen_after_join"] = sorted(obj.data["log"])

    outcome, obj, _ = go([PARALLEL_SPLIT(branch("a"), [branch("b"), log("b2")]), count], {"log": []})
    assert outcome.status == ObjectStatus.COMPLETED, outcome.error
    assert obj.data["seen_after_join"] == ["a", "b", "b2"]
    assert sorted(name for name, _ in history(obj)) == ["branch", "branch", "count", "log"]


def test_parallel_split_failures_and_halts_are_errors_at_the_split() -> None:
    def boom(obj: WorkflowObject, eng: Engine) -> None:
        raise KeyError("boom")

    outcome, _, _ = go([EMPTY_CALL, PARALLEL_SPLIT(EMPTY_CALL, boom)], 0)
    assert (outcome.status, outcome.callback_pos, type(outcome.exception)) == (ObjectStatus.ERROR, [1], KeyError)
    outcome, _, _ = go([PARALLEL_SPLIT(halt_if_higher_than_20)], 50)
    assert outcome.status == ObjectStatus.ERROR and "parallel branch" in outcome.error


def test_synchronize_runs_final_after_the_join_and_times_out() -> None:
    outcome, obj, _ = go([SYNCHRONIZE(log("a"), log("b"), final=log("final"))], {"log": []})
    assert outcome.status == ObjectStatus.COMPLETED and obj.data["log"][-1] == "final"

    release = threading.Event()

    def slow(obj: WorkflowObject, eng: Engine) -> None:
        release.wait(2)

    outcome, _, _ = go([SYNCHRONIZE(slow, timeout=0.05)], 0)
    release.set()
    assert outcome.status == ObjectStatus.ERROR and isinstance(outcome.exception, TimeoutError)


def test_run_wf_runs_a_sub_list_on_a_copy() -> None:
    class Sub:
        workflow = [add_data(1), add_data(2)]

    def passed(obj: WorkflowObject, eng: Engine) -> None:
        obj.data += eng.extra_data["bonus"]

    tasks = [ENG_SET("bonus", 100), RUN_WF(Sub), RUN_WF([passed], pass_eng=["bonus"], outkey="out")]
    outcome, obj, eng = go(tasks, 10)
    assert (outcome.status, obj.data) == (ObjectStatus.COMPLETED, 10)  # the parent's data is untouched
    assert eng.extra_data["RUN_WF"] == {"data": 13, "status": "COMPLETED", "message": ""}
    assert eng.extra_data["out"]["data"] == 110

    connector = RUN_WF([add_data(1)], data_connector=lambda obj, eng: obj.data * 2)
    assert go([connector], 7)[2].extra_data["RUN_WF"]["data"] == 15


def test_run_wf_child_halt_halts_the_parent_at_run_wf() -> None:
    tasks = [RUN_WF(SEED), add_data(1000)]
    outcome, obj, eng = go(tasks, 5)
    assert (outcome.status, outcome.callback_pos, outcome.message) == (ObjectStatus.HALTED, [0], "Data higher than 20.")
    assert eng.extra_data["RUN_WF"]["status"] == "HALTED"
    resumed, fresh, _ = resume_fresh(tasks, obj, eng, outcome)
    assert (resumed.status, fresh.data) == (ObjectStatus.COMPLETED, 1005)


# --- other outcomes ----------------------------------------------------------------------------


def test_wait_stop_and_abort() -> None:
    outcome, obj, _ = go([lambda obj, eng: eng.wait("partner")], 0)
    assert (outcome.status, outcome.action, obj.status, obj.get_action()) == (
        ObjectStatus.WAITING,
        None,
        "WAITING",
        None,
    )
    assert obj.get_action_message() == "partner"

    outcome, obj, _ = go([add_data(1), lambda obj, eng: eng.stop(), add_data(10)], 0)
    assert (outcome.status, obj.data) == (ObjectStatus.COMPLETED, 1)

    outcome, obj, _ = go([lambda obj, eng: eng.abort("no way"), add_data(10)], 0)
    assert (outcome.status, outcome.aborted, outcome.error, obj.data) == (ObjectStatus.ERROR, True, "no way", 0)


def test_an_exception_is_an_error_outcome_with_its_traceback() -> None:
    def divide(obj: WorkflowObject, eng: Engine) -> None:
        obj.data = 1 / 0

    tasks = [add_data(1), [EMPTY_CALL, divide]]
    outcome, obj, eng = go(tasks, 0)
    assert (outcome.status, outcome.callback_pos, obj.status) == (ObjectStatus.ERROR, [1, 1], ObjectStatus.ERROR)
    assert "ZeroDivisionError" in obj.extra_data["_error_msg"] and "divide" in outcome.error
    assert isinstance(outcome.exception, ZeroDivisionError)

    again, fresh, _ = resume_fresh([add_data(1), [EMPTY_CALL, EMPTY_CALL]], obj, eng, outcome, StartPoint.RESTART_TASK)
    assert again.status == ObjectStatus.COMPLETED and "_error_msg" not in fresh.extra_data


def test_a_task_cannot_swallow_a_halt_with_except_exception() -> None:
    def careless(obj: WorkflowObject, eng: Engine) -> None:
        try:
            eng.halt("really")
        except Exception:
            obj.data = "swallowed"

    outcome, obj, _ = go([careless], 0)
    assert (outcome.status, obj.data) == (ObjectStatus.HALTED, 0)


def test_history_is_capped_and_json_serializable() -> None:
    outcome, obj, _ = go([WHILE(n_below(1005), incr)], {"n": 0})
    assert outcome.status == ObjectStatus.COMPLETED
    assert len(obj.extra_data["_task_history"]) == 1000
    obj.add_task_result("odd", object(), template="t.html")
    json.dumps(obj.extra_data)
    assert obj.get_tasks_results()["odd"][0]["template"] == "t.html"


# --- validation, positions, hashing, description -----------------------------------------------


def test_normalize_flattens_tuples_drops_none_and_names_bad_paths() -> None:
    assert normalize([incr, (None, incr), [None, (incr,)]]) == [incr, incr, [incr]]
    with pytest.raises(TaskListError) as caught:
        normalize([incr, incr, [42, incr], ("x",)])
    assert "[2][0]" in caught.value.message and "[3][0]" in caught.value.message
    assert isinstance(caught.value, OrchestraError)
    with pytest.raises(TaskListError, match="must open its block"):
        normalize([incr, *IF(lambda obj, eng: True, incr)])


def test_a_position_outside_the_list_is_refused_with_its_shape() -> None:
    with pytest.raises(PositionError) as caught:
        go(SEED, 5, position=[1, 0])
    assert "[1, 0]" in caught.value.message and "[t, t]" in caught.value.message
    with pytest.raises(PositionError, match="outside"):
        go(SEED, 5, position=[7], start_point=StartPoint.CONTINUE_NEXT)


def _seed_like(param: int, reverse: bool = False) -> list[Any]:
    tasks = [add_data(param), halt_if_higher_than_20, IF(CMP(1, 2, "<"), [incr, log("x")])]
    return tasks[::-1] if reverse else tasks


def test_tasklist_hash_follows_structure_and_parameters() -> None:
    assert tasklist_hash(_seed_like(20)) == tasklist_hash(_seed_like(20))
    assert tasklist_hash(_seed_like(20)) != tasklist_hash(_seed_like(30))
    assert tasklist_hash(_seed_like(20)) != tasklist_hash(_seed_like(20, reverse=True))
    assert tasklist_hash(_seed_like(20)) != tasklist_hash(_seed_like(20)[:-1])
    changed_branch = [*_seed_like(20)[:2], IF(CMP(1, 2, "<"), [incr, log("y")])]
    assert tasklist_hash(_seed_like(20)) != tasklist_hash(changed_branch)
    assert tasklist_hash([TRY(add_data(1))]) != tasklist_hash([TRY(add_data(2))])
    assert len(tasklist_hash([])) == 64


def test_describe_and_position_name() -> None:
    outline = describe([add_data(20), IF(CMP(1, 2, "<"), halt_if_higher_than_20)])
    assert outline[0] == {
        "position": [0],
        "name": "add_data",
        "doc": "Add data_param to the obj.data.",
        "parameters": [["data_param", "20"]],
        "control": False,
    }
    assert [(row["position"], row["name"], row["control"]) for row in outline[1:]] == [
        ([1, 0], "IF", True),
        ([1, 1], "halt_if_higher_than_20", False),
    ]
    assert outline[1]["parameters"] == [["cond", "CMP"]]
    assert position_name(SEED, [1]) == "halt_if_higher_than_20"
    assert position_name(SEED, [5]) == "" and position_name([[incr]], [0]) == ""


def test_tasklist_hash_is_the_same_in_another_process() -> None:
    code = "from tests.unit.test_tasklist import _seed_like, tasklist_hash; print(tasklist_hash(_seed_like(20)))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert other.stdout.strip() == tasklist_hash(_seed_like(20))
