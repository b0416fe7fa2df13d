"""SDK endpoints: what script and external steps report, and the pull-mode queue of external steps.

- `POST /orchestra/api/sdk/webhook/`: the getorchestra `orchestra-sdk` 0.2.0 wire format, `Authorization:
  Bearer <ORCHESTRA_API_KEY>` and `{"event_type": "UPDATE_STATUS" | "LOG" | "SET_OUTPUT", "task_run_id", ...}`.
  Script steps get this URL as `ORCHESTRA_WEBHOOK_URL`; external steps get it in their trigger.
- `POST /orchestra/api/sdk/runs/claim/` (signed, as the client API): an outside worker claims the next tasks
  of a queue, each a run with its own key; then `runs/<id>/heartbeat/`, `complete/` or `fail/` with that key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer
from pydantic import AfterValidator

from orchestra.api.auth import client_signature
from orchestra.api.main import route
from orchestra.api.schemas import Body, JsonObject, JsonValue, Text
from orchestra.engine.errors import ValidationError
from orchestra.engine.execution import QUEUE_NAME, check_queue_name
from orchestra.models import RunStatus, Task, TaskRun
from orchestra.services import runs
from orchestra.services.runs import Report

router = Router(tags=["SDK"])


class RunKey(HttpBearer):
    """`Authorization: Bearer <run key>`: the key Orchestra gave the run (`ORCHESTRA_API_KEY` of a script
    step, `api_key` of an external step's trigger or of a claimed run). It opens that run only."""

    openapi_description = (
        "`Bearer <run key>`: the `ORCHESTRA_API_KEY` Orchestra gave the run (script steps: in the environment;"
        " external steps: in the trigger or the claim). A key is valid for its own run only."
    )

    def authenticate(self, request: HttpRequest, token: str) -> str:
        return token


run_key_auth = RunKey()


def _require_key(request: HttpRequest, run_id: uuid.UUID | str) -> None:
    key = str(request.auth)  # type: ignore[attr-defined]
    if not runs.run_key_valid(run_id, key):
        raise AuthenticationError(
            401,
            "Authorization: this Bearer key is not the key of task run "
            f"{run_id}; use the ORCHESTRA_API_KEY given to that run",
        )


Event = Literal["UPDATE_STATUS", "LOG", "SET_OUTPUT"]
SdkStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "WARNING", "CANCELLED"]


def _requires(event: str, *fields: str) -> dict[str, Any]:
    return {"if": {"properties": {"event_type": {"const": event}}}, "then": {"required": list(fields)}}


class SdkEvent(Body):
    model_config = {
        "json_schema_extra": {
            "allOf": [
                _requires("UPDATE_STATUS", "status"),
                _requires("LOG", "data"),
                _requires("SET_OUTPUT", "output_name", "output_value"),
            ]
        }
    }

    event_type: Event
    task_run_id: uuid.UUID
    metadata: JsonObject = Field(default_factory=dict)
    status: SdkStatus | None = Field(None, description="UPDATE_STATUS: the run's status")
    message: Text | None = Field(None, description="UPDATE_STATUS: a message kept in the task's log")
    log_name: Text = Field("", max_length=200, description="LOG: the log's name (the SDK's log file)")
    data: Text | None = Field(None, description="LOG: the log text")
    output_name: Text | None = Field(None, min_length=1, max_length=200, description="SET_OUTPUT: the output's name")
    output_value: JsonValue = Field(None, description="SET_OUTPUT: any JSON value")


class Ack(Schema):
    ok: bool = True
    task_run_id: uuid.UUID
    run_status: str = Field(..., description="Running, Succeeded, Failed or Cancelled")
    task_status: str


def _ack(run: TaskRun) -> Ack:
    """`run` as the service left it; the task's status is read again (finishing a run changes it)."""
    status = Task.objects.filter(pk=run.task_id).values_list("status", flat=True).get()
    return Ack(task_run_id=run.pk, run_status=run.status, task_status=status)


@route(router, "POST", "/webhook/", auth=run_key_auth, summary="Report a run's status, log or output (orchestra-sdk)")
def webhook(request: HttpRequest, event: SdkEvent) -> Ack:
    _require_key(request, event.task_run_id)
    missing = {
        "UPDATE_STATUS": ["status"] if event.status is None else [],
        "LOG": ["data"] if event.data is None else [],
        "SET_OUTPUT": ["output_name"] if event.output_name is None else [],
    }[event.event_type]
    if missing:
        raise ValidationError(f"{missing[0]}: required for {event.event_type} events", field=missing[0])
    report = Report(
        event.event_type,
        status=event.status or "",
        message=event.message,
        log_name=event.log_name,
        data=event.data or "",
        output_name=event.output_name or "",
        output_value=event.output_value,
    )
    return _ack(runs.run_report(event.task_run_id, report))


