"""Email notifications as workers receive them: who is mailed about what, their preferences, and a mail
server outage that loses and repeats nothing. Emails leave through the outbox: `deliver_due()` sends them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.urls import reverse

from orchestra.events.outbox import deliver_due
from orchestra.models import Delivery, DeliveryAttempt, Event, Project, Task, Worker
from orchestra.services.projects import project_create, project_end
from orchestra.services.tasks import (
    assignment_reassign,
    task_assign,
    task_complete_and_skip,
    task_pull,
    task_return,
    task_submit,
)
from orchestra.services.workers import worker_create, worker_set_notifications
from tests.support.workflows import NO_REVIEW, human, load

pytestmark = pytest.mark.django_db

TWO_REVIEWS = {"policy": "tests.support.functions.two_reviews"}


@pytest.fixture
def workers() -> dict[str, Worker]:
    found = {name: worker_create(username=name, email=f"{name}@example.com") for name in ("ann", "bob", "cat", "dan")}
    found["eve"] = worker_create(username="eve")  # no email address
    return found


def task_of(project: Project, slug: str = "write") -> Task:
    return Task.objects.get(project=project, step__slug=slug)


def new(slug_steps: Sequence[dict], tmp_path) -> Project:
    load(tmp_path, list(slug_steps))
    return project_create(workflow_slug="wf", version_slug="v1")


def sent() -> dict[str, list[str]]:
    """Deliver what is due, then {recipient: [subjects]} of the emails sent since the last call."""
    deliver_due()
    got: dict[str, list[str]] = {}
    for message in mail.outbox:
        for to in message.to:
            got.setdefault(to, []).append(message.subject)
    mail.outbox.clear()
    return got


def body_to(address: str) -> str:
    (message,) = [m for m in mail.outbox if address in m.to]
    return str(message.body)


def what(project: Project, step: str = "Write") -> str:
    return f"'{step}' in project {project.pk} (Workflow wf)"


# --- who is mailed about what -----------------------------------------------------------------------------


def test_an_admin_assignment_mails_the_worker_with_a_link_to_the_task(tmp_path, workers):
    project = new([human("write", review=NO_REVIEW)], tmp_path)
    task = task_of(project)
    task_assign(task_id=task.pk, worker="ann", actor="admin")
    assert len(mail.outbox) == 0  # nothing leaves before the outbox is delivered
    deliver_due()
    body = body_to("ann@example.com")
    assert [m.subject for m in mail.outbox] == [f"[Orchestra] You have a new task: {what(project)}"]
    assert "Hello ann," in body and "(by admin)" in body
    assert f"http://testserver{reverse('orchestra:task', kwargs={'task_id': task.pk})}" in body
    assert f"http://testserver{reverse('orchestra:account')}" in body  # where to turn them off
    assert Delivery.objects.get(event__action="task_assigned").status == "delivered"


def test_a_worker_who_pulls_a_task_is_not_mailed_about_it(tmp_path, workers):
    new([human("write", review=NO_REVIEW)], tmp_path)
    assignment = task_pull(worker="bob", role="entry_level")
    assert sent() == {}
    event = Event.objects.get(action="task_assigned", task_id=assignment.task_id)
    assert not Delivery.objects.filter(event=event).exists()


def test_an_assignment_policy_mails_the_workers_it_seats(tmp_path, workers):
    policy = {
        "policy_function": {
            "entry_level": {"path": "specified_worker", "kwargs": {"username": "ann"}},
            "reviewer": {"path": "specified_worker", "kwargs": {"username": "bob"}},
        }
    }
    project = new([human("write", assignment_policy=policy)], tmp_path)
    assert sent() == {"ann@example.com": [f"[Orchestra] You have a new task: {what(project)}"]}
    task_submit(task_id=task_of(project).pk, worker="ann", data={})  # the reviewer policy seats bob
    assert sent() == {"bob@example.com": [f"[Orchestra] You have a new task: {what(project)}"]}


def test_a_reassignment_mails_the_worker_the_seat_moved_to(tmp_path, workers):
    project = new([human("write", review=NO_REVIEW)], tmp_path)
    seat = task_assign(task_id=task_of(project).pk, worker="ann", actor="admin")
    sent()
    assignment_reassign(assignment_id=seat.pk, worker="cat", actor="admin")
    assert sent() == {"cat@example.com": [f"[Orchestra] You have a new task: {what(project)}"]}


def test_a_return_mails_the_entry_level_worker_the_feedback(tmp_path, workers):
    project = new([human("write")], tmp_path)
    task = task_of(project)
    task_assign(task_id=task.pk, worker="ann", actor="admin")
    task_submit(task_id=task.pk, worker="ann", data={"text": "v1"})
    task_assign(task_id=task.pk, worker="bob", actor="admin")
    sent()
    task_return(task_id=task.pk, worker="bob", data={"text": "v1"}, feedback="The second paragraph needs a source.")
    deliver_due()
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["ann@example.com"], f"[Orchestra] Your work was returned: {what(project)}")
    ]
    body = body_to("ann@example.com")
    assert "(by bob)" in body and "Feedback:\nThe second paragraph needs a source." in body
    assert f"http://testserver{reverse('orchestra:task', kwargs={'task_id': task.pk})}" in body


def test_accepts_mail_the_level_below_and_the_completing_accept_mails_everyone_else(tmp_path, workers):
    project = new([human("write", review=TWO_REVIEWS)], tmp_path)
    task = task_of(project)
    task_assign(task_id=task.pk, worker="ann", actor="admin")
    task_submit(task_id=task.pk, worker="ann", data={})
    task_assign(task_id=task.pk, worker="bob", actor="admin")
    sent()
    task_submit(task_id=task.pk, worker="bob", data={}, command="accept")  # on to a second review
    assert task_of(project).status == "Pending Review"
    assert sent() == {"ann@example.com": [f"[Orchestra] Your work was accepted: {what(project)}"]}
    task_assign(task_id=task.pk, worker="cat", actor="admin")
    sent()
    task_submit(task_id=task.pk, worker="cat", data={}, command="accept")  # completes the task
    assert task_of(project).status == "Complete"
    assert sent() == {
        "bob@example.com": [f"[Orchestra] Your work was accepted: {what(project)}"],
        "ann@example.com": [f"[Orchestra] Task completed: {what(project)}"],
    }  # and not cat, whose accept it was


def test_complete_and_skip_mails_everyone_on_the_task(tmp_path, workers):
    project = new([human("write")], tmp_path)
    task = task_of(project)
    task_assign(task_id=task.pk, worker="ann", actor="admin")
    task_submit(task_id=task.pk, worker="ann", data={})
    task_assign(task_id=task.pk, worker="bob", actor="admin")
    sent()
    task_complete_and_skip(task_id=task.pk, actor="admin")
    completed = [f"[Orchestra] Task completed: {what(project)}"]
    assert sent() == {"ann@example.com": completed, "bob@example.com": completed}


def test_ending_a_project_mails_everyone_with_a_seat_in_it(tmp_path, workers):
    load(tmp_path, [human("write"), human("other", review=NO_REVIEW), human("third", review=NO_REVIEW)])
    project = project_create(workflow_slug="wf", version_slug="v1")
    elsewhere = project_create(workflow_slug="wf", version_slug="v1")
    task_assign(task_id=task_of(project).pk, worker="ann", actor="admin")
    task_submit(task_id=task_of(project).pk, worker="ann", data={})
    task_assign(task_id=task_of(project).pk, worker="bob", actor="admin")
    task_assign(task_id=task_of(project, "other").pk, worker="cat", actor="admin")
    task_assign(task_id=task_of(elsewhere).pk, worker="dan", actor="admin")  # another project's worker
    sent()
    project_end(project_id=project.pk, actor="admin")
    aborted = [f"[Orchestra] Project aborted: project {project.pk} (Workflow wf)"]
    assert sent() == {"ann@example.com": aborted, "bob@example.com": aborted, "cat@example.com": aborted}


# --- preferences ------------------------------------------------------------------------------------------


def test_a_worker_who_turned_assignments_off_gets_none_but_still_gets_returns(tmp_path, workers):
    worker_set_notifications(user=workers["dan"], enabled={"assigned": False}, actor=workers["dan"])
    assert Worker.objects.get(pk=workers["dan"].pk).notifications == {"assigned": False}
    project = new([human("write")], tmp_path)
    task = task_of(project)
    task_assign(task_id=task.pk, worker="dan", actor="admin")
    assert sent() == {}
    delivery = Delivery.objects.get(event__action="task_assigned", event__task=task)
    assert delivery.status == "delivered"
    assert "skipped dan: turned off 'assigned' emails" in DeliveryAttempt.objects.get(delivery=delivery).response
    task_submit(task_id=task.pk, worker="dan", data={})
    task_assign(task_id=task.pk, worker="bob", actor="admin")
    assert sent() == {"bob@example.com": [f"[Orchestra] You have a new task: {what(project)}"]}
    task_return(task_id=task.pk, worker="bob", data={}, feedback="again")
    assert sent() == {"dan@example.com": [f"[Orchestra] Your work was returned: {what(project)}"]}


def test_a_worker_without_an_email_address_gets_none_and_the_delivery_is_done(tmp_path, workers):
    project = new([human("write")], tmp_path)
    task = task_of(project)
    task_assign(task_id=task.pk, worker="eve", actor="admin")
    task_submit(task_id=task.pk, worker="eve", data={})
    task_assign(task_id=task.pk, worker="bob", actor="admin")
    task_return(task_id=task.pk, worker="bob", data={}, feedback="again")
    assert sent() == {"bob@example.com": [f"[Orchestra] You have a new task: {what(project)}"]}
    for action in ("task_assigned", "task_returned"):
        delivery = Delivery.objects.filter(event__action=action).order_by("id").first()
        assert delivery.status == "delivered" and delivery.attempts == 1
        assert "skipped eve: no email address" in DeliveryAttempt.objects.get(delivery=delivery).response
    assert not Delivery.objects.exclude(status="delivered").exists()


def test_with_email_notifications_off_no_email_delivery_is_written(tmp_path, workers, settings):
    settings.ORCHESTRA_EMAIL_NOTIFICATIONS = False
    project = new([human("write")], tmp_path)
    task_assign(task_id=task_of(project).pk, worker="ann", actor="admin")
    assert not Delivery.objects.filter(channel="email").exists()
    assert sent() == {}


# --- a mail server outage ---------------------------------------------------------------------------------


class FlakyBackend(EmailBackend):
    """Django's test backend behind a mail server that fails the calls numbered in `failing`."""

    calls = 0
    failing: frozenset[int] = frozenset()

    def send_messages(self, messages):
        FlakyBackend.calls += 1
        if FlakyBackend.calls in FlakyBackend.failing:
            raise ConnectionRefusedError(f"mail server down (call {FlakyBackend.calls})")
        return super().send_messages(messages)


