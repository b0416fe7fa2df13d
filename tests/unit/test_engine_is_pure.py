"""The engine never imports Django, Celery, HTTP clients, the clock or randomness of its own."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "src" / "orchestra" / "engine"
FORBIDDEN = (
    "django",
    "celery",
    "random",
    "requests",
    "httpx",
    "urllib.request",
    "orchestra.models",
    "orchestra.services",
)


def test_engine_imports_nothing_impure():
    problems = []
    for path in sorted(ENGINE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                    problems.append(f"{path.relative_to(ENGINE)}:{node.lineno} imports {name}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("now", "utcnow", "today")
                and isinstance(node.value, ast.Name)
                and node.value.id in ("datetime", "date", "time")
            ):
                problems.append(f"{path.relative_to(ENGINE)}:{node.lineno} reads the clock")
    assert not problems, (
        "the engine must stay pure (DESIGN §3): move these into services or pass values in:\n" + "\n".join(problems)
    )
    assert any(ENGINE.rglob("lifecycle.py")), "engine directory not found"
