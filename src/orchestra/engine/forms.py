"""Declared forms for human steps: a step's `user_interface.form` in version.json.

A form is a list of field objects (or `{"fields": [...]}`), each with a `name`, a `type` (one of
`FIELD_TYPES`) and the options that type takes. `_forms_check` holds the definition side: the field
types and options, `check_form` (called by definition validation, reporting every problem at its path)
and `parse_form`. This module is the run side:

- `step_form` / `parse_form` turn a checked definition into a `FormDef`;
- `clean_values` checks what a worker sent, from the JSON API (typed values) or an HTML form (strings),
  and returns the cleaned data with one message per bad field, written for the worker;
- `check_upload` and `upload_folder` say whether a file may be stored and where.

A `list` field with `for_each` has one item per element of a list that an earlier step produced (its
prerequisites, keyed by step slug): `{"source": "photo_adjustment.photos", "key": "name"}`.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from orchestra.engine._forms_check import (
    FIELD_TYPES,
    FILE_TYPES,
    PLACEHOLDER,
    Choice,
    FieldDef,
    ForEach,
    FormDef,
    check_form,
    parse_form,
    step_form,
)

__all__ = [
    "FIELD_TYPES",
    "Choice",
    "FieldDef",
    "ForEach",
    "FormDef",
    "check_form",
    "check_upload",
    "clean_values",
    "empty_value",
    "for_each_elements",
    "parse_form",
    "resolve",
    "step_form",
    "upload_folder",
]

REQUIRED = "This field is required."
TEXT_TYPES = ("text", "textarea")
_TRUE = ("on", "true", "1", "yes")
_FALSE = ("", "false", "0", "off", "no")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


# --- prerequisites -----------------------------------------------------------------------------------


def resolve(prerequisites: Mapping[str, Any], source: str) -> Any:
    """The value at `source` ("step.key.key"; a number indexes a list) in the prerequisites, or None."""
    value: Any = prerequisites
    for part in source.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def for_each_elements(field: FieldDef, prerequisites: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The elements a for_each list has one item each for; [] if missing or not a list of objects."""
    if field.for_each is None:
        return []
    value = resolve(prerequisites, field.for_each.source)
    if not isinstance(value, list) or not all(isinstance(element, Mapping) for element in value):
        return []
    return list(value)


# --- cleaning submitted values -----------------------------------------------------------------------


def empty_value(field: FieldDef) -> Any:
    """What an unfilled field holds: "" for text, False for a checkbox, [] for several values, else None."""
    if field.type in TEXT_TYPES:
        return ""
    if field.type == "boolean":
        return False
    if field.type in ("multichoice", "list") or (field.type in FILE_TYPES and field.multiple):
        return []
    return None


