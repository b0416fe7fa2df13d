"""Declared forms (`user_interface.form`): definitions are checked with every problem at its path, and
what a worker sends (JSON or HTML form strings) is cleaned with a message per bad field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestra.engine.definitions import WorkflowDef, parse_version
from orchestra.engine.errors import DefinitionError, Problem
from orchestra.engine.forms import (
    FIELD_TYPES,
    Choice,
    FieldDef,
    ForEach,
    FormDef,
    check_form,
    check_upload,
    clean_values,
    empty_value,
    for_each_elements,
    parse_form,
    resolve,
    step_form,
    upload_folder,
)

PHOTOS = {
    "photo_adjustment": {
        "photos": [
            {"name": "a.png", "src": "http://x/a.png"},
            {"name": "b.png", "src": "http://x/b.png"},
        ]
    }
}
CAPTIONS: dict[str, Any] = {
    "name": "captions",
    "type": "list",
    "for_each": {"source": "photo_adjustment.photos", "key": "name", "image": "src"},
    "fields": [{"name": "caption", "type": "text", "required": True}],
}


def one(field: dict[str, Any]) -> FormDef:
    """A form of one field, checked first so every test uses a definition authors could write."""
    assert check_form([field], "form") == []
    return parse_form([field])


def clean(field: dict[str, Any], value: Any, *, partial: bool = False, prerequisites: Any = None) -> Any:
    """The cleaned value of a one-field form; fails if there are errors."""
    data, errors = clean_values(one(field), {field["name"]: value}, prerequisites=prerequisites or {}, partial=partial)
    assert errors == {}, errors
    return data[field["name"]]


def error(field: dict[str, Any], value: Any, *, partial: bool = False) -> str:
    """The one error a one-field form reports, at the field's name."""
    data, errors = clean_values(one(field), {field["name"]: value}, prerequisites={}, partial=partial)
    assert list(errors) == [field["name"]], errors
    assert data[field["name"]] == value, "a bad value is kept as sent, to show it again"
    return errors[field["name"]]


# --- cleaning: each type, from JSON and from HTML strings --------------------------------------------

NOTES_FIELD: dict[str, Any] = {
    "name": "notes",
    "type": "list",
    "fields": [
        {"name": "note", "type": "text", "required": True},
        {"name": "stars", "type": "rating"},
    ],
}
NOTES: dict[str, Any] = {**NOTES_FIELD, "max": 2}
CHOICE: dict[str, Any] = {"name": "answer", "type": "choice", "choices": ["yes", "no"]}
TAGS: dict[str, Any] = {
    "name": "tags",
    "type": "multichoice",
    "choices": [{"value": "news", "label": "News"}, "sport", "arts"],
}
GOOD: list[tuple[dict[str, Any], Any, Any]] = [
    ({"name": "title", "type": "text"}, "  Hello ", "  Hello "),
    ({"name": "body", "type": "textarea", "rows": 4}, "line\nline", "line\nline"),
    ({"name": "price", "type": "number"}, 2, 2.0),
    ({"name": "price", "type": "number"}, 2.5, 2.5),
    ({"name": "price", "type": "number"}, " -2.5 ", -2.5),
    ({"name": "price", "type": "number"}, "1e3", 1000.0),
    ({"name": "count", "type": "integer"}, 3, 3),
    ({"name": "count", "type": "integer"}, 3.0, 3),
    ({"name": "count", "type": "integer"}, "3", 3),
    ({"name": "count", "type": "integer"}, "-12", -12),
    ({"name": "rating", "type": "rating"}, 5, 5),
    ({"name": "rating", "type": "rating"}, "1", 1),
    ({"name": "rating", "type": "rating", "min": 0, "max": 10}, "10", 10),
    ({"name": "ok", "type": "boolean"}, True, True),
    ({"name": "ok", "type": "boolean"}, False, False),
    ({"name": "ok", "type": "boolean"}, "on", True),
    ({"name": "ok", "type": "boolean"}, "Yes", True),
    ({"name": "ok", "type": "boolean"}, "1", True),
    ({"name": "ok", "type": "boolean"}, "off", False),
    ({"name": "ok", "type": "boolean"}, "", False),
    ({"name": "ok", "type": "boolean"}, None, False),
    ({"name": "when", "type": "date"}, "2024-02-29", "2024-02-29"),
    ({"name": "site", "type": "url"}, "https://example.com/a?b=1", "https://example.com/a?b=1"),
    ({"name": "site", "type": "url"}, " http://localhost:8000 ", "http://localhost:8000"),
    ({"name": "mail", "type": "email"}, "ann@example.co.uk", "ann@example.co.uk"),
    (CHOICE, "no", "no"),
    (TAGS, ["news", "arts"], ["news", "arts"]),
    (TAGS, "sport", ["sport"]),
    (TAGS, ["", "sport"], ["sport"]),
    (TAGS, [], []),
    (
        {"name": "doc", "type": "file"},
        {"name": "report.PDF", "url": "/files/report.PDF", "size": 10},
        {"name": "report.PDF", "url": "/files/report.PDF", "size": 10},
    ),
    (
        {"name": "photos", "type": "image", "multiple": True},
        [{"name": "a.jpg", "url": "/f/a.jpg"}, {"name": "b.webp", "url": "/f/b.webp"}],
        [{"name": "a.jpg", "url": "/f/a.jpg"}, {"name": "b.webp", "url": "/f/b.webp"}],
    ),
    (
        {"name": "photos", "type": "image", "multiple": True},
        {"name": "a.jpg", "url": "/f/a.jpg"},
        [{"name": "a.jpg", "url": "/f/a.jpg"}],
    ),
]


