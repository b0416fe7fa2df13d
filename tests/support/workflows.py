"""Write small workflow definitions to disk and load them, as a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestra.services.workflows import workflow_load

F = "tests.support.functions"


def machine(slug: str, *deps: str, function: str = "noop", **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": slug.title(),
        "description": f"machine step {slug}",
        "is_human": False,
        "execution_function": {
            "path": f"{F}.{function}",
            **({"kwargs": extra.pop("kwargs")} if "kwargs" in extra else {}),
        },
        "creation_depends_on": list(deps),
        **extra,
    }


def human(
    slug: str, *deps: str, review: dict[str, Any] | None = None, certs: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    step = {
        "slug": slug,
        "name": slug.title(),
        "description": f"human step {slug}",
        "is_human": True,
        "creation_depends_on": list(deps),
        "required_certifications": certs or [],
        **extra,
    }
    if review is not None:
        step["review_policy"] = review
    return step


NO_REVIEW = {"policy": "no_review"}


def write_workflow(
    root: Path,
    steps: list[dict[str, Any]],
    *,
    slug: str = "wf",
    version: str = "v1",
    certifications: list[str] = (),
) -> Path:
    directory = root / slug
    (directory / version).mkdir(parents=True, exist_ok=True)
    (directory / "workflow.json").write_text(
        json.dumps(
            {
                "slug": slug,
                "name": f"Workflow {slug}",
                "description": "test workflow",
                "certifications": [{"slug": c, "name": c.title(), "description": c} for c in certifications],
            }
        )
    )
    (directory / version / "version.json").write_text(
        json.dumps({"slug": version, "name": f"{slug} {version}", "description": "test version", "steps": steps})
    )
    return directory


def load(root: Path, steps: list[dict[str, Any]], **kwargs: Any) -> str:
    directory = write_workflow(root, steps, **kwargs)
    workflow_load(source=directory)
    return kwargs.get("slug", "wf")
