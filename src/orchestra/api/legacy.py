"""The legacy orchestra-sdk 0.0.9 `orcProcess` client's endpoint: `POST /jobs/sdk/sdk_receive?clientid=…`.

That client posts to `http://localhost:8000/jobs/sdk/sdk_receive` (hard-coded), with `Authorization: Basic
<key>` (the raw key, not base64 user:password) and `{"correlation_id", "status", "stage", "message",
"custom_data", ...}`. Here the correlation id is the run id (`ORCHESTRA_TASK_RUN_ID`) and the key the run's
key (`ORCHESTRA_API_KEY`). Statuses: Running; Stage passed (kept as a log); Failed; Complete (its
`custom_data` become the task's outputs). The `clientid` is accepted and ignored.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orchestra.engine.errors import OrchestraError
from orchestra.engine.text import text_problem_at
from orchestra.services import runs
from orchestra.services.runs import Report

STATUSES = {"Running": "RUNNING", "Failed": "FAILED", "Complete": "SUCCEEDED"}


def _error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "message": message, **extra}, status=status)


@csrf_exempt
@require_POST
def legacy_receive(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "invalid", "body: not a JSON object; send the orcProcess JSON body")
    if not isinstance(body, dict):
        return _error(400, "invalid", "body: not a JSON object; send the orcProcess JSON body")
    if (found := text_problem_at(body, "")) is not None:
        return _error(400, "invalid", f"{found[0]}: {found[1]}", field=found[0])
    try:
        run_id = uuid.UUID(str(body.get("correlation_id")))
    except ValueError:
        return _error(
            400,
            "invalid",
            "correlation_id: expected the task run id (the ORCHESTRA_TASK_RUN_ID Orchestra gave the step)",
            field="correlation_id",
        )
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not runs.run_key_valid(run_id, key.strip()):
        return _error(
            401,
            "unauthorized",
            "Authorization: expected 'Basic <the run's ORCHESTRA_API_KEY>' for this correlation_id",
        )
    status = body.get("status")
    message = str(body.get("message") or "")
    custom = body.get("custom_data") or {}
    if not isinstance(custom, dict):
        return _error(400, "invalid", "custom_data: expected a JSON object", field="custom_data")
    if status == "Stage passed":
        text = message + (f" {json.dumps(custom)}" if custom else "")
        report = Report("LOG", log_name=str(body.get("stage") or ""), data=text)
    elif status in STATUSES:
        outputs = custom if status == "Complete" else None
        report = Report("UPDATE_STATUS", status=STATUSES[status], message=message, outputs=outputs)
    else:
        choices = ", ".join(["Running", "Stage passed", "Failed", "Complete"])
        return _error(400, "invalid", f"status: {status!r} is not one of {choices}", field="status")
    try:
        run = runs.run_report(run_id, report, actor="sdk")
    except OrchestraError as exc:
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    return JsonResponse({"ok": True, "task_run_id": str(run.pk), "correlation_id": str(run_id)})