@pytest.mark.parametrize(("field", "value", "expected"), GOOD, ids=[f"{g[0]['type']}-{g[1]!r}" for g in GOOD])
def test_each_type_accepts_json_and_html_values(field: dict[str, Any], value: Any, expected: Any) -> None:
    cleaned = clean(field, value)
    assert cleaned == expected
    assert type(cleaned) is type(expected)


BAD: list[tuple[dict[str, Any], Any, str]] = [
    ({"name": "title", "type": "text"}, 12, "Enter text."),
    ({"name": "title", "type": "text", "max": 5}, "too long", "Enter at most 5 characters."),
    ({"name": "title", "type": "text", "min": 3, "max": 5}, "too long", "Enter between 3 and 5 characters."),
    ({"name": "price", "type": "number"}, "abc", "Enter a number."),
    ({"name": "price", "type": "number"}, True, "Enter a number."),
    ({"name": "price", "type": "number"}, "nan", "Enter a number."),
    ({"name": "price", "type": "number"}, "1e400", "Enter a number."),
    ({"name": "price", "type": "number"}, 10**400, "Enter a number."),
    ({"name": "count", "type": "integer"}, "1e400", "Enter a whole number."),
    ({"name": "price", "type": "number", "min": 0.5}, 0, "Enter a number of at least 0.5."),
    ({"name": "price", "type": "number", "max": 100}, "101", "Enter a number of at most 100."),
    ({"name": "count", "type": "integer"}, "2.5", "Enter a whole number."),
    ({"name": "count", "type": "integer"}, False, "Enter a whole number."),
    ({"name": "rating", "type": "rating"}, 6, "Enter a whole number between 1 and 5."),
    ({"name": "rating", "type": "rating"}, "0", "Enter a whole number between 1 and 5."),
    ({"name": "rating", "type": "rating"}, "4.5", "Enter a whole number between 1 and 5."),
    ({"name": "ok", "type": "boolean"}, "maybe", "Choose yes or no."),
    ({"name": "ok", "type": "boolean"}, 1, "Choose yes or no."),
    ({"name": "when", "type": "date"}, "2023-02-29", "Enter a date as YYYY-MM-DD, like 2024-01-31."),
    ({"name": "when", "type": "date"}, "20240131", "Enter a date as YYYY-MM-DD, like 2024-01-31."),
    ({"name": "site", "type": "url"}, "example.com", "Enter a web address starting with http:// or https://."),
    ({"name": "site", "type": "url"}, "ftp://example.com", "Enter a web address starting with http:// or https://."),
    ({"name": "site", "type": "url"}, "https://", "Enter a web address starting with http:// or https://."),
    ({"name": "mail", "type": "email"}, "ann@example", "Enter an email address like name@example.com."),
    ({"name": "mail", "type": "email"}, "ann example.com", "Enter an email address like name@example.com."),
    (CHOICE, "maybe", "Choose one of: yes, no."),
    (CHOICE, ["yes"], "Choose one of: yes, no."),
    (TAGS, ["news", "cooking"], "Choose only from: news, sport, arts."),
    (TAGS, ["news", "news"], "Choose each option only once."),
    ({**TAGS, "max": 1}, ["news", "arts"], "Choose at most 1 option."),
    ({"name": "doc", "type": "file"}, "report.pdf", "Upload a file."),
    ({"name": "doc", "type": "file"}, {"name": "report.pdf"}, "Upload a file."),
    (
        {"name": "doc", "type": "file", "accept": ["pdf"]},
        {"name": "report.exe", "url": "/f/report.exe"},
        "'report.exe' is not an accepted file; upload a file of type: pdf.",
    ),
    (
        {"name": "doc", "type": "file", "max_size": 1000},
        {"name": "big.pdf", "url": "/f/big.pdf", "size": 2500},
        "'big.pdf' is 2.5 kB; files may be at most 1 kB.",
    ),
    ({"name": "photos", "type": "image", "multiple": True}, "a.png", "Upload one or more files."),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD, ids=[f"{b[0]['type']}-{b[1]!r}" for b in BAD])