# --- pull mode ---------------------------------------------------------------------------------------


class ClaimRequest(Body):
    queue: Annotated[str, AfterValidator(check_queue_name)] = Field(
        ..., json_schema_extra={"pattern": QUEUE_NAME}, description="the step's execution.queue"
    )
    worker: Text = Field("", max_length=150, description="a name for the claiming worker, kept in the task's log")
    max_tasks: int = Field(1, ge=1, le=100)
    lease_seconds: float | None = Field(
        None, gt=0, le=7 * 24 * 3600, description="how long the claim holds without a heartbeat"
    )


class Input(Schema):
    project_data: dict[str, Any]
    prerequisites: dict[str, Any]


class ClaimedRun(Schema):
    task_run_id: uuid.UUID
    api_key: str = Field(..., description="the run's Bearer key, for heartbeat, complete, fail and the SDK webhook")
    task_id: int
    project_id: int
    step: str
    attempt: int
    lease_expires_at: datetime
    webhook_url: str
    input: Input


class Claimed(Schema):
    runs: list[ClaimedRun]


@route(router, "POST", "/runs/claim/", auth=client_signature, summary="Claim the next tasks of a pull queue")
def claim(request: HttpRequest, payload: ClaimRequest) -> Claimed:
    worker = payload.worker or request.auth.key_id  # type: ignore[attr-defined]
    pulled = runs.pull_claim(
        queue=payload.queue, worker=worker, limit=payload.max_tasks, lease_seconds=payload.lease_seconds
    )
    url = runs.webhook_url()
    return Claimed(
        runs=[
            ClaimedRun(
                task_run_id=p.run.pk,
                api_key=p.key,
                task_id=p.run.task_id,
                project_id=p.project_id,
                step=p.step,
                attempt=p.run.attempt,
                lease_expires_at=p.lease_expires_at,
                webhook_url=url,
                input=Input(**p.input),
            )
            for p in pulled
        ]
    )


class Heartbeat(Body):
    lease_seconds: float | None = Field(None, gt=0, le=7 * 24 * 3600)


class Lease(Schema):
    task_run_id: uuid.UUID
    lease_expires_at: datetime


@route(router, "POST", "/runs/{run_id}/heartbeat/", auth=run_key_auth, summary="Extend a claimed run's lease")
def heartbeat(request: HttpRequest, run_id: uuid.UUID, payload: Heartbeat | None = None) -> Lease:
    _require_key(request, run_id)
    expires = runs.run_heartbeat(run_id, lease_seconds=payload.lease_seconds if payload else None)
    return Lease(task_run_id=run_id, lease_expires_at=expires)


class Complete(Body):
    output: JsonObject = Field(default_factory=dict, description="merged over the outputs set through the SDK")


class Fail(Body):
    error: Text = Field(..., min_length=1, max_length=10_000)
    retry: bool = Field(True, description="false fails the task for good (no further attempts)")


@route(router, "POST", "/runs/{run_id}/complete/", auth=run_key_auth, summary="Complete a claimed run")
def complete(request: HttpRequest, run_id: uuid.UUID, payload: Complete) -> Ack:
    _require_key(request, run_id)
    return _ack(runs.run_finish(run_id, RunStatus.SUCCEEDED, output=payload.output, actor="sdk"))


@route(router, "POST", "/runs/{run_id}/fail/", auth=run_key_auth, summary="Fail a claimed run")
def fail(request: HttpRequest, run_id: uuid.UUID, payload: Fail) -> Ack:
    _require_key(request, run_id)
    status = RunStatus.FAILED if payload.retry else RunStatus.CANCELLED
    run = runs.run_finish(run_id, status, error=payload.error, retry=payload.retry, actor="sdk")
    return _ack(run)


class LogLine(Schema):
    at: datetime
    source: str
    level: str
    name: str
    message: str


class RunDetail(Schema):
    task_run_id: uuid.UUID
    task_id: int
    attempt: int
    status: str
    reported_status: str
    outputs: dict[str, Any]
    exit_code: int | None
    error: str
    started_at: datetime
    finished_at: datetime | None
    logs: list[LogLine]


@route(router, "GET", "/runs/{run_id}/", auth=run_key_auth, summary="A run: status, outputs and logs")
def run_detail(request: HttpRequest, run_id: uuid.UUID) -> RunDetail:
    _require_key(request, run_id)
    run = runs.get_run(run_id)
    return RunDetail(
        task_run_id=run.pk,
        task_id=run.task_id,
        attempt=run.attempt,
        status=run.status,
        reported_status=run.reported_status,
        outputs=run.outputs,
        exit_code=run.exit_code,
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
        logs=[
            LogLine(at=log.created_at, source=log.source, level=log.level, name=log.name, message=log.message)
            for log in runs.run_logs(run)
        ],
    )
