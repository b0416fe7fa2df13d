"""External steps, push mode: POST a signed trigger to the step's URL; the service reports back later.

The trigger body is JSON: `{"event": "task.run", "task_run_id", "api_key", "webhook_url", "project_id",
"task_id", "step", "attempt", "wait_seconds", "input": {"project_data", "prerequisites"}}`, signed with
`X-Orchestra-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>` (check it with
`orchestra.client.verify_trigger`). The secret is the environment variable the step's
`execution.secret_env` names, else the `ORCHESTRA_TRIGGER_SECRET` setting. The service then reports
through the SDK webhook with `Authorization: Bearer <api_key>` (the orchestra-sdk package does this when
given `ORCHESTRA_TASK_RUN_ID`, `ORCHESTRA_WEBHOOK_URL` and the key). If it reports nothing within
`wait_seconds`, the attempt counts as lost and the task is triggered again (while retries are left).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

from orchestra import conf
from orchestra.api.signatures import PAYLOAD_SIGNATURE_HEADER, sign_payload
from orchestra.engine.execution import external_settings
from orchestra.models import RunStatus
from orchestra.services._progress import Claim
from orchestra.services.machine import RunSpec
from orchestra.services.runs import run_finish, run_key, run_note, run_open, webhook_url

TRIGGER_TIMEOUT_SECONDS = 10


def trigger(claim: Claim, spec: RunSpec) -> None:
    settings = external_settings(spec.step.execution)
    assert settings.url is not None  # pull-mode steps are claimed by outside workers, never triggered
    run = run_open(claim, wait_seconds=settings.wait_seconds)
    secret = os.environ.get(settings.secret_env, "") if settings.secret_env else conf.get("ORCHESTRA_TRIGGER_SECRET")
    if not secret:
        where = f"the environment variable {settings.secret_env}" if settings.secret_env else "ORCHESTRA_TRIGGER_SECRET"
        error = f"no secret to sign the trigger with: set {where} on the server"
        run_finish(run.pk, RunStatus.CANCELLED, error=error, retry=False, logs=[("orchestra", error)])
        return
    body = json.dumps(
        {
            "event": "task.run",
            "task_run_id": str(run.pk),
            "api_key": run_key(run.pk),
            "webhook_url": webhook_url(),
            "project_id": spec.project_id,
            "task_id": spec.task_id,
            "step": spec.step.slug,
            "attempt": claim.attempt,
            "wait_seconds": settings.wait_seconds,
            "input": {"project_data": spec.project_data, "prerequisites": spec.prerequisites},
        }
    ).encode()
    request = urllib.request.Request(
        settings.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "orchestra-trigger",
            PAYLOAD_SIGNATURE_HEADER: sign_payload(secret, body, timestamp=int(time.time())),
            "X-Orchestra-Run-Id": str(run.pk),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TRIGGER_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        error = f"trigger POST to {settings.url} got HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        error = f"trigger POST to {settings.url} failed: {exc}"
    else:
        run_note(run.pk, f"triggered {settings.url} (HTTP {status}); waiting up to {settings.wait_seconds:g} s")
        return
    # The service may be down for a moment: this attempt failed; the retry policy decides what next.
    run_finish(run.pk, RunStatus.FAILED, error=error, logs=[("orchestra", error)])
