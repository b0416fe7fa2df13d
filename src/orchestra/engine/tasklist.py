"""Task lists: Invenio-Workflows' engine, re-implemented for one object per run.

A *task list* is a (possibly nested) list of callables ``task(obj, eng)``; parameters are bound with
closures, nested lists are blocks, tuples are flattened into the enclosing list and ``None`` is dropped
(`normalize`). `run` walks ONE `WorkflowObject` through the list: Orchestra gives every object its own
task, so there is no token loop.

The position is ``callback_pos``, one int per nesting level (``[3, 1]`` = 2nd item of the block at
index 3). A run can halt mid-list; the caller persists ``obj.data``, ``obj.extra_data``,
``eng.extra_data`` and ``Outcome.callback_pos`` as JSON and later resumes in a new process with fresh
objects. Everything a resume needs therefore lives in those four values; nothing in memory is trusted.

Control flow (`orchestra.engine.patterns`) uses blocks whose first item is a *head* control callable
(`mark_control`); loops end with a control that jumps back to the head. Because the loop state is
positional (plus FOR's iterator in ``eng.extra_data["_Iterators"]``), halting inside a branch or a loop
body and resuming with CONTINUE_NEXT continues exactly where an uninterrupted run would.

Invenio bugs fixed here: the halt message is always stored; a stored position that does not fit the
list is refused with the list's shape instead of silently running something else; exceptions never
escape `run` (they become an ERROR outcome with the traceback in ``extra_data["_error_msg"]``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import sys
import threading
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn

from orchestra.engine.errors import OrchestraError

Task = Callable[["WorkflowObject", "Engine"], Any]

HISTORY_LIMIT = 1000
_CONTROL = "__orchestra_control__"
_HEAD = "__orchestra_head__"
_NAME = "__orchestra_name__"
_PARAMS = "__orchestra_params__"
_DOC = "__orchestra_doc__"
_ON_EXIT = "__orchestra_on_exit__"
_MAX_DEPTH = 40  # closures nest shallowly; the cap only guards against pathological self-reference


class TaskListError(OrchestraError):
    """A task list contains something that is neither a callable nor a list; `problems` lists each path."""

    code = "invalid_tasklist"


class PositionError(OrchestraError):
    """A stored position does not exist in the task list (the list probably changed since the halt)."""

    code = "invalid_position"


class ObjectStatus(StrEnum):
    INITIAL = "INITIAL"  # created, never run
    COMPLETED = "COMPLETED"  # ran to the end (or stopped/skipped)
    HALTED = "HALTED"  # waits for a human decision; `_action` says which
    RUNNING = "RUNNING"  # inside `run`
    WAITING = "WAITING"  # waits for something that is not a person (eng.wait)
    ERROR = "ERROR"  # a task raised, or the run was aborted


class StartPoint(StrEnum):
    CONTINUE_NEXT = "continue_next"  # the callable after the stored position (default after a halt)
    RESTART_TASK = "restart_task"  # the callable at the stored position again
    RESTART_PREV = "restart_prev"  # the one before it; at index 0 of a block, re-enter the block
    FIRST = "first"  # from [0]; the caller restores the initial data itself


class EngineSignal(BaseException):
    """A transition raised by `eng.halt()`, `eng.stop()`...

    A BaseException so that a task's own ``except Exception`` cannot swallow a halt; code that catches
    BaseException must re-raise this.
    """


class _Halt(EngineSignal):
    def __init__(self, status: ObjectStatus, message: str, action: str | None, payload: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.action, self.payload = status, message, action, payload


class _Stop(EngineSignal):
    def __init__(self, skipped: bool) -> None:
        super().__init__("skipped" if skipped else "stopped")
        self.skipped = skipped


class _Abort(EngineSignal):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Break(EngineSignal):
    pass


class WorkflowObject:
    """What tasks receive as ``obj``: JSON ``data`` plus bookkeeping in ``extra_data``."""

    def __init__(
        self,
        data: Any = None,
        extra_data: dict[str, Any] | None = None,
        id: int | None = None,
        status: ObjectStatus = ObjectStatus.INITIAL,
    ) -> None:
        self.id = id
        self.data = data
        self.extra_data: dict[str, Any] = {} if extra_data is None else extra_data
        self.status = ObjectStatus(status)

    def get_data(self) -> Any:
        """Invenio's accessor for `data`."""
        return self.data

    def set_data(self, value: Any) -> None:
        """Invenio's setter for `data`."""
        self.data = value

    def set_action(self, action: str, message: str = "") -> None:
        """Record the human decision this object waits for, with a message for the Holding Pen."""
        self.extra_data["_action"] = action
        self.extra_data["_message"] = message

    def get_action(self) -> str | None:
        """The pending action, if any."""
        action = self.extra_data.get("_action")
        return None if action is None else str(action)

    def get_action_message(self) -> str:
        """The message stored with the pending action (or with a wait)."""
        return str(self.extra_data.get("_message", ""))

    def remove_action(self) -> None:
        """Forget the pending action and its message (done by whoever resolves it)."""
        self.extra_data.pop("_action", None)
        self.extra_data.pop("_message", None)

    def add_task_result(self, name: str, result: Any, template: str | None = None) -> None:
        """Append a result shown in the Holding Pen; values that JSON cannot hold are stored as text."""
        results = self.extra_data.setdefault("_tasks_results", {})
        results.setdefault(name, []).append({"name": name, "result": _jsonable(result), "template": template})

    def get_tasks_results(self) -> dict[str, list[dict[str, Any]]]:
        """All results added with `add_task_result`, by name."""
        results: dict[str, list[dict[str, Any]]] = self.extra_data.get("_tasks_results", {})
        return results


