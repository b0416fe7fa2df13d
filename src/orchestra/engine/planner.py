"""Which tasks a project needs next, and whether it is finished. Pure: the caller loads and persists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestra.engine.definitions import StepDef, VersionDef
from orchestra.engine.lifecycle import TaskStatus


@dataclass(frozen=True)
class Plan:
    create: tuple[str, ...]  # step slugs whose tasks should be created now, in topological order
    project_complete: bool  # every task is complete and nothing more can start, or a final step completed
    reason: str = ""


def plan(
    version: VersionDef,
    tasks: Mapping[str, TaskStatus],
    *,
    creation_allowed: Callable[[StepDef], bool],
    topological_order: list[str] | None = None,
) -> Plan:
    """Steps to create now (dependencies Complete, no task yet, creation policy agrees) and completion.

    `tasks` maps step slug to the status of its task, for the tasks that exist.
    """
    order = topological_order if topological_order is not None else version.topological_order()
    for slug, status in tasks.items():
        if status == TaskStatus.COMPLETE and version.step(slug).completion_ends_project:
            return Plan((), True, f"step '{slug}' completed and ends the project")
    create: list[str] = []
    for slug in order:
        if slug in tasks:
            continue
        step = version.step(slug)
        if all(tasks.get(dep) == TaskStatus.COMPLETE for dep in step.creation_depends_on) and creation_allowed(step):
            create.append(slug)
    if create:
        return Plan(tuple(create), False)
    if tasks and all(status == TaskStatus.COMPLETE for status in tasks.values()):
        return Plan((), True, "every task is complete")
    return Plan((), False)
