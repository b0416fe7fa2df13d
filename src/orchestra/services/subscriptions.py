"""Webhook and Slack subscriptions, and sending deliveries again (dead letters, or on request).

A webhook's secret signs its deliveries (orchestra.webhooks); one is generated when none is given, and it is
stored as given because signing needs it. Each change is an event on the global chain (the secret never is).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from orchestra.engine.errors import NotFound, ValidationError
from orchestra.events.catalogue import EVENT_TYPES, check_patterns
from orchestra.models import Channel, Delivery, DeliveryStatus, Project, Subscription, Workflow
from orchestra.services._base import ActorLike, service

_UNSET: Any = object()


# http(s), a host name or IPv4 address, an optional port, then anything without spaces.
URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][^\s\x00]*)?$"
_URL = re.compile(URL_PATTERN)


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if not _URL.fullmatch(url) or not urlsplit(url).hostname:
        raise ValidationError(
            f"url: {url!r} is not an http(s) URL; give the receiver's full address, e.g. https://example.com/hooks",
            field="url",
        )
    if len(url) > 2000:
        raise ValidationError("url: at most 2,000 characters", field="url")
    return url


def _check_types(event_types: Sequence[str]) -> list[str]:
    types = [str(t).strip() for t in event_types if str(t).strip()]
    if not types:
        raise ValidationError(
            'event_types: name at least one event type, "*" for all, or a family such as "task.*"',
            field="event_types",
        )
    bad = check_patterns(types)
    if bad:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValidationError(
            f'event_types: unknown event type(s) {", ".join(map(repr, bad))}; use "*", a family such as'
            f' "task.*", or one of: {known}',
            field="event_types",
        )
    return types


def _check_channel(channel: str) -> str:
    if channel not in {Channel.WEBHOOK, Channel.SLACK}:
        raise ValidationError(f"channel: {channel!r} is not one of 'webhook', 'slack'", field="channel")
    return str(channel)


def _workflow(slug: str | None) -> Workflow | None:
    if not slug:
        return None
    found = Workflow.objects.filter(slug=slug).first()
    if found is None:
        known = ", ".join(Workflow.objects.order_by("slug").values_list("slug", flat=True)) or "none loaded"
        raise NotFound(f"workflow: no workflow {slug!r} (known: {known})", field="workflow")
    return found


def _project(project_id: int | None) -> Project | None:
    if project_id is None:
        return None
    found = Project.objects.filter(pk=project_id).first()
    if found is None:
        raise NotFound(f"project_id: no project {project_id}", field="project_id")
    return found


def _describe(sub: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": sub.pk,
        "name": sub.name,
        "channel": sub.channel,
        "url": sub.url,
        "event_types": sub.event_types,
        "workflow": sub.workflow.slug if sub.workflow else None,
        "for_project": sub.project_id,
        "active": sub.active,
    }


def subscription_create(
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    channel: str = Channel.WEBHOOK,
    secret: str | None = None,
    workflow: str | None = None,
    project_id: int | None = None,
    actor: ActorLike = None,
) -> Subscription:
    """A new subscription; a webhook without a secret gets a generated one (read it from the result)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("name: give the subscription a name", field="name")
    channel = _check_channel(channel)
    url, types = _check_url(url), _check_types(event_types)
    if secret is None and channel == Channel.WEBHOOK:
        secret = f"whsec_{secrets.token_hex(24)}"
    with service(actor) as tx:
        sub = Subscription.objects.create(
            name=name[:200],
            channel=channel,
            url=url,
            secret=(secret or "")[:200],
            event_types=types,
            workflow=_workflow(workflow),
            project=_project(project_id),
            created_at=tx.now,
        )
        tx.event("subscription_created", project_id=None, **_describe(sub))
    return sub


def subscription_update(
    *,
    subscription_id: int,
    name: str | None = None,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    secret: str | None = None,
    workflow: str | None = _UNSET,
    project_id: int | None = _UNSET,
    active: bool | None = None,
    actor: ActorLike = None,
) -> Subscription:
    with service(actor) as tx:
        sub = subscription_get(subscription_id)
        if name is not None:
            if not name.strip():
                raise ValidationError("name: give the subscription a name", field="name")
            sub.name = name.strip()[:200]
        if url is not None:
            sub.url = _check_url(url)
        if event_types is not None:
            sub.event_types = _check_types(event_types)
        if secret is not None:
            sub.secret = secret[:200]
        if workflow is not _UNSET:
            sub.workflow = _workflow(workflow)
        if project_id is not _UNSET:
            sub.project = _project(project_id)
        if active is not None:
            sub.active = active
        sub.save()
        tx.event("subscription_updated", project_id=None, secret_changed=secret is not None, **_describe(sub))
    return sub


def subscription_get(subscription_id: int) -> Subscription:
    found = Subscription.objects.select_related("workflow").filter(pk=subscription_id).first()
    if found is None:
        raise NotFound(f"subscription {subscription_id} does not exist", field="subscription_id")
    return found


def subscription_delete(*, subscription_id: int, actor: ActorLike = None) -> None:
    """Remove a subscription; its deliveries (and their attempts) go with it."""
    with service(actor) as tx:
        sub = subscription_get(subscription_id)
        description = _describe(sub)
        sub.delete()
        tx.event("subscription_deleted", project_id=None, **description)


@dataclass(frozen=True)
class Redelivered:
    delivery_id: int
    previous_status: str


def deliveries_redeliver(*, delivery_ids: Sequence[int], actor: ActorLike = None) -> list[Redelivered]:
    """Send deliveries again now: dead letters, or delivered ones a receiver asks for again. The attempts so
    far stay in their history, and the attempt count starts again from zero."""
    ids = sorted(set(delivery_ids))
    with service(actor) as tx:
        found = {d.pk: d for d in Delivery.objects.select_for_update().filter(pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"delivery_ids: no delivery {', '.join(map(str, missing))}", field="delivery_ids")
        out = []
        for delivery_id in ids:
            delivery = found[delivery_id]
            out.append(Redelivered(delivery_id, delivery.status))
            Delivery.objects.filter(pk=delivery_id).update(
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=tx.now,
                lease_until=None,
                owner="",
                delivered_at=None,
            )
        tx.event("deliveries_redelivered", project_id=None, delivery_ids=ids)
        from orchestra.events import outbox

        outbox.queued_in_transaction()
    return out


__all__ = [
    "Redelivered",
    "deliveries_redeliver",
    "subscription_create",
    "subscription_delete",
    "subscription_get",
    "subscription_update",
]