def test_each_type_refuses_bad_values_with_a_message_for_the_worker(
    field: dict[str, Any], value: Any, message: str
) -> None:
    assert error(field, value) == message
    assert error(field, value, partial=True) == message, "a draft is checked for bad values too"


MINIMUMS: list[tuple[dict[str, Any], Any, str]] = [
    ({"name": "title", "type": "text", "min": 3, "max": 5}, "ab", "Enter between 3 and 5 characters."),
    ({**TAGS, "min": 2}, ["news"], "Choose at least 2 options."),
    ({**NOTES_FIELD, "min": 2}, [{"note": "x", "stars": 4}], "Give at least 2 items."),
]


@pytest.mark.parametrize(("field", "value", "message"), MINIMUMS, ids=[m[0]["type"] for m in MINIMUMS])
def test_minimum_lengths_and_counts_wait_for_the_submit(field: dict[str, Any], value: Any, message: str) -> None:
    assert error(field, value) == message
    assert clean(field, value, partial=True) == value, "a draft is work in progress"


def test_one_bad_file_among_several_is_reported_at_its_index() -> None:
    form = one({"name": "photos", "type": "image", "multiple": True})
    data, errors = clean_values(
        form,
        {"photos": [{"name": "a.png", "url": "/f/a.png"}, {"name": "notes.txt", "url": "/f/notes.txt"}]},
        prerequisites={},
        partial=False,
    )
    assert errors == {
        "photos[1]": "'notes.txt' is not an accepted file; upload a file of type: png, jpg, jpeg, gif, webp."
    }
    assert data["photos"][1] == {"name": "notes.txt", "url": "/f/notes.txt"}


@pytest.mark.parametrize("kind", ["number", "integer", "rating", "date", "url", "email", "choice", "file", "image"])
def test_an_empty_string_is_no_value(kind: str) -> None:
    field: dict[str, Any] = {"name": "x", "type": kind}
    if kind == "choice":
        field["choices"] = ["a"]
    assert clean(field, "") is None
    assert clean(field, "   ") is None


def test_blank_text_is_no_value_rather_than_too_short() -> None:
    assert clean({"name": "title", "type": "text", "min": 1}, " ") == " ", "text is kept as typed"
    assert clean({"name": "count", "type": "integer"}, []) is None


def test_missing_fields_hold_their_empty_value_and_undeclared_keys_are_kept() -> None:
    fields: list[dict[str, Any]] = [
        {"name": kind, "type": kind, **({"choices": ["a"]} if "choice" in kind else {})}
        for kind in FIELD_TYPES
        if kind != "list"
    ]
    fields.append({"name": "items", "type": "list", "fields": [{"name": "x", "type": "text"}]})
    fields.append({"name": "files", "type": "file", "multiple": True})
    form = parse_form({"fields": fields})

    data, errors = clean_values(form, {"legacy": {"kept": True}}, prerequisites={}, partial=False)

    assert errors == {}
    assert data == {
        "legacy": {"kept": True},
        "text": "",
        "textarea": "",
        "number": None,
        "integer": None,
        "boolean": False,
        "choice": None,
        "multichoice": [],
        "rating": None,
        "url": None,
        "email": None,
        "date": None,
        "file": None,
        "image": None,
        "items": [],
        "files": [],
    }
    assert all(data[field.name] == empty_value(field) for field in form.fields)


# --- required and drafts ---------------------------------------------------------------------------


