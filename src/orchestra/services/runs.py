"""Runs of script and external steps, and what they report through the SDK endpoints.

A run is one attempt of a task; its id is the attempt's claim token, handed to the step as
`ORCHESTRA_TASK_RUN_ID`. Its key (`ORCHESTRA_API_KEY`, the Bearer token of SDK reports) is derived from
the id with the server's signing key, so nothing secret is stored and a key opens one run only.

What a report does depends on who finishes the run:
- script steps: the script runner finishes the run when the process exits (it reads the exit code and
  stdout too); reports record statuses, logs and outputs for it;
- external steps: the outside service finishes the run: SUCCEEDED completes the task with the outputs set
  so far, FAILED fails the attempt (the retry policy applies), CANCELLED fails the task without retry.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from orchestra import conf
from orchestra.engine.errors import Conflict, NotFound, ValidationError
from orchestra.engine.lifecycle import StepKind, TaskStatus
from orchestra.engine.text import storable
from orchestra.models import RunStatus, Task, TaskLog, TaskRun
from orchestra.services._base import service
from orchestra.services._loading import check_data, load_task
from orchestra.services._progress import Claim
from orchestra.services.access import _signing_key
from orchestra.services.machine import machine_claim, machine_fail, machine_heartbeat, machine_run_spec, machine_succeed

FINAL = {"SUCCEEDED": RunStatus.SUCCEEDED, "FAILED": RunStatus.FAILED, "CANCELLED": RunStatus.CANCELLED}
WEBHOOK_PATH = "/orchestra/api/sdk/webhook/"


def run_key(run_id: uuid.UUID | str) -> str:
    """The Bearer key that authorizes reports for this run, and only this one."""
    digest = hmac.new(_signing_key(), f"orchestra-run:{run_id}".encode(), hashlib.sha256).hexdigest()
    return f"ork_{digest}"


def run_key_valid(run_id: uuid.UUID | str, key: str) -> bool:
    return hmac.compare_digest(run_key(run_id), key)


def webhook_url() -> str:
    return str(conf.get("ORCHESTRA_URL")).rstrip("/") + WEBHOOK_PATH


def run_open(claim: Claim, *, wait_seconds: float | None = None) -> TaskRun:
    """Record the start of a claimed attempt's run. `wait_seconds` holds the task's lease that long (an
    external service has that long to report back before the attempt counts as lost)."""
    with service(claim.owner) as tx:
        run = TaskRun(
            id=claim.token,
            task_id=claim.task_id,
            attempt=claim.attempt,
            owner=claim.owner,
            started_at=tx.now,
        )
        # bulk_create: save() would first look for an existing row with this primary key.
        TaskRun.objects.bulk_create([run])
        if wait_seconds is not None:
            Task.objects.filter(pk=claim.task_id, claim_token=claim.token).update(
                lease_expires_at=tx.now + timedelta(seconds=wait_seconds)
            )
        tx.event(
            "task_run_started",
            project_id=claim.project_id,
            task_id=claim.task_id,
            run_id=str(claim.token),
            attempt=claim.attempt,
        )
    return run


def get_run(run_id: uuid.UUID | str) -> TaskRun:
    try:
        return TaskRun.objects.get(pk=run_id)
    except (TaskRun.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(f"task run {run_id} does not exist", task_run_id=str(run_id)) from None


@dataclass(frozen=True)
class Report:
    """One SDK event (orchestra-sdk 0.2.0 wire format)."""

    event_type: str  # UPDATE_STATUS | LOG | SET_OUTPUT
    status: str = ""
    message: str | None = None
    log_name: str = ""
    data: str = ""
    output_name: str = ""
    output_value: Any = None
    # UPDATE_STATUS only: outputs set together with the status (the legacy client's Complete carries them).
    outputs: dict[str, Any] | None = None


def run_report(run_id: uuid.UUID | str, report: Report, *, actor: str = "sdk") -> TaskRun:
    """Apply one SDK report to a run. Logs are always kept; outputs and statuses only while the run is
    the task's current attempt (else Conflict)."""
    run = get_run(run_id)
    if report.event_type == "LOG":
        _log(run, source="sdk", name=report.log_name, message=report.data)
        return run
    with service(actor) as tx:
        loaded = load_task(run.task_id)  # the project lock: one report at a time per project
        run = TaskRun.objects.select_related("task").get(pk=run.pk)
        if report.event_type == "SET_OUTPUT":
            _require_running(run, f"setting output '{report.output_name}'")
            outputs = {**run.outputs, report.output_name: report.output_value}
            check_data(outputs, field="output_value")
            TaskRun.objects.filter(pk=run.pk).update(outputs=outputs)
            run.outputs = outputs
            return run
        status = report.status
        message = report.message or ""
        _log(run, source="sdk", level=status, message=message or f"status {status}")
        final = FINAL.get(status)
        if final is not None and run.status == final:
            return run  # the same final report twice (a client retry): already applied
        _require_running(run, f"reporting {status}")
        if report.outputs:
            run.outputs = check_data({**run.outputs, **report.outputs}, field="custom_data")
        TaskRun.objects.filter(pk=run.pk).update(reported_status=status, outputs=run.outputs)
        run.reported_status = status
        external = loaded.step.kind == StepKind.EXTERNAL
        if external and status in ("RUNNING", "WARNING"):
            # A sign of life: hold the lease for another wait period.
            wait = loaded.step.execution.get("wait_seconds", 3600)
            Task.objects.filter(pk=run.task_id, claim_token=run.pk, status=TaskStatus.PROCESSING).update(
                lease_expires_at=tx.now + timedelta(seconds=wait)
            )
        if external and final is not None:
            error = message if final != RunStatus.SUCCEEDED else ""
            _finish(run, final, now=tx.now, error=error, retry=final == RunStatus.FAILED, actor=actor)
        return run


