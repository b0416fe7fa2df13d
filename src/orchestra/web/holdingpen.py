"""The Holding Pen pages for project admins: halted and failed automated tasks, and the decisions on them.

The list (`holdingpen`) filters and pages `pen_list` and applies one operation to the ticked rows; an
object's page (`holdingpen_object`) shows `pen_detail` and offers exactly its `operations` (a pending
action's choices as buttons of their own). Every change is one `object_apply` call; with htmx a refusal
is swapped into the button's error slot and success reloads the page, without it a redirect with a message.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from orchestra.engine.errors import NotFound, OrchestraError, ValidationError
from orchestra.engine.lifecycle import TaskStatus
from orchestra.selectors.holdingpen import pen_detail, pen_list
from orchestra.services.objects import OPERATIONS, object_apply
from orchestra.web._access import PageCaller, admin_page, refuse, sentence

PAGE_SIZE = 25
# Refusals named one by one in a bulk action's message; the rest are counted.
MAX_NAMED_REFUSALS = 10


@dataclass(frozen=True)
class Operation:
    """A button: the service operation it runs, with what it says before and after."""

    operation: str
    label: str
    confirm: str  # "{id}" and "{project}" are filled in per object
    done: str = ""  # after "Object 12", on success
    style: str = ""
    choice: str | None = None


# Object page buttons in the order shown; each appears when `pen_detail` lists its operation.
OBJECT_BUTTONS = (
    Operation("resume", "Resume", "Run object {id} on from the task after the one that stopped it?", "runs on"),
    Operation("restart_step", "Restart task", "Run the task that stopped object {id} again?", "runs that task again"),
    Operation(
        "restart_prev",
        "Restart previous task",
        "Run object {id} again from the task before?",
        "runs from the task before",
    ),
    Operation(
        "restart",
        "Restart from the start",
        "Run object {id} from the first task with its initial data? Its current data is replaced.",
        "runs again from the first task",
    ),
    Operation("retry", "Retry", "Run failed object {id} again?", "queued to run again"),
    Operation(
        "stop",
        "Stop here",
        "Complete object {id}'s task with its data as it is? The rest of its task list does not run.",
        "stopped; its task is complete",
    ),
    Operation(
        "abort",
        "Abort project",
        "Abort project {project}? Its unfinished tasks end; this cannot be undone.",
        "aborted with its project",
        style="danger",
    ),
)
_BY_OPERATION = {b.operation: b for b in OBJECT_BUTTONS}

# The list's bulk buttons, by the name they post; each runs one operation on every ticked object.
BULK_BUTTONS = {
    "approve": Operation("resolve", "Approve", "Approve the ticked objects?", style="primary", choice="accept"),
    "reject": Operation("resolve", "Reject", "Reject the ticked objects? They stop here.", choice="reject"),
    "resume": Operation("resume", "Resume", "Run the ticked objects on from the task after the one that stopped them?"),
    "restart_step": Operation("restart_step", "Restart task", "Run again the task that stopped each ticked object?"),
    "retry": Operation("retry", "Retry", "Run the ticked failed objects again?"),
    "stop": Operation("stop", "Stop here", "Complete the ticked objects' tasks with their data as it is?"),
    "abort": Operation(
        "abort", "Abort project", "Abort the projects of the ticked objects? This cannot be undone.", style="danger"
    ),
}
# What a decision led to (the outcome `object_resolve` returns).
_OUTCOMES = {"proceed": "it runs on", "stop": "it stopped here", "abort": "its project was aborted"}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 12 else None


def _day(value: str, errors: dict[str, str], name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors[name] = f"'{value[:40]}' is not a date (YYYY-MM-DD); this filter is not applied."
        return None


def _filters(query: QueryDict) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The selector's filters, the form's values and the form's errors, from the list's query string."""
    form = {name: query.get(name, "").strip()[:200] for name in ("workflow", "step", "action", "message")}
    form["status"] = query.get("status", "")
    if form["status"] not in (TaskStatus.HALTED, TaskStatus.FAILED):
        form["status"] = ""
    form["from"], form["to"] = query.get("from", "")[:40], query.get("to", "")[:40]
    errors: dict[str, str] = {}
    since, until = _day(form["from"], errors, "from"), _day(form["to"], errors, "to")
    selected: dict[str, Any] = {k: form[k] or None for k in ("workflow", "step", "action", "message", "status")}
    selected["since"], selected["until"] = since, until  # whole days (UTC): "to" includes its day
    return selected, form, errors


