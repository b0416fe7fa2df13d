"""Delivering the outbox: webhooks, Slack messages and emails, after the transaction that wrote them.

A Delivery row is written with its event (orchestra.events.log). Whoever delivers it (the local executor's
outbox threads in `orchestra serve` / `orchestra worker`, a Celery worker's `orchestra.deliver_outbox`, or
`deliver_due()` called directly) first claims it with a lease (a compare-and-set), sends it with no
transaction open, then records the attempt and the outcome in one transaction:

- a 2xx answer (or every email sent): delivered;
- anything else: tried again after ORCHESTRA_OUTBOX_BACKOFF_SECONDS x 2^(attempts-1), at most
  ORCHESTRA_OUTBOX_BACKOFF_MAX_SECONDS, until ORCHESTRA_OUTBOX_MAX_ATTEMPTS; then dead (a dead letter,
  which `redeliver` sends again).

Deliveries of one stream (one subscription's, or email's, for one project) leave in order: one is only
claimed when no earlier one of its stream is still pending. A deliverer that dies mid-delivery loses
nothing: its lease expires and the delivery is sent again (at least once; receivers drop repeats by the
X-Orchestra-Delivery id, which stays the same on every attempt).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from orchestra import conf, webhooks
from orchestra.engine.ledger import canonical_time
from orchestra.models import Channel, Delivery, DeliveryAttempt, DeliveryStatus
from orchestra.services._base import db, quote, update_rows

log = logging.getLogger(__name__)

USER_AGENT = "Orchestra-Webhooks/1"


# --- after commit -----------------------------------------------------------------------------------------


def queued_in_transaction() -> None:
    """The current transaction wrote deliveries: have them sent once it commits.

    Eager: nothing runs behind the caller's back; tests and scripts call deliver_due().
    """
    mode = conf.get("ORCHESTRA_EXECUTOR")
    if mode == "local":
        transaction.on_commit(_wake_pump)
    elif mode == "celery":
        from orchestra.execution.celery import send_outbox

        transaction.on_commit(send_outbox)


def _wake_pump() -> None:
    if _pump is not None:
        _pump.wake()
    else:  # no senders here (a web process): another process's (execution.notify)
        from orchestra.execution import notify

        notify.announce(notify.OUTBOX)


# --- claiming -----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _due_sql(vendor: str) -> str:
    table = quote(Delivery._meta.db_table)
    i, status, stream = quote("id"), quote("status"), quote("stream")
    # 'pending' is written into the statement, not bound: a prepared statement's generic plan can use the
    # partial indexes (WHERE status = 'pending') only when it sees the value.
    pending = f"'{DeliveryStatus.PENDING.value}'"
    return (
        f"SELECT d.{i} FROM {table} d WHERE d.{status} = {pending} AND d.{quote('next_attempt_at')} <= %s"
        f" AND (d.{quote('lease_until')} IS NULL OR d.{quote('lease_until')} < %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {table} e WHERE e.{stream} = d.{stream} AND e.{status} = {pending}"
        f" AND e.{i} < d.{i}) ORDER BY d.{i} LIMIT %s"
    )


def due_ids(now: datetime | None = None, limit: int = 100) -> list[int]:
    """Deliveries that may be sent now: due, not leased, and first of their stream."""
    now = now or timezone.now()
    conn = db()
    at = Delivery._meta.get_field("next_attempt_at").get_db_prep_value(now, conn)
    with conn.cursor() as cursor:
        cursor.execute(_due_sql(conn.vendor), [at, at, limit])
        return [row[0] for row in cursor.fetchall()]


def claim(owner: str, limit: int = 10, now: datetime | None = None) -> list[int]:
    """Lease up to `limit` due deliveries for `owner`; each lease is a compare-and-set."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=float(conf.get("ORCHESTRA_OUTBOX_LEASE_SECONDS")))
    claimed = []
    for delivery_id in due_ids(now, limit):
        with transaction.atomic():
            free = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).filter(_lease_free(now))
            if free.update(lease_until=lease, owner=owner) == 1:
                claimed.append(delivery_id)
    return claimed


