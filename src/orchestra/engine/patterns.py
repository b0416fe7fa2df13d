"""Control-flow helpers for task lists, with the names and signatures of `workflow.patterns`.

Each helper returns a task or a *block*: a list whose first item is a head control (see
`tasklist.mark_control`). Branches are flattened into the block, so `BREAK()` directly in a WHILE or FOR
body leaves the loop, while a BREAK inside a nested IF leaves only the IF block (as in Invenio: a break
leaves the current block). A branch may be one task, a list of tasks, or another pattern's block.

Differences from `workflow.patterns`, each on purpose:

- FOR accepts a callable `get_list` (upstream recursed forever) and ends cleanly (upstream raised
  KeyError 'previous_data'); its iterator state lives in ``eng.extra_data["_Iterators"]`` keyed by the
  block's position and is dropped when the loop is left, so the loop can run again (e.g. inside WHILE).
  With ``cache_data=True`` the list is stored there too, so it must be JSON.
- PARALLEL_SPLIT joins its branches (upstream fired threads and forgot them) on a pool of at most
  `MAX_PARALLEL` threads. Halting, stopping or breaking inside a parallel branch cannot be resumed (the
  other branches have run), so it fails the split with `ParallelBranchError`; `jump_call` there is
  ignored. A branch is a task or a flat list of tasks (no blocks).
- SYNCHRONIZE's `timeout` is in seconds (upstream: milliseconds), ``None`` waits for ever.
- RUN_WF runs the sub-list to its end in a fresh child engine on every call (``reinit`` is accepted and
  implied: nothing survives in memory between processes). It is atomic: if the child halts, the parent
  halts at the RUN_WF position; resuming with RESTART_TASK runs the whole sub-list again, with
  CONTINUE_NEXT skips it.
- TRY never retries engine transitions (halt, stop...): they pass straight through.
"""

from __future__ import annotations

import concurrent.futures
import copy
import logging
import operator
from collections.abc import Callable, Sequence
from typing import Any

from orchestra.engine.errors import OrchestraError
from orchestra.engine.tasklist import (
    Engine,
    EngineSignal,
    Task,
    TaskListError,
    WorkflowObject,
    _nicename,
    is_head,
    mark_control,
    normalize,
    run,
)

__all__ = [
    "BREAK",
    "CHOICE",
    "CMP",
    "EMPTY_CALL",
    "ENG_GET",
    "ENG_SET",
    "FOR",
    "HALT",
    "IF",
    "IF_ELSE",
    "IF_NOT",
    "MAX_PARALLEL",
    "OBJ_GET",
    "OBJ_NEXT",
    "OBJ_SET",
    "PARALLEL_SPLIT",
    "RUN_WF",
    "SIMPLE_MERGE",
    "STOP",
    "SYNCHRONIZE",
    "TASK_JUMP_BWD",
    "TASK_JUMP_FWD",
    "TASK_JUMP_IF",
    "TRY",
    "ParallelBranchError",
]

logger = logging.getLogger(__name__)

MAX_PARALLEL = 4
Cond = Callable[[WorkflowObject, Engine], Any]


class ParallelBranchError(OrchestraError):
    """A parallel branch tried to halt, stop or break, which cannot be resumed."""

    code = "parallel_branch"


def _items(branch: Any, where: str) -> list[Any]:
    """The items `branch` contributes to a flattened block: a pattern block stays one nested item."""
    if branch is None:
        return []
    if isinstance(branch, list) and branch and is_head(branch[0]):
        return [branch]
    if isinstance(branch, list | tuple):
        try:
            return normalize(list(branch))
        except TaskListError as exc:
            raise TaskListError(f"in the {where}: {exc.message}", problems=exc.fields.get("problems", [])) from None
    if callable(branch):
        return [branch]
    raise TaskListError(f"the {where} is a {type(branch).__name__}, not a task or a list of tasks", problems=[where])


