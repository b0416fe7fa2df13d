"""Notifications: emails to the workers an event concerns, and Slack messages.

Both leave through the outbox (orchestra.events.outbox), so a mail server or Slack outage delays them
and loses none. An email delivery is one per event; whom it goes to is worked out when it is sent:

| event | who gets an email | kind |
|---|---|---|
| task_assigned (by a policy or an admin, not a pull) | the worker now on the task | assigned |
| task_reassigned | the worker the seat moved to | assigned |
| task_returned | the worker one level below the reviewer | returned |
| task_accepted | the worker one level below; when it completes the task, everyone else on it | accepted, completed |
| task_skipped (an admin's complete-and-skip) | everyone on the task | completed |
| project_ended (aborted) | everyone with a seat in the project | aborted |

Nobody is mailed about their own action, nor without an email address, nor about a kind they turned off
on their account page (`Worker.notifications`, e.g. {"assigned": false}). A retry does not mail again
whoever an earlier attempt reached (`Delivery.state["sent"]`).
"""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMessage
from django.urls import reverse

from orchestra import conf
from orchestra.models import Delivery, Event, TaskAssignment, Worker

# kind: what the account page's checkbox says.
KINDS: dict[str, str] = {
    "assigned": "a task is assigned to me",
    "returned": "my work is returned with feedback",
    "accepted": "a reviewer accepts my work",
    "completed": "a task I worked on is completed",
    "aborted": "a project I work on is aborted",
}


def wants(worker: Worker, kind: str) -> bool:
    return bool((worker.notifications or {}).get(kind, True))


def recipients(event: Event) -> list[tuple[Worker, str]]:
    """(worker, kind) for everyone the event concerns, the actor left out."""
    data: dict[str, Any] = event.data or {}
    found: dict[int, tuple[Worker, str]] = {}

    def add(worker: Worker | None, kind: str) -> None:
        if worker is not None and worker.username != event.actor and worker.pk not in found:
            found[worker.pk] = (worker, kind)

    if event.action in {"task_assigned", "task_reassigned"}:
        username = data.get("to_worker") if event.action == "task_reassigned" else data.get("worker")
        add(Worker.objects.select_related("user").filter(user__username=username).first(), "assigned")
        return list(found.values())
    if event.action == "project_ended":
        seats = TaskAssignment.objects.filter(task__project_id=event.project_id)
    else:
        seats = TaskAssignment.objects.filter(task_id=event.task_id)
    seats = seats.select_related("worker__user").order_by("level", "id")
    below = int(data.get("level", 0)) - 1
    for seat in seats:
        if event.action in {"task_returned", "task_accepted"} and seat.level == below:
            add(seat.worker, "returned" if event.action == "task_returned" else "accepted")
    for seat in seats:
        if event.action == "project_ended":
            add(seat.worker, "aborted")
        elif event.action == "task_skipped" or (event.action == "task_accepted" and event.to_status == "Complete"):
            add(seat.worker, "completed")
    return list(found.values())


def _link(event: Event, kind: str) -> str:
    base = str(conf.get("ORCHESTRA_URL")).rstrip("/")
    if event.task_id is not None and kind in {"assigned", "returned"}:
        return base + reverse("orchestra:task", kwargs={"task_id": event.task_id})
    if event.project_id is not None:
        return base + reverse("orchestra:project", kwargs={"project_id": event.project_id})
    return base + reverse("orchestra:dashboard")


def _what(event: Event) -> str:
    project = event.project
    workflow = project.version.workflow.name if project else ""
    if event.task is not None:
        return f"'{event.task.step.name or event.task.step.slug}' in project {event.project_id} ({workflow})"
    return f"project {event.project_id} ({workflow})"


def message(event: Event, worker: Worker, kind: str) -> EmailMessage:
    what = _what(event)
    subject = {
        "assigned": f"You have a new task: {what}",
        "returned": f"Your work was returned: {what}",
        "accepted": f"Your work was accepted: {what}",
        "completed": f"Task completed: {what}",
        "aborted": f"Project aborted: {what}",
    }[kind]
    lines = [f"Hello {worker.user.get_full_name() or worker.username},", ""]
    lines.append(subject + f" (by {event.actor}).")
    feedback = (event.data or {}).get("feedback")
    if kind == "returned" and feedback:
        lines += ["", "Feedback:", str(feedback)]
    lines += ["", _link(event, kind), "", "You get this email because of your notification settings:"]
    lines.append(str(conf.get("ORCHESTRA_URL")).rstrip("/") + reverse("orchestra:account"))
    return EmailMessage(f"[Orchestra] {subject}", "\n".join(lines), to=[worker.user.email])


def send_email(delivery: Delivery) -> Any:
    """Mail everyone the delivery's event concerns and has not been mailed yet. Raises nothing: a failure
    is an unsuccessful outcome, with the recipients reached so far kept for the retry."""
    from orchestra.events.outbox import Outcome

    event = delivery.event
    sent = list(delivery.state.get("sent", []))
    skipped: list[str] = []
    for worker, kind in recipients(event):
        if worker.pk in sent:
            continue
        if not worker.user.email:
            skipped.append(f"{worker.username}: no email address")
            continue
        if not wants(worker, kind):
            skipped.append(f"{worker.username}: turned off '{kind}' emails")
            continue
        try:
            message(event, worker, kind).send()
        except Exception as exc:
            return Outcome(
                False, None, f"sending to {worker.user.email} failed: {type(exc).__name__}: {exc}", "", {"sent": sent}
            )
        sent.append(worker.pk)
    note = f"sent to {len(sent)} worker(s)" + (f"; skipped {'; '.join(skipped)}" if skipped else "")
    return Outcome(True, None, "", note, {"sent": sent})


def slack_text(delivery: Delivery) -> str:
    event = delivery.event
    base = str(conf.get("ORCHESTRA_URL")).rstrip("/")
    link = base + reverse("orchestra:project", kwargs={"project_id": event.project_id}) if event.project_id else base
    change = f" ({event.from_status} → {event.to_status})" if event.from_status and event.to_status else ""
    subject = _what(event) if event.project_id else (event.data or {}).get("workflow", "")
    return f"{delivery.event_type}: {subject}{change} by {event.actor} <{link}|open>"


__all__ = ["KINDS", "message", "recipients", "send_email", "slack_text", "wants"]
