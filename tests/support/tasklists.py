"""Task lists (Invenio-style) for the tests of `tasks` steps."""

from __future__ import annotations

import time
from typing import Any

from orchestra.workflows.patterns import FOR, IF_ELSE
from orchestra.workflows.sample_tasks import add_data, halt_if_higher_than_20

# Set by tests: how many times `flaky` still raises.
FAILURES = {"flaky": 0}


def flaky(obj: Any, eng: Any) -> None:
    """Raise while FAILURES["flaky"] says so."""
    if FAILURES["flaky"] > 0:
        FAILURES["flaky"] -= 1
        raise RuntimeError("flaky task failed on purpose")
    obj.data += 1


def record_prerequisites(obj: Any, eng: Any) -> None:
    """Keep what the step was given: the earlier steps' outputs and the project data."""
    obj.extra_data["seen"] = {"prerequisites": eng.prerequisites, "project": eng.project_data.get("label")}


def wait_for_partner(obj: Any, eng: Any) -> None:
    eng.wait("waiting for the partner system")


def busy_loop(obj: Any, eng: Any) -> None:
    """Python code that runs long (a timeout must stop it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.01)


class myworkflow:  # noqa: N801 - Invenio's naming
    """Add 20 to integer and halt if higher."""

    workflow = [add_data(20), halt_if_higher_than_20]


# Mutated by the definition-change test (and restored).
changing = [add_data(1), halt_if_higher_than_20, add_data(100)]

with_failure = [add_data(1), flaky, add_data(10)]

waiting = [add_data(1), wait_for_partner, add_data(1)]

with_inputs = [record_prerequisites, add_data(5)]

slow = [busy_loop]


def _halt_on_second_item(obj: Any, eng: Any) -> None:
    if eng.extra_data["item"] == "b" and not obj.extra_data.get("approved"):
        eng.halt("check item b")


def _collect(obj: Any, eng: Any) -> None:
    obj.data.append(eng.extra_data["item"])


def _items(obj: Any, eng: Any) -> list[str]:
    return ["a", "b", "c"]


def _mark(word: str) -> Any:
    def _append_word(obj: Any, eng: Any) -> None:
        obj.data.append(word)

    return _append_word


def _three_items(obj: Any, eng: Any) -> bool:
    return len(obj.data) == 3


# A halt inside a FOR body, resumed from the database (the loop's state is persisted with the object).
loop_with_review = [
    FOR(_items, "item", [_collect, _halt_on_second_item]),
    IF_ELSE(_three_items, _mark("all"), _mark("short")),
]
