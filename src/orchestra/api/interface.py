"""The worker interface API (B12's `/orchestra/api/interface/`): a worker's own tasks and time.

Authenticated by session (writes need the CSRF token) or `Authorization: Token …`. A worker reads and
changes only their own assignments, time entries and timer.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from orchestra.api.auth import WorkerCaller, worker_auth
from orchestra.api.main import route
from orchestra.api.schemas import (
    MAX_ID,
    Body,
    Date,
    Duration,
    Id,
    JsonObject,
    Page,
    Text,
    duration_seconds,
)
from orchestra.engine.lifecycle import Role
from orchestra.models import TaskTimer, TimeEntry, Worker
from orchestra.selectors.work import STATES, dashboard_tasks, task_assignment_information, time_entries
from orchestra.services import timekeeping
from orchestra.services.tasks import task_pull, task_return, task_save, task_submit

router = Router(auth=worker_auth, tags=["worker interface"])


def caller(request: HttpRequest) -> WorkerCaller:
    return request.auth  # type: ignore[attr-defined, no-any-return]


def worker_of(request: HttpRequest) -> Worker:
    who = caller(request)
    if who.worker is None:
        raise HttpError(403, f"user {who.user.get_username()!r} is not an Orchestra worker")
    return who.worker


class DashboardFilter(Schema):
    state: Literal[STATES] | None = None  # type: ignore[valid-type]
    page: Page = 1
    page_size: int = Field(50, ge=1, le=500)


@route(router, "GET", "/dashboard_tasks")
def get_dashboard_tasks(request: HttpRequest, filters: Query[DashboardFilter]) -> dict[str, Any]:
    """The worker's tasks in B12's buckets (returned, in progress, pending review, …) with counts."""
    return dashboard_tasks(worker_of(request), state=filters.state, page=filters.page, page_size=filters.page_size)


@route(router, "POST", "/new_task_assignment/{role}")
def new_task_assignment(request: HttpRequest, role: Role) -> dict[str, Any]:
    """Take the next task this worker may do ("New delivery task" / "New review task")."""
    assignment = task_pull(worker=worker_of(request), role=role)
    return {"id": assignment.task_id, "task_id": assignment.task_id, "assignment_id": assignment.pk}


class TaskId(Body):
    task_id: Id


@route(router, "POST", "/task_assignment_information")
def get_task_assignment_information(request: HttpRequest, payload: TaskId) -> dict[str, Any]:
    """One of the worker's tasks: its data, step, project and the prerequisites' outputs."""
    who = caller(request)
    return task_assignment_information(payload.task_id, worker_of(request), is_project_admin=who.is_project_admin)


class SaveTask(Body):
    task_id: Id
    task_data: JsonObject = Field(default_factory=dict)


@route(router, "POST", "/save_task_assignment")
def save_task_assignment(request: HttpRequest, payload: SaveTask) -> dict[str, Any]:
    """Save a draft of the worker's work."""
    task_save(task_id=payload.task_id, worker=worker_of(request), data=payload.task_data)
    return {}


# Feedback with something besides whitespace (as Python's `str.isspace` has it), to reject.
_NOT_ONLY_WHITESPACE = r"[^\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class SubmitTask(SaveTask):
    # task_return refuses a return without feedback; the document says so.
    model_config = {
        "json_schema_extra": {
            "if": {"required": ["command_type"], "properties": {"command_type": {"const": "reject"}}},
            "then": {"required": ["feedback"], "properties": {"feedback": {"pattern": _NOT_ONLY_WHITESPACE}}},
        }
    }

    command_type: Literal["submit", "accept", "reject"] = "submit"
    feedback: Text = Field("", description="required to reject (return) work")


@route(router, "POST", "/submit_task_assignment")
def submit_task_assignment(request: HttpRequest, payload: SubmitTask) -> dict[str, Any]:
    """Submit work, or as a reviewer accept it or reject (return) it with feedback."""
    worker = worker_of(request)
    if payload.command_type == "reject":
        task = task_return(task_id=payload.task_id, worker=worker, data=payload.task_data, feedback=payload.feedback)
    else:
        task = task_submit(task_id=payload.task_id, worker=worker, data=payload.task_data, command=payload.command_type)
    return {"task_id": task.pk, "status": task.status}


# Time entries --------------------------------------------------------------------------------------------


class TimeEntryOut(Schema):
    id: int
    date: dt.date
    time_worked: str = Field(..., description="HH:MM:SS")
    seconds: int
    description: str
    assignment: int | None


def _entry(entry: TimeEntry) -> dict[str, Any]:
    seconds = int(entry.time_worked.total_seconds())
    return {
        "id": entry.pk,
        "date": entry.date,
        "time_worked": f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}",
        "seconds": seconds,
        "description": entry.description,
        "assignment": entry.assignment_id,
    }


def _duration(value: Duration | None) -> dt.timedelta | None:
    return None if value is None else dt.timedelta(seconds=duration_seconds(value))


class TimeEntryFilter(Schema):
    min_date: Date | None = None
    max_date: Date | None = None
    assignment: Id | None = None


@route(router, "GET", "/time_entries", response=list[TimeEntryOut])
def list_time_entries(request: HttpRequest, filters: Query[TimeEntryFilter]) -> list[dict[str, Any]]:
    """The worker's time entries, newest first, optionally between two dates or for one assignment."""
    entries = time_entries(
        worker_of(request), min_date=filters.min_date, max_date=filters.max_date, assignment_id=filters.assignment
    )
    return [_entry(e) for e in entries]