@admin_page
def holding_pen(request: HttpRequest, caller: PageCaller) -> HttpResponse:
    """Halted and failed tasks, most recently stopped first, filtered; bulk actions on the ticked rows."""
    page = max(1, _int(request.GET.get("page")) or 1)
    selected, form, errors = _filters(request.GET)
    listing = pen_list(**selected, page=page, page_size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    bulk = [
        {"name": name, "label": b.label, "style": b.style, "confirm": b.confirm} for name, b in BULK_BUTTONS.items()
    ]
    context = {
        "caller": caller,
        "section": "holdingpen",
        "listing": listing,
        "pages": max(1, math.ceil(listing["count"] / PAGE_SIZE)),
        "page": page,
        "filters": form,
        "errors": errors,
        "statuses": [TaskStatus.HALTED, TaskStatus.FAILED],
        "query": query.urlencode(),
        "bulk": bulk,
    }
    return render(request, "orchestra/app/holdingpen.html", context)


def _back_to_list(request: HttpRequest) -> str:
    # Only the filters' query string comes back from the form; the path is always the list's own.
    query: str = QueryDict(request.POST.get("query", "")[:2000]).urlencode()
    return str(reverse("orchestra:holdingpen")) + (f"?{query}" if query else "")


@require_POST
@admin_page
def holding_pen_bulk(request: HttpRequest, caller: PageCaller) -> HttpResponse:
    """One operation on every ticked object, each in its own transaction; one message says how it went."""
    url = _back_to_list(request)
    htmx = bool(request.headers.get("HX-Request"))
    name = request.POST.get("operation", "")
    ids = list(dict.fromkeys(i for i in map(_int, request.POST.getlist("ids")) if i is not None))
    button = BULK_BUTTONS.get(name)
    if button is None:
        problem = f"There is no bulk action {name[:40]!r}; use one of: {', '.join(BULK_BUTTONS)}."
    elif not ids:
        problem = "Tick at least one object first."
    else:
        problem = ""
    if button is None or problem:
        if htmx:
            return HttpResponse(format_html('<span class="error" role="alert">{}</span>', problem), status=400)
        messages.error(request, problem)
        return redirect(url)
    refused: list[str] = []
    for task_id in ids:
        try:
            object_apply(task_id=task_id, operation=button.operation, actor=request.user, choice=button.choice)
        except OrchestraError as error:
            refused.append(f"task {task_id} refused: {error.message}")
    done = len(ids) - len(refused)
    parts = [f"{button.label}: {done} done", *refused[:MAX_NAMED_REFUSALS]]
    if len(refused) > MAX_NAMED_REFUSALS:
        parts.append(f"{len(refused) - MAX_NAMED_REFUSALS} more refused")
    (messages.error if refused else messages.success)(request, "; ".join(parts) + ".")
    if htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


# Engine keys of extra_data the page already shows as the message, the action, the error and the position.
_SHOWN_ELSEWHERE = ("_action", "_message", "_error_msg", "_last_task_name")


def _without(mapping: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _position(position: list[int]) -> str:
    return ".".join(str(p) for p in position)


def _object_context(detail: dict[str, Any]) -> dict[str, Any]:
    """What the object page shows, from `pen_detail`: buttons for its operations, its data as JSON."""
    ids = {"id": detail["task_id"], "project": detail["project_id"]}
    offered = detail["operations"]
    action = detail["action"]
    choices = []
    if "resolve" in offered and action and action.get("choices"):
        for i, (value, label) in enumerate(action["choices"]):
            confirm = f"{label} object {detail['task_id']}?"
            style = "primary" if i == 0 else ""
            choices.append(
                {"operation": "resolve", "choice": value, "label": label, "confirm": confirm, "style": style}
            )
    buttons = [
        {"operation": b.operation, "label": b.label, "confirm": b.confirm.format(**ids), "style": b.style}
        for b in OBJECT_BUTTONS
        if b.operation in offered
    ]
    obj = detail["object"]
    context: dict[str, Any] = {"pen": detail, "obj": obj, "choices": choices, "buttons": buttons}
    context["can_edit"] = "edit" in offered and obj is not None
    if obj is not None:
        # Where it stopped, while it is stopped (and only if the list is still the one it stopped in).
        current = obj["callback_pos"] if detail["in_holding_pen"] and not obj["definition_changed"] else None
        context.update(
            data_json=_pretty(obj["data"]),
            edit_text=_pretty(obj["data"]),
            initial_json=_pretty(obj["initial_data"]) if obj["initial_data"] != obj["data"] else "",
            extra_json=_pretty(extra) if (extra := _without(obj["extra_data"], _SHOWN_ELSEWHERE)) else "",
            outline=[
                {**row, "at": _position(row["position"]), "current": bool(current) and row["position"] == current}
                for row in obj["outline"]
            ],
            history=[{**entry, "at": _position(entry.get("position", []))} for entry in reversed(obj["history"])],
            results=[
                {"task": task, "name": r.get("name", ""), "json": _pretty(r.get("result"))}
                for task, entries in obj["task_results"].items()
                for r in entries
            ],
        )
    # The task's last error is "message\n\ntraceback"; the object keeps the traceback of its own failure.
    summary, _, traceback = (detail["error"] or "").partition("\n\n")
    context.update(error_summary=summary, traceback=traceback or (obj or {}).get("error", ""))
    return context


@admin_page
def holding_pen_object(request: HttpRequest, caller: PageCaller, task_id: int) -> HttpResponse:
    return _object_page(request, caller, task_id)


def _object_page(
    request: HttpRequest, caller: PageCaller, task_id: int, *, edit: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    try:
        detail = pen_detail(task_id)
    except NotFound:
        return refuse(request, f"Task {task_id} does not exist; the Holding Pen lists the ones that do.", status=404)
    context = {"caller": caller, "section": "holdingpen", **_object_context(detail), **(edit or {})}
    return render(request, "orchestra/app/holdingpen_object.html", context, status=status)


def _edited_data(request: HttpRequest) -> Any:
    text = request.POST.get("data", "")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"the data is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno}); nothing was saved",
            field="data",
        ) from None


def _done(task_id: int, operation: str, choice: str | None, result: str) -> str:
    if operation == "resolve":
        return f"Object {task_id}: decided {choice!r}; {_OUTCOMES.get(result, result)}."
    if operation == "edit":
        return f"Object {task_id}: data saved."
    return f"Object {task_id} {_BY_OPERATION[operation].done}."


@require_POST
@admin_page
def holding_pen_action(request: HttpRequest, caller: PageCaller, task_id: int, operation: str) -> HttpResponse:
    """One operation on one object. A refusal is shown in place (htmx) or on the object's page."""
    page_url = reverse("orchestra:holdingpen_object", kwargs={"task_id": task_id})
    htmx = bool(request.headers.get("HX-Request"))
    choice = request.POST.get("choice") or None
    try:
        if operation not in OPERATIONS:
            raise NotFound(f"there is no Holding Pen operation {operation[:40]!r}; use one of: {', '.join(OPERATIONS)}")
        data = _edited_data(request) if operation == "edit" else None
        result = object_apply(task_id=task_id, operation=operation, actor=request.user, choice=choice, data=data)
    except OrchestraError as error:
        message = sentence(error.message)
        if htmx:
            status = getattr(error, "http_status", 400)
            return HttpResponse(format_html('<span class="error" role="alert">{}</span>', message), status=status)
        if operation == "edit":  # the page again, with what was typed and the problem beside it
            edit = {"edit_text": request.POST.get("data", ""), "edit_error": message, "edit_open": True}
            return _object_page(request, caller, task_id, edit=edit, status=400)
        messages.error(request, message)
        return redirect(page_url)
    messages.success(request, _done(task_id, operation, choice, result))
    if htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = page_url
        return response
    return redirect(page_url)
