"""The Celery executor (ORCHESTRA_EXECUTOR=celery): machine steps run by Celery workers on any number of hosts.

The database stays the queue of record. A message only says "look at task N"; the task is claimed in the
database (a compare-and-set with a lease) before it runs, so a message delivered twice, late, or for a task
that is done, already running or on a paused project is a harmless no-op, and a lost message loses nothing:

- `send(task_ids, delay)`: what `execution.work_queued` calls after a commit that queued automated work:
  one `orchestra.run_task(task_id)` per task (with a countdown when it is due later, as retries are), or,
  when the caller names no tasks (a resumed project), one `orchestra.dispatch_due()`.
- `run_task(task_id)`: claims exactly that task and runs it (`execution.runner.run_claim`: lease kept alive,
  timeout enforced, result applied only while the claim is current).
- `dispatch_due()`: sends `run_task` for due work found in the database: queued tasks that are due, and
  Processing tasks whose lease expired (their worker died).
- `deliver_outbox()`: sends due webhook, Slack and email deliveries (orchestra.events.outbox); sent after a
  commit that wrote deliveries, and by the sweeper while any are due (retries whose backoff ran out).
- the sweeper: a thread in each worker's main process (`orchestra worker --celery` and `celery -A
  orchestra.execution.celery worker` alike) that looks for due work every ORCHESTRA_POLL_SECONDS, so work
  whose message was lost (a worker SIGKILLed holding unacknowledged messages, a broker restarted without
  persistence) or whose worker died mid-step (lease expired) runs again.

Messages are JSON, acknowledged after the task ran (`task_acks_late`) and handed back to the broker when a
worker process dies running them (`task_reject_on_worker_lost`); each worker process reserves one message
at a time (`worker_prefetch_multiplier=1`), so a busy worker does not sit on work another could run.
Settings: ORCHESTRA_BROKER_URL (default `redis://127.0.0.1:6379/0`), ORCHESTRA_CELERY_QUEUE (`orchestra`).
Other Celery settings can be changed on `app.conf` before the app is first used.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestra.settings")

from django.apps import apps  # noqa: E402

if not apps.ready:  # `celery -A orchestra.execution.celery worker` imports this module before Django is set up
    import django

    django.setup()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.db import close_old_connections, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from kombu.utils.url import maybe_sanitize_url  # noqa: E402

from orchestra import conf  # noqa: E402
from orchestra.engine.lifecycle import ProjectStatus, TaskStatus  # noqa: E402
from orchestra.events.outbox import deliver_due, due_ids, prune_now_and_then  # noqa: E402
from orchestra.execution.runner import owner_name, run_claim  # noqa: E402
from orchestra.models import Task  # noqa: E402
from orchestra.services._progress import RUNNABLE_KINDS  # noqa: E402
from orchestra.services.machine import machine_claim, machine_due_ids  # noqa: E402

log = logging.getLogger(__name__)

# How many due tasks one dispatch sends messages for; the next dispatch (or sweep) sends the rest.
DISPATCH_BATCH = 500


def _config() -> dict[str, Any]:
    # Read when the app is first used (not at import), so Django settings are in place.
    return {
        "broker_url": conf.get("ORCHESTRA_BROKER_URL"),
        "task_default_queue": conf.get("ORCHESTRA_CELERY_QUEUE"),
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Outcomes live in the database (task status, event log); Celery keeps no results.
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        # A service that queued work must not hang on a broker that is down: a message that cannot be sent
        # is logged, and a worker's sweeper finds the work in the database instead.
        "broker_connection_timeout": 2,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        "enable_utc": True,
        "timezone": "UTC",
        # Celery's Django fixup closes every database connection before and after every task, which costs
        # each step a new connection (on PostgreSQL a new server process, several ms). With this it closes
        # them only every 1,000 tasks, and `_reuse_connections` treats them as Django treats connections
        # between requests: kept for CONN_MAX_AGE, checked, and closed when broken.
        "CELERY_DB_REUSE_MAX": 1000,
    }


app = Celery("orchestra")
app.add_defaults(_config)


@signals.after_setup_logger.connect
def _log_each_line_once(**kwargs: Any) -> None:
    # A Celery worker logs through the root logger; when Orchestra's logger has handlers of its own (the
    # standalone settings give it one), propagating too would print each of its lines twice.
    logger = logging.getLogger("orchestra")
    if logger.handlers:
        logger.propagate = False


@signals.task_prerun.connect
@signals.task_postrun.connect
def _reuse_connections(sender: Any = None, **kwargs: Any) -> None:
    if getattr(sender, "name", "").startswith("orchestra."):
        close_old_connections()


def _queue() -> str:
    # Read on every send rather than fixed in the app's config, so a process can change it (tests do).
    return str(conf.get("ORCHESTRA_CELERY_QUEUE"))


def broker_url(*, sanitized: bool = True) -> str:
    url = str(app.conf.broker_url)
    return str(maybe_sanitize_url(url)) if sanitized else url


# --- sending --------------------------------------------------------------------------------------------


def send(task_ids: Sequence[int] = (), delay: float | None = None) -> None:
    """Tell Celery workers about queued work, once the current transaction (if any) has committed.

    One `run_task` per id, held back `delay` seconds when the work is due later; no ids: one `dispatch_due`.
    Never raises: a message that cannot be sent is logged, and a worker's sweeper finds the work anyway.
    """
    transaction.on_commit(functools.partial(_publish, list(task_ids), delay))


def _publish(task_ids: list[int], delay: float | None) -> int:
    queue = _queue()
    countdown = delay if delay is not None and delay > 0 else None
    sent = 0
    try:
        if not task_ids:
            dispatch_due.apply_async(queue=queue)
            return 1
        for task_id in task_ids:
            run_task.apply_async((task_id,), countdown=countdown, queue=queue)
            sent += 1
    except Exception as exc:
        unsent = task_ids[sent:] or "a dispatch"
        log.warning(
            "could not send to the Celery broker at %s (ORCHESTRA_BROKER_URL): %r; not sent: %s. A worker's"
            " sweeper finds this work in the database within ORCHESTRA_POLL_SECONDS once the broker is back",
            broker_url(),
            exc,
            unsent,
        )
    return sent


def send_outbox() -> None:
    """Have a worker send due deliveries (called after a commit that wrote some). Never raises."""
    try:
        deliver_outbox.apply_async(queue=_queue())
    except Exception as exc:
        log.warning(
            "could not send to the Celery broker at %s: %r; a worker's sweeper sends the deliveries instead",
            broker_url(),
            exc,
        )


# --- tasks ----------------------------------------------------------------------------------------------


@app.task(name="orchestra.run_task")
def run_task(task_id: int) -> str:
    """Claim task `task_id` and run it. Not runnable (done, running elsewhere, paused project): a no-op."""
    claims = machine_claim(owner=owner_name("celery"), task_ids=[task_id], limit=1)
    if not claims:
        return _not_runnable(task_id)
    claim = claims[0]
    run_claim(claim)
    return f"task {task_id}: attempt {claim.attempt} ran"


def _not_runnable(task_id: int) -> str:
    """Why a message found nothing to run (for the worker's log). A message for a runnable task that came
    too early, or found the task locked by another transaction, is sent again for when it can run."""
    row = (
        Task.objects.filter(pk=task_id)
        .values_list("status", "run_after", "project__status", "step__kind", "step__queue")
        .first()
    )
    if row is None:
        return f"task {task_id} does not exist; nothing to run"
    status, run_after, project_status, kind, queue = row
    runnable = kind in RUNNABLE_KINDS and not queue
    if status == TaskStatus.AWAITING_PROCESSING and project_status == ProjectStatus.ACTIVE and runnable:
        wait = (run_after - timezone.now()).total_seconds() if run_after else 0.0
        if wait > 0:
            # Delivered before the task is due (hosts' clocks differ, or a countdown was rounded).
            run_task.apply_async((task_id,), countdown=wait, queue=_queue())
            return f"task {task_id} is not due for {wait:.3f} s; sent again with that countdown"
        # Due, yet not claimed: another transaction held its row (PostgreSQL's claim skips locked rows).
        run_task.apply_async((task_id,), countdown=1, queue=_queue())
        return f"task {task_id} was locked by another transaction; sent again for 1 s from now"
    # Double quotes: the worker logs this value's repr, which would escape single ones.
    return f'task {task_id} is "{status}" (project "{project_status}"); nothing to run'


@app.task(name="orchestra.deliver_outbox")
def deliver_outbox() -> str:
    """Send due webhook, Slack and email deliveries (up to DISPATCH_BATCH), one after another."""
    return f"delivered {deliver_due(limit=DISPATCH_BATCH, owner=owner_name('celery-outbox'))}"


@app.task(name="orchestra.dispatch_due")
def dispatch_due() -> str:
    """Send `run_task` for every due task (up to DISPATCH_BATCH): queued and due, or lease expired."""
    ids = machine_due_ids(now=timezone.now(), limit=DISPATCH_BATCH)
    sent = _publish(ids, None) if ids else 0
    return f"sent run_task for {sent} due task(s)"


# --- the sweeper ----------------------------------------------------------------------------------------


class Sweeper:
    """Every ORCHESTRA_POLL_SECONDS, sends `run_task` for due work whose message went missing.

    Expired leases are always swept: their worker died. Queued tasks are swept only when the broker's queue
    is empty and they have been due for a while (two polls, at least a second): otherwise their message is
    most likely still waiting in the queue behind others, and sending another would only add to the backlog.
    A task this sweeper sent a message for is not sent again for a lease (at most a minute), so a slow
    takeover does not pile up duplicates; a duplicate would be harmless anyway.
    """

    def __init__(self, poll_seconds: float | None = None) -> None:
        self.poll_seconds = float(poll_seconds if poll_seconds is not None else conf.get("ORCHESTRA_POLL_SECONDS"))
        self._stop = threading.Event()
        self._sent: dict[int, float] = {}
        self._thread = threading.Thread(target=self._loop, name="orchestra-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        log.info("sweeper started: looking for lost or expired work every %ss", self.poll_seconds)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.sweep()
            except Exception:
                log.exception("sweeping for due work failed; trying again in %ss", self.poll_seconds)

    def sweep(self) -> int:
        """One pass; returns how many messages it sent."""
        try:
            ids = machine_due_ids(
                now=timezone.now(),
                limit=DISPATCH_BATCH,
                queued=_queue_depth(_queue()) == 0,
                queued_for=max(2 * self.poll_seconds, 1.0),
            )
        finally:
            # Hold no connection between passes: the pool forks new worker processes from this one.
            connections.close_all()
        now = time.monotonic()
        again_after = min(float(conf.get("ORCHESTRA_LEASE_SECONDS")), 60.0)
        self._sent = {task_id: at for task_id, at in self._sent.items() if now - at < again_after}
        fresh = [task_id for task_id in ids if task_id not in self._sent]
        if _deliveries_due():
            send_outbox()
        _prune()
        if not fresh:
            return 0
        log.info("sweeper: sending run_task for %s due task(s) with no message in flight", len(fresh))
        sent = _publish(fresh, None)
        for task_id in fresh[:sent]:
            self._sent[task_id] = now
        return sent


def _prune() -> None:
    try:
        prune_now_and_then()  # hourly; a no-op otherwise
    finally:
        connections.close_all()


def _deliveries_due() -> bool:
    try:
        return bool(due_ids(limit=1))
    finally:
        connections.close_all()


def _queue_depth(queue: str) -> int | None:
    """Messages waiting in the broker's `queue` (not those workers hold); None if the broker cannot say."""
    try:
        with app.connection_for_read() as connection, connection.channel() as channel:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:
        # Redis has no key for an empty queue and RabbitMQ none for an undeclared one: both say "not found".
        if "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower() or getattr(exc, "code", None) == 404:
            return 0
        log.warning("could not read the length of Celery queue %r: %r", queue, exc)
        return None


# --- the worker -----------------------------------------------------------------------------------------


def check_configuration() -> None:
    """Raise ImproperlyConfigured, naming the setting and the fix, when this process cannot be a worker."""
    executor = conf.get("ORCHESTRA_EXECUTOR")
    if executor != "celery":
        raise ImproperlyConfigured(
            f"ORCHESTRA_EXECUTOR is {executor!r}, but a Celery worker needs ORCHESTRA_EXECUTOR=celery: the steps"
            " its results make ready would otherwise get no Celery message. Set ORCHESTRA_EXECUTOR=celery for"
            " the workers and for every process that queues work (`orchestra serve`, the API)."
        )


def check_broker(timeout: float = 5.0) -> None:
    """Raise ImproperlyConfigured when the broker cannot be reached within `timeout` seconds."""
    url = broker_url()
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except KeyError as exc:  # kombu: no transport for the URL's scheme
        raise ImproperlyConfigured(
            f"ORCHESTRA_BROKER_URL {url!r} is not a broker URL Celery knows ({exc.args[0]}): use redis://HOST:6379/0"
            " or amqp://USER:PASSWORD@HOST:5672//"
        ) from exc
    except Exception as exc:
        raise ImproperlyConfigured(
            f"cannot reach the Celery broker at {url} (ORCHESTRA_BROKER_URL): {str(exc).rstrip('.')}. Start it"
            " (e.g. `redis-server`), or set ORCHESTRA_BROKER_URL to a reachable redis:// or amqp:// URL."
        ) from exc


class SweeperStep(bootsteps.StartStopStep):
    """Runs the sweeper in a Celery worker's main process, once its pool has started."""

    requires = ("celery.worker.components:Pool",)

    def create(self, parent: Any) -> Sweeper:
        return Sweeper()

    def start(self, parent: Any) -> None:
        check_configuration()
        super().start(parent)


app.steps["worker"].add(SweeperStep)

__all__ = [
    "Sweeper",
    "app",
    "check_broker",
    "check_configuration",
    "deliver_outbox",
    "dispatch_due",
    "run_task",
    "send",
    "send_outbox",
]