def _entry_date(day: dt.date) -> dt.date:
    first, last = timekeeping.EARLIEST_DATE, timekeeping.LATEST_DATE
    if not first <= day <= last:
        raise PydanticCustomError(
            "date",
            "out of range: time entries are dated from {first} to {last}",
            {"first": first.isoformat(), "last": last.isoformat()},
        )
    return day


# A time entry's day: a `Date` from timekeeping.EARLIEST_DATE to LATEST_DATE, which the document says with a
# pattern (years 1900-2999) so that the fuzzer makes only days the service takes.
EntryDate = Annotated[
    Date,
    AfterValidator(_entry_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": r"^(?:19[0-9]{2}|2[0-9]{3})-[0-9]{2}-[0-9]{2}$",
            "description": f"YYYY-MM-DD, from {timekeeping.EARLIEST_DATE} to {timekeeping.LATEST_DATE}",
        }
    ),
]


class TimeEntryIn(Body):
    date: EntryDate
    time_worked: Duration
    description: Text = Field("", max_length=200)
    assignment: Id | None = None


@route(router, "POST", "/time_entries", response={201: TimeEntryOut})
def create_time_entry(request: HttpRequest, payload: TimeEntryIn) -> Status[dict[str, Any]]:
    entry = timekeeping.time_entry_create(
        worker=worker_of(request),
        date=payload.date,
        time_worked=_duration(payload.time_worked) or dt.timedelta(0),
        description=payload.description,
        assignment_id=payload.assignment,
    )
    return Status(201, _entry(entry))


EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]


@route(router, "GET", "/time_entries/{entry_id}", response=TimeEntryOut)
def get_time_entry(request: HttpRequest, entry_id: EntryId) -> dict[str, Any]:
    return _entry(timekeeping.time_entry_get(worker_of(request), entry_id))


class TimeEntryPatch(Body):
    date: EntryDate | None = None
    time_worked: Duration | None = None
    description: Text | None = Field(None, max_length=200)
    assignment: Id | None = None


def _update(request: HttpRequest, entry_id: int, payload: TimeEntryPatch) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "assignment" in payload.model_fields_set:
        changes["assignment_id"] = payload.assignment
    entry = timekeeping.time_entry_update(
        worker=worker_of(request),
        entry_id=entry_id,
        date=payload.date,
        time_worked=_duration(payload.time_worked),
        description=payload.description,
        **changes,
    )
    return _entry(entry)


@route(router, "PATCH", "/time_entries/{entry_id}", response=TimeEntryOut)
def patch_time_entry(request: HttpRequest, entry_id: EntryId, payload: TimeEntryPatch) -> dict[str, Any]:
    """Change some fields of a time entry."""
    return _update(request, entry_id, payload)


@route(router, "PUT", "/time_entries/{entry_id}", response=TimeEntryOut)
def put_time_entry(request: HttpRequest, entry_id: EntryId, payload: TimeEntryIn) -> dict[str, Any]:
    """Replace a time entry."""
    return _update(request, entry_id, TimeEntryPatch(**payload.model_dump()))


@route(router, "DELETE", "/time_entries/{entry_id}", response={204: None})
def delete_time_entry(request: HttpRequest, entry_id: EntryId) -> Status[None]:
    timekeeping.time_entry_delete(worker=worker_of(request), entry_id=entry_id)
    return Status(204, None)


# Timer ---------------------------------------------------------------------------------------------------


class TimerOut(Schema):
    running: bool
    assignment: int | None
    description: str
    start_time: dt.datetime | None
    stop_time: dt.datetime | None
    seconds: int | None = Field(None, description="seconds since start, while running")


def _timer(timer: TaskTimer) -> dict[str, Any]:
    running = timer.start_time is not None
    return {
        "running": running,
        "assignment": timer.assignment_id,
        "description": timer.description,
        "start_time": timer.start_time,
        "stop_time": timer.stop_time,
        "seconds": int((timezone.now() - timer.start_time).total_seconds()) if timer.start_time else None,
    }


@route(router, "GET", "/timer", response=TimerOut)
def get_timer(request: HttpRequest) -> dict[str, Any]:
    return _timer(timekeeping.timer_get(worker_of(request)))


class TimerStart(Body):
    assignment: Id | None = None
    description: Text = ""


@route(router, "POST", "/timer/start", response=TimerOut)
def start_timer(request: HttpRequest, payload: TimerStart) -> dict[str, Any]:
    """Start the timer (409 if it is running already)."""
    timer = timekeeping.timer_start(
        worker=worker_of(request), assignment_id=payload.assignment, description=payload.description
    )
    return _timer(timer)


@route(router, "POST", "/timer/stop", response=TimeEntryOut)
def stop_timer(request: HttpRequest) -> dict[str, Any]:
    """Stop the timer; returns the time entry it made."""
    return _entry(timekeeping.timer_stop(worker=worker_of(request)))


class TimerPatch(Body):
    description: Text | None = Field(None, max_length=200)
    assignment: Id | None = None


@route(router, "POST", "/timer/update", response=TimerOut)
def update_timer(request: HttpRequest, payload: TimerPatch) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "assignment" in payload.model_fields_set:
        changes["assignment_id"] = payload.assignment
    return _timer(timekeeping.timer_update(worker=worker_of(request), description=payload.description, **changes))