def clean_values(
    form: FormDef, values: Mapping[str, Any], *, prerequisites: Mapping[str, Any], partial: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """`values` checked against `form`: (clean data, errors by path such as `captions[0].caption`).

    Clean data holds every declared field (unfilled ones as `empty_value`, bad ones as sent, to show
    again) and every undeclared key of `values` unchanged. `partial` (a draft) enforces neither
    `required` nor minimum lengths and counts; wrong values are errors either way. Never raises.
    """
    cleaner = _Cleaner(prerequisites, partial)
    clean = dict(values)
    for field in form.fields:
        clean[field.name] = cleaner.field(field, values.get(field.name), field.name)
    return clean, cleaner.errors


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" between {_fmt(low)} and {_fmt(high)}"
    if low is not None:
        return f" of at least {_fmt(low)}"
    return f" of at most {_fmt(high)}" if high is not None else ""


def _count_error(field: FieldDef, count: int, verb: str, noun: str, partial: bool) -> str | None:
    """The message when `count` characters/options/items is outside the field's bounds."""
    low, high = field.min, field.max
    if not ((low is not None and count < low and not partial) or (high is not None and count > high)):
        return None
    if low is not None and high is not None:
        return f"{verb} between {_fmt(low)} and {_fmt(high)} {_plural(noun, high)}."
    if low is not None:
        return f"{verb} at least {_fmt(low)} {_plural(noun, low)}."
    assert high is not None
    return f"{verb} at most {_fmt(high)} {_plural(noun, high)}."


def _plural(noun: str, count: float) -> str:
    return noun if count == 1 else noun + "s"


def _check_count(field: FieldDef, count: int, verb: str, noun: str, partial: bool) -> None:
    message = _count_error(field, count, verb, noun, partial)
    if message:
        raise _Invalid(message)


def _in_bounds(field: FieldDef, value: float, what: str) -> None:
    if (field.min is not None and value < field.min) or (field.max is not None and value > field.max):
        raise _Invalid(f"Enter {what}{_range(field.min, field.max)}.")


def _number(field: FieldDef, raw: Any, partial: bool) -> float:
    value: float | None = None
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        elif isinstance(raw, str) and _NUMBER.match(raw.strip()):
            value = float(raw.strip())
    except OverflowError:  # an int too large for a float
        value = None
    if value is None or not math.isfinite(value):
        raise _Invalid(f"Enter a number{_range(field.min, field.max)}.")
    _in_bounds(field, value, "a number")
    return value


def _integer(field: FieldDef, raw: Any, partial: bool) -> int:
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _NUMBER.match(raw.strip()):
        text = raw.strip()
        try:
            number = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:  # more digits than Python converts
            number = math.nan
        if isinstance(number, int) or number.is_integer():
            value = int(number)
    if value is None:
        raise _Invalid(f"Enter a whole number{_range(field.min, field.max)}.")
    _in_bounds(field, value, "a whole number")
    return value


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise _Invalid("Choose yes or no.")


def _text(field: FieldDef, raw: Any, partial: bool) -> str:
    if not isinstance(raw, str):
        raise _Invalid("Enter text.")
    _check_count(field, len(raw), "Enter", "character", partial)
    return raw


def _url(field: FieldDef, raw: Any, partial: bool) -> str:
    value = raw.strip() if isinstance(raw, str) else ""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not re.search(r"\s", value)
    except ValueError:  # a malformed port or IPv6 address
        ok = False
    if not ok:
        raise _Invalid("Enter a web address starting with http:// or https://.")
    return _text(field, value, partial)


def _email(field: FieldDef, raw: Any, partial: bool) -> str:
    value = raw.strip() if isinstance(raw, str) else ""
    if not _EMAIL.match(value):
        raise _Invalid("Enter an email address like name@example.com.")
    return _text(field, value, partial)


def _date(field: FieldDef, raw: Any, partial: bool) -> str:
    value = raw.strip() if isinstance(raw, str) else ""
    try:
        # The pattern first: fromisoformat also takes forms like 20240131 that we do not store.
        if _DATE.match(value) and datetime.date.fromisoformat(value):
            return value
    except ValueError:
        pass
    raise _Invalid("Enter a date as YYYY-MM-DD, like 2024-01-31.")


def _choice(field: FieldDef, raw: Any, partial: bool) -> str:
    values = [c.value for c in field.choices]
    if raw not in values:
        raise _Invalid(f"Choose one of: {', '.join(values)}.")
    return str(raw)


def _multichoice(field: FieldDef, raw: Any, partial: bool) -> list[str]:
    values = [c.value for c in field.choices]
    chosen = [raw] if isinstance(raw, str) else raw
    if not isinstance(chosen, list | tuple):
        raise _Invalid(f"Choose from: {', '.join(values)}.")
    # An HTML form may send "" to say "none of them"; it is not a choice.
    chosen = [item for item in chosen if item != ""]
    if any(item not in values for item in chosen):
        raise _Invalid(f"Choose only from: {', '.join(values)}.")
    if len(set(chosen)) < len(chosen):
        raise _Invalid("Choose each option only once.")
    _check_count(field, len(chosen), "Choose", "option", partial)
    return list(chosen)


_SCALARS: dict[str, Callable[[FieldDef, Any, bool], Any]] = {
    "text": _text,
    "textarea": _text,
    "number": _number,
    "integer": _integer,
    "rating": _integer,
    "url": _url,
    "email": _email,
    "date": _date,
    "choice": _choice,
    "multichoice": _multichoice,
}


def _blank(raw: Any) -> bool:
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, list | tuple):
        return all(isinstance(item, str) and not item.strip() for item in raw)
    return raw is None


def _file(field: FieldDef, raw: Any) -> dict[str, Any]:
    if not (isinstance(raw, Mapping) and all(isinstance(raw.get(k), str) and raw[k] for k in ("name", "url"))):
        raise _Invalid("Upload a file.")
    size = raw.get("size")
    message = check_upload(field, raw["name"], size if isinstance(size, int) and not isinstance(size, bool) else 0)
    if message:
        raise _Invalid(message)
    return dict(raw)