def test_required_fields_are_enforced_on_submit_but_not_on_a_draft() -> None:
    form = parse_form(
        [
            {"name": "title", "type": "text", "required": True, "min": 10},
            {"name": "rating", "type": "rating", "required": True},
            {"name": "checked", "type": "boolean", "required": True},
            {"name": "tags", "type": "multichoice", "choices": ["a", "b"], "required": True},
            {"name": "photo", "type": "image", "required": True},
            {"name": "notes", "type": "list", "required": True, "fields": [{"name": "note", "type": "text"}]},
        ]
    )
    values = {"title": "   ", "rating": "", "checked": "off", "tags": [""]}

    data, errors = clean_values(form, values, prerequisites={}, partial=False)

    assert errors == {
        name: "This field is required." for name in ("title", "rating", "checked", "tags", "photo", "notes")
    }
    assert data["title"] == "   ", "text is kept as typed"

    draft, errors = clean_values(form, values | {"rating": "9", "title": "short"}, prerequisites={}, partial=True)
    assert errors == {"rating": "Enter a whole number between 1 and 5."}, "a draft skips required and minimums only"
    assert draft["title"] == "short"


# --- lists and for_each ------------------------------------------------------------------------------


def test_list_items_are_cleaned_with_errors_at_their_paths() -> None:
    form = one(NOTES)
    data, errors = clean_values(
        form,
        {"notes": [{"note": "fine", "stars": "4", "extra": 1}, {"note": "", "stars": 9}]},
        prerequisites={},
        partial=False,
    )
    assert data["notes"][0] == {"note": "fine", "stars": 4, "extra": 1}
    assert errors == {
        "notes[1].note": "This field is required.",
        "notes[1].stars": "Enter a whole number between 1 and 5.",
    }

    _, errors = clean_values(form, {"notes": [{"note": "a"}] * 3}, prerequisites={}, partial=False)
    assert errors == {"notes": "Give at most 2 items."}
    _, errors = clean_values(form, {"notes": "a"}, prerequisites={}, partial=False)
    assert errors == {"notes": "Enter a list of items."}
    _, errors = clean_values(form, {"notes": ["a"]}, prerequisites={}, partial=False)
    assert errors == {"notes[0]": "Each item must be an object of its fields."}


def test_for_each_list_has_one_item_per_source_element_with_its_key() -> None:
    form = one(CAPTIONS)
    field = form.fields[0]
    assert field.for_each == ForEach("photo_adjustment.photos", "name", image="src")
    assert [e["src"] for e in for_each_elements(field, PHOTOS)] == ["http://x/a.png", "http://x/b.png"]

    data, errors = clean_values(
        form, {"captions": [{"caption": "A cat"}, {"caption": "A dog"}]}, prerequisites=PHOTOS, partial=False
    )
    assert errors == {}
    assert data["captions"] == [{"caption": "A cat", "name": "a.png"}, {"caption": "A dog", "name": "b.png"}]

    # Nothing sent yet: one empty item per photo, each caption missing.
    data, errors = clean_values(form, {}, prerequisites=PHOTOS, partial=False)
    assert data["captions"] == [{"name": "a.png", "caption": ""}, {"name": "b.png", "caption": ""}]
    assert errors == {
        "captions[0].caption": "This field is required.",
        "captions[1].caption": "This field is required.",
    }
    assert clean_values(form, {}, prerequisites=PHOTOS, partial=True)[1] == {}


def test_for_each_items_must_match_the_source_in_order() -> None:
    form = one(CAPTIONS)
    swapped = [{"name": "b.png", "caption": "x"}, {"name": "a.png", "caption": "y"}]
    _, errors = clean_values(form, {"captions": swapped}, prerequisites=PHOTOS, partial=True)
    assert errors == {
        "captions[0].name": "Expected the item for 'a.png' here, not 'b.png': keep the items in the order of "
        "'photo_adjustment.photos'.",
        "captions[1].name": "Expected the item for 'b.png' here, not 'a.png': keep the items in the order of "
        "'photo_adjustment.photos'.",
    }
    _, errors = clean_values(form, {"captions": [{"caption": "x"}]}, prerequisites=PHOTOS, partial=True)
    assert errors == {"captions": "Give one item for each of the 2 entries of 'photo_adjustment.photos'."}


