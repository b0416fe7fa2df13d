"""Every error Orchestra raises on purpose. Callers catch these; anything else is a bug.

    OrchestraError                      root; `code` names it in API responses
    ├── DefinitionError                 a workflow definition is invalid (carries every problem found)
    ├── NotFound                        a workflow, version, project, task, worker... does not exist
    ├── ValidationError                 an argument is malformed (names the field)
    │   └── FormInvalid                 submitted work fails its step's declared form (every field's error)
    ├── PermissionDenied                the actor may not do this
    └── StateError                      the action does not fit the current state
        ├── IllegalTransition           (status, action) is not in the transition table
        ├── Conflict                    someone else changed the row first (compare-and-set lost)
        ├── AssignmentError             the worker cannot take this seat
        │   └── CertificationError      ...because they lack a certification
        ├── NoTaskAvailable             a pull request found nothing to hand out
        ├── ProjectNotActive            the project is paused, completed or aborted
        ├── VersionChangeRefused        a loaded version with projects cannot change like that
        └── DefinitionChanged           a halted task list changed since it stopped; resuming would guess

The API maps each class to one status code (see `HTTP_STATUS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class OrchestraError(Exception):
    """Root of every deliberate Orchestra error."""

    code = "orchestra_error"
    http_status = 400

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


@dataclass(frozen=True)
class Problem:
    """One problem in a definition, with the path to the offending value."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DefinitionError(OrchestraError):
    """A workflow definition is invalid; `problems` lists every one found, each with its path."""

    code = "invalid_definition"

    def __init__(self, problems: Iterable[Problem], *, source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s){where}:\n{lines}", source=source)

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        data["problems"] = [{"path": p.path, "message": p.message} for p in self.problems]
        return data


class NotFound(OrchestraError):
    code = "not_found"
    http_status = 404


class ValidationError(OrchestraError):
    """An argument is malformed; `field` names it."""

    code = "invalid"


class FormInvalid(ValidationError):
    """Work submitted for a task fails the step's declared form; `errors` maps each field path
    (`rating`, `captions[0].caption`) to what is wrong with it."""

    code = "invalid_form"

    def __init__(self, task_id: int, errors: dict[str, str]) -> None:
        listing = "; ".join(f"{path}: {message}" for path, message in errors.items())
        super().__init__(f"task {task_id}: {len(errors)} field(s) need attention: {listing}", task_id=task_id)
        self.errors = errors

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "errors": self.errors}


class PermissionDenied(OrchestraError):
    code = "forbidden"
    http_status = 403


class StateError(OrchestraError):
    code = "state_error"
    http_status = 409


class IllegalTransition(StateError):
    """`action` is not allowed from `current`; `allowed` lists the statuses it is allowed from."""

    code = "illegal_transition"


class Conflict(StateError):
    """A compare-and-set update found the row changed by someone else; retry with fresh data."""

    code = "conflict"


class AssignmentError(StateError):
    code = "assignment_error"


class CertificationError(AssignmentError):
    code = "certification_error"


class NoTaskAvailable(StateError):
    code = "no_task_available"
    http_status = 404


class ProjectNotActive(StateError):
    code = "project_not_active"


class VersionChangeRefused(StateError):
    code = "version_change_refused"


class DefinitionChanged(StateError):
    code = "definition_changed"
