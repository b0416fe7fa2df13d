"""Holding Pen actions: what a person decides about a halted task-list object.

A task halts with `eng.halt(message, action="approval")`; the Holding Pen shows the action's choices as
buttons and calls `resolve` with the one picked. Register your own with `register_action` (or list their
dotted paths in ORCHESTRA_HOLDING_PEN_ACTIONS):

    class Curation(Action):
        name = "curation"
        title = "Curate the record"
        choices = (("keep", "Keep"), ("drop", "Drop"))

        def resolve(self, obj, choice, data):
            obj.extra_data["curated"] = choice
            return Resolution.proceed() if choice == "keep" else Resolution.stop()

`obj` is the object (`.data`, `.extra_data`, which `resolve` may change); `data` is any JSON the caller
sent along (the API's request body `data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orchestra.engine.errors import NotFound, ValidationError
from orchestra.engine.tasklist import StartPoint, WorkflowObject


@dataclass(frozen=True)
class Resolution:
    """What happens to the object after a decision: it runs on, it stops here (its task completes with its
    data as it is), or its project is aborted."""

    outcome: str  # "proceed" | "stop" | "abort"
    start_point: StartPoint = StartPoint.CONTINUE_NEXT

    @classmethod
    def proceed(cls, start_point: StartPoint = StartPoint.CONTINUE_NEXT) -> Resolution:
        return cls("proceed", start_point)

    @classmethod
    def stop(cls) -> Resolution:
        return cls("stop")

    @classmethod
    def abort(cls) -> Resolution:
        return cls("abort")


class Action:
    name: ClassVar[str]
    title: ClassVar[str] = ""
    # (value, button label) pairs offered to the person deciding.
    choices: ClassVar[tuple[tuple[str, str], ...]] = ()

    def resolve(self, obj: WorkflowObject, choice: str, data: Any) -> Resolution:
        raise NotImplementedError

    def check_choice(self, choice: str) -> None:
        values = [value for value, _ in self.choices]
        if choice not in values:
            raise ValidationError(
                f"'{choice}' is not a choice of the '{self.name}' action; use one of: {', '.join(values)}",
                field="choice",
            )


class Approval(Action):
    """Invenio's approval: approving sets extra_data["approved"] and runs on; rejecting stops the object."""

    name = "approval"
    title = "Approve or reject"
    choices = (("accept", "Approve"), ("reject", "Reject"))

    def resolve(self, obj: WorkflowObject, choice: str, data: Any) -> Resolution:
        obj.extra_data["approved"] = choice == "accept"
        return Resolution.proceed() if choice == "accept" else Resolution.stop()


_REGISTRY: dict[str, Action] = {}


def register_action(action: type[Action] | Action) -> Action:
    """Make an action available to halted objects by its `name` (replacing one of the same name)."""
    instance = action() if isinstance(action, type) else action
    if not getattr(instance, "name", ""):
        raise ValidationError(f"{type(instance).__name__} has no 'name'; set name = '...' on the class")
    _REGISTRY[instance.name] = instance
    return instance


def get_action(name: str) -> Action:
    _load_configured()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise NotFound(
            f"no Holding Pen action named '{name}' (registered: {known}); register it with"
            " orchestra.workflows.register_action or ORCHESTRA_HOLDING_PEN_ACTIONS",
            action=name,
        ) from None


def _load_configured() -> None:
    from orchestra import conf
    from orchestra.engine._references import import_dotted

    for path in conf.get("ORCHESTRA_HOLDING_PEN_ACTIONS"):
        found = import_dotted(path)
        if not any(isinstance(a, found) for a in _REGISTRY.values() if isinstance(found, type)):
            register_action(found)


register_action(Approval)

__all__ = ["Action", "Approval", "Resolution", "get_action", "register_action"]
