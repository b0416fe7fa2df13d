"""The API's input types accept exactly what the OpenAPI document says, and name what they refuse.

The fuzzer (tests/integration/test_openapi_fuzz.py) checks the document and the server agree; these tests
pin the edges and the messages a client sees.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from ninja import Field
from pydantic import TypeAdapter, ValidationError

from orchestra.api.schemas import (
    CLOCK_PATTERN,
    MAX_ID,
    Body,
    Date,
    Duration,
    Id,
    JsonObject,
    Text,
    duration_seconds,
)


def _message(adapter: TypeAdapter, value: object) -> str:
    with pytest.raises(ValidationError) as raised:
        adapter.validate_python(value)
    return raised.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(60, 60), (60.0, 60), ("1:30", 5400), ("0:00:01", 1), ("00:01", 60), ("23:59:59", 86399), ("24:00", 86400)],
)
def test_a_duration_is_seconds_or_a_clock_time(value, seconds):
    assert duration_seconds(TypeAdapter(Duration).validate_python(value)) == seconds


@pytest.mark.parametrize("value", [0, -5, 86401, 1.5, True, "3600", "1:5", "1:60", "24:01", "0:00", "", " 1:00", None])
def test_a_duration_outside_the_document_is_refused(value):
    assert "expected seconds (1 to 86400) or 'H:MM' or 'H:MM:SS'" in _message(TypeAdapter(Duration), value)


def test_the_clock_pattern_is_the_one_the_server_checks():
    # The same pattern is documented and enforced; spot-check it agrees with the arithmetic.
    for hours in range(25):
        for minutes in (0, 1, 59):
            text = f"{hours}:{minutes:02d}"
            total = hours * 3600 + minutes * 60
            assert bool(re.fullmatch(CLOCK_PATTERN, text)) == (0 < total <= 86400), text


def test_a_date_is_written_year_month_day():
    adapter = TypeAdapter(Date)
    assert adapter.validate_python("2024-05-01") == dt.date(2024, 5, 1)
    for value in (0, "0", "20240501", "2024-W18-3", "2024-02-30"):
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_an_id_fits_a_database_id():
    adapter = TypeAdapter(Id)
    assert adapter.validate_python(MAX_ID) == MAX_ID
    for value in (0, -1, MAX_ID + 1):
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_text_refuses_what_the_database_cannot_store():
    adapter = TypeAdapter(Text)
    assert _message(adapter, "a\x00b") == "must not contain the NUL character (\\u0000)"
    assert _message(adapter, "a\ud800") == "must be Unicode text (it holds an unpaired surrogate)"
    assert adapter.validate_python("ünïcödé ✓") == "ünïcödé ✓"


def test_a_json_object_says_where_its_text_is_wrong():
    adapter = TypeAdapter(JsonObject)
    assert adapter.validate_python({"a": [1, None, {"b": "ok"}]}) == {"a": [1, None, {"b": "ok"}]}
    assert _message(adapter, {"a": [1, {"b": "x\x00"}]}) == "a[1].b: must not contain the NUL character (\\u0000)"
    assert _message(adapter, {"k\x00": 1}).startswith("k\\u0000: must not contain")
    assert _message(adapter, [1]) == "expected a JSON object"


def test_a_body_is_a_json_object():
    class Start(Body):
        description: str = Field("")

    assert Start.model_validate({}).description == ""
    for value in ([None, None], 3, "x"):
        with pytest.raises(ValidationError):
            Start.model_validate(value)
