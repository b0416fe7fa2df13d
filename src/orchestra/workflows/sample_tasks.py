"""The sample tasks of Invenio-Workflows' documentation (`invenio_workflows.tasks.sample_tasks`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def add_data(data_param: int) -> Callable[[Any, Any], None]:
    """Add data_param to the obj.data."""

    def _add_data(obj: Any, eng: Any) -> None:
        obj.data += data_param

    return _add_data


def halt_if_higher_than_20(obj: Any, eng: Any) -> None:
    """Check if current data is more than than 20."""
    if obj.data > 20:
        eng.halt("Data higher than 20.")


def halt_if_data_less_than(threshold: int) -> Callable[[Any, Any], None]:
    """Halt when obj.data is below `threshold`."""

    def _halt_if_data_less_than(obj: Any, eng: Any) -> None:
        if obj.data < threshold:
            eng.halt(f"Data lower than {threshold}.")

    return _halt_if_data_less_than


def set_data_to(value: Any) -> Callable[[Any, Any], None]:
    """Replace obj.data with `value`."""

    def _set_data_to(obj: Any, eng: Any) -> None:
        obj.data = value

    return _set_data_to