def _value(value: Any, obj: WorkflowObject, eng: Engine) -> Any:
    return value(obj, eng) if callable(value) else value


def IF(cond: Cond, branch: Any) -> list[Any]:
    """Run `branch` only if ``cond(obj, eng)`` is true."""

    def _if(obj: WorkflowObject, eng: Engine) -> None:
        if not cond(obj, eng):
            eng.break_current_loop()

    head = mark_control(_if, "IF", head=True, doc="Run the branch if the condition holds.", cond=cond)
    return [head, *_items(branch, "IF branch")]


def IF_NOT(cond: Cond, branch: Any) -> list[Any]:
    """Run `branch` only if ``cond(obj, eng)`` is false."""

    def _if_not(obj: WorkflowObject, eng: Engine) -> None:
        if cond(obj, eng):
            eng.break_current_loop()

    head = mark_control(_if_not, "IF_NOT", head=True, doc="Run the branch unless the condition holds.", cond=cond)
    return [head, *_items(branch, "IF_NOT branch")]


def IF_ELSE(cond: Cond, branch1: Any, branch2: Any) -> list[Any]:
    """Run `branch1` if ``cond(obj, eng)`` is true, else `branch2`."""
    if branch1 is None or branch2 is None:
        raise ValueError("IF_ELSE needs two branches; use IF or IF_NOT for one")
    first, second = _items(branch1, "IF_ELSE true branch"), _items(branch2, "IF_ELSE false branch")
    to_else = len(first) + 2  # from the head, past the first branch and the end-of-branch break

    def _if_else(obj: WorkflowObject, eng: Engine) -> None:
        if not cond(obj, eng):
            eng.jump_call(to_else)

    def _end_if(obj: WorkflowObject, eng: Engine) -> None:
        eng.break_current_loop()

    head = mark_control(_if_else, "IF_ELSE", head=True, doc="Choose a branch by the condition.", cond=cond)
    end = mark_control(_end_if, "IF_ELSE: end of true branch", doc="Skip the false branch.")
    return [head, *first, end, *second]


def WHILE(cond: Cond, branch: Any) -> list[Any]:
    """Run `branch` again and again while ``cond(obj, eng)`` is true (checked before each pass)."""
    body = _items(branch, "WHILE body")
    back = -(len(body) + 1)

    def _while(obj: WorkflowObject, eng: Engine) -> None:
        if not cond(obj, eng):
            eng.break_current_loop()

    def _loop(obj: WorkflowObject, eng: Engine) -> None:
        eng.jump_call(back)

    head = mark_control(_while, "WHILE", head=True, doc="Loop while the condition holds.", cond=cond)
    return [head, *body, mark_control(_loop, "WHILE: loop back", doc="Check the condition again.", jump=back)]


def _iterator_key(position: list[int]) -> str:
    return str(position)


