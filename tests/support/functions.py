"""Machine steps and policies used by test workflows (importable by dotted path)."""

from __future__ import annotations

import threading
from typing import Any

CALLS: dict[str, int] = {}
_lock = threading.Lock()


def noop(project_data: dict[str, Any], prerequisites: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return {"ok": True, **kwargs}


def echo(project_data: dict[str, Any], prerequisites: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return {"project_data": project_data, "prerequisites": prerequisites}


def fail_times(project_data: dict[str, Any], prerequisites: dict[str, Any], *, key: str, times: int) -> dict[str, Any]:
    """Fails the first `times` calls for `key`, then succeeds."""
    with _lock:
        CALLS[key] = CALLS.get(key, 0) + 1
        count = CALLS[key]
    if count <= times:
        raise RuntimeError(f"planned failure {count} of {times}")
    return {"calls": count}


def returns_list(project_data: dict[str, Any], prerequisites: dict[str, Any]) -> list[int]:
    return [1, 2]


def two_reviews(context: Any, rng: Any, **kwargs: Any) -> bool:
    return bool(context.reviews_so_far < 2)


def pick_from_project_data(context: Any, **kwargs: Any) -> list[str]:
    return list(context.project_data.get("assignees", []))


def only_if_flag(prerequisite_data: dict[str, Any], project_data: dict[str, Any], **kwargs: Any) -> bool:
    return bool(project_data.get("flag"))


def runs_long(project_data: dict[str, Any], prerequisites: dict[str, Any], *, seconds: float) -> dict[str, Any]:
    """Python code that runs for `seconds` unless stopped (the step's timeout_seconds must stop it)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    RAN_TO_THE_END.append(project_data["project_id"])
    return {"slept": seconds}


RAN_TO_THE_END: list[int] = []


def save_notes(project_data: dict[str, Any], prerequisites: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Saves a file in the file store, as the journalism example's steps do (it belongs to the project)."""
    from orchestra import files

    name = files.save_file(f"notes/project-{project_data['project_id']}.txt", b"notes")
    return {"notes": files.file_url(name)}


def raises_with_nul(project_data: dict[str, Any], prerequisites: dict[str, Any]) -> dict[str, Any]:
    raise ValueError("bad \x00 value")


def returns_nul(project_data: dict[str, Any], prerequisites: dict[str, Any]) -> dict[str, Any]:
    return {"text": "a\x00b"}