def test_for_each_with_a_missing_or_wrong_source_says_which_prerequisite() -> None:
    form = one(CAPTIONS)
    _, errors = clean_values(form, {"captions": []}, prerequisites={}, partial=True)
    assert errors == {
        "captions": "This list is made from 'photo_adjustment.photos', the output of step 'photo_adjustment', "
        "which is missing."
    }
    wrong = {"photo_adjustment": {"photos": ["a.png"]}}
    _, errors = clean_values(form, {}, prerequisites=wrong, partial=True)
    assert errors == {"captions": "This list is made from 'photo_adjustment.photos', which is not a list of objects."}
    assert for_each_elements(form.fields[0], wrong) == []
    assert for_each_elements(form.fields[0], {}) == []
    empty = {"photo_adjustment": {"photos": []}}
    assert clean_values(form, {}, prerequisites=empty, partial=False) == ({"captions": []}, {})


def test_resolve_walks_objects_and_list_indexes() -> None:
    assert resolve(PHOTOS, "photo_adjustment.photos.1.name") == "b.png"
    assert resolve(PHOTOS, "photo_adjustment.photos.2.name") is None
    assert resolve(PHOTOS, "photo_adjustment.missing") is None
    assert resolve(PHOTOS, "reporting.text") is None


# --- parsing --------------------------------------------------------------------------------------


def test_parse_fills_in_defaults() -> None:
    form = parse_form(
        {
            "fields": [
                {"name": "photo_caption", "type": "text"},
                {"name": "stars", "type": "rating", "label": "Your rating"},
                {"name": "pic", "type": "image"},
                {"name": "answer", "type": "choice", "choices": ["y", {"value": "n", "label": "No"}]},
            ]
        }
    )
    caption, stars, pic, answer = form.fields
    assert caption == FieldDef(name="photo_caption", type="text", label="Photo caption")
    assert (stars.label, stars.min, stars.max) == ("Your rating", 1, 5)
    assert pic.accept == ("png", "jpg", "jpeg", "gif", "webp")
    assert pic.max_size == 10_000_000
    assert pic.folder == "uploads/project-{project_id}/task-{task_id}/{field}"
    assert answer.choices == (Choice("y", "y"), Choice("n", "No"))
    assert form.field("stars") is stars
    assert form.field("nope") is None
    assert step_form({"template": "x.html"}) is None
    assert step_form({"form": [{"name": "a", "type": "text"}]}) == FormDef((FieldDef("a", "text", "A"),))


# --- checking definitions ----------------------------------------------------------------------------


def test_check_form_reports_every_problem_at_its_path() -> None:
    raw: list[Any] = [
        {"name": "answer", "type": "choice", "choices": []},
        {"name": "answer", "type": "rating", "min": 7, "rows": 3},
        {"name": "bad name", "type": "txt"},
        {"name": "pic", "type": "image", "folder": "x/{project}/{prerequisites.a}", "accept": [".PNG"]},
        {
            "name": "captions",
            "type": "list",
            "for_each": {"source": "photo_adjustment", "keys": "name"},
            "fields": [{"name": "inner", "type": "list", "fields": [{"name": "x", "type": "text"}]}],
        },
        {"name": "stars", "type": "rating", "default": 9},
        {"type": "text", "label": 3, "colour": "red"},
        "title",
    ]
    problems = check_form(raw, "steps[2].user_interface.form")
    assert [str(p) for p in problems] == [
        "steps[2].user_interface.form[0].choices: choice fields need at least one choice, like "
        '["yes", "no"] or [{"value": "y", "label": "Yes"}]',
        "steps[2].user_interface.form[1].rows: 'rows' applies only to textarea fields; remove it",
        "steps[2].user_interface.form[1].min: min (7) is greater than max (5) (a rating goes from 1 to 5 unless "
        "you set min and max); swap them or fix one",
        "steps[2].user_interface.form[1].name: duplicate field name 'answer' (also steps[2].user_interface.form[0]); "
        "names must be unique within the form",
        "steps[2].user_interface.form[2].name: a string ('bad name') is not a field name; use letters, digits and "
        "'_', starting with a letter or '_'",
        "steps[2].user_interface.form[2].type: unknown field type 'txt' (did you mean 'text'?); use one of: "
        + ", ".join(FIELD_TYPES),
        "steps[2].user_interface.form[3].accept[0]: '.PNG' is not a file extension in lower case without the "
        "dot; write 'png'",
        "steps[2].user_interface.form[3].folder: unknown placeholder {project} (did you mean 'project_id'?); "
        "use {project_id}, {task_id}, {field} or {prerequisites.STEP.KEY}",
        "steps[2].user_interface.form[3].folder: {prerequisites.a} needs a step and a key, like "
        "{prerequisites.STEP.KEY}",
        "steps[2].user_interface.form[4].for_each.keys: unknown key (did you mean 'key'?); the keys of for_each "
        "are: source, key, image, title",
        "steps[2].user_interface.form[4].for_each.source: a string ('photo_adjustment') is not a prerequisite "
        "path; write 'STEP.KEY' (a step slug, then keys, separated by dots), like 'photo_adjustment.photos'",
        "steps[2].user_interface.form[4].for_each.key: field required: the element attribute that identifies "
        "each element, like 'name'",
        "steps[2].user_interface.form[4].fields[0].type: a list cannot hold another list; give its items plain fields",
        "steps[2].user_interface.form[5].default: not a valid default for this rating field: Enter a whole "
        "number between 1 and 5.",
        "steps[2].user_interface.form[6].colour: unknown key; the keys of a field are: name, type, label, help, "
        "placeholder, required, default, choices, min, max, rows, multiple, accept, max_size, folder, fields, "
        "for_each",
        "steps[2].user_interface.form[6].name: field required: the name the value is stored under, like 'summary'",
        "steps[2].user_interface.form[6].label: expected a string, got a number (3)",
        'steps[2].user_interface.form[7]: expected a field object like {"name": "summary", "type": "textarea"}, '
        "got a string ('title')",
    ]