def FOR(
    get_list: Any,
    setter: str | Callable[[WorkflowObject, Engine, Any], Any],
    branch: Any,
    cache_data: bool = False,
    order: str = "ASC",
) -> list[Any]:
    """Run `branch` once per item of `get_list` (a list or ``callable(obj, eng)`` returning one).

    The item goes to ``eng.extra_data[setter]`` (restored to its former value after the loop) or to
    ``setter(obj, eng, item)``. Without `cache_data` the list is evaluated again before every item and the
    index carries on; with it, the list is computed once. `order` is "ASC" or "DSC" (from the end).
    """
    if order not in ("ASC", "DSC"):
        raise ValueError(f"FOR order must be 'ASC' or 'DSC', not {order!r}")
    body = _items(branch, "FOR body")
    back = -(len(body) + 1)

    def values(obj: WorkflowObject, eng: Engine) -> list[Any]:
        return list(get_list(obj, eng) if callable(get_list) else get_list)

    def _for(obj: WorkflowObject, eng: Engine) -> None:
        iterators = eng.extra_data.setdefault("_Iterators", {})
        key = _iterator_key(eng.callback_pos[:-1])
        state = iterators.get(key)
        if state is None:
            state = {"index": 0}
            if isinstance(setter, str) and setter in eng.extra_data:
                state["previous"] = eng.extra_data[setter]
            if cache_data:
                state["items"] = values(obj, eng)
            iterators[key] = state
        items = state["items"] if cache_data else values(obj, eng)
        index = state["index"]
        if index >= len(items):
            eng.break_current_loop()  # the block's on_exit drops the state
        item = items[index] if order == "ASC" else items[len(items) - 1 - index]
        if isinstance(setter, str):
            eng.extra_data[setter] = item
        else:
            setter(obj, eng, item)

    def _next(obj: WorkflowObject, eng: Engine) -> None:
        eng.extra_data["_Iterators"][_iterator_key(eng.callback_pos[:-1])]["index"] += 1
        eng.jump_call(back)

    def _exit(eng: Engine, block_position: list[int]) -> None:
        iterators = eng.extra_data.get("_Iterators", {})
        state = iterators.pop(_iterator_key(block_position), None)
        if not iterators:
            eng.extra_data.pop("_Iterators", None)
        if isinstance(setter, str) and state is not None:
            if "previous" in state:
                eng.extra_data[setter] = state["previous"]
            else:
                eng.extra_data.pop(setter, None)

    params = {"get_list": get_list, "setter": setter, "cache_data": cache_data, "order": order}
    head = mark_control(_for, "FOR", head=True, doc="Loop over the items of a list.", on_exit=_exit, **params)
    return [head, *body, mark_control(_next, "FOR: next item", doc="Go on with the next item.", jump=back)]


def CMP(a: Any, b: Any, op: str) -> Cond:
    """A condition comparing `a` and `b` (values or ``callable(obj, eng)``) with `op`.

    `op` is one of eq gt gte lt lte ne == > >= < <= != in ("in": `a` in `b`).
    """
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "eq": operator.eq, "==": operator.eq, "ne": operator.ne, "!=": operator.ne,
        "gt": operator.gt, ">": operator.gt, "gte": operator.ge, ">=": operator.ge,
        "lt": operator.lt, "<": operator.lt, "lte": operator.le, "<=": operator.le,
        "in": lambda x, y: x in y,
    }  # fmt: skip
    if op not in ops:
        raise ValueError(f"CMP: unknown operator {op!r}; use one of {', '.join(ops)}")
    compare = ops[op]

    def _cmp(obj: WorkflowObject, eng: Engine) -> bool:
        return bool(compare(_value(a, obj, eng), _value(b, obj, eng)))

    return mark_control(_cmp, "CMP", doc="Compare two values.", a=a, b=b, op=op)


def CHOICE(arbiter: Cond, *predicates: tuple[Any, ...], **kwpredicates: Any) -> list[Any]:
    """Run the branch whose value equals ``arbiter(obj, eng)``; nothing if no value matches.

    Branches are ``('value', task_or_list, ...)`` tuples or ``value=task_or_list`` keywords.
    """
    items: list[Any] = []
    starts: dict[Any, int] = {}

    def _end_choice(obj: WorkflowObject, eng: Engine) -> None:
        eng.break_current_loop()

    end = mark_control(_end_choice, "CHOICE: end of branch", doc="Leave the CHOICE.")
    for choice in [*predicates, *kwpredicates.items()]:
        if not isinstance(choice, tuple) or not choice:
            raise ValueError(f"CHOICE branches are ('value', task_or_list) tuples, not {choice!r}")
        value, *rest = choice
        if value in starts:
            raise ValueError(f"CHOICE: value {value!r} has two branches")
        starts[value] = len(items) + 1  # offset from the head
        items += [*_items(rest[0] if len(rest) == 1 else rest, f"CHOICE branch {value!r}"), end]

    def _choice(obj: WorkflowObject, eng: Engine) -> None:
        offset = starts.get(arbiter(obj, eng))
        if offset is None:
            eng.break_current_loop()
        eng.jump_call(offset)

    choices = [[repr(value), start] for value, start in starts.items()]
    head = mark_control(
        _choice, "CHOICE", head=True, doc="Run the branch chosen by a value.", arbiter=arbiter, choices=choices
    )
    return [head, *items]