def run_finish(
    run_id: uuid.UUID | str,
    status: RunStatus,
    *,
    output: dict[str, Any] | None = None,
    error: str = "",
    retry: bool = True,
    exit_code: int | None = None,
    logs: Sequence[tuple[str, str]] = (),
    actor: str = "executor",
) -> TaskRun:
    """End a run and apply its outcome to the task: Succeeded completes it with the run's outputs (with
    `output` merged over them); Failed fails the attempt (retried while the policy allows, unless
    `retry` is False); Cancelled fails the task without retry. `logs` are (source, text) pairs."""
    if output is not None:
        check_data(output, field="output")
    with service(actor) as tx:
        load_task(get_run(run_id).task_id)
        run = TaskRun.objects.select_related("task").get(pk=run_id)
        for source, text in logs:
            if text:
                _log(run, source=source, message=text, at=tx.now)
        if run.status == status and output is None:
            return run  # finished already with this outcome (a client retry)
        _require_running(run, f"finishing it as {status}")
        if output:
            run.outputs = {**run.outputs, **output}
        run.exit_code = exit_code
        _finish(run, status, now=tx.now, error=error, retry=retry, actor=actor)
        return run


def _finish(run: TaskRun, status: RunStatus, *, now: datetime, error: str, retry: bool, actor: str) -> None:
    if run.task.claim_token != run.pk:
        raise _superseded(run)
    error = storable(error)  # a script's stderr may hold anything
    run.status, run.error, run.finished_at = status, error, now
    run.save(update_fields=["status", "error", "finished_at", "outputs", "exit_code"])
    token = run.pk
    if status == RunStatus.SUCCEEDED:
        machine_succeed(task_id=run.task_id, token=token, output=run.outputs, actor=actor)
    else:
        why = error or f"the run reported {status.upper()}"
        machine_fail(
            task_id=run.task_id,
            token=token,
            error=why,
            retry=retry and status == RunStatus.FAILED,
            actor=actor,
        )


