from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandParser

from orchestra.events.catalogue import EVENT_TYPES
from orchestra.events.outbox import deliver_due, prune, retention
from orchestra.management.commands._base import OrchestraCommand
from orchestra.models import Delivery, Subscription
from orchestra.services.subscriptions import (
    deliveries_redeliver,
    subscription_create,
    subscription_delete,
    subscription_update,
)


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {value!r}") from None
    if not days > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 days, got {value!r}")
    return days


def _types(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


class Command(OrchestraCommand):
    help = (
        "Webhook and Slack subscriptions and their deliveries: add, list, enable, disable, remove, types,"
        " deliveries, redeliver, deliver, prune. `orchestra webhook add NAME URL --events 'task.*,project.completed'`"
        " prints the secret deliveries are signed with."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(
            dest="action",
            required=True,
            metavar="{add,list,enable,disable,remove,types,deliveries,redeliver,deliver,prune}",
        )
        add = actions.add_parser("add", help="subscribe a URL to event types")
        add.add_argument("name")
        add.add_argument("url", help="the receiver's address (http or https)")
        add.add_argument(
            "--events", required=True, type=_types, help="comma-separated types, a family ('task.*'), or '*'"
        )
        add.add_argument("--secret", help="sign deliveries with this secret (default: a generated one)")
        add.add_argument("--slack", action="store_true", help="URL is a Slack incoming webhook: send Slack messages")
        add.add_argument("--workflow", metavar="SLUG", help="only events of this workflow's projects")
        add.add_argument("--project", type=int, metavar="N", help="only events of project N")
        actions.add_parser("list", help="list subscriptions")
        for name, text in (("enable", "start sending again"), ("disable", "stop queueing deliveries")):
            sub = actions.add_parser(name, help=text)
            sub.add_argument("subscription_id", type=int, metavar="ID")
        remove = actions.add_parser("remove", help="delete a subscription and its deliveries")
        remove.add_argument("subscription_id", type=int, metavar="ID")
        actions.add_parser("types", help="the event types one can subscribe to")
        deliveries = actions.add_parser("deliveries", help="list deliveries, newest first")
        deliveries.add_argument("--status", choices=["pending", "delivered", "dead"])
        deliveries.add_argument("--subscription", type=int, metavar="ID")
        deliveries.add_argument("--limit", type=int, default=50)
        redeliver = actions.add_parser("redeliver", help="send deliveries again (dead letters, or any)")
        redeliver.add_argument("delivery_ids", type=int, nargs="+", metavar="DELIVERY_ID")
        actions.add_parser("deliver", help="send what is due now, in this process, and exit")
        prune = actions.add_parser(
            "prune", help="delete delivered deliveries older than the retention (pending and dead ones stay)"
        )
        prune.add_argument(
            "--days",
            type=_days,
            metavar="N",
            help="delivered more than N days ago (default: ORCHESTRA_OUTBOX_RETENTION_DAYS, 30)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "_" + options["action"])(options)

    def _add(self, options: dict[str, Any]) -> None:
        sub = subscription_create(
            name=options["name"],
            url=options["url"],
            event_types=options["events"],
            channel="slack" if options["slack"] else "webhook",
            secret=options.get("secret"),
            workflow=options.get("workflow"),
            project_id=options.get("project"),
            actor="cli",
        )
        self.stdout.write(f"subscription {sub.pk}: {sub.channel} to {sub.url} for {', '.join(sub.event_types)}")
        if sub.secret:
            self.stdout.write(f"secret: {sub.secret}\n(check X-Orchestra-Signature with it; see the README, Webhooks)")

    def _list(self, options: dict[str, Any]) -> None:
        subs = list(Subscription.objects.select_related("workflow"))
        if not subs:
            self.stdout.write("no subscriptions; add one with `orchestra webhook add NAME URL --events TYPES`")
        for sub in subs:
            scope = sub.workflow.slug if sub.workflow else (f"project {sub.project_id}" if sub.project_id else "all")
            state = "active" if sub.active else "disabled"
            self.stdout.write(
                f"{sub.pk:>4}  {sub.name:<24} {sub.channel:<7} {state:<8} {scope:<20} {','.join(sub.event_types)}"
                f"  {sub.url}"
            )

    def _enable(self, options: dict[str, Any]) -> None:
        sub = subscription_update(subscription_id=options["subscription_id"], active=True, actor="cli")
        self.stdout.write(f"subscription {sub.pk} enabled")

    def _disable(self, options: dict[str, Any]) -> None:
        sub = subscription_update(subscription_id=options["subscription_id"], active=False, actor="cli")
        self.stdout.write(f"subscription {sub.pk} disabled: no new deliveries are queued for it")

    def _remove(self, options: dict[str, Any]) -> None:
        subscription_delete(subscription_id=options["subscription_id"], actor="cli")
        self.stdout.write(f"subscription {options['subscription_id']} removed")

    def _types(self, options: dict[str, Any]) -> None:
        for name, text in EVENT_TYPES.items():
            self.stdout.write(f"{name:<20} {text}")

    def _deliveries(self, options: dict[str, Any]) -> None:
        rows = Delivery.objects.order_by("-id")
        if options.get("status"):
            rows = rows.filter(status=options["status"])
        if options.get("subscription"):
            rows = rows.filter(subscription_id=options["subscription"])
        found = False
        for d in rows[: options["limit"]]:
            found = True
            code = d.last_status_code or "-"
            self.stdout.write(
                f"{d.pk:>6}  {d.status:<9} {d.channel:<7} {d.event_type:<18} event {d.event_id:<6} attempts"
                f" {d.attempts:<2} last {code}  {d.last_error[:80]}"
            )
        if not found:
            self.stdout.write("no deliveries")

    def _redeliver(self, options: dict[str, Any]) -> None:
        for done in deliveries_redeliver(delivery_ids=options["delivery_ids"], actor="cli"):
            self.stdout.write(f"delivery {done.delivery_id} ({done.previous_status}) queued again")

    def _deliver(self, options: dict[str, Any]) -> None:
        self.stdout.write(f"delivered {deliver_due()}")

    def _prune(self, options: dict[str, Any]) -> None:
        older_than = timedelta(days=options["days"]) if options.get("days") else retention()
        if older_than is None:
            self.stdout.write("ORCHESTRA_OUTBOX_RETENTION_DAYS is 0: deliveries are kept; give --days N to prune")
            return
        removed = prune(older_than)
        days = older_than / timedelta(days=1)
        self.stdout.write(f"removed {removed} deliveries delivered more than {days:g} days ago")