CHECK_CASES: list[tuple[str, Any, str, str]] = [
    ("not a list", "rating", "form", "expected a list of fields like"),
    ("empty", [], "form", "a form needs at least one field"),
    ("object without fields", {"field": []}, "form.field", "unknown key (did you mean 'fields'?)"),
    ("object without fields", {}, "form.fields", "field required: the list of fields"),
    ("missing type", [{"name": "a"}], "form[0].type", "field required; use one of: text, textarea"),
    ("choices missing", [{"name": "a", "type": "choice"}], "form[0].choices", "choice fields need 'choices'"),
    (
        "choices on text",
        [{"name": "a", "type": "text", "choices": ["x"]}],
        "form[0].choices",
        "'choices' applies only to choice, multichoice fields; remove it",
    ),
    (
        "duplicate choice",
        [{"name": "a", "type": "choice", "choices": ["x", {"value": "x", "label": "X"}]}],
        "form[0].choices[1].value",
        "duplicate choice value 'x' (also form[0].choices[0])",
    ),
    ("empty choice", [{"name": "a", "type": "choice", "choices": [""]}], "form[0].choices[0]", "cannot be empty"),
    (
        "fractional rating bound",
        [{"name": "a", "type": "rating", "max": 4.5}],
        "form[0].max",
        "expected a whole number, got a number (4.5)",
    ),
    (
        "negative length",
        [{"name": "a", "type": "text", "min": -1}],
        "form[0].min",
        "expected a whole number of characters, 0 or more",
    ),
    ("min above max", [{"name": "a", "type": "number", "min": 3, "max": 1}], "form[0].min", "min (3) is greater"),
    ("bool bound", [{"name": "a", "type": "number", "min": True}], "form[0].min", "expected a number, got true"),
    ("rows zero", [{"name": "a", "type": "textarea", "rows": 0}], "form[0].rows", "1 or more"),
    ("required not bool", [{"name": "a", "type": "text", "required": "yes"}], "form[0].required", "true or false"),
    ("max_size", [{"name": "a", "type": "file", "max_size": 0}], "form[0].max_size", "a size in bytes"),
    ("folder escapes", [{"name": "a", "type": "file", "folder": "../x"}], "form[0].folder", "without '..'"),
    ("folder brace", [{"name": "a", "type": "file", "folder": "x/{task_id"}], "form[0].folder", "unbalanced"),
    ("list without fields", [{"name": "a", "type": "list"}], "form[0].fields", "list fields need 'fields'"),
    (
        "file in a list",
        [{"name": "a", "type": "list", "fields": [{"name": "f", "type": "image"}]}],
        "form[0].fields[0].type",
        "image fields cannot be inside a list",
    ),
    (
        "item named like the key",
        [{**CAPTIONS, "fields": [{"name": "name", "type": "text"}]}],
        "form[0].fields[0].name",
        "'name' is the for_each key, copied into each item",
    ),
    (
        "duplicate item field",
        [{"name": "a", "type": "list", "fields": [{"name": "x", "type": "text"}, {"name": "x", "type": "url"}]}],
        "form[0].fields[1].name",
        "names must be unique within the list's item fields",
    ),
    ("for_each default", [{**CAPTIONS, "default": []}], "form[0].default", "remove 'default'"),
    (
        "bad item default",
        [{**NOTES, "default": [{"note": "x", "stars": 0}]}],
        "form[0].default[0].stars",
        "not a valid default for this list field: Enter a whole number between 1 and 5.",
    ),
    (
        "default not a choice",
        [{"name": "a", "type": "choice", "choices": ["x"], "default": "y"}],
        "form[0].default",
        "Choose one of: x.",
    ),
    ("for_each not an object", [{**CAPTIONS, "for_each": "photos"}], "form[0].for_each", "expected an object like"),
]


