"""Webhooks through the outbox, against a real HTTP receiver: retries, order, signatures, dead letters,
redelivery, and executors killed mid-delivery (local and Celery)."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from orchestra.events.outbox import deliver_due
from orchestra.execution.local import LocalExecutor
from orchestra.models import Delivery, DeliveryAttempt, Event, Project
from orchestra.services.projects import project_create
from orchestra.services.subscriptions import subscription_create
from orchestra.services.workers import worker_create
from tests.support.processes import REPO, Worker, forget_queue, redis_url, wait_for, worker_env
from tests.support.workflows import load, machine

CHAIN = [machine("a"), machine("b", "a"), machine("c", "b"), machine("d", "c")]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on a real socket: answers `fail_first` requests with 500 (all of them with
    `fail_always`), holds requests while `hold` is set, then 204."""

    fail_first: int = 0
    fail_always: bool = False
    hold: threading.Event | None = None
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            failing = self.fail_always or len(self.requests) < self.fail_first
            code = 500 if failing else 204
            self.requests.append(Received(headers, body, code))
        if self.hold is not None and not self.hold.is_set():
            self.hold.wait(60)
        return code

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.answered == 204]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = state.answer(dict(self.headers), body)
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"" if code == 204 else b"receiver down")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


def readme_verifier() -> Any:
    """The verification snippet exactly as the README gives it."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- verification snippet[^>]*-->\s*```python\n(.*?)```", readme, re.S)
    assert match, "the README's webhook verification snippet is missing"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    return namespace["verify_orchestra_signature"]


def fast_retries(settings, attempts: int = 50) -> None:
    settings.ORCHESTRA_OUTBOX_BACKOFF_SECONDS = 0.05
    settings.ORCHESTRA_OUTBOX_BACKOFF_MAX_SECONDS = 0.2
    settings.ORCHESTRA_OUTBOX_MAX_ATTEMPTS = attempts
    settings.ORCHESTRA_EMAIL_NOTIFICATIONS = False


def pending() -> int:
    return Delivery.objects.filter(status="pending").count()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_fails_then_recovers_gets_every_event_in_order_signed(tmp_path, settings, receiver):
    fast_retries(settings)
    receiver.fail_first = 7
    load(tmp_path, CHAIN)
    sub = subscription_create(name="crm", url=receiver.url, event_types=["*"])
    settings.ORCHESTRA_EXECUTOR = "local"
    executor = LocalExecutor(threads=2, poll_seconds=0.1).start()
    try:
        projects = [project_create(workflow_slug="wf", version_slug="v1") for _ in range(3)]
        ids = [p.pk for p in projects]
        assert wait_for(lambda: Project.objects.filter(pk__in=ids, status="Completed").count() == 3, 60)
        assert wait_for(lambda: pending() == 0, 60), list(Delivery.objects.values("status", "attempts"))
    finally:
        executor.stop()

    # Every event of the projects that has a public type was delivered, exactly one delivery each.
    events = list(Event.objects.filter(project_id__in=ids).exclude(action="task_saved").order_by("id"))
    deliveries = {d.event_id: d for d in Delivery.objects.filter(subscription=sub)}
    assert set(deliveries) == {e.pk for e in events}
    assert {d.status for d in deliveries.values()} == {"delivered"}
    delivered = receiver.delivered()
    assert {r.headers["X-Orchestra-Delivery"] for r in delivered} == {str(d.uuid) for d in deliveries.values()}
    # The failed attempts were kept, with the receiver's status code.
    failures = DeliveryAttempt.objects.filter(ok=False)
    assert failures.count() == receiver.fail_first and {a.status_code for a in failures} == {500}

    # Per project, events arrived in chain order (first arrival of each, failed attempts included).
    verify = readme_verifier()
    for project_id in ids:
        seen: list[int] = []
        for request in receiver.requests:
            event = request.payload["event"]
            if event["project"]["id"] == project_id and event["seq"] not in seen:
                seen.append(event["seq"])
        assert seen == sorted(seen) and len(seen) == Event.objects.filter(project_id=project_id).count()
    for request in receiver.requests:
        assert request.headers["X-Orchestra-Event"] == request.payload["type"]
        assert request.headers["X-Orchestra-Event-Id"] == str(request.payload["event"]["id"])
        assert verify(sub.secret, request.headers["X-Orchestra-Signature"], request.body)
        assert not verify("another-secret", request.headers["X-Orchestra-Signature"], request.body)
        assert not verify(sub.secret, request.headers["X-Orchestra-Signature"], request.body + b" ")


@pytest.mark.django_db
def test_a_receiver_that_never_recovers_ends_in_dead_letter_then_redelivery(tmp_path, settings, receiver, capsys):
    fast_retries(settings, attempts=3)
    settings.ORCHESTRA_OUTBOX_BACKOFF_SECONDS = 0
    receiver.fail_always = True
    load(tmp_path, [machine("a")])
    sub = subscription_create(name="down", url=receiver.url, event_types=["project.created", "task.created"])
    project = project_create(workflow_slug="wf", version_slug="v1")
    first, second = Delivery.objects.filter(subscription=sub).order_by("id")
    assert (first.event_type, second.event_type) == ("project.created", "task.created")

    while pending():
        deliver_due()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts, second.status, second.attempts) == ("dead", 3, "dead", 3)
    # The second of the project's stream waited for the first: all three of the first's attempts came first.
    order = [r.payload["type"] for r in receiver.requests]
    assert order == ["project.created"] * 3 + ["task.created"] * 3
    attempts = list(first.attempt_log.order_by("id").values_list("status_code", "ok", "error"))
    assert attempts == [(500, False, "the receiver answered 500 Internal Server Error")] * 3

    call_command("webhook", "deliveries", "--status", "dead")
    listing = capsys.readouterr().out
    assert f"{first.pk}  dead" in listing and f"{second.pk}  dead" in listing

    receiver.fail_always = False
    call_command("webhook", "redeliver", str(first.pk), str(second.pk))
    assert deliver_due() == 2
    first.refresh_from_db()
    assert first.status == "delivered" and first.attempt_log.count() == 4
    # The same delivery id on the redelivery: a receiver drops what it already has.
    ids = [r.headers["X-Orchestra-Delivery"] for r in receiver.requests if r.payload["type"] == "project.created"]
    assert set(ids) == {str(first.uuid)} and len(ids) == 4
    assert project.pk == first.event.project_id


@pytest.mark.django_db
def test_manual_redelivery_and_dead_letters_through_the_api(tmp_path, settings, receiver):
    fast_retries(settings, attempts=1)
    receiver.fail_always = True
    load(tmp_path, [machine("a")])
    worker_create(username="root", password="pw", superuser=True)
    worker_create(username="ann", password="pw")
    admin, other = Client(), Client()
    admin.login(username="root", password="pw")
    other.login(username="ann", password="pw")
    base = "/orchestra/api/interface/project_management"
    made = admin.post(
        f"{base}/subscriptions/",
        {"name": "api", "url": receiver.url, "event_types": ["project.*"]},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")
    bad = admin.post(
        f"{base}/subscriptions/",
        {"name": "bad", "url": "ftp://x", "event_types": ["task.finished"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "url" in bad.json()["message"]
    bad = admin.post(
        f"{base}/subscriptions/",
        {"name": "bad", "url": receiver.url, "event_types": ["task.finished"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "event_types.0" in bad.json()["message"]  # with the types allowed
    assert other.get(f"{base}/subscriptions/").status_code in (401, 403)

    project_create(workflow_slug="wf", version_slug="v1")
    deliver_due()
    dead = admin.get(f"{base}/deliveries/?status=dead").json()["deliveries"]
    assert len(dead) == 1 and dead[0]["event_type"] == "project.created"
    detail = admin.get(f"{base}/deliveries/{dead[0]['delivery_id']}/").json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500]
    refused = other.post(
        f"{base}/deliveries/redeliver/", {"delivery_ids": [dead[0]["delivery_id"]]}, content_type="application/json"
    )
    assert refused.status_code in (401, 403)
    assert Delivery.objects.get(pk=dead[0]["delivery_id"]).status == "dead"
    receiver.fail_always = False
    again = admin.post(
        f"{base}/deliveries/redeliver/", {"delivery_ids": [dead[0]["delivery_id"]]}, content_type="application/json"
    )
    assert again.json()["redelivered"] == [{"delivery_id": dead[0]["delivery_id"], "previous_status": "dead"}]
    assert deliver_due() == 1
    assert readme_verifier()(secret, receiver.requests[-1].headers["X-Orchestra-Signature"], receiver.requests[-1].body)
    assert admin.delete(f"{base}/subscriptions/{made.json()['subscription_id']}/").status_code == 200
    assert admin.get(f"{base}/subscriptions/").json()["subscriptions"] == []


@pytest.mark.django_db
def test_filters_by_type_workflow_and_project(tmp_path, settings, receiver):
    fast_retries(settings)
    load(tmp_path / "one", [machine("a")], slug="one")
    load(tmp_path / "two", [machine("a")], slug="two")
    by_type = subscription_create(name="t", url=receiver.url, event_types=["project.created"])
    by_workflow = subscription_create(name="w", url=receiver.url, event_types=["*"], workflow="two")
    one = project_create(workflow_slug="one", version_slug="v1")
    two = project_create(workflow_slug="two", version_slug="v1")
    by_project = subscription_create(name="p", url=receiver.url, event_types=["task.*"], project_id=one.pk)
    assert set(Delivery.objects.filter(subscription=by_type).values_list("event__project_id", flat=True)) == {
        one.pk,
        two.pk,
    }
    assert set(Delivery.objects.filter(subscription=by_workflow).values_list("event__project_id", flat=True)) == {
        two.pk
    }
    assert not Delivery.objects.filter(subscription=by_project).exists()  # made after those events


def _kill_mid_delivery(tmp_path: Path, receiver: Receiver, start: Any) -> None:
    receiver.hold = threading.Event()
    first = start(0)
    try:
        project_create(workflow_slug="wf", version_slug="v1")
        assert wait_for(lambda: len(receiver.requests) >= 1, 60), first.output()
    finally:
        first.kill()  # mid-delivery: the receiver holds the request, the sender dies waiting
    receiver.hold.set()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 0
    second = start(1)
    try:
        assert wait_for(lambda: Delivery.objects.filter(status="delivered").exists(), 60), second.output()
    finally:
        second.stop()
    uuids = [r.headers["X-Orchestra-Delivery"] for r in receiver.requests]
    assert uuids == [str(delivery.uuid)] * 2  # sent again once the dead sender's lease ran out; nothing lost


@pytest.mark.django_db(transaction=True)
def test_killing_the_local_executor_mid_delivery_loses_nothing(tmp_path, settings, receiver):
    settings.ORCHESTRA_EMAIL_NOTIFICATIONS = False
    settings.ORCHESTRA_EXECUTOR = "local"  # this process queues; the worker processes deliver
    load(tmp_path, [machine("a")])
    subscription_create(name="slow", url=receiver.url, event_types=["project.created"])
    env = worker_env(
        ORCHESTRA_EXECUTOR="local",
        ORCHESTRA_POLL_SECONDS="0.2",
        ORCHESTRA_OUTBOX_LEASE_SECONDS="2",
        ORCHESTRA_EMAIL_NOTIFICATIONS="0",
    )

    def start(i: int) -> Worker:
        worker = Worker(["--threads", "1"], env, tmp_path / f"worker-{i}.log")
        worker.wait_ready()
        return worker

    _kill_mid_delivery(tmp_path, receiver, start)


@pytest.mark.django_db(transaction=True)
def test_killing_a_celery_worker_mid_delivery_loses_nothing(tmp_path, settings, receiver):
    from orchestra.execution import celery

    url = redis_url()
    queue = f"orchestra-test-{uuid.uuid4().hex[:12]}"
    settings.ORCHESTRA_EMAIL_NOTIFICATIONS = False
    settings.ORCHESTRA_EXECUTOR = "celery"
    settings.ORCHESTRA_BROKER_URL = url
    settings.ORCHESTRA_CELERY_QUEUE = queue
    celery.app.conf.broker_url = url
    load(tmp_path, [machine("a")])
    subscription_create(name="slow", url=receiver.url, event_types=["project.created"])
    env = worker_env(
        ORCHESTRA_EXECUTOR="celery",
        ORCHESTRA_BROKER_URL=url,
        ORCHESTRA_CELERY_QUEUE=queue,
        ORCHESTRA_POLL_SECONDS="0.5",
        ORCHESTRA_OUTBOX_LEASE_SECONDS="2",
        ORCHESTRA_EMAIL_NOTIFICATIONS="0",
    )

    def start(i: int) -> Worker:
        worker = Worker(["--celery", "--concurrency", "1"], env, tmp_path / f"worker-{i}.log")
        worker.wait_ready()
        return worker

    try:
        _kill_mid_delivery(tmp_path, receiver, start)
    finally:
        forget_queue(url, queue)


def test_signature_helpers_agree_with_the_documented_snippet():
    from orchestra import webhooks

    body = json.dumps({"x": "é"}).encode()
    header = webhooks.sign("s3cret", body)
    assert readme_verifier()("s3cret", header, body)
    webhooks.verify("s3cret", header, body)
    with pytest.raises(webhooks.SignatureError):
        webhooks.verify("s3cret", webhooks.sign("s3cret", body, timestamp=int(time.time()) - 600), body)
    assert not readme_verifier()("s3cret", webhooks.sign("s3cret", body, timestamp=int(time.time()) - 600), body)


@pytest.mark.django_db
def test_slack_messages_for_one_workflow_go_through_the_outbox(tmp_path, settings, receiver):
    fast_retries(settings)
    receiver.fail_first = 1  # Slack is down for a moment: the message waits, nothing is lost
    settings.ORCHESTRA_OUTBOX_BACKOFF_SECONDS = 0
    load(tmp_path / "one", [machine("a")], slug="one")
    load(tmp_path / "two", [machine("a")], slug="two")
    subscription_create(
        name="team", url=receiver.url, channel="slack", workflow="two", event_types=["project.created"], secret=None
    )
    project_create(workflow_slug="one", version_slug="v1")
    two = project_create(workflow_slug="two", version_slug="v1")
    while pending():
        deliver_due()
    assert [r.answered for r in receiver.requests] == [500, 204]
    message = receiver.requests[-1]
    text = message.payload["text"]
    assert set(message.payload) == {"text"} and "X-Orchestra-Signature" not in message.headers
    assert text.startswith("project.created: project") and f"/orchestra/app/projects/{two.pk}/" in text


@pytest.mark.django_db
def test_the_webhook_command_manages_subscriptions(tmp_path, capsys):
    from django.core.management.base import CommandError

    load(tmp_path, [machine("a")])
    call_command("webhook", "add", "crm", "https://crm.example.com/hooks", "--events", "task.completed,project.*")
    out = capsys.readouterr().out
    sub_id = int(re.search(r"subscription (\d+)", out).group(1))
    secret = re.search(r"secret: (\S+)", out).group(1)
    assert secret.startswith("whsec_")
    call_command("webhook", "list")
    assert "crm" in capsys.readouterr().out
    call_command("webhook", "disable", str(sub_id))
    project_create(workflow_slug="wf", version_slug="v1")
    assert not Delivery.objects.exists()  # a disabled subscription gets nothing queued
    call_command("webhook", "types")
    assert "task.returned" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"event_types: unknown event type\(s\) 'task.finished'"):
        call_command("webhook", "add", "x", "https://x.example.com", "--events", "task.finished")
    with pytest.raises(CommandError, match=r"url: 'crm.example.com' is not an http\(s\) URL"):
        call_command("webhook", "add", "x", "crm.example.com", "--events", "*")
    with pytest.raises(CommandError, match=r"workflow: no workflow 'nope' \(known: wf\)"):
        call_command("webhook", "add", "x", "https://x.example.com", "--events", "*", "--workflow", "nope")
    call_command("webhook", "remove", str(sub_id))
    call_command("webhook", "list")
    assert "no subscriptions" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_delivered_deliveries_are_pruned_after_the_retention_and_dead_letters_stay(
    tmp_path, settings, receiver, capsys, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from orchestra.events import outbox

    fast_retries(settings, attempts=1)
    load(tmp_path, [machine("a")])
    sub = subscription_create(name="crm", url=receiver.url, event_types=["*"])
    sent = project_create(workflow_slug="wf", version_slug="v1")
    while pending():
        deliver_due()
    receiver.fail_always = True
    dead = project_create(workflow_slug="wf", version_slug="v1")
    while pending():
        deliver_due()
    waiting = project_create(workflow_slug="wf", version_slug="v1")  # never sent: stays pending

    def of(project: Project) -> Any:
        return Delivery.objects.filter(subscription=sub, event__project=project)

    assert {d.status for d in of(sent)} == {"delivered"} and {d.status for d in of(dead)} == {"dead"}
    # Time passes (40 days for everything), but one delivered row was sent 10 days ago.
    long_ago = timezone.now() - timedelta(days=40)
    Delivery.objects.update(created_at=long_ago, next_attempt_at=long_ago)
    Delivery.objects.filter(status="delivered").update(delivered_at=long_ago)
    recent = of(sent).order_by("id").last()
    Delivery.objects.filter(pk=recent.pk).update(delivered_at=timezone.now() - timedelta(days=10))
    old_ids = list(of(sent).exclude(pk=recent.pk).values_list("pk", flat=True))
    assert old_ids and DeliveryAttempt.objects.filter(delivery_id__in=old_ids).count() == len(old_ids)
    events = Event.objects.count()

    call_command("webhook", "prune")  # the default retention, 30 days
    assert f"removed {len(old_ids)} deliveries delivered more than 30 days ago" in capsys.readouterr().out
    assert not Delivery.objects.filter(pk__in=old_ids).exists()
    assert not DeliveryAttempt.objects.filter(delivery_id__in=old_ids).exists()
    assert list(of(sent)) == [recent]
    assert {d.status for d in of(dead)} == {"dead"} and of(dead).count() > 0  # dead letters stay
    assert {d.status for d in of(waiting)} == {"pending"} and of(waiting).count() > 0
    assert Event.objects.count() == events  # the ledger is not touched
    call_command("audit", "verify")
    assert "every hash and link matches" in capsys.readouterr().out

    # The local executor's outbox threads prune too (hourly), with the retention setting.
    settings.ORCHESTRA_OUTBOX_RETENTION_DAYS = 5
    monkeypatch.setattr(outbox, "_pruned_at", 0.0)
    receiver.fail_always = False
    pump = outbox.Pump(threads=1, poll_seconds=0.05).start()
    try:
        assert wait_for(lambda: not Delivery.objects.filter(pk=recent.pk).exists(), 30)
    finally:
        pump.stop()
    assert of(dead).count() > 0

    settings.ORCHESTRA_OUTBOX_RETENTION_DAYS = 0
    call_command("webhook", "prune")
    assert "ORCHESTRA_OUTBOX_RETENTION_DAYS is 0: deliveries are kept" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_worker_sends_deliveries_another_process_queued_without_waiting_for_its_poll(tmp_path, settings, receiver):
    """execution.notify: this process (no senders here) announces the deliveries it wrote; the worker's outbox
    threads, polling only every minute, are woken (PostgreSQL's NOTIFY; on SQLite, its Unix socket)."""
    settings.ORCHESTRA_EMAIL_NOTIFICATIONS = False
    settings.ORCHESTRA_EXECUTOR = "local"
    load(tmp_path, [machine("a")])
    subscription_create(name="now", url=receiver.url, event_types=["project.created"])
    env = worker_env(ORCHESTRA_EXECUTOR="local", ORCHESTRA_POLL_SECONDS="60", ORCHESTRA_EMAIL_NOTIFICATIONS="0")
    worker = Worker(["--threads", "1"], env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert wait_for(lambda: "listening for work other processes announce" in worker.output(), 30)
        project_create(workflow_slug="wf", version_slug="v1")
        assert wait_for(lambda: len(receiver.delivered()) == 1, 20), worker.output()
    finally:
        worker.stop()
