"""Time tracking pages: the timer bar on every page (htmx), and timecards by week."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from orchestra.engine.errors import OrchestraError
from orchestra.selectors.pages import open_assignments, week_entries
from orchestra.services import timekeeping
from orchestra.templatetags.orchestra_tags import hms
from orchestra.web._access import PageCaller, worker_page

_DURATION = re.compile(r"^\s*(?:(\d{1,2}):([0-5]?\d)(?::([0-5]?\d))?|(\d+(?:\.\d+)?)\s*h?)\s*$")


def parse_duration(text: str) -> dt.timedelta | None:
    """'1:30', '1:30:15', '1.5' or '1.5h' (hours); None if it is none of those."""
    match = _DURATION.match(text or "")
    if not match:
        return None
    if match.group(4) is not None:
        hours = float(match.group(4))
        # More than a timedelta holds is still a duration, one the service refuses as too long.
        return dt.timedelta(hours=hours) if hours < 1e6 else dt.timedelta.max
    hours, minutes, seconds = (int(g or 0) for g in match.group(1, 2, 3))
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _assignment_id(request: HttpRequest) -> int | None:
    value = request.POST.get("assignment", "")
    return int(value) if value.isdigit() else None


# --- the timer ----------------------------------------------------------------------------------------


def _timer_response(request: HttpRequest, caller: PageCaller, error: str = "") -> HttpResponse:
    assert caller.worker is not None
    timer = timekeeping.timer_get(caller.worker)
    context = {
        "timer": timer,
        "assignments": open_assignments(caller.worker, timer.assignment_id),
        "error": error,
    }
    if request.headers.get("HX-Request"):
        return render(request, "orchestra/app/_timer.html", context)
    if error:
        messages.error(request, error)
    back = request.POST.get("next") or request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    return redirect(back or "orchestra:dashboard")


@worker_page
def timer(request: HttpRequest, caller: PageCaller) -> HttpResponse:
    return _timer_response(request, caller)


@require_POST
@worker_page
def timer_action(request: HttpRequest, caller: PageCaller, action: str) -> HttpResponse:
    """Start, stop or update the timer; answers htmx with the timer bar, anything else with a redirect."""
    assert caller.worker is not None
    description = request.POST.get("description", "")
    try:
        if action == "start":
            timekeeping.timer_start(
                worker=caller.worker, assignment_id=_assignment_id(request), description=description
            )
        elif action == "stop":
            if "description" in request.POST or "assignment" in request.POST:
                timekeeping.timer_update(
                    worker=caller.worker, description=description, assignment_id=_assignment_id(request)
                )
            entry = timekeeping.timer_stop(worker=caller.worker)
            messages.success(request, f"Logged {hms(entry.time_worked)} on {entry.date:%Y-%m-%d}.")
        elif action == "update":
            timekeeping.timer_update(
                worker=caller.worker, description=description, assignment_id=_assignment_id(request)
            )
        else:
            return _timer_response(request, caller, f"No timer action {action!r}; use start, stop or update.")
    except OrchestraError as error:
        return _timer_response(request, caller, error.message)
    return _timer_response(request, caller)


# --- timecards ----------------------------------------------------------------------------------------


def _week_start(request: HttpRequest) -> dt.date:
    """The Monday of the asked week (?week=YYYY-MM-DD, any day of it); this week if none, or one whose
    neighbours are out of the calendar's range."""
    try:
        day = dt.date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = timezone.localdate()
    if not dt.date.min + dt.timedelta(days=14) <= day <= dt.date.max - dt.timedelta(days=14):
        day = timezone.localdate()
    return day - dt.timedelta(days=day.weekday())


def _entry_form(request: HttpRequest) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted entry's fields, and an error per field that is wrong."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "description": request.POST.get("description", "").strip(),
        "assignment_id": _assignment_id(request),
    }
    try:
        values["date"] = dt.date.fromisoformat(request.POST.get("date", ""))
    except ValueError:
        errors["date"] = "Enter a date (YYYY-MM-DD)."
    duration = parse_duration(request.POST.get("time_worked", ""))
    if duration is None:
        errors["time_worked"] = "Enter the time as hours:minutes (1:30) or hours (1.5)."
    else:
        values["time_worked"] = duration
    return values, errors


@worker_page
def timecards(request: HttpRequest, caller: PageCaller) -> HttpResponse:
    """A week of the worker's time entries, by day, with a form to add one."""
    assert caller.worker is not None
    start = _week_start(request)
    errors: dict[str, str] = {}
    if request.method == "POST":
        values, errors = _entry_form(request)
        if not errors:
            try:
                entry = timekeeping.time_entry_create(worker=caller.worker, **values)
            except OrchestraError as error:
                errors[getattr(error, "field", "") or "form"] = error.message
            else:
                messages.success(request, f"Added {hms(entry.time_worked)} on {entry.date:%Y-%m-%d}.")
                week = entry.date - dt.timedelta(days=entry.date.weekday())
                return redirect(f"{request.path}?week={week}")
    entries = week_entries(caller.worker, start)
    days = []
    for offset in range(7):
        day = start + dt.timedelta(days=offset)
        todays = [e for e in entries if e.date == day]
        days.append({"date": day, "entries": todays, "total": sum((e.time_worked for e in todays), dt.timedelta())})
    context = {
        "caller": caller,
        "section": "timecards",
        "start": start,
        "end": start + dt.timedelta(days=6),
        "previous": start - dt.timedelta(days=7),
        "next": start + dt.timedelta(days=7),
        "days": days,
        "total": sum((e.time_worked for e in entries), dt.timedelta()),
        "assignments": open_assignments(caller.worker),
        "errors": errors,
        "posted": request.POST if request.method == "POST" else {},
        "today": timezone.localdate(),
    }
    return render(request, "orchestra/app/timecards.html", context, status=400 if errors else 200)


@worker_page
def timecard_edit(request: HttpRequest, caller: PageCaller, entry_id: int) -> HttpResponse:
    assert caller.worker is not None
    try:
        entry = timekeeping.time_entry_get(caller.worker, entry_id)
    except OrchestraError:
        messages.error(request, f"Time entry {entry_id} is not one of yours.")
        return redirect("orchestra:timecards")
    errors: dict[str, str] = {}
    if request.method == "POST":
        values, errors = _entry_form(request)
        if not errors:
            try:
                entry = timekeeping.time_entry_update(worker=caller.worker, entry_id=entry_id, **values)
            except OrchestraError as error:
                errors[getattr(error, "field", "") or "form"] = error.message
            else:
                messages.success(request, "Time entry updated.")
                return redirect(
                    f"{reverse('orchestra:timecards')}?week={entry.date - dt.timedelta(days=entry.date.weekday())}"
                )
    context = {
        "caller": caller,
        "section": "timecards",
        "entry": entry,
        "errors": errors,
        "posted": request.POST if request.method == "POST" else {},
        "assignments": open_assignments(caller.worker, entry.assignment_id),
    }
    return render(request, "orchestra/app/timecard_edit.html", context, status=400 if errors else 200)


@require_POST
@worker_page
def timecard_delete(request: HttpRequest, caller: PageCaller, entry_id: int) -> HttpResponse:
    assert caller.worker is not None
    try:
        timekeeping.time_entry_delete(worker=caller.worker, entry_id=entry_id)
    except OrchestraError:
        messages.error(request, f"Time entry {entry_id} is not one of yours.")
    else:
        messages.success(request, "Time entry deleted.")
    back = request.POST.get("next", "")
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("orchestra:timecards")
    return redirect(back)
