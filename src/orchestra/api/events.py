"""Project admins' API for events: a project's ledger (history, lineage, verification), webhook and Slack
subscriptions, and their deliveries (with every attempt, and redelivery). Under
`/orchestra/api/interface/project_management/`, beside B12's project management endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status
from pydantic import StrictBool

from orchestra.api.auth import admin_auth
from orchestra.api.main import route
from orchestra.api.schemas import Body, Id, Page, Text
from orchestra.engine.errors import NotFound
from orchestra.engine.ledger import canonical_time
from orchestra.events import ledger
from orchestra.events.catalogue import EVENT_TYPES
from orchestra.models import Delivery, DeliveryStatus, Project, Subscription
from orchestra.services.subscriptions import (
    URL_PATTERN,
    deliveries_redeliver,
    subscription_create,
    subscription_delete,
    subscription_get,
    subscription_update,
)

router = Router(auth=admin_auth, tags=["events"])

# What a subscription may name: a type, "*", or a family ("task.*"); the document lists them all.
EventPattern = Literal[  # type: ignore[valid-type]
    tuple(["*", *sorted({t.split(".")[0] + ".*" for t in EVENT_TYPES}), *EVENT_TYPES])
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*\S[^\x00]*$")]
Url = Annotated[str, Field(min_length=1, max_length=2000, pattern=URL_PATTERN, description="http(s) address")]


class ProjectPath(Schema):
    project_id: Id


class LedgerQuery(Schema):
    limit: int = Field(200, ge=1, le=1000, description="how many events, newest first")
    before_seq: Id | None = Field(None, description="only events before this place in the chain (paging back)")


@route(router, "GET", "/projects/{project_id}/ledger")
def project_ledger(request: HttpRequest, path: Path[ProjectPath], query: Query[LedgerQuery]) -> dict[str, Any]:
    """The project's history (its chain of events, newest first), its lineage (for each task: the outputs
    it was given, who or what code produced its output, when, and the hashes), and whether the chain
    verifies."""
    project = Project.objects.select_related("version__workflow").filter(pk=path.project_id).first()
    if project is None:
        raise NotFound(f"project_id: project {path.project_id} does not exist", field="project_id")
    report = ledger.verify(project.pk)
    return {
        "project_id": project.pk,
        "workflow": project.version.workflow.slug,
        "version": project.version.slug,
        "ledger": {
            "ok": report.ok,
            "events": report.rows,
            "problem": str(report.problems[0]) if report.problems else None,
            "problem_kind": str(report.problems[0].kind) if report.problems else None,
            "problem_event_id": report.problems[0].event_id if report.problems else None,
        },
        "history": ledger.history(project.pk, limit=query.limit, before_seq=query.before_seq),
        "lineage": ledger.lineage(project),
    }


@route(router, "GET", "/event_types")
def event_types(request: HttpRequest) -> dict[str, Any]:
    """The event types subscriptions can name ("*" and "family.*" match several)."""
    return {"event_types": [{"type": name, "description": text} for name, text in EVENT_TYPES.items()]}


def _subscription(sub: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": sub.pk,
        "name": sub.name,
        "channel": sub.channel,
        "url": sub.url,
        "secret": sub.secret,
        "event_types": sub.event_types,
        "workflow": sub.workflow.slug if sub.workflow else None,
        "project_id": sub.project_id,
        "active": sub.active,
        "created_at": sub.created_at.isoformat(),
    }


@route(router, "GET", "/subscriptions")
def subscriptions(request: HttpRequest) -> dict[str, Any]:
    return {"subscriptions": [_subscription(s) for s in Subscription.objects.select_related("workflow")]}


class NewSubscription(Body):
    name: Name
    url: Url
    event_types: list[EventPattern] = Field(..., min_length=1, max_length=100, description='types, "*", "task.*"')
    channel: Literal["webhook", "slack"] = "webhook"
    secret: Text | None = Field(None, max_length=200, description="signs deliveries; generated when left out")
    workflow: Text | None = Field(None, max_length=200, description="only this workflow's projects (slug; 404 if none)")
    project_id: Id | None = Field(None, description="only this project")


@route(router, "POST", "/subscriptions", response={201: dict[str, Any]})
def subscription_new(request: HttpRequest, payload: NewSubscription) -> Status:
    sub = subscription_create(**payload.model_dump(), actor=request.auth.user)  # type: ignore[attr-defined]
    return Status(201, _subscription(sub))


class SubscriptionPath(Schema):
    subscription_id: Id


@route(router, "GET", "/subscriptions/{subscription_id}")
def subscription_detail(request: HttpRequest, path: Path[SubscriptionPath]) -> dict[str, Any]:
    return _subscription(subscription_get(path.subscription_id))


class SubscriptionChange(Body):
    name: Name | None = None
    url: Url | None = None
    event_types: list[EventPattern] | None = Field(None, min_length=1, max_length=100)
    secret: Text | None = Field(None, max_length=200)
    active: StrictBool | None = None


@route(router, "PATCH", "/subscriptions/{subscription_id}")
def subscription_change(
    request: HttpRequest, path: Path[SubscriptionPath], payload: SubscriptionChange
) -> dict[str, Any]:
    subscription_get(path.subscription_id)  # 404 before the body's checks
    sub = subscription_update(
        subscription_id=path.subscription_id,
        actor=request.auth.user,  # type: ignore[attr-defined]
        **payload.model_dump(exclude_none=True),
    )
    return _subscription(sub)


@route(router, "DELETE", "/subscriptions/{subscription_id}")
def subscription_remove(request: HttpRequest, path: Path[SubscriptionPath]) -> dict[str, Any]:
    subscription_delete(subscription_id=path.subscription_id, actor=request.auth.user)  # type: ignore[attr-defined]
    return {"deleted": path.subscription_id}


class DeliveryFilter(Schema):
    status: Literal["pending", "delivered", "dead"] | None = None
    subscription_id: Id | None = None
    project_id: Id | None = None
    page: Page = 1
    page_size: int = Field(50, ge=1, le=500)


def _delivery(d: Delivery, attempts: bool = False) -> dict[str, Any]:
    out = {
        "delivery_id": d.pk,
        "uuid": str(d.uuid),
        "status": d.status,
        "channel": d.channel,
        "subscription_id": d.subscription_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "project_id": d.event.project_id,
        "attempts": d.attempts,
        "next_attempt_at": canonical_time(d.next_attempt_at) if d.status == DeliveryStatus.PENDING else None,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": canonical_time(d.created_at),
        "delivered_at": canonical_time(d.delivered_at) if d.delivered_at else None,
    }
    if attempts:
        out["attempt_log"] = [
            {
                "number": a.number,
                "at": canonical_time(a.at),
                "ok": a.ok,
                "status_code": a.status_code,
                "error": a.error,
                "response": a.response,
                "duration_ms": a.duration_ms,
            }
            for a in d.attempt_log.all()
        ]
    return out


@route(router, "GET", "/deliveries")
def deliveries(request: HttpRequest, filters: Query[DeliveryFilter]) -> dict[str, Any]:
    """Deliveries, newest first (dead letters with `status=dead`)."""
    rows = Delivery.objects.select_related("event").order_by("-id")
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.subscription_id:
        rows = rows.filter(subscription_id=filters.subscription_id)
    if filters.project_id:
        rows = rows.filter(event__project_id=filters.project_id)
    start = (filters.page - 1) * filters.page_size
    page = list(rows[start : start + filters.page_size + 1])
    return {
        "page": filters.page,
        "has_next": len(page) > filters.page_size,
        "deliveries": [_delivery(d) for d in page[: filters.page_size]],
    }


class Redeliver(Body):
    delivery_ids: list[Id] = Field(..., min_length=1, max_length=1000)


@route(router, "POST", "/deliveries/redeliver")
def redeliver(request: HttpRequest, payload: Redeliver) -> dict[str, Any]:
    """Send deliveries again now (dead letters, or delivered ones); their attempts so far are kept."""
    done = deliveries_redeliver(delivery_ids=payload.delivery_ids, actor=request.auth.user)  # type: ignore[attr-defined]
    return {"redelivered": [{"delivery_id": d.delivery_id, "previous_status": d.previous_status} for d in done]}


# Registered after /deliveries/redeliver, which its path would otherwise take.
class DeliveryPath(Schema):
    delivery_id: Id


@route(router, "GET", "/deliveries/{delivery_id}")
def delivery_detail(request: HttpRequest, path: Path[DeliveryPath]) -> dict[str, Any]:
    """One delivery with every attempt (status code, error, start of the answer, duration)."""
    found = Delivery.objects.select_related("event").prefetch_related("attempt_log").filter(pk=path.delivery_id)
    delivery = found.first()
    if delivery is None:
        raise NotFound(f"delivery_id: delivery {path.delivery_id} does not exist", field="delivery_id")
    return _delivery(delivery, attempts=True)
