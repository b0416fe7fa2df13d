"""Assignment policies: which workers to offer a task to when it is created or enters review.

A policy returns usernames to try, in order; the service assigns the first who is certified and free.
An empty list leaves the task in the pool for workers to pull (B12's `anyone_certified`).

Custom policies are `fn(context: AssignmentContext, **kwargs) -> list[str] | str | None`, named by dotted path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestra.engine.definitions import CallableRef
from orchestra.engine.lifecycle import Role


@dataclass(frozen=True)
class AssignmentContext:
    step_slug: str
    role: Role
    project_data: Mapping[str, Any] = field(default_factory=dict)
    # Username of the entry-level worker of each human task in the project, by step slug.
    entry_workers_by_step: Mapping[str, str] = field(default_factory=dict)


def anyone_certified(context: AssignmentContext) -> list[str]:
    return []


def specified_worker(context: AssignmentContext, *, username: str) -> list[str]:
    return [username]


def previously_completed_steps(context: AssignmentContext, *, related_steps: list[str]) -> list[str]:
    """The entry-level workers of `related_steps` in the same project, in the order given."""
    found = [context.entry_workers_by_step[s] for s in related_steps if s in context.entry_workers_by_step]
    return list(dict.fromkeys(found))


BUILTINS: dict[str, Callable[..., list[str]]] = {
    "anyone_certified": anyone_certified,
    "specified_worker": specified_worker,
    "previously_completed_steps": previously_completed_steps,
}


def candidates(ref: CallableRef, context: AssignmentContext) -> list[str]:
    fn: Callable[..., Any] = BUILTINS.get(ref.path) or ref.resolve()
    result = fn(context, **ref.kwargs)
    if result is None:
        return []
    if isinstance(result, str):
        return [result]
    return [str(username) for username in result]