def SIMPLE_MERGE(*branches: Any) -> list[Any]:
    """Run the first branch, then the last argument (the branch they all merge into)."""
    if not branches:
        raise ValueError("SIMPLE_MERGE needs at least the final branch")
    *alternatives, final = branches
    parts = [_items(branch, f"SIMPLE_MERGE branch {i}") for i, branch in enumerate(alternatives)]
    final_start = 1 + sum(len(part) + 1 for part in parts)

    def _merge(obj: WorkflowObject, eng: Engine) -> None:
        """The merge needs no decision: the first branch simply follows."""

    items: list[Any] = [mark_control(_merge, "SIMPLE_MERGE", head=True, doc="Run one branch, then the final one.")]
    for part in parts:
        offset = final_start - (len(items) + len(part))

        def _to_final(obj: WorkflowObject, eng: Engine, offset: int = offset) -> None:
            eng.jump_call(offset)

        items += [*part, mark_control(_to_final, "SIMPLE_MERGE: to final", doc="Go to the final branch.", jump=offset)]
    return [*items, *_items(final, "SIMPLE_MERGE final branch")]


def _branch_tasks(branch: Any, where: str) -> list[Task]:
    tasks = _items(branch, where)
    if any(isinstance(task, list) for task in tasks):
        raise TaskListError(f"a {where} must be a task or a flat list of tasks, not a block", problems=[where])
    return tasks


def _run_branch(tasks: list[Task], obj: WorkflowObject, eng: Engine) -> None:
    for task in tasks:
        try:
            eng._call(task, obj)
        except EngineSignal as signal:
            raise ParallelBranchError(
                f"{_nicename(task)} tried to {type(signal).__name__.strip('_').lower()} inside a parallel branch, "
                "which cannot be resumed; move it after the PARALLEL_SPLIT/SYNCHRONIZE",
                task=_nicename(task),
            ) from None


def _join(branches: list[list[Task]], obj: WorkflowObject, eng: Engine, timeout: float | None) -> None:
    if not branches:
        return
    pool = concurrent.futures.ThreadPoolExecutor(min(MAX_PARALLEL, len(branches)), thread_name_prefix="orchestra")
    pending: set[concurrent.futures.Future[None]] = set()
    try:
        futures = [pool.submit(_run_branch, tasks, obj, eng) for tasks in branches]
        _, pending = concurrent.futures.wait(futures, timeout=timeout)
        if pending:
            raise TimeoutError(f"{len(pending)} of {len(futures)} parallel branch(es) still running after {timeout}s")
        for future in futures:
            future.result()  # re-raises the first failure, in branch order
    finally:
        # After a timeout the stragglers are left to finish on their own: threads cannot be killed.
        pool.shutdown(wait=not pending, cancel_futures=True)


def PARALLEL_SPLIT(*tasks: Any) -> Task:
    """Run the branches concurrently on the same obj/eng and wait for all of them before going on."""
    branches = [_branch_tasks(branch, f"PARALLEL_SPLIT branch {i}") for i, branch in enumerate(tasks)]

    def _parallel_split(obj: WorkflowObject, eng: Engine) -> None:
        _join(branches, obj, eng, None)

    return mark_control(_parallel_split, "PARALLEL_SPLIT", doc="Run branches concurrently, then join.", tasks=branches)