@pytest.mark.parametrize(
    ("raw", "path", "fragment"), [c[1:] for c in CHECK_CASES], ids=[f"{i}-{c[0]}" for i, c in enumerate(CHECK_CASES)]
)
def test_check_form_says_how_to_fix_it(raw: Any, path: str, fragment: str) -> None:
    problems = check_form(raw, "form")
    matching = [p for p in problems if p.path == path]
    assert any(fragment in p.message for p in matching), "\n".join(map(str, problems))


def test_good_definitions_pass_check_form() -> None:
    good: list[Any] = [
        {"name": "a", "type": "text", "label": "A", "help": "h", "placeholder": "p", "required": True, "min": 0},
        {"name": "b", "type": "textarea", "rows": 5, "max": 2000, "default": "draft"},
        {"name": "c", "type": "number", "min": -1.5, "max": 2.5, "default": 0},
        {"name": "d", "type": "rating", "min": 0, "max": 10, "default": 7},
        {"name": "e", "type": "multichoice", "choices": ["x", "y"], "min": 1, "max": 2, "default": ["x"]},
        {"name": "f", "type": "file", "multiple": True, "accept": ["pdf", "docx"], "max_size": 5_000_000},
        {"name": "g", "type": "image", "folder": "{prerequisites.document_creation.raw_photos_folder}"},
        {**NOTES, "default": [{"note": "first"}]},
        CAPTIONS,
        {"name": "h", "type": "boolean", "default": True},
    ]
    assert check_form(good, "form") == []
    assert check_form({"fields": good}, "form") == []


# --- uploads -----------------------------------------------------------------------------------------


def test_check_upload() -> None:
    image = FieldDef("pic", "image", "Picture", accept=("png", "jpg"), max_size=2_000_000)
    assert check_upload(image, "cat.JPG", 1_999_999) is None
    assert check_upload(image, "cat.gif", 10) == "'cat.gif' is not an accepted file; upload a file of type: png, jpg."
    assert check_upload(image, "cat", 10) == "'cat' is not an accepted file; upload a file of type: png, jpg."
    assert check_upload(image, "cat.png", 12_345_678) == "'cat.png' is 12.3 MB; files may be at most 2 MB."
    anything = FieldDef("doc", "file", "Document")
    assert check_upload(anything, "notes", 10_000_000) is None
    assert check_upload(anything, "huge.iso", 10_000_001) == "'huge.iso' is 10 MB; files may be at most 10 MB."
    assert check_upload(FieldDef("title", "text", "Title"), "a.png", 1) == "Title does not take files."


def test_upload_folder_fills_in_placeholders() -> None:
    default = one({"name": "photos", "type": "image"}).fields[0]
    assert upload_folder(default, project_id=7, task_id=42, prerequisites={}) == "uploads/project-7/task-42/photos"
    raw = {"name": "raw", "type": "image", "folder": "{prerequisites.document_creation.raw_photos_folder}/"}
    field = one(raw).fields[0]
    prerequisites = {"document_creation": {"raw_photos_folder": "journalism/project-7/raw_photos"}}
    assert (
        upload_folder(field, project_id=7, task_id=1, prerequisites=prerequisites) == "journalism/project-7/raw_photos"
    )
    with pytest.raises(ValueError, match="needs prerequisite 'document_creation.raw_photos_folder'.*which is missing"):
        upload_folder(field, project_id=7, task_id=1, prerequisites={})
    sneaky = {"document_creation": {"raw_photos_folder": "../../etc"}}
    with pytest.raises(ValueError, match="outside the file store"):
        upload_folder(field, project_id=7, task_id=1, prerequisites=sneaky)


# --- forms in version definitions --------------------------------------------------------------------

WORKFLOW = WorkflowDef(slug="journalism", name="Journalism")


