"""Settings of steps that run outside Orchestra's Python process: a step's `execution` object.

- `script`: `{"command": "python report.py" | ["python", "report.py"], "env": {...}, "pass_env": [...],
  "cwd": "relative/dir"}`: a command run in a subprocess, the step input as JSON on stdin.
- `tasks`: `{"workflow": "package.module.myworkflow"}`: an Invenio-style task list, either a list of
  callables `task(obj, eng)` or an object (a class, say) whose `workflow` attribute is that list.
- `external`: `{"url": "https://...", "wait_seconds": 3600, "secret_env": "NAME"}` (push: Orchestra POSTs
  a signed trigger to the URL) or `{"queue": "name", "wait_seconds": ...}` (pull: outside workers claim
  the queue's tasks). Exactly one of `url` and `queue`.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pydantic
from pydantic import Field, StrictFloat, StrictStr

from orchestra.engine.errors import Problem
from orchestra.engine.lifecycle import StepKind

# Variables Orchestra sets itself for each run; a step's `env` cannot override them.
RESERVED_ENV = ("ORCHESTRA_TASK_RUN_ID", "ORCHESTRA_WEBHOOK_URL", "ORCHESTRA_API_KEY")
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
QUEUE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"  # a pull-mode queue (execution.queue)


def check_queue_name(value: str) -> str:
    """`value` if it is a queue name, else ValueError saying what one is (pydantic reports it by field)."""
    if not re.match(QUEUE_NAME, value):
        raise ValueError(
            f"{value!r} is not a queue name; use up to 100 letters, digits, '_', '.', ':' and '-',"
            " starting with a letter or digit"
        )
    return value


class _Settings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class ScriptSettings(_Settings):
    command: StrictStr | list[StrictStr]
    env: dict[str, StrictStr] = {}
    pass_env: list[StrictStr] = []
    cwd: StrictStr = ""

    @pydantic.field_validator("command")
    @classmethod
    def _command(cls, value: str | list[str]) -> str | list[str]:
        argv = shlex.split(value) if isinstance(value, str) else value
        if not argv or not argv[0]:
            raise ValueError("the command is empty; give a program and its arguments")
        return value

    @pydantic.field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [f"{name!r} is not a variable name (use letters, digits and '_')" for name in value]
        problems = [p for p, name in zip(problems, value, strict=True) if not re.match(_ENV_NAME, name)]
        problems += [f"{name} is set by Orchestra for each run; remove it" for name in value if name in RESERVED_ENV]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)


class ExternalSettings(_Settings):
    url: StrictStr | None = None
    queue: StrictStr | None = None
    wait_seconds: StrictFloat = Field(default=3600.0, gt=0)
    secret_env: StrictStr | None = None

    @pydantic.field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+\S*$", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://example.com/hook")
        return value

    @pydantic.field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        if value is not None:
            check_queue_name(value)
        return value

    @pydantic.field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: str | None) -> str | None:
        if value is not None and not re.match(_ENV_NAME, value):
            raise ValueError(f"{value!r} is not an environment variable name; use letters, digits and '_'")
        return value

    @pydantic.model_validator(mode="after")
    def _one_target(self) -> ExternalSettings:
        if (self.url is None) == (self.queue is None):
            raise ValueError(
                "give exactly one of 'url' (Orchestra POSTs a signed trigger there) and"
                " 'queue' (outside workers claim the tasks)"
            )
        return self


class TasksSettings(_Settings):
    workflow: StrictStr

    @pydantic.field_validator("workflow")
    @classmethod
    def _workflow(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) < 2 or not all(part.isidentifier() for part in parts):
            raise ValueError(f"{value!r} is not a dotted path such as 'mypackage.workflows.myworkflow'")
        return value


_SETTINGS: dict[StepKind, type[_Settings]] = {
    StepKind.SCRIPT: ScriptSettings,
    StepKind.EXTERNAL: ExternalSettings,
    StepKind.TASKS: TasksSettings,
}


def check_execution(kind: StepKind, raw: Any, path: str) -> list[Problem]:
    """Problems with a step's `execution` object, each at its path under `path`."""
    from orchestra.engine._validation import problems_from_pydantic

    model = _SETTINGS.get(kind)
    if model is None:
        if raw:
            return [Problem(path, "only script, external and tasks steps take 'execution'; remove it")]
        return []
    if not isinstance(raw, dict):
        return [Problem(path, f"{kind} steps need 'execution', an object such as {_EXAMPLES[kind]}")]
    try:
        model.model_validate(raw)
    except pydantic.ValidationError as exc:
        return problems_from_pydantic(exc, path)
    return []


_EXAMPLES = {
    StepKind.SCRIPT: '{"command": ["python", "step.py"]}',
    StepKind.EXTERNAL: '{"url": "https://example.com/hook"} or {"queue": "gpu"}',
    StepKind.TASKS: '{"workflow": "mypackage.workflows.myworkflow"}',
}


def script_settings(execution: dict[str, Any]) -> ScriptSettings:
    return ScriptSettings.model_validate(execution)


def external_settings(execution: dict[str, Any]) -> ExternalSettings:
    return ExternalSettings.model_validate(execution)


def pull_queue(kind: StepKind, execution: dict[str, Any]) -> str:
    """The queue outside workers claim this step's tasks from; '' when Orchestra starts them itself."""
    if kind != StepKind.EXTERNAL:
        return ""
    return external_settings(execution).queue or ""


def task_list(execution: dict[str, Any]) -> list[Any]:
    """The normalized task list a tasks step runs; ImportError or TaskListError says why it is unusable."""
    from orchestra.engine._references import import_dotted
    from orchestra.engine.tasklist import normalize

    path = TasksSettings.model_validate(execution).workflow
    found = import_dotted(path)
    tasks = getattr(found, "workflow", found)
    if not isinstance(tasks, list | tuple):
        raise ImportError(f"'{path}' is neither a list of tasks nor an object with a 'workflow' list")
    return normalize(tasks)