def SYNCHRONIZE(*tasks: Any, final: Any = None, timeout: float | None = None) -> Task:
    """Run the branches concurrently, wait up to `timeout` seconds for all, then run `final`."""
    branches = [_branch_tasks(branch, f"SYNCHRONIZE branch {i}") for i, branch in enumerate(tasks)]
    finals = _branch_tasks(final, "SYNCHRONIZE final")

    def _synchronize(obj: WorkflowObject, eng: Engine) -> None:
        _join(branches, obj, eng, timeout)
        for task in finals:
            eng._call(task, obj)

    doc = "Run branches concurrently, join, then run the final task."
    return mark_control(_synchronize, "SYNCHRONIZE", doc=doc, tasks=branches, final=finals, timeout=timeout)


def TASK_JUMP_FWD(step: int = 1) -> Task:
    """Go on `step` callables ahead in the current block (1 is the normal next one)."""
    if step < 1:
        raise ValueError(f"TASK_JUMP_FWD needs a step of at least 1, not {step}")
    return mark_control(lambda obj, eng: eng.jump_call(step), "TASK_JUMP_FWD", doc="Jump forward.", step=step)


def TASK_JUMP_BWD(step: int = -1) -> Task:
    """Go back `step` callables in the current block; `step` is negative, as in `workflow`."""
    if step > -1:
        raise ValueError(f"TASK_JUMP_BWD needs a negative step (e.g. -2), not {step}")
    return mark_control(lambda obj, eng: eng.jump_call(step), "TASK_JUMP_BWD", doc="Jump back.", step=step)


def TASK_JUMP_IF(cond: Cond, step: int) -> Task:
    """Jump `step` callables (either way) in the current block if ``cond(obj, eng)`` is true."""

    def _jump_if(obj: WorkflowObject, eng: Engine) -> None:
        if cond(obj, eng):
            eng.jump_call(step)

    return mark_control(_jump_if, "TASK_JUMP_IF", doc="Jump if the condition holds.", cond=cond, step=step)


def BREAK() -> Task:
    """Leave the current block."""
    return mark_control(lambda obj, eng: eng.break_current_loop(), "BREAK", doc="Leave the current block.")


def STOP() -> Task:
    """End the run; the object is COMPLETED as it is."""
    return mark_control(lambda obj, eng: eng.stop(), "STOP", doc="End the run here.")


def HALT(msg: str = "") -> Task:
    """Halt for approval with `msg`."""
    return mark_control(lambda obj, eng: eng.halt(msg), "HALT", doc="Halt for a human decision.", msg=msg)


def OBJ_NEXT() -> Task:
    """Skip the rest of the list for this object (``extra_data["_skipped"]``)."""
    return mark_control(lambda obj, eng: eng.skip_token(), "OBJ_NEXT", doc="Skip the rest for this object.")


EMPTY_CALL = mark_control(lambda obj, eng: None, "EMPTY_CALL", doc="Do nothing.")


def ENG_GET(key: str) -> Cond:
    """A condition/getter returning ``eng.extra_data.get(key)``."""
    return mark_control(lambda obj, eng: eng.extra_data.get(key), "ENG_GET", doc="Read an engine value.", key=key)


def ENG_SET(key: str, value: Any) -> Task:
    """Set ``eng.extra_data[key]`` to `value` (or to ``value(obj, eng)`` if it is callable)."""

    def _eng_set(obj: WorkflowObject, eng: Engine) -> None:
        eng.extra_data[key] = _value(value, obj, eng)

    return mark_control(_eng_set, "ENG_SET", doc="Set an engine value.", key=key, value=value)


def OBJ_GET(key: str) -> Cond:
    """A condition/getter returning ``obj.extra_data.get(key)``."""
    return mark_control(lambda obj, eng: obj.extra_data.get(key), "OBJ_GET", doc="Read an object value.", key=key)