def _require_running(run: TaskRun, doing: str) -> None:
    if run.status != RunStatus.RUNNING:
        raise Conflict(
            f"task run {run.pk} is {run.status}; {doing} needs a running run (report outputs before SUCCEEDED)",
            task_run_id=str(run.pk),
        )
    if run.task.claim_token != run.pk:
        raise _superseded(run)


def _superseded(run: TaskRun) -> Conflict:
    return Conflict(
        f"task run {run.pk} (attempt {run.attempt}) is no longer the task's current attempt;"
        f" task {run.task_id} is '{run.task.status}'",
        task_run_id=str(run.pk),
    )


def _log(
    run: TaskRun,
    *,
    source: str,
    message: str,
    level: str = "",
    name: str = "",
    at: datetime | None = None,
) -> None:
    from django.utils import timezone

    TaskLog.objects.create(
        run=run,
        task_id=run.task_id,
        created_at=at or timezone.now(),
        source=source,
        level=level,
        name=storable(name[:200]),
        message=storable(message),
    )


def run_heartbeat(run_id: uuid.UUID | str, *, lease_seconds: float | None = None) -> datetime:
    """Extend a pull-mode run's lease; Conflict when the run is no longer the task's current attempt."""
    run = get_run(run_id)
    if run.status != RunStatus.RUNNING or not machine_heartbeat(
        task_id=run.task_id, token=run.pk, lease_seconds=lease_seconds
    ):
        raise _superseded(TaskRun.objects.select_related("task").get(pk=run.pk))
    expires = Task.objects.filter(pk=run.task_id).values_list("lease_expires_at", flat=True).first()
    assert expires is not None
    return expires


@dataclass(frozen=True)
class PulledRun:
    run: TaskRun
    key: str
    project_id: int
    step: str
    lease_expires_at: datetime
    input: dict[str, Any]


def pull_claim(*, queue: str, worker: str, limit: int = 1, lease_seconds: float | None = None) -> list[PulledRun]:
    """Claim up to `limit` tasks of a pull-mode queue for an outside worker, atomically: two workers
    never get the same task; a task whose lease expired is claimed again (a new run)."""
    if not queue:
        raise ValidationError("queue: give the queue name of an external step", field="queue")
    pulled = []
    with transaction.atomic():
        claims = machine_claim(owner=f"pull:{worker}", limit=limit, queue=queue, lease_seconds=lease_seconds)
        for claim in claims:
            spec = machine_run_spec(claim)
            run = run_open(claim)
            expires = Task.objects.filter(pk=claim.task_id).values_list("lease_expires_at", flat=True).get()
            pulled.append(
                PulledRun(
                    run,
                    run_key(run.pk),
                    claim.project_id,
                    claim.step_slug,
                    expires,
                    {"project_data": spec.project_data, "prerequisites": spec.prerequisites},
                )
            )
    return pulled


def run_note(run_id: uuid.UUID | str, message: str) -> None:
    """Add a log line from Orchestra itself to a run (what it did on the run's behalf)."""
    _log(get_run(run_id), source="orchestra", message=message)


def run_logs(run: TaskRun) -> list[TaskLog]:
    return list(TaskLog.objects.filter(run=run).order_by("id"))


def sdk_outcome(run: TaskRun) -> tuple[str, str]:
    """(last reported status, the message of the last FAILED report) for the script runner."""
    message = (
        TaskLog.objects.filter(run=run, source="sdk", level="FAILED")
        .order_by("-id")
        .values_list("message", flat=True)
        .first()
    )
    return run.reported_status, message or ""


__all__ = [
    "PulledRun",
    "Report",
    "get_run",
    "pull_claim",
    "run_finish",
    "run_heartbeat",
    "run_key",
    "run_key_valid",
    "run_logs",
    "run_note",
    "run_open",
    "run_report",
    "sdk_outcome",
    "webhook_url",
]