def version(form: Any = None, **ui: Any) -> dict[str, Any]:
    """Photos are adjusted by a machine step, then captioned by a human one with `form`."""
    if form is not None:
        ui["form"] = form
    return {
        "slug": "v1",
        "name": "v1",
        "steps": [
            {"slug": "photo_adjustment", "name": "Adjust", "is_human": False, "execution_function": {"path": "x.y"}},
            {
                "slug": "copy_editing",
                "name": "Copy editing",
                "creation_depends_on": ["photo_adjustment"],
                "user_interface": ui,
            },
        ],
    }


def problems(data: dict[str, Any]) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        parse_version(data, workflow=WORKFLOW, check_imports=False)
    return info.value.problems


GOOD_FORM: list[Any] = [
    {"name": "headline", "type": "text", "required": True, "max": 80},
    CAPTIONS,
]


def test_a_version_with_a_form_loads_and_its_stored_form_parses_back() -> None:
    data = version(GOOD_FORM, template="journalism/copy_editing.html")
    loaded, warnings = parse_version(data, workflow=WORKFLOW, check_imports=False)
    assert warnings == []
    step = loaded.step("copy_editing")
    assert step.user_interface == {"form": GOOD_FORM, "template": "journalism/copy_editing.html"}
    form = step_form(step.user_interface)
    assert form is not None and [f.name for f in form.fields] == ["headline", "captions"]
    again, _ = parse_version(loaded.model_dump(mode="json"), workflow=WORKFLOW, check_imports=False)
    assert again == loaded


def test_a_bad_form_is_reported_at_the_step_path_with_other_problems() -> None:
    data = version(
        [{"name": "rating", "type": "rating", "max": 0}, {"name": "answer", "type": "choice", "choices": []}]
    )
    data["steps"][1]["creation_depends_on"] = ["photo_adjustmnt"]
    assert [str(p) for p in problems(data)] == [
        "steps[1].user_interface.form[0].max: min (1) is greater than max (0) (a rating goes from 1 to 5 unless "
        "you set min and max); swap them or fix one",
        "steps[1].user_interface.form[1].choices: choice fields need at least one choice, like "
        '["yes", "no"] or [{"value": "y", "label": "Yes"}]',
        "steps[1].creation_depends_on[0]: unknown step 'photo_adjustmnt' (did you mean 'photo_adjustment'?)",
    ]


def test_user_interface_keys_and_template_are_checked() -> None:
    data = version(GOOD_FORM, templat="x.html")
    assert [str(p) for p in problems(data)] == [
        "steps[1].user_interface.templat: unknown key 'templat' in user_interface (did you mean 'template'?); "
        "the keys are: form, template"
    ]
    found = problems(version(GOOD_FORM, template="copy_editing"))
    assert [p.path for p in found] == ["steps[1].user_interface.template"]
    assert "expected a Django template name ending in '.html'" in found[0].message


def test_b12_angular_keys_still_only_warn_beside_a_form() -> None:
    data = version(GOOD_FORM, angular_module="m", angular_directive="d")
    loaded, warnings = parse_version(data, workflow=WORKFLOW, check_imports=False)
    assert loaded.step("copy_editing").user_interface == {"form": GOOD_FORM}
    assert len(warnings) == 1 and "ignoring B12 Angular keys angular_directive, angular_module" in warnings[0]


def test_form_sources_must_be_prerequisite_steps() -> None:
    typo = copy.deepcopy(CAPTIONS)
    typo["for_each"]["source"] = "photo_adjustmnt.photos"
    folder = {"name": "pic", "type": "image", "folder": "{prerequisites.copy_editing.folder}"}
    assert [str(p) for p in problems(version([typo, folder]))] == [
        "steps[1].user_interface.form[0].for_each.source: unknown step 'photo_adjustmnt' "
        "(did you mean 'photo_adjustment'?)",
        "steps[1].user_interface.form[1].folder: a step's form cannot read the step's own output; use an earlier "
        "step than 'copy_editing'",
    ]
    data = version([CAPTIONS])
    data["steps"][1]["creation_depends_on"] = []
    assert [str(p) for p in problems(data)] == [
        "steps[1].user_interface.form[0].for_each.source: step 'photo_adjustment' is not a prerequisite of "
        "'copy_editing', so its output is not available here; add 'photo_adjustment' to creation_depends_on"
    ]


def test_machine_steps_take_no_form() -> None:
    data = version(GOOD_FORM)
    data["steps"][0]["user_interface"] = {"form": [{"name": "x", "type": "nope"}]}
    assert [p.path for p in problems(data)] == ["steps[0].user_interface"]
