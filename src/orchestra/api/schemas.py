"""What the API's request and response schemas share: the error shape, and input types whose documented
constraints are exactly the ones the server enforces (ids, dates, durations, request bodies).

Each type here says in the OpenAPI document what it accepts, and rejects with a 400 naming the field
whatever the document does not allow, so a client (or a fuzzer) can trust the document both ways.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AfterValidator, BaseModel, BeforeValidator, GetJsonSchemaHandler, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from orchestra.engine.text import printable_path, text_problem, text_problem_at

# Text without NUL (U+0000), which PostgreSQL cannot store in text or jsonb, and without unpaired surrogates
# (JSON's "\\ud800"), which are not Unicode text at all: refused with a 400 instead of failing in the database.
# The document says so for NUL (schemas cannot name surrogates, and generators do not make them).
NO_NUL = "^[^\\u0000]*$"


def _text(value: str) -> str:
    if problem := text_problem(value):
        raise PydanticCustomError("text", problem)
    return value


Text = Annotated[str, AfterValidator(_text), Field(json_schema_extra={"pattern": NO_NUL})]


class _KeysWithoutNul:
    """Documents that an object's keys have no NUL (pydantic would say so with `patternProperties`, which
    leaves other keys allowed)."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        schema = handler(core_schema)
        schema["propertyNames"] = {"pattern": NO_NUL}
        return schema


# Any JSON value whose strings and keys have no NUL (for the document; `JsonObject` checks it).
JsonValue = TypeAliasType(
    "JsonValue",
    "None | bool | int | float | Text | list[JsonValue] | Annotated[dict[str, JsonValue], _KeysWithoutNul()]",
)


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PydanticCustomError("json_object", "expected a JSON object")
    return _storable(value)


def _storable(value: Any) -> Any:
    found = text_problem_at(value, "")
    if found is not None:
        where = printable_path(found[0])
        raise PydanticCustomError("text", "{where}: {problem}", {"where": where, "problem": found[1]})
    return value


# A JSON object given by the client (project data, task data), stored as it is.
JsonObject = Annotated[
    dict[str, Any],
    PlainValidator(_json_object, json_schema_input_type=Annotated[dict[str, JsonValue], _KeysWithoutNul()]),
]

# Any JSON value (a task-list object's data), its strings and keys storable.
AnyJson = Annotated[Any, PlainValidator(_storable, json_schema_input_type=JsonValue)]

# Database ids are positive 64-bit integers; a larger number cannot name a row (and would overflow the query).
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Project.priority is a 32-bit column.
Priority = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]

# Pages past this are empty anyway; the bound keeps the query's offset within a 64-bit integer.
Page = Annotated[int, Field(ge=1, le=2**31 - 1)]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    # pydantic alone would also take a number (a Unix time) or other ISO 8601 spellings.
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("date", "expected a date as YYYY-MM-DD")


Date = Annotated[dt.date, BeforeValidator(_iso_date)]

# A time entry is more than zero and at most 24 hours: seconds, or "H:MM" / "H:MM:SS" (hours 0-24).
MAX_SECONDS = 24 * 3600
CLOCK_PATTERN = (
    r"^(?:(?:0?[1-9]|1[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?"  # 1 hour or more
    r"|0?0:(?:0[1-9]|[1-5][0-9])(?::[0-5][0-9])?"  # minutes
    r"|0?0:00:(?:0[1-9]|[1-5][0-9])"  # seconds
    r"|24:00(?::00)?)$"
)
_CLOCK = re.compile(CLOCK_PATTERN)


def _duration(value: Any) -> int | str:
    if isinstance(value, float) and value.is_integer():  # JSON's 60.0 is the integer 60
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SECONDS:
        return value
    if isinstance(value, str) and _CLOCK.fullmatch(value):
        return value
    raise PydanticCustomError(
        "duration", "expected seconds (1 to 86400) or 'H:MM' or 'H:MM:SS' (more than zero, at most 24:00)"
    )


Duration = Annotated[
    int | str,
    PlainValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0, "maximum": MAX_SECONDS},
                {"type": "string", "pattern": CLOCK_PATTERN},
            ],
            "description": "seconds, or 'H:MM' or 'H:MM:SS'; more than zero, at most 24 hours",
        }
    ),
]


def duration_seconds(value: Duration) -> int:
    """Seconds in a validated `Duration`."""
    if isinstance(value, int):
        return value
    hours, minutes, seconds = (*(int(part) for part in value.split(":")), 0)[:3]
    return hours * 3600 + minutes * 60 + seconds


class Body(BaseModel):
    """A request body: a JSON object. (A ninja `Schema` reads attributes off any value, so `[]` or `3` would
    pass as a body whose fields all have defaults; a plain pydantic model takes only an object.)"""


class FieldError(Schema):
    field: str = Field(..., description="where the problem is, e.g. `project_data.url`")
    message: str


class Problem(Schema):
    path: str = Field(..., description="where in the definition, e.g. `steps[2].creation_depends_on`")
    message: str


class Error(Schema):
    """Every error response. Only `error` and `message` are always present."""

    error: str = Field(..., description="a stable code, e.g. `invalid`, `not_found`, `illegal_transition`")
    message: str = Field(..., description="what is wrong and how to fix it")
    field: str | None = Field(None, description="the request field at fault")
    header: str | None = Field(None, description="the request header at fault (signatures)")
    errors: list[FieldError] | dict[str, str] | None = Field(
        None, description="one entry per bad field; B12's assign_worker_to_task: a mapping from error kind"
    )
    success: bool | None = Field(None, description="always false; B12's assign_worker_to_task shape")
    problems: list[Problem] | None = Field(None, description="a workflow definition's problems")
