"""The definition side of declared forms (`forms` is the public front): field types and options, the
frozen `FormDef` a checked definition parses into, and `check_form`, which reports every problem in a
raw `user_interface.form` at its path. Definition validation drops a form found wrong, so pydantic
never reports it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from orchestra.engine._references import describe, did_you_mean, join
from orchestra.engine.errors import Problem

FIELD_TYPES: tuple[str, ...] = (
    "text",
    "textarea",
    "number",
    "integer",
    "boolean",
    "choice",
    "multichoice",
    "rating",
    "url",
    "email",
    "date",
    "file",
    "image",
    "list",
)
FILE_TYPES = ("file", "image")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "webp")
DEFAULT_MAX_SIZE = 10_000_000
DEFAULT_FOLDER = "uploads/project-{project_id}/task-{task_id}/{field}"
RATING_BOUNDS = (1, 5)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

FIELD_KEYS = (
    "name",
    "type",
    "label",
    "help",
    "placeholder",
    "required",
    "default",
    "choices",
    "min",
    "max",
    "rows",
    "multiple",
    "accept",
    "max_size",
    "folder",
    "fields",
    "for_each",
)
FOR_EACH_KEYS = ("source", "key", "image", "title")
CHOICE_KEYS = ("value", "label")

# What `min` and `max` bound, by field type.
_VALUE_BOUNDS = ("number", "integer", "rating")
_LENGTH_BOUNDS = ("text", "textarea", "url", "email")
_COUNT_BOUNDS = ("multichoice", "list")
# The field types each option applies to (options not listed apply to every type).
_OPTION_TYPES: dict[str, tuple[str, ...]] = {
    "choices": ("choice", "multichoice"),
    "min": _VALUE_BOUNDS + _LENGTH_BOUNDS + _COUNT_BOUNDS,
    "max": _VALUE_BOUNDS + _LENGTH_BOUNDS + _COUNT_BOUNDS,
    "rows": ("textarea",),
    "multiple": FILE_TYPES,
    "accept": FILE_TYPES,
    "max_size": FILE_TYPES,
    "folder": FILE_TYPES,
    "fields": ("list",),
    "for_each": ("list",),
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[^.\s{}]+)+$")
_EXTENSION = re.compile(r"^[a-z0-9]+$")
_FIELD_EXAMPLE = '{"name": "summary", "type": "textarea"}'
_FOLDER_NAMES = ("project_id", "task_id", "field")
_FOLDER_HINT = "use {project_id}, {task_id}, {field} or {prerequisites.STEP.KEY}"


# --- the declared form, once checked ------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class ForEach:
    """One list item per element of the list at `source` ("step.key.key") in the prerequisites."""

    source: str
    key: str  # the element attribute that identifies it, copied into its item
    image: str | None = None  # an element attribute holding an image URL shown beside the item
    title: str | None = None  # an element attribute shown as the item's heading


@dataclass(frozen=True)
class FieldDef:
    """One declared field. `min`/`max` bound the value (number, integer, rating), the length (text,
    textarea, url, email) or the number of items (multichoice, list)."""

    name: str
    type: str
    label: str = ""
    help: str = ""
    placeholder: str = ""
    required: bool = False
    default: Any = None  # None: no default
    choices: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    rows: int | None = None
    multiple: bool = False
    accept: tuple[str, ...] = ()  # lower-case extensions without the dot; empty: any
    max_size: int = DEFAULT_MAX_SIZE
    folder: str = DEFAULT_FOLDER
    fields: tuple[FieldDef, ...] = ()
    for_each: ForEach | None = None


@dataclass(frozen=True)
class FormDef:
    fields: tuple[FieldDef, ...]

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)


# --- parsing a checked definition ----------------------------------------------------------------------


def parse_form(raw: object) -> FormDef:
    """The form declared by `raw` (a list of fields or `{"fields": [...]}`), already passed by check_form."""
    items = raw.get("fields") if isinstance(raw, Mapping) else raw
    if not isinstance(items, list):
        raise ValueError(f"not a form: {raw!r}; check it with check_form first")
    return FormDef(tuple(_parse_field(item) for item in items))


def step_form(user_interface: Mapping[str, Any]) -> FormDef | None:
    """The form of a step from its `user_interface`; None when it declares none."""
    raw = user_interface.get("form")
    return None if raw is None else parse_form(raw)


def _label(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _parse_field(raw: Mapping[str, Any]) -> FieldDef:
    kind: str = raw["type"]
    low, high = RATING_BOUNDS if kind == "rating" else (None, None)
    low, high = raw.get("min", low), raw.get("max", high)
    default_accept = IMAGE_EXTENSIONS if kind == "image" else ()
    for_each = raw.get("for_each")
    return FieldDef(
        name=raw["name"],
        type=kind,
        label=raw.get("label") or _label(raw["name"]),
        help=raw.get("help", ""),
        placeholder=raw.get("placeholder", ""),
        required=raw.get("required", False),
        default=raw.get("default"),
        choices=tuple(
            Choice(c, c) if isinstance(c, str) else Choice(c["value"], c.get("label") or c["value"])
            for c in raw.get("choices") or ()
        ),
        min=None if low is None else float(low),
        max=None if high is None else float(high),
        rows=raw.get("rows"),
        multiple=raw.get("multiple", False),
        accept=tuple(raw.get("accept", default_accept)),
        max_size=raw.get("max_size", DEFAULT_MAX_SIZE),
        folder=raw.get("folder", DEFAULT_FOLDER),
        fields=tuple(_parse_field(item) for item in raw.get("fields") or ()),
        for_each=None
        if for_each is None
        else ForEach(for_each["source"], for_each["key"], for_each.get("image"), for_each.get("title")),
    )


# --- checking a raw definition --------------------------------------------------------------------


def check_form(raw: object, path: str) -> list[Problem]:
    """Every problem in a raw `user_interface.form` (a list of fields or `{"fields": [...]}`)."""
    checker = _FormChecker()
    checker.form(raw, path)
    return checker.problems


def step_references(raw: object, path: str) -> list[tuple[str, str]]:
    """(path, step slug) of each earlier step a raw form reads: `for_each.source`, folder placeholders.

    Definition validation checks the slugs against the version's steps and their dependencies.
    """
    found: list[tuple[str, str]] = []
    fields, fields_path = _fields_of(raw, path)
    if not isinstance(fields, list):
        return found
    for i, field in enumerate(fields):
        if not isinstance(field, Mapping):
            continue
        where = join(fields_path, i)
        for_each = field.get("for_each")
        source = for_each.get("source") if isinstance(for_each, Mapping) else None
        if isinstance(source, str) and _SOURCE.match(source):
            found.append((join(join(where, "for_each"), "source"), source.split(".")[0]))
        folder = field.get("folder")
        if isinstance(folder, str):
            for name in PLACEHOLDER.findall(folder):
                if name.startswith("prerequisites.") and _SOURCE.match(name.removeprefix("prerequisites.")):
                    found.append((join(where, "folder"), name.split(".")[1]))
        found += step_references(field.get("fields"), join(where, "fields"))
    return found


def _fields_of(raw: object, path: str) -> tuple[object, str]:
    if isinstance(raw, Mapping):
        return raw.get("fields"), join(path, "fields")
    return raw, path


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: object) -> bool:
    return _whole(value) and value >= 0


class _FormChecker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def unknown_keys(self, raw: Mapping[str, Any], allowed: tuple[str, ...], path: str, what: str) -> None:
        for key in raw:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.add(join(path, str(key)), f"unknown key{hint}; the keys of {what} are: {', '.join(allowed)}")

    def form(self, raw: object, path: str) -> None:
        if isinstance(raw, Mapping):
            self.unknown_keys(raw, ("fields",), path, "a form")
            if "fields" not in raw:
                self.add(join(path, "fields"), f"field required: the list of fields, like [{_FIELD_EXAMPLE}]")
                return
        fields, fields_path = _fields_of(raw, path)
        if not isinstance(fields, list):
            self.add(
                fields_path,
                f'expected a list of fields like [{_FIELD_EXAMPLE}] (or {{"fields": [...]}}), got {describe(fields)}',
            )
        elif not fields:
            self.add(fields_path, f"a form needs at least one field, like {_FIELD_EXAMPLE}")
        else:
            self.fields(fields, fields_path, in_list=False, key=None)

    def fields(self, fields: list[Any], path: str, *, in_list: bool, key: str | None) -> None:
        """Item fields of a list (`in_list`) may not reuse the for_each `key`."""
        seen: dict[str, str] = {}
        scope = "the list's item fields" if in_list else "the form"
        for i, raw in enumerate(fields):
            where = join(path, i)
            name = self.field(raw, where, in_list=in_list)
            if name is None:
                continue
            if name in seen:
                self.add(
                    join(where, "name"),
                    f"duplicate field name '{name}' (also {seen[name]}); names must be unique within {scope}",
                )
            elif name == key:
                self.add(
                    join(where, "name"),
                    f"'{name}' is the for_each key, copied into each item from its element; rename this field",
                )
            seen.setdefault(name, where)

    def field(self, raw: object, path: str, *, in_list: bool) -> str | None:
        """Check one field object; its name when that is valid (for the duplicate check)."""
        if not isinstance(raw, dict):
            self.add(path, f"expected a field object like {_FIELD_EXAMPLE}, got {describe(raw)}")
            return None
        before = len(self.problems)
        self.unknown_keys(raw, FIELD_KEYS, path, "a field")
        name = raw.get("name")
        if "name" not in raw:
            self.add(join(path, "name"), "field required: the name the value is stored under, like 'summary'")
        elif not isinstance(name, str) or not _NAME.match(name):
            self.add(
                join(path, "name"),
                f"{describe(name)} is not a field name; use letters, digits and '_', starting with a letter or '_'",
            )
            name = None
        kind = self.field_type(raw, path, in_list=in_list)
        for key in ("label", "help", "placeholder"):
            if key in raw and not isinstance(raw[key], str):
                self.add(join(path, key), f"expected a string, got {describe(raw[key])}")
        for key in ("required", "multiple"):
            if key in raw and not isinstance(raw[key], bool):
                self.add(join(path, key), f"expected true or false, got {describe(raw[key])}")
        if kind is not None:
            for key, types in _OPTION_TYPES.items():
                if key in raw and kind not in types:
                    self.add(join(path, key), f"'{key}' applies only to {', '.join(types)} fields; remove it")
            if kind in ("choice", "multichoice"):
                self.choices(raw.get("choices"), join(path, "choices"), present="choices" in raw)
            if kind in _OPTION_TYPES["min"]:
                self.bounds(raw, path, kind)
            if kind == "textarea" and "rows" in raw and not (_whole(raw["rows"]) and raw["rows"] >= 1):
                self.add(
                    join(path, "rows"), f"expected a whole number of lines, 1 or more, got {describe(raw['rows'])}"
                )
            if kind in FILE_TYPES:
                self.file_options(raw, path)
            if kind == "list":
                self.list_options(raw, path)
        if kind is not None and raw.get("default") is not None and len(self.problems) == before:
            self.default(raw, join(path, "default"))
        return name if isinstance(name, str) else None

    def field_type(self, raw: Mapping[str, Any], path: str, *, in_list: bool) -> str | None:
        kind = raw.get("type")
        where = join(path, "type")
        if "type" not in raw:
            self.add(where, f"field required; use one of: {', '.join(FIELD_TYPES)}")
        elif not isinstance(kind, str) or kind not in FIELD_TYPES:
            what = f"unknown field type {kind!r}" if isinstance(kind, str) else f"got {describe(kind)}"
            self.add(where, f"{what}{did_you_mean(kind, FIELD_TYPES)}; use one of: {', '.join(FIELD_TYPES)}")
        elif in_list and kind == "list":
            self.add(where, "a list cannot hold another list; give its items plain fields")
        elif in_list and kind in FILE_TYPES:
            self.add(where, f"{kind} fields cannot be inside a list (uploads are per field); put it in the form itself")
        else:
            return kind
        return None

    def choices(self, raw: object, path: str, *, present: bool) -> None:
        example = '["yes", "no"] or [{"value": "y", "label": "Yes"}]'
        if not present:
            self.add(path, f"choice fields need 'choices', a list like {example}")
            return
        if not isinstance(raw, list):
            self.add(path, f"expected a list of choices like {example}, got {describe(raw)}")
            return
        if not raw:
            self.add(path, f"choice fields need at least one choice, like {example}")
        seen: dict[str, str] = {}
        for i, choice in enumerate(raw):
            where = join(path, i)
            value: object = choice
            if isinstance(choice, dict):
                self.unknown_keys(choice, CHOICE_KEYS, where, "a choice")
                value = choice.get("value")
                where = join(where, "value")
                if "label" in choice and not isinstance(choice["label"], str):
                    self.add(join(join(path, i), "label"), f"expected a string, got {describe(choice['label'])}")
            if not isinstance(value, str):
                self.add(
                    where,
                    f'expected a string or an object like {{"value": "y", "label": "Yes"}}, got {describe(value)}',
                )
            elif not value:
                self.add(where, "a choice value cannot be empty (an empty answer means 'no choice')")
            elif value in seen:
                self.add(where, f"duplicate choice value '{value}' (also {seen[value]})")
            else:
                seen[value] = where

    def bounds(self, raw: Mapping[str, Any], path: str, kind: str) -> None:
        ok: Callable[[object], bool]
        if kind in _VALUE_BOUNDS:
            what = "a whole number" if kind != "number" else "a number"
            ok = _whole if kind != "number" else _number
        else:
            unit = "characters" if kind in _LENGTH_BOUNDS else "items"
            what = f"a whole number of {unit}, 0 or more"
            ok = _count
        valid = True
        for key in ("min", "max"):
            if key in raw and not ok(raw[key]):
                self.add(join(path, key), f"expected {what}, got {describe(raw[key])}")
                valid = False
        low, high = RATING_BOUNDS if kind == "rating" else (None, None)
        low, high = raw.get("min", low), raw.get("max", high)
        if valid and low is not None and high is not None and low > high:
            where = join(path, "min" if "min" in raw else "max")
            defaults = " (a rating goes from 1 to 5 unless you set min and max)" if kind == "rating" else ""
            self.add(where, f"min ({low}) is greater than max ({high}){defaults}; swap them or fix one")

    def file_options(self, raw: Mapping[str, Any], path: str) -> None:
        accept = raw.get("accept")
        if "accept" in raw:
            if not isinstance(accept, list):
                self.add(
                    join(path, "accept"), f'expected a list of file extensions like ["pdf"], got {describe(accept)}'
                )
            else:
                for i, ext in enumerate(accept):
                    where = join(join(path, "accept"), i)
                    if not isinstance(ext, str) or not ext:
                        self.add(where, f"expected a file extension like 'pdf', got {describe(ext)}")
                    elif not _EXTENSION.match(ext):
                        fixed = ext.lstrip(".").lower()
                        hint = f"; write '{fixed}'" if _EXTENSION.match(fixed) else ""
                        self.add(where, f"'{ext}' is not a file extension in lower case without the dot{hint}")
        size = raw.get("max_size")
        if "max_size" in raw and not (_whole(size) and size > 0):
            self.add(join(path, "max_size"), f"expected a size in bytes (a whole number above 0), got {describe(size)}")
        if "folder" in raw:
            self.folder(raw["folder"], join(path, "folder"))

    def folder(self, folder: object, path: str) -> None:
        if not isinstance(folder, str) or not folder.strip("/"):
            self.add(path, f"expected a folder like {DEFAULT_FOLDER!r}, got {describe(folder)}")
            return
        for name in PLACEHOLDER.findall(folder):
            if name in _FOLDER_NAMES:
                continue
            if name.startswith("prerequisites."):
                if not _SOURCE.match(name.removeprefix("prerequisites.")):
                    self.add(path, f"{{{name}}} needs a step and a key, like {{prerequisites.STEP.KEY}}")
                continue
            hint = did_you_mean(name, (*_FOLDER_NAMES, "prerequisites"))
            self.add(path, f"unknown placeholder {{{name}}}{hint}; {_FOLDER_HINT}")
        rest = PLACEHOLDER.sub("x", folder)
        if "{" in rest or "}" in rest:
            self.add(path, f"unbalanced '{{' or '}}' in {folder!r}; {_FOLDER_HINT}")
        if folder.startswith("/") or ".." in rest.split("/"):
            self.add(path, f"{folder!r} must be a relative folder in the file store, without '..'")

    def list_options(self, raw: Mapping[str, Any], path: str) -> None:
        key: str | None = None
        for_each = raw.get("for_each")
        if "for_each" in raw:
            key = self.for_each(for_each, join(path, "for_each"))
            if raw.get("default") is not None:
                self.add(
                    join(path, "default"), "a for_each list has one item per element of its source; remove 'default'"
                )
        fields = raw.get("fields")
        where = join(path, "fields")
        if "fields" not in raw:
            self.add(where, f"list fields need 'fields', the fields of each item, like [{_FIELD_EXAMPLE}]")
        elif not isinstance(fields, list) or not fields:
            self.add(where, f"expected a non-empty list of item fields like [{_FIELD_EXAMPLE}], got {describe(fields)}")
        else:
            self.fields(fields, where, in_list=True, key=key)

    def for_each(self, raw: object, path: str) -> str | None:
        """Check a list's `for_each`; its `key` when valid."""
        example = '{"source": "photo_adjustment.photos", "key": "name"}'
        if not isinstance(raw, dict):
            self.add(path, f"expected an object like {example}, got {describe(raw)}")
            return None
        self.unknown_keys(raw, FOR_EACH_KEYS, path, "for_each")
        source = raw.get("source")
        if "source" not in raw:
            self.add(
                join(path, "source"),
                "field required: where the elements are, 'STEP.KEY' like 'photo_adjustment.photos'",
            )
        elif not isinstance(source, str) or not _SOURCE.match(source):
            self.add(
                join(path, "source"),
                f"{describe(source)} is not a prerequisite path; write 'STEP.KEY' (a step slug, then keys, "
                "separated by dots), like 'photo_adjustment.photos'",
            )
        key = raw.get("key")
        if "key" not in raw:
            self.add(
                join(path, "key"), "field required: the element attribute that identifies each element, like 'name'"
            )
        for attr in ("key", "image", "title"):
            if attr in raw and (not isinstance(raw[attr], str) or not raw[attr]):
                self.add(join(path, attr), f"expected the name of an element attribute, got {describe(raw[attr])}")
        return key if isinstance(key, str) and key else None

    def default(self, raw: dict[str, Any], path: str) -> None:
        # Imported here because forms imports this module. A default is valid when a worker could send it.
        from orchestra.engine.forms import clean_values

        form = parse_form([raw])
        _, errors = clean_values(form, {raw["name"]: raw["default"]}, prerequisites={}, partial=True)
        for where, message in errors.items():
            detail = where.removeprefix(raw["name"])
            self.add(path + detail, f"not a valid default for this {raw['type']} field: {message}")
