"""The Holding Pen API for project admins: halted and failed tasks, and what to do with them.

Invenio-Workflows-UI's REST shape: `GET /holdingpen/`, `GET /holdingpen/<id>`, `POST
/holdingpen/<id>/action/<operation>`, and in bulk `POST /holdingpen/action/<operation>` with
`{"object_ids": [...]}`. An object's id is its task's id.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema

from orchestra.api.auth import admin_auth
from orchestra.api.main import route
from orchestra.api.schemas import AnyJson, Body, Date, Id, JsonObject, Page, Text
from orchestra.engine.errors import OrchestraError
from orchestra.selectors.holdingpen import pen_detail, pen_list
from orchestra.services.objects import object_apply

router = Router(auth=admin_auth, tags=["holding pen"])

Operation = Literal["resolve", "resume", "restart_step", "restart_prev", "restart", "retry", "edit", "stop", "abort"]


class PenFilter(Schema):
    workflow: Text | None = None
    step: Text | None = None
    action: Text | None = None
    message: Text | None = Field(None, description="text found in the halt message or the error")
    status: Literal["Halted", "Failed"] | None = None
    since: Date | None = Field(None, description="stopped on or after this day (YYYY-MM-DD, UTC)")
    until: Date | None = Field(None, description="stopped on or before this day (YYYY-MM-DD, UTC)")
    page: Page = 1
    page_size: int = Field(50, ge=1, le=500)


@route(router, "GET", "/")
def holding_pen(request: HttpRequest, filters: Query[PenFilter]) -> dict[str, Any]:
    return pen_list(**filters.dict())


class ObjectPath(Schema):
    object_id: Id


@route(router, "GET", "/{object_id}")
def holding_pen_object(request: HttpRequest, path: Path[ObjectPath]) -> dict[str, Any]:
    return pen_detail(path.object_id)


class Decision(Body):
    choice: Text | None = Field(None, description="resolve: one of the action's choices, e.g. accept or reject")
    data: AnyJson = Field(None, description="edit: the object's new data; resolve: passed to the action")
    extra_data: JsonObject | None = Field(None, description="edit: replaces the object's extra data")


class OperationPath(Schema):
    object_id: Id
    operation: Operation


@route(router, "POST", "/{object_id}/action/{operation}")
def holding_pen_act(request: HttpRequest, path: Path[OperationPath], payload: Decision | None = None) -> dict[str, Any]:
    """Apply one operation: resolve (decide the pending action), resume (from the next task),
    restart_step (the task that stopped it again), restart_prev, restart (from the first task, with the
    initial data), retry (a failed task), edit, stop (complete it as it is), abort (end its project)."""
    decision = payload or Decision()
    result = _apply(request, path.object_id, path.operation, decision)
    return {"acknowledged": True, "action": path.operation, "result": result, "object": pen_detail(path.object_id)}


class BulkDecision(Decision):
    object_ids: list[Id] = Field(..., min_length=1, max_length=1000)


class BulkPath(Schema):
    operation: Operation


@route(router, "POST", "/action/{operation}")
def holding_pen_bulk(request: HttpRequest, path: Path[BulkPath], payload: BulkDecision) -> dict[str, Any]:
    """Apply one operation to many objects, each in its own transaction; `results` says, per object id,
    what happened or why it was refused (the others go ahead)."""
    results: dict[str, Any] = {}
    for object_id in dict.fromkeys(payload.object_ids):
        try:
            results[str(object_id)] = {"ok": True, "result": _apply(request, object_id, path.operation, payload)}
        except OrchestraError as exc:
            results[str(object_id)] = {"ok": False, "error": exc.code, "message": exc.message}
    done = sum(1 for r in results.values() if r["ok"])
    return {
        "acknowledged": True,
        "action": path.operation,
        "done": done,
        "refused": len(results) - done,
        "results": results,
    }


def _apply(request: HttpRequest, object_id: int, operation: str, decision: Decision) -> str:
    return object_apply(
        task_id=object_id,
        operation=operation,
        actor=request.auth.user,  # type: ignore[attr-defined]
        choice=decision.choice,
        data=decision.data,
        extra_data=decision.extra_data,
    )