def OBJ_SET(key: str, value: Any) -> Task:
    """Set ``obj.extra_data[key]`` to `value` (or to ``value(obj, eng)`` if it is callable)."""

    def _obj_set(obj: WorkflowObject, eng: Engine) -> None:
        obj.extra_data[key] = _value(value, obj, eng)

    return mark_control(_obj_set, "OBJ_SET", doc="Set an object value.", key=key, value=value)


def TRY(
    task: Task,
    retry: int = 1,
    onfailure: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    verbose: bool = True,
) -> Task:
    """Run `task`, running it up to `retry` more times while it raises `onfailure`."""
    if not callable(task):
        raise TaskListError(f"TRY wraps one task, not a {type(task).__name__}", problems=["TRY"])
    if retry < 0:
        raise ValueError(f"TRY retry must be 0 or more, not {retry}")

    def _try(obj: WorkflowObject, eng: Engine) -> None:
        for attempt in range(retry + 1):
            try:
                eng._call(task, obj)
                return
            except EngineSignal:
                raise  # a halt or stop is an answer, not a failure
            except onfailure as exc:
                if attempt == retry:
                    raise
                if verbose:
                    logger.warning("TRY %s: attempt %d of %d failed: %r", _nicename(task), attempt + 1, retry + 1, exc)

    doc = "Run a task, retrying it on failure."
    return mark_control(_try, "TRY", doc=doc, task=task, retry=retry, onfailure=onfailure, verbose=verbose)


def RUN_WF(
    workflow: Any,
    engine: type[Engine] | None = None,
    data_connector: Callable[[WorkflowObject, Engine], Any] | None = None,
    pass_eng: Sequence[str] = (),
    pass_always: Sequence[str] | None = None,
    outkey: str = "RUN_WF",
    reinit: bool = False,
) -> Task:
    """Run another task list (a list, or an object with a ``.workflow`` list) on a child object.

    The child's data is ``data_connector(obj, eng)`` or a deep copy of ``obj.data``; the `pass_eng` and
    `pass_always` keys of ``eng.extra_data`` are copied to the child engine. Afterwards
    ``eng.extra_data[outkey]`` is ``{"data", "status", "message"}``; a child that halts, waits, aborts or
    fails makes the parent do the same at the RUN_WF position.
    """
    tasks = _items(workflow if isinstance(workflow, list | tuple) else workflow.workflow, "RUN_WF workflow")
    name = str(getattr(workflow, "name", "") or getattr(workflow, "__name__", ""))
    engine_class = engine or Engine
    keys = [*pass_eng, *(pass_always or ())]

    def _run_wf(obj: WorkflowObject, eng: Engine) -> None:
        if eng._clock is None:
            raise RuntimeError("RUN_WF runs only inside tasklist.run, which provides the clock")
        data = data_connector(obj, eng) if data_connector else copy.deepcopy(obj.data)
        passed = {key: copy.deepcopy(eng.extra_data[key]) for key in keys if key in eng.extra_data}
        child_eng = engine_class(name or eng.name, passed, eng.project_data, eng.prerequisites)
        child = WorkflowObject(data)
        outcome = run(tasks, child, child_eng, clock=eng._clock, hostname=eng._hostname)
        message = outcome.message if outcome.exception is None else outcome.error.strip().splitlines()[-1]
        eng.extra_data[outkey] = {"data": child.data, "status": outcome.status.value, "message": message}
        if outcome.exception is not None:
            raise outcome.exception
        if outcome.aborted:
            eng.abort(outcome.message)
        if outcome.status == "HALTED":
            eng.halt(outcome.message, outcome.action, outcome.payload)
        if outcome.status == "WAITING":
            eng.wait(outcome.message)

    params: dict[str, Any] = {
        "workflow": tasks,
        "data_connector": data_connector,
        "pass_eng": keys,
        "outkey": outkey,
        "reinit": reinit,
    }
    return mark_control(_run_wf, "RUN_WF", doc="Run a sub-workflow on a copy of the object.", **params)