def _lease_free(now: datetime) -> Any:
    from django.db.models import Q

    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


# --- sending ------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""
    response: str = ""
    state: dict[str, Any] = field(default_factory=dict)


def payload(delivery: Delivery) -> dict[str, Any]:
    """The JSON a webhook receives (documented in the README's "Webhooks" section)."""
    event = delivery.event
    project = event.project
    sub = delivery.subscription
    return {
        "delivery": str(delivery.uuid),
        "type": delivery.event_type,
        "subscription": {"id": sub.pk, "name": sub.name} if sub else None,
        "event": {
            "id": event.pk,
            "type": delivery.event_type,
            "action": event.action,
            "at": canonical_time(event.at),
            "actor": event.actor,
            "project": (
                {
                    "id": project.pk,
                    "workflow": project.version.workflow.slug,
                    "version": project.version.slug,
                }
                if project
                else None
            ),
            "task": ({"id": event.task.pk, "step": event.task.step.slug} if event.task else None),
            "from_status": event.from_status,
            "to_status": event.to_status,
            "data": event.data,
            "seq": event.seq,
            "hash": event.hash,
        },
    }


def _body(delivery: Delivery) -> str:
    if delivery.channel == Channel.SLACK:
        from orchestra.events.notifications import slack_text

        return json.dumps({"text": slack_text(delivery)}, ensure_ascii=False)
    return json.dumps(payload(delivery), ensure_ascii=False, separators=(",", ":"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer that is not 2xx: the delivery is retried


_opener = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    timeout = float(conf.get("ORCHESTRA_OUTBOX_TIMEOUT_SECONDS"))
    try:
        with _opener.open(request, timeout=timeout) as response:
            text = response.read(2000).decode("utf-8", "replace")
            code = int(response.status)
    except urllib.error.HTTPError as exc:
        text = exc.read(2000).decode("utf-8", "replace") if exc.fp else ""
        return Outcome(False, exc.code, f"the receiver answered {exc.code} {exc.reason}", text)
    except Exception as exc:  # refused, timed out, DNS, TLS: the receiver did not answer
        return Outcome(False, None, f"{type(exc).__name__}: {exc}")
    if 200 <= code < 300:
        return Outcome(True, code, "", text)
    return Outcome(False, code, f"the receiver answered {code}", text)


def _send(delivery: Delivery) -> Outcome:
    if delivery.channel == Channel.EMAIL:
        from orchestra.events.notifications import send_email

        return send_email(delivery)
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhooks.EVENT_HEADER: delivery.event_type,
        webhooks.EVENT_ID_HEADER: str(delivery.event_id),
        webhooks.DELIVERY_HEADER: str(delivery.uuid),
    }
    sub = delivery.subscription
    if delivery.channel == Channel.WEBHOOK and sub is not None and sub.secret:
        headers[webhooks.SIGNATURE_HEADER] = webhooks.sign(sub.secret, body)
    return _post(sub.url if sub else "", body, headers)


def backoff(attempts: int) -> float:
    base = float(conf.get("ORCHESTRA_OUTBOX_BACKOFF_SECONDS"))
    return float(min(base * 2 ** max(attempts - 1, 0), float(conf.get("ORCHESTRA_OUTBOX_BACKOFF_MAX_SECONDS"))))


def deliver(delivery_id: int, owner: str) -> bool | None:
    """Send one claimed delivery and record the attempt. True: delivered; False: failed (to be retried, or
    dead); None: the claim was lost (taken over after its lease, or redelivered) and nothing was sent."""
    delivery = (
        Delivery.objects.select_related("subscription", "event__project__version__workflow", "event__task__step")
        .filter(pk=delivery_id, owner=owner, status=DeliveryStatus.PENDING)
        .first()
    )
    if delivery is None:
        return None
    if delivery.channel != Channel.EMAIL and delivery.subscription is None:
        return _record(delivery, owner, Outcome(False, None, "its subscription was deleted"), 0.0)
    if not delivery.body and delivery.channel != Channel.EMAIL:
        delivery.body = _body(delivery)
        update_rows(Delivery, {"pk": delivery.pk, "owner": owner}, body=delivery.body)
    started = time.perf_counter()
    try:
        outcome = _send(delivery)
    except Exception as exc:
        log.exception("delivery %s failed unexpectedly", delivery.pk)
        outcome = Outcome(False, None, f"{type(exc).__name__}: {exc}")
    return _record(delivery, owner, outcome, (time.perf_counter() - started) * 1000)


def _record(delivery: Delivery, owner: str, outcome: Outcome, duration_ms: float) -> bool | None:
    now = timezone.now()
    attempts = delivery.attempts + 1
    updates: dict[str, Any] = {
        "attempts": attempts,
        "lease_until": None,
        "owner": "",
        "last_error": outcome.error[:4000],
        "last_status_code": outcome.status_code,
    }
    if outcome.state:
        updates["state"] = {**delivery.state, **outcome.state}
    if outcome.ok:
        updates.update(status=DeliveryStatus.DELIVERED, delivered_at=now)
    elif attempts >= int(conf.get("ORCHESTRA_OUTBOX_MAX_ATTEMPTS")):
        updates.update(status=DeliveryStatus.DEAD)
    else:
        updates.update(next_attempt_at=now + timedelta(seconds=backoff(attempts)))
    with transaction.atomic():
        changed = update_rows(
            Delivery, {"pk": delivery.pk, "owner": owner, "status": DeliveryStatus.PENDING}, **updates
        )
        DeliveryAttempt.objects.create(
            delivery_id=delivery.pk,
            number=attempts,
            at=now,
            owner=owner,
            ok=outcome.ok,
            status_code=outcome.status_code,
            error=outcome.error[:4000],
            response=outcome.response[:2000],
            duration_ms=round(duration_ms, 3),
        )
    if changed != 1:
        log.warning("delivery %s: its claim was lost while it was being sent; the attempt is kept", delivery.pk)
        return None
    if not outcome.ok:
        level = logging.WARNING if updates.get("status") == DeliveryStatus.DEAD else logging.INFO
        log.log(
            level,
            "delivery %s (%s, event %s) attempt %s failed: %s%s",
            delivery.pk,
            delivery.channel,
            delivery.event_id,
            attempts,
            outcome.error,
            "; out of attempts, now a dead letter" if updates.get("status") == DeliveryStatus.DEAD else "",
        )
    return outcome.ok


def deliver_due(limit: int | None = None, owner: str | None = None) -> int:
    """Send what is due now, one at a time, in this thread; returns how many were delivered. For tests,
    scripts and the Celery task; a delivery that fails is left for its retry time."""
    from orchestra.execution.runner import owner_name

    owner = owner or owner_name("outbox")
    delivered = 0
    handled = 0
    while limit is None or handled < limit:
        ids = claim(owner, limit=1)
        if not ids:
            break
        handled += 1
        if deliver(ids[0], owner):
            delivered += 1
    return delivered


# --- retention --------------------------------------------------------------------------------------------

PRUNE_BATCH = 1000
_PRUNE_EVERY_SECONDS = 3600.0
_pruned_at = 0.0  # time.monotonic() of this process's last automatic prune
_prune_lock = threading.Lock()


def retention() -> timedelta | None:
    """How long delivered deliveries are kept (ORCHESTRA_OUTBOX_RETENTION_DAYS); None: forever."""
    days = float(conf.get("ORCHESTRA_OUTBOX_RETENTION_DAYS"))
    return timedelta(days=days) if days > 0 else None


def prune(older_than: timedelta | None = None, *, now: datetime | None = None) -> int:
    """Delete delivered deliveries (and their attempts) delivered more than `older_than` ago (default: the
    `retention()`; none when that is forever); returns how many. Pending deliveries and dead letters are
    never pruned: a dead letter stays until someone redelivers it. Events are not touched.

    In batches of PRUNE_BATCH, each its own transaction, oldest first (a partial index on delivered_at)."""
    older_than = older_than or retention()
    if older_than is None:
        return 0
    cutoff = (now or timezone.now()) - older_than
    conn = db()
    deliveries, attempts = quote(Delivery._meta.db_table), quote(DeliveryAttempt._meta.db_table)
    status, delivered_at = quote("status"), quote("delivered_at")
    done = 0
    while True:
        with transaction.atomic(), conn.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {deliveries} WHERE {status} = 'delivered' AND {delivered_at} < %s"
                f" ORDER BY {delivered_at} LIMIT {PRUNE_BATCH}",
                [Delivery._meta.get_field("delivered_at").get_db_prep_value(cutoff, conn)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if ids:
                marks = ", ".join(["%s"] * len(ids))
                cursor.execute(f"DELETE FROM {attempts} WHERE delivery_id IN ({marks})", ids)
                cursor.execute(f"DELETE FROM {deliveries} WHERE id IN ({marks})", ids)
        done += len(ids)
        if len(ids) < PRUNE_BATCH:
            break
    if done:
        log.info("outbox: pruned %s deliveries delivered before %s", done, cutoff.isoformat())
    return done


def prune_now_and_then() -> int:
    """`prune()` at most once an hour per process: the senders (local pump, Celery sweeper) call it as they
    poll. Never raises."""
    global _pruned_at
    with _prune_lock:
        if time.monotonic() - _pruned_at < _PRUNE_EVERY_SECONDS and _pruned_at:
            return 0
        _pruned_at = time.monotonic()
    try:
        return prune()
    except Exception:
        log.exception("outbox: pruning delivered deliveries failed; trying again in an hour")
        return 0


# --- the local executor's outbox threads ------------------------------------------------------------------


class Pump:
    """Threads that send due deliveries: woken when this process commits deliveries, and polling every
    ORCHESTRA_POLL_SECONDS for the rest (other processes' deliveries, retries that became due)."""

    def __init__(self, threads: int | None = None, poll_seconds: float | None = None) -> None:
        from orchestra.execution.runner import owner_name

        self.threads = int(threads or conf.get("ORCHESTRA_OUTBOX_THREADS"))
        self.poll_seconds = float(poll_seconds if poll_seconds is not None else conf.get("ORCHESTRA_POLL_SECONDS"))
        self.owner = owner_name("outbox")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight = 0
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="orchestra-outbox")
        self._connections: dict[int, list[Any]] = {}  # each thread's, closed when the pump stops
        self._thread = threading.Thread(target=self._loop, name="orchestra-outbox", daemon=True)

    def start(self) -> Pump:
        global _pump
        _pump = self
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, wait: bool = True) -> None:
        global _pump
        if _pump is self:
            _pump = None
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._pool.shutdown(wait=wait)
        if wait:
            for wrappers in self._connections.values():
                for wrapper in wrappers:
                    if wrapper.connection is not None:
                        wrapper.connection.close()
                        wrapper.connection = None

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                if not self._claim_some():
                    prune_now_and_then()
                    self._wake.wait(self.poll_seconds)
        finally:
            connections.close_all()

    def _claim_some(self) -> int:
        with self._lock:
            idle = self.threads - self._inflight
        if idle <= 0:
            return 0
        try:
            ids = claim(self.owner, limit=idle)
        except Exception:
            log.exception("claiming deliveries failed; trying again in %ss", self.poll_seconds)
            return 0
        for delivery_id in ids:
            with self._lock:
                self._inflight += 1
            try:
                self._pool.submit(self._deliver, delivery_id)
            except RuntimeError:  # shutting down: the lease expires and the delivery is sent later
                with self._lock:
                    self._inflight -= 1
        return len(ids)

    def _deliver(self, delivery_id: int) -> None:
        try:
            deliver(delivery_id, self.owner)
        except Exception:
            log.exception("delivery %s failed unexpectedly; it is retried after its lease", delivery_id)
        finally:
            close_old_connections()
            with self._lock:
                self._connections.setdefault(threading.get_ident(), [connections[a] for a in connections])
                self._inflight -= 1
            self._wake.set()


_pump: Pump | None = None


__all__ = ["Outcome", "Pump", "backoff", "claim", "deliver", "deliver_due", "due_ids", "payload"]
