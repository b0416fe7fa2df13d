"""Creation policies: once a step's dependencies are Complete, is its task created?

B12's signature: `fn(prerequisite_data, project_data, **kwargs) -> bool`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestra.engine.definitions import CallableRef


def always_create(prerequisite_data: Mapping[str, Any], project_data: Mapping[str, Any], **kwargs: Any) -> bool:
    return True


BUILTINS = {"always_create": always_create}


def is_builtin_always(ref: CallableRef) -> bool:
    return ref.path == "always_create"


def creation_allowed(ref: CallableRef, prerequisite_data: Mapping[str, Any], project_data: Mapping[str, Any]) -> bool:
    fn = BUILTINS.get(ref.path) or ref.resolve()
    return bool(fn(prerequisite_data, project_data, **ref.kwargs))
