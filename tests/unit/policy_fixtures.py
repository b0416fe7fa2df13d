"""Real functions for definition tests to name by dotted path (`tests.unit.policy_fixtures.*`)."""

from __future__ import annotations

from typing import Any


def always_review(context: Any, rng: Any, **kwargs: Any) -> bool:
    return True


def pick_alice(context: Any, **kwargs: Any) -> list[str]:
    return ["alice"]


def create_when_flagged(prerequisite_data: Any, project_data: Any, **kwargs: Any) -> bool:
    return bool(project_data.get("flag"))


def run_step(project_data: Any, prerequisites: Any, **kwargs: Any) -> dict[str, Any]:
    return {"ran": True, **kwargs}


NOT_CALLABLE = {"a": 1}