class _Cleaner:
    def __init__(self, prerequisites: Mapping[str, Any], partial: bool) -> None:
        self.prerequisites = prerequisites
        self.partial = partial
        self.errors: dict[str, str] = {}

    def error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def field(self, field: FieldDef, raw: Any, path: str) -> Any:
        if field.type == "list":
            return self.list(field, raw, path)
        if field.type == "boolean":
            try:
                value = False if raw is None else _boolean(raw)
            except _Invalid as invalid:
                self.error(path, invalid.message)
                return raw
            if field.required and not value and not self.partial:
                self.error(path, REQUIRED)  # a box the worker must tick, such as "I checked the facts"
            return value
        if _blank(raw):
            if field.required and not self.partial:
                self.error(path, REQUIRED)
            # Text is kept as typed (whitespace only counts as missing for `required`).
            return raw if field.type in TEXT_TYPES and isinstance(raw, str) else empty_value(field)
        if field.type in FILE_TYPES:
            return self.files(field, raw, path)
        try:
            return _SCALARS[field.type](field, raw, self.partial)
        except _Invalid as invalid:
            self.error(path, invalid.message)
            return raw

    def files(self, field: FieldDef, raw: Any, path: str) -> Any:
        if not field.multiple:
            try:
                return _file(field, raw)
            except _Invalid as invalid:
                self.error(path, invalid.message)
                return raw
        items = [raw] if isinstance(raw, Mapping) else raw
        if not isinstance(items, list | tuple):
            self.error(path, "Upload one or more files.")
            return raw
        cleaned: list[Any] = []
        for i, item in enumerate(items):
            try:
                cleaned.append(_file(field, item))
            except _Invalid as invalid:
                self.error(f"{path}[{i}]", invalid.message)
                cleaned.append(item)
        return cleaned

    def list(self, field: FieldDef, raw: Any, path: str) -> Any:
        elements: list[Mapping[str, Any]] | None = None
        source = field.for_each.source if field.for_each is not None else ""
        if field.for_each is not None:
            found = resolve(self.prerequisites, source)
            if found is None:
                step = source.split(".")[0]
                self.error(path, f"This list is made from '{source}', the output of step '{step}', which is missing.")
                return raw if raw is not None else []
            elements = for_each_elements(field, self.prerequisites)
            if not elements and found != []:
                self.error(path, f"This list is made from '{source}', which is not a list of objects.")
                return raw if raw is not None else []
            if raw is None or raw == "":
                raw = [{} for _ in elements]  # one empty item per element, for `required` item fields to catch
        if raw is None or raw == "":
            raw = []
        if not isinstance(raw, list | tuple):
            self.error(path, "Enter a list of items.")
            return raw
        if elements is not None and len(raw) != len(elements):
            self.error(path, f"Give one item for each of the {len(elements)} entries of '{source}'.")
        items: list[Any] = []
        for i, item in enumerate(raw):
            item_path = f"{path}[{i}]"
            if not isinstance(item, Mapping):
                self.error(item_path, "Each item must be an object of its fields.")
                items.append(item)
                continue
            cleaned = dict(item)
            if elements is not None and i < len(elements):
                self.match_element(field, cleaned, elements[i], item_path)
            for sub in field.fields:
                cleaned[sub.name] = self.field(sub, item.get(sub.name), f"{item_path}.{sub.name}")
            items.append(cleaned)
        if field.required and not items and not self.partial:
            self.error(path, REQUIRED)
        message = _count_error(field, len(items), "Give", "item", self.partial)
        if message:
            self.error(path, message)
        return items

    def match_element(self, field: FieldDef, item: dict[str, Any], element: Mapping[str, Any], path: str) -> None:
        """Copy the element's key into its item, or check the item already names that element."""
        assert field.for_each is not None
        key = field.for_each.key
        expected = element.get(key)
        if key not in item:
            item[key] = expected
        elif item[key] != expected:
            self.error(
                f"{path}.{key}",
                f"Expected the item for {expected!r} here, not {item[key]!r}: keep the items in the order of "
                f"'{field.for_each.source}'.",
            )


# --- uploads -----------------------------------------------------------------------------------------


def _size(size: int) -> str:
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def check_upload(field: FieldDef, filename: str, size: int) -> str | None:
    """Why a file of that name and size (bytes) may not be stored for `field`, for the worker; None if it may."""
    if field.type not in FILE_TYPES:
        return f"{field.label} does not take files."
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if field.accept and extension not in field.accept:
        return f"'{filename}' is not an accepted file; upload a file of type: {', '.join(field.accept)}."
    if size > field.max_size:
        return f"'{filename}' is {_size(size)}; files may be at most {_size(field.max_size)}."
    return None


def upload_folder(field: FieldDef, *, project_id: int, task_id: int, prerequisites: Mapping[str, Any]) -> str:
    """Where `field`'s uploads are stored: its `folder` with the placeholders filled in, without a
    trailing '/'. ValueError names a missing prerequisite (or a folder that leaves the file store)."""
    fixed = {"project_id": str(project_id), "task_id": str(task_id), "field": field.name}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in fixed:
            return fixed[name]
        source = name.removeprefix("prerequisites.")
        if name == source:  # check_form refuses these; a FieldDef built by hand may still hold one
            raise ValueError(f"unknown placeholder {{{name}}} in the upload folder of field '{field.name}'")
        value = resolve(prerequisites, source)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise ValueError(
                f"the upload folder {field.folder!r} of field '{field.name}' needs prerequisite '{source}' "
                f"(from step '{source.split('.')[0]}'), which is {'missing' if value is None else 'not a name'}"
            )
        return str(value)

    folder = PLACEHOLDER.sub(fill, field.folder)
    parts = [part for part in folder.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"the upload folder of field '{field.name}' is {folder!r}, which is outside the file store")
    return "/".join(parts)
