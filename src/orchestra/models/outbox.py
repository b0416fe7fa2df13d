"""Webhook subscriptions and the outbox: one Delivery per event and channel, written in the event's own
transaction and sent afterwards by the executor (orchestra.events.outbox), with every attempt kept."""

from __future__ import annotations

import uuid
from enum import StrEnum

from django.db import models

from orchestra.models._choices import choices


class Channel(StrEnum):
    WEBHOOK = "webhook"  # signed JSON (X-Orchestra-Signature)
    SLACK = "slack"  # a Slack incoming webhook: {"text": ...}
    EMAIL = "email"  # the workers an event concerns, by their preferences


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or being sent, while leased)
    DELIVERED = "delivered"
    DEAD = "dead"  # out of attempts: a dead letter, until someone redelivers it


class Subscription(models.Model):
    name = models.CharField(max_length=200)
    channel = models.CharField(
        max_length=16, choices=[(c.value, c.value) for c in (Channel.WEBHOOK, Channel.SLACK)], default=Channel.WEBHOOK
    )
    url = models.CharField(max_length=2000)  # checked by the service: http(s) with a host
    # What deliveries are signed with (webhooks); shown to whoever manages subscriptions.
    secret = models.CharField(max_length=200, blank=True)
    # Event types (orchestra.events.catalogue), "*" for all, or "task.*" for a family.
    event_types = models.JSONField(default=list)
    workflow = models.ForeignKey(
        "orchestra.Workflow", null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    project = models.ForeignKey(
        "orchestra.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    # Every change moves it on: processes keep the list of subscriptions and reload it when the newest
    # updated_at (or the count) read with each event append differs from theirs.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.channel} to {self.url})"


class Delivery(models.Model):
    # Sent as X-Orchestra-Delivery; random, and never looked up, so not indexed (an index on random keys is
    # the costliest part of the insert that every event with a subscription pays).
    uuid = models.UUIDField(default=uuid.uuid4, editable=False)
    # Not indexed either: nothing looks deliveries up by event (events are never deleted).
    event = models.ForeignKey("orchestra.Event", on_delete=models.PROTECT, related_name="deliveries", db_index=False)
    channel = models.CharField(max_length=16, choices=choices(Channel))
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(max_length=64)
    # Deliveries of one stream (a subscription, or email, for one project) leave in id order.
    stream = models.CharField(max_length=64)
    # The columns with a db_default are left out of the outbox's insert (orchestra.events.log).
    status = models.CharField(
        max_length=16,
        choices=choices(DeliveryStatus),
        default=DeliveryStatus.PENDING,
        db_default=DeliveryStatus.PENDING.value,
    )
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    owner = models.CharField(max_length=200, blank=True, default="", db_default="")
    # The exact bytes sent, fixed at the first attempt so every retry sends (and signs) the same body.
    body = models.TextField(blank=True, default="", db_default="")
    # Email: the recipients already sent to, so a retry does not mail them twice.
    state = models.JSONField(default=dict, blank=True, db_default=models.Value({}, output_field=models.JSONField()))
    last_error = models.TextField(blank=True, default="", db_default="")
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The claim walks pending rows in id order: with this it never touches the delivered history.
            models.Index(fields=["id"], condition=models.Q(status="pending"), name="orchestra_delivery_due"),
            models.Index(
                fields=["stream", "id"], condition=models.Q(status="pending"), name="orchestra_delivery_stream"
            ),
            # Pruning walks delivered rows oldest first (ORCHESTRA_OUTBOX_RETENTION_DAYS). Rows enter it when
            # they are delivered, so queueing a delivery does not pay for it.
            models.Index(
                fields=["delivered_at"], condition=models.Q(status="delivered"), name="orchestra_delivery_sent"
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of event {self.event_id} ({self.channel}, {self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    owner = models.CharField(max_length=200, blank=True)
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response = models.TextField(blank=True)  # the start of the response body
    duration_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
