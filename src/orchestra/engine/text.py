"""What text a database can store: no NUL (U+0000), which PostgreSQL refuses in text and jsonb, and no unpaired
surrogate (JSON's "\\ud800"), which is not Unicode text at all. Checked where input arrives (the API's schemas,
the services' data checks, the pages' forms) so that it is refused with a 400 instead of failing in the
database."""

from __future__ import annotations

from typing import Any


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be Unicode text (it holds an unpaired surrogate)"
    return None


def text_problem_at(value: Any, path: str) -> tuple[str, str] | None:
    """Where in a JSON value a string or key is not storable text, and why; or None."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    items: list[tuple[str, Any]] = []
    if isinstance(value, list):
        items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if problem := text_problem(str(key)):
                return where, problem
            items.append((where, item))
    return next((found for where, item in items if (found := text_problem_at(item, where))), None)


def printable_path(path: str) -> str:
    """A path from text_problem_at as it can be shown: NUL as JSON writes it, surrogates escaped."""
    return storable(path, nul="\\u0000")


def storable(text: str, nul: str = "\\x00") -> str:
    """`text` as a record of what happened can keep it: a NUL shown as `nul`, an unpaired surrogate as \\udXXX
    (for logs and error messages, which are kept whatever a program printed or raised)."""
    if "\x00" in text:
        text = text.replace("\x00", nul)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
