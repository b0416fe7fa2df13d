"""Time tracking: time entries and the worker's timer. A worker changes only their own time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from orchestra.engine.errors import NotFound, StateError, ValidationError
from orchestra.engine.text import text_problem
from orchestra.models import TaskAssignment, TaskTimer, TimeEntry, Worker
from orchestra.services._base import Tx, service


def _assignment(worker: Worker, assignment_id: int | None) -> TaskAssignment | None:
    if assignment_id is None:
        return None
    found = TaskAssignment.objects.filter(pk=assignment_id, worker=worker).select_related("task").first()
    if found is None:
        raise NotFound(f"assignment: you have no assignment {assignment_id}", field="assignment")
    return found


def _project_id(assignment: TaskAssignment | None) -> int | None:
    return assignment.task.project_id if assignment else None


# The days a time entry may have: wider than anyone logs time for, narrower than the calendar, whose ends break
# a week's arithmetic (the week pages show the week before and after).
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)


def _check_entry(date: dt.date, time_worked: dt.timedelta, description: str) -> None:
    if not EARLIEST_DATE <= date <= LATEST_DATE:
        raise ValidationError(
            f"date: {date.isoformat()} is out of range; time entries are dated from {EARLIEST_DATE.isoformat()}"
            f" to {LATEST_DATE.isoformat()}",
            field="date",
        )
    if time_worked <= dt.timedelta(0):
        raise ValidationError("time_worked: must be more than zero", field="time_worked")
    if time_worked > dt.timedelta(hours=24):
        raise ValidationError("time_worked: at most 24 hours per entry; split longer work by day", field="time_worked")
    _check_description(description)


def _check_description(description: str) -> None:
    if len(description) > 200:
        raise ValidationError("description: at most 200 characters", field="description")
    if problem := text_problem(description):
        raise ValidationError(f"description: {problem}", field="description")


def _entry_event(tx: Tx, action: str, entry: TimeEntry) -> None:
    tx.event(
        action,
        project_id=_project_id(entry.assignment),
        task_id=entry.assignment.task_id if entry.assignment else None,
        entry=entry.pk,
        date=entry.date.isoformat(),
        seconds=int(entry.time_worked.total_seconds()),
    )


def time_entry_create(
    *,
    worker: Worker,
    date: dt.date,
    time_worked: dt.timedelta,
    description: str = "",
    assignment_id: int | None = None,
) -> TimeEntry:
    _check_entry(date, time_worked, description)
    with service(worker) as tx:
        entry = TimeEntry.objects.create(
            worker=worker,
            date=date,
            time_worked=time_worked,
            description=description,
            assignment=_assignment(worker, assignment_id),
            created_at=tx.now,
            updated_at=tx.now,
        )
        _entry_event(tx, "time_entry_created", entry)
    return entry


def time_entry_get(worker: Worker, entry_id: int) -> TimeEntry:
    entry = TimeEntry.objects.filter(pk=entry_id, worker=worker).select_related("assignment").first()
    if entry is None:
        raise NotFound(f"you have no time entry {entry_id}", entry_id=entry_id)
    return entry


_UNSET: Any = object()


def time_entry_update(
    *,
    worker: Worker,
    entry_id: int,
    date: dt.date | None = None,
    time_worked: dt.timedelta | None = None,
    description: str | None = None,
    assignment_id: int | None = _UNSET,
) -> TimeEntry:
    """Change the given fields of one of the worker's entries (None leaves a field as it is)."""
    with service(worker) as tx:
        entry = time_entry_get(worker, entry_id)
        if date is not None:
            entry.date = date
        if time_worked is not None:
            entry.time_worked = time_worked
        if description is not None:
            entry.description = description
        if assignment_id is not _UNSET:
            entry.assignment = _assignment(worker, assignment_id)
        _check_entry(entry.date, entry.time_worked, entry.description)
        entry.updated_at = tx.now
        entry.save()
        _entry_event(tx, "time_entry_updated", entry)
    return entry


def time_entry_delete(*, worker: Worker, entry_id: int) -> None:
    with service(worker) as tx:
        entry = time_entry_get(worker, entry_id)
        _entry_event(tx, "time_entry_deleted", entry)
        entry.delete()


def _timer(worker: Worker) -> TaskTimer:
    timer, _ = TaskTimer.objects.select_for_update().get_or_create(worker=worker)
    return timer


def timer_get(worker: Worker) -> TaskTimer:
    timer = TaskTimer.objects.filter(worker=worker).select_related("assignment").first()
    return timer if timer is not None else TaskTimer(worker=worker)


def timer_start(*, worker: Worker, assignment_id: int | None = None, description: str = "") -> TaskTimer:
    _check_description(description)
    with service(worker) as tx:
        timer = _timer(worker)
        if timer.start_time is not None:
            raise StateError(
                f"the timer is already running (since {timer.start_time.isoformat()}); stop it first",
                field="timer",
            )
        timer.assignment = _assignment(worker, assignment_id)
        timer.description = description
        timer.start_time, timer.stop_time = tx.now, None
        timer.save()
        tx.event("timer_started", project_id=_project_id(timer.assignment))
    return timer


def timer_stop(*, worker: Worker) -> TimeEntry:
    """Stop the timer; the time since it started becomes a time entry dated the day it started."""
    with service(worker) as tx:
        timer = _timer(worker)
        if timer.start_time is None:
            raise StateError("the timer is not running; start it first", field="timer")
        started = timer.start_time
        worked = max(tx.now - started, dt.timedelta(seconds=1))
        entry = TimeEntry.objects.create(
            worker=worker,
            date=timezone.localdate(started),
            time_worked=worked,
            description=timer.description,
            assignment=timer.assignment,
            timer_start_time=started,
            timer_stop_time=tx.now,
            created_at=tx.now,
            updated_at=tx.now,
        )
        timer.start_time, timer.stop_time = None, tx.now
        timer.save()
        tx.event("timer_stopped", project_id=_project_id(timer.assignment), entry=entry.pk)
    return entry


def timer_update(*, worker: Worker, description: str | None = None, assignment_id: int | None = _UNSET) -> TaskTimer:
    if description is not None:
        _check_description(description)
    with service(worker) as tx:
        timer = _timer(worker)
        if description is not None:
            timer.description = description
        if assignment_id is not _UNSET:
            timer.assignment = _assignment(worker, assignment_id)
        timer.save()
        tx.event("timer_updated", project_id=_project_id(timer.assignment))
    return timer