class Engine:
    """What tasks receive as ``eng``: the transitions, the position and context from the caller."""

    def __init__(
        self,
        name: str = "",
        extra_data: dict[str, Any] | None = None,
        project_data: dict[str, Any] | None = None,
        prerequisites: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.extra_data: dict[str, Any] = {} if extra_data is None else extra_data
        self.project_data: dict[str, Any] = {} if project_data is None else project_data
        self.prerequisites: dict[str, Any] = {} if prerequisites is None else prerequisites
        self.obj: WorkflowObject | None = None
        self._pos: list[int] = []
        self._last: list[int] = []
        self._jump = 1
        self._clock: Callable[[], datetime] | None = None
        self._hostname = ""
        self._history_lock = threading.Lock()  # parallel branches append history concurrently

    @property
    def callback_pos(self) -> list[int]:
        """The position of the callable running now (a copy: tasks cannot move the engine by editing it)."""
        return list(self._pos)

    def halt(self, msg: str = "", action: str | None = None, payload: Any = None) -> NoReturn:
        """Stop here until a person decides: HALTED, with `action` (default "approval") and `msg` stored."""
        raise _Halt(ObjectStatus.HALTED, str(msg), action or "approval", payload)

    def wait(self, msg: str = "") -> NoReturn:
        """Stop here until something that is not a person happens: WAITING, no action."""
        raise _Halt(ObjectStatus.WAITING, str(msg), None, None)

    def stop(self) -> NoReturn:
        """End the run now; the object is COMPLETED with its data as it is."""
        raise _Stop(skipped=False)

    def skip_token(self) -> NoReturn:
        """Like `stop`, but marks the object skipped (``extra_data["_skipped"]``)."""
        raise _Stop(skipped=True)

    def continue_next_token(self) -> NoReturn:
        """The `workflow` name of `skip_token`."""
        raise _Stop(skipped=True)

    def abort(self, msg: str = "") -> NoReturn:
        """Give up: the outcome is ERROR with ``aborted=True``; the caller fails the task without retrying."""
        raise _Abort(str(msg))

    def jump_call(self, offset: int) -> None:
        """Make the next callable the one at current index + `offset` in the current block (1 = normal)."""
        self._jump = int(offset)

    def break_current_loop(self) -> NoReturn:
        """Leave the current block; the run continues after it in the parent block."""
        raise _Break()

    def _call(self, task: Task, obj: WorkflowObject) -> None:
        """Run one callable; user tasks (not pattern internals) get a history entry. Patterns call this."""
        if is_control(task):
            task(obj, self)
            return
        try:
            task(obj, self)
        except _Abort:
            raise
        except EngineSignal:
            self._record(task, obj)  # halting or stopping is a normal way to finish: show it in the history
            raise
        self._record(task, obj)

    def _record(self, task: Task, obj: WorkflowObject) -> None:
        entry = {
            **_task_info(task),
            "time": self._clock().isoformat() if self._clock else "",
            "hostname": self._hostname,
            "position": list(self._pos),
        }
        with self._history_lock:
            obj.extra_data["_last_task_name"] = entry["nicename"]
            history = obj.extra_data.setdefault("_task_history", [])
            history.append(entry)
            del history[:-HISTORY_LIMIT]


@dataclass(frozen=True)
class Outcome:
    """How a run ended; the caller persists `callback_pos` and maps `status` to its own task status."""

    status: ObjectStatus  # COMPLETED, HALTED, WAITING or ERROR
    callback_pos: list[int]  # halted/raising callable; for COMPLETED the last one run ([] if none)
    message: str = ""
    action: str | None = None
    payload: Any = None
    error: str = ""  # ERROR: the traceback; aborted: the abort message
    exception: BaseException | None = None
    aborted: bool = False


def mark_control(
    fn: Task,
    name: str,
    *,
    head: bool = False,
    doc: str = "",
    on_exit: Callable[[Engine, list[int]], None] | None = None,
    **params: Any,
) -> Task:
    """Mark `fn` as a pattern internal: no history entry, `name`/`params` shown by `describe` and hashed.

    A `head` control is the first item of a pattern block; `on_exit(eng, block_position)` runs whenever
    that block is left by finishing or breaking (not by halting), so loops can drop their state.
    """
    setattr(fn, _CONTROL, True)
    setattr(fn, _HEAD, head)
    setattr(fn, _NAME, name)
    setattr(fn, _DOC, doc)
    setattr(fn, _PARAMS, params)
    setattr(fn, _ON_EXIT, on_exit)
    return fn


def is_control(task: Any) -> bool:
    """True for pattern internals made by `mark_control`."""
    return getattr(task, _CONTROL, False) is True


def is_head(task: Any) -> bool:
    """True for the control that opens a pattern block."""
    return is_control(task) and getattr(task, _HEAD, False) is True


def normalize(tasks: Any) -> list[Any]:
    """Validate a task list and return a copy with tuples flattened and ``None`` dropped.

    Every problem is collected and reported at once, each with its path in the list as written
    (``[2][0]``).
    """
    if not isinstance(tasks, list | tuple):
        raise TaskListError(f"a task list must be a list, not {type(tasks).__name__}", problems=["[]"])
    problems: list[str] = []
    result = _normalize(tasks, "", problems)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise TaskListError(f"{len(problems)} problem(s) in the task list:\n{listing}", problems=problems)
    return result


def _normalize(items: list[Any] | tuple[Any, ...], path: str, problems: list[str]) -> list[Any]:
    result: list[Any] = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if item is None:
            continue
        if isinstance(item, tuple):
            result.extend(_normalize(item, where, problems))
        elif isinstance(item, list):
            result.append(_normalize(item, where, problems))
        elif callable(item):
            if is_head(item) and result:
                problems.append(
                    f"{where}: {_nicename(item)}'s control must open its block; nest the pattern instead of splicing"
                )
            result.append(item)
        else:
            problems.append(f"{where}: {type(item).__name__} {item!r:.60} is not a callable(obj, eng) or a list")
    return result


def run(
    tasks: list[Any],
    obj: WorkflowObject,
    eng: Engine,
    *,
    position: list[int] | None = None,
    start_point: StartPoint = StartPoint.RESTART_TASK,
    clock: Callable[[], datetime],
    hostname: str = "",
) -> Outcome:
    """Run `obj` through `tasks` from `position` (None or [] = the beginning) and report how it ended.

    Exceptions raised by tasks become an ERROR outcome, never propagate. A `position` that does not exist
    in `tasks` raises `PositionError`.
    """
    tasks = normalize(tasks)
    start_point = StartPoint(start_point)
    start = _start_position(tasks, position, start_point)
    if not position or start_point is StartPoint.FIRST:
        eng.extra_data.pop("_Iterators", None)  # a fresh start owns no loop state; stale state would skip items
    eng.obj, eng._clock, eng._hostname = obj, clock, hostname
    eng._pos, eng._last = start, []
    obj.extra_data.pop("_error_msg", None)
    obj.extra_data.pop("_skipped", None)
    obj.status = ObjectStatus.RUNNING
    try:
        if tasks:
            _run_block(eng, obj, tasks, 0)
    except _Break:
        pass  # breaking out of the top-level list ends the run
    except _Stop as stop:
        if stop.skipped:
            obj.extra_data["_skipped"] = True
    except _Halt as halt:
        if halt.status is ObjectStatus.HALTED and halt.action:
            obj.set_action(halt.action, halt.message)
        else:
            obj.remove_action()
            obj.extra_data["_message"] = halt.message
        obj.status = halt.status
        return Outcome(halt.status, list(eng._pos), halt.message, halt.action, halt.payload)
    except _Abort as abort:
        obj.status = ObjectStatus.ERROR
        obj.extra_data["_error_msg"] = f"aborted: {abort.message}"
        return Outcome(ObjectStatus.ERROR, list(eng._pos), abort.message, error=abort.message, aborted=True)
    except Exception as exc:
        text = "".join(traceback.format_exception(exc))
        obj.status = ObjectStatus.ERROR
        obj.extra_data["_error_msg"] = text
        return Outcome(ObjectStatus.ERROR, list(eng._pos), str(exc), error=text, exception=exc)
    obj.status = ObjectStatus.COMPLETED
    eng.extra_data.pop("_Iterators", None)  # no loop is active once the object is done
    return Outcome(ObjectStatus.COMPLETED, list(eng._last))


def _run_block(eng: Engine, obj: WorkflowObject, block: list[Any], depth: int) -> None:
    # eng._pos always holds the path to the item being run, so on any exception it already names the
    # culprit; deeper entries present on entry are a resume point inside a nested block.
    pos = eng._pos
    while pos[depth] < len(block):
        item = block[pos[depth]]
        if isinstance(item, list):
            if len(pos) == depth + 1:
                pos.append(0)
            with contextlib.suppress(_Break):  # a break leaves exactly this block
                _run_block(eng, obj, item, depth + 1)
            del pos[depth + 1 :]
            on_exit = getattr(item[0], _ON_EXIT, None) if item else None
            if on_exit is not None:
                on_exit(eng, list(pos))
            pos[depth] += 1
        else:
            del pos[depth + 1 :]
            eng._jump = 1
            eng._last = list(pos)
            eng._call(item, obj)
            pos[depth] = min(max(pos[depth] + eng._jump, 0), len(block))


def _start_position(tasks: list[Any], position: list[int] | None, start_point: StartPoint) -> list[int]:
    if not position:
        return [0]
    _check_position(tasks, position)
    if start_point is StartPoint.FIRST:
        return [0]
    if start_point is StartPoint.CONTINUE_NEXT:
        return [*position[:-1], position[-1] + 1]
    if start_point is StartPoint.RESTART_PREV:
        if position[-1] > 0:
            return [*position[:-1], position[-1] - 1]
        return list(position[:-1]) or [0]
    return list(position)


def _check_position(tasks: list[Any], position: list[int]) -> None:
    block: Any = tasks
    for depth, index in enumerate(position):
        problem = ""
        if not isinstance(block, list):
            problem = f"depth {depth} goes inside {_nicename(block)!r}, which is a callable, not a block"
        elif not isinstance(index, int) or isinstance(index, bool):
            problem = f"{index!r} at depth {depth} is not an int"
        elif not 0 <= index < len(block):
            problem = f"index {index} at depth {depth} is outside a block of {len(block)} item(s)"
        if problem:
            raise PositionError(
                f"position {position} does not exist in this task list ({problem}); its shape is "
                f"{_shape(tasks)}. Was the list changed since the object stopped? Compare tasklist_hash.",
                position=list(position),
            )
        block = block[index]


def _shape(block: list[Any]) -> str:
    text = "[" + ", ".join(_shape(item) if isinstance(item, list) else "t" for item in block) + "]"
    return text if len(text) <= 200 else text[:197] + "..."


def position_name(tasks: Any, position: list[int]) -> str:
    """The name of the callable at `position` ("" if there is none, or it is a block)."""
    item: Any = normalize(tasks)
    for index in position:
        if not isinstance(item, list) or not isinstance(index, int) or not 0 <= index < len(item):
            return ""
        item = item[index]
    return "" if isinstance(item, list) else _nicename(item)


def describe(tasks: Any) -> list[dict[str, Any]]:
    """A flat outline of every callable for the Holding Pen: position, name, doc, parameters, control."""
    rows: list[dict[str, Any]] = []

    def walk(block: list[Any], prefix: list[int]) -> None:
        for index, item in enumerate(block):
            if isinstance(item, list):
                walk(item, [*prefix, index])
            else:
                info = _task_info(item)
                rows.append(
                    {
                        "position": [*prefix, index],
                        "name": info["nicename"],
                        "doc": info["doc"],
                        "parameters": info["parameters"],
                        "control": is_control(item),
                    }
                )

    walk(normalize(tasks), [])
    return rows


def tasklist_hash(tasks: Any) -> str:
    """SHA-256 of the list's structure: each callable's module.qualname and closure parameters.

    Two imports of the same definition hash alike in any process; adding, removing or reordering a task,
    or changing a bound parameter, changes the hash. Function bodies are not part of it.
    """
    fingerprint = _fingerprint(normalize(tasks), set(), 0)
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint(value: Any, active: set[int], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return "<too deep>"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_fingerprint(v, active, depth + 1) for v in value]
    if isinstance(value, dict):
        return {"dict": sorted([str(k), _fingerprint(v, active, depth + 1)] for k, v in value.items())}
    if isinstance(value, type):
        return f"class {_qualified(value)}"
    if not callable(value):
        return f"<{type(value).__qualname__}>"
    if id(value) in active:  # ids only break cycles; they never reach the digest
        return "<recursive>"
    active.add(id(value))
    try:
        return _callable_fingerprint(value, active, depth + 1)
    finally:
        active.discard(id(value))


def _callable_fingerprint(fn: Any, active: set[int], depth: int) -> Any:
    if is_control(fn):
        return {"control": getattr(fn, _NAME), "params": _fingerprint(getattr(fn, _PARAMS), active, depth)}
    if isinstance(fn, functools.partial):
        return {
            "partial": _fingerprint(fn.func, active, depth),
            "args": _fingerprint([fn.args, fn.keywords], active, depth),
        }
    if inspect.ismethod(fn):
        return {"method": _qualified(fn.__func__), "self": f"<{type(fn.__self__).__qualname__}>"}
    if isinstance(fn, types.FunctionType):
        closure = [[name, _fingerprint(value, active, depth)] for name, value in _closure(fn)]
        defaults = [fn.__defaults__ or (), fn.__kwdefaults__ or {}]
        return {"function": _qualified(fn), "closure": closure, "defaults": _fingerprint(defaults, active, depth)}
    return {"callable": _qualified(fn if hasattr(fn, "__qualname__") else type(fn))}


def _closure(fn: types.FunctionType) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        try:
            pairs.append((name, cell.cell_contents))
        except ValueError:  # a cell not yet assigned
            pairs.append((name, "<empty>"))
    return pairs


def _qualified(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _unwrap(task: Any) -> Any:
    while isinstance(task, functools.partial):
        task = task.func
    return task.__func__ if inspect.ismethod(task) else task


def _nicename(task: Any) -> str:
    if is_control(task):
        return str(getattr(task, _NAME))
    fn = _unwrap(task)
    name = getattr(fn, "__name__", None) or type(fn).__name__
    qualname = getattr(fn, "__qualname__", name)
    # Closures are named after their factory: add_data.<locals>._add_data is "add_data".
    if name.startswith(("_", "<")) and ".<locals>." in qualname:
        return str(qualname.rsplit(".<locals>.", 1)[0].rsplit(".", 1)[-1])
    return str(name)


def _first_line(doc: str | None) -> str:
    for line in (doc or "").strip().splitlines():
        return line.strip()
    return ""


def _doc(task: Any) -> str:
    if is_control(task):
        return str(getattr(task, _DOC))
    fn = _unwrap(task)
    doc = _first_line(fn.__doc__ if isinstance(fn, types.FunctionType) else getattr(type(fn), "__doc__", None))
    qualname = getattr(fn, "__qualname__", "")
    if doc or ".<locals>." not in qualname:
        return doc
    # An undocumented closure borrows its factory's docstring (the factory is what authors document).
    outer: Any = sys.modules.get(getattr(fn, "__module__", ""))
    for part in qualname.split(".<locals>.", 1)[0].split("."):
        outer = getattr(outer, part, None)
    return _first_line(getattr(outer, "__doc__", None)) if callable(outer) else ""


def _render(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if callable(value) and not isinstance(value, type):
        return _nicename(value)
    return str(value)


def _task_info(task: Any) -> dict[str, Any]:
    if is_control(task):
        parameters = [[key, _render(value)] for key, value in getattr(task, _PARAMS).items()]
    else:
        fn = _unwrap(task)
        pairs = _closure(fn) if isinstance(fn, types.FunctionType) else []
        parameters = [[name, _render(value)] for name, value in pairs]
    return {"name": _qualified(_unwrap(task)), "nicename": _nicename(task), "doc": _doc(task), "parameters": parameters}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