def test_a_mail_outage_midway_loses_and_repeats_nothing(tmp_path, workers, settings):
    settings.ORCHESTRA_OUTBOX_BACKOFF_SECONDS = 0
    project = new([human("write", review=TWO_REVIEWS)], tmp_path)
    task = task_of(project)
    task_assign(task_id=task.pk, worker="ann", actor="admin")
    task_submit(task_id=task.pk, worker="ann", data={})
    task_assign(task_id=task.pk, worker="bob", actor="admin")
    task_submit(task_id=task.pk, worker="bob", data={}, command="accept")
    task_assign(task_id=task.pk, worker="cat", actor="admin")
    sent()

    # The first email goes out; the server then fails twice, in two attempts; then it is back.
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.calls, FlakyBackend.failing = 0, frozenset({2, 3})
    task_complete_and_skip(task_id=task.pk, actor="admin")  # mails ann, bob and cat
    delivery = Delivery.objects.get(event__action="task_skipped")
    for _ in range(10):
        deliver_due()
        delivery.refresh_from_db()
        if delivery.status != "pending":
            break

    assert delivery.status == "delivered"
    completed = f"[Orchestra] Task completed: {what(project)}"
    assert sorted((m.to, m.subject) for m in mail.outbox) == [
        (["ann@example.com"], completed),
        (["bob@example.com"], completed),
        (["cat@example.com"], completed),
    ]  # each exactly once, though the first attempt had already reached one of them
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("ok", "error"))
    assert [ok for ok, _ in attempts] == [False, False, True]
    assert "ConnectionRefusedError: mail server down (call 2)" in attempts[0][1]
    assert attempts[0][1].startswith("sending to ")
    assert delivery.attempts == 3 and FlakyBackend.calls == 5
    assert sorted(delivery.state["sent"]) == sorted(workers[n].pk for n in ("ann", "bob", "cat"))
