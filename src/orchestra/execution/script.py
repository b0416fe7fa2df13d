"""Script steps: run a command in a subprocess, the step input as JSON on stdin, a JSON object out.

The process gets a small environment (not the server's: its secrets stay out), plus the step's `env`, the
variables named in `pass_env`, and what the orchestra-sdk package reads: `ORCHESTRA_TASK_RUN_ID`,
`ORCHESTRA_WEBHOOK_URL` and `ORCHESTRA_API_KEY`. Its output is either what it reported through the SDK
(when it reported anything: SDK clients print to stdout) or the JSON object it prints on stdout (the
whole of stdout, or its last line); empty stdout is an empty output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from orchestra import conf
from orchestra.engine.execution import script_settings
from orchestra.models import RunStatus, WorkflowVersion
from orchestra.services._progress import Claim
from orchestra.services.machine import RunSpec
from orchestra.services.runs import get_run, run_finish, run_key, run_open, sdk_outcome, webhook_url

# What a process needs to start on any Unix; everything else from the server's environment stays out.
BASE_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "SYSTEMROOT")
LOG_LIMIT = 1_000_000  # characters of stdout / stderr kept as task logs
KILL_GRACE_SECONDS = 5


def run_script(claim: Claim, spec: RunSpec) -> None:
    settings = script_settings(spec.step.execution)
    run = run_open(claim)
    env = {k: v for k, v in os.environ.items() if k in BASE_ENV or k.startswith("LC_")}
    env.update({k: os.environ[k] for k in settings.pass_env if k in os.environ})
    env.update(settings.env)
    env.update(
        ORCHESTRA_TASK_RUN_ID=str(run.pk),
        ORCHESTRA_WEBHOOK_URL=webhook_url(),
        ORCHESTRA_API_KEY=run_key(run.pk),
    )
    stdin = json.dumps(
        {
            "task_run_id": str(run.pk),
            "project_id": spec.project_id,
            "task_id": spec.task_id,
            "step": spec.step.slug,
            "attempt": claim.attempt,
            "project_data": spec.project_data,
            "prerequisites": spec.prerequisites,
        }
    )
    timeout = spec.step.timeout_seconds or float(conf.get("ORCHESTRA_SCRIPT_TIMEOUT_SECONDS"))
    argv = settings.argv
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=_cwd(claim, settings.cwd),
            env=env,
            text=True,
            errors="replace",  # a program may print anything; its logs keep it readable
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except OSError as exc:
        # A missing or non-executable program will not start on a second try either.
        error = f"could not start {argv[0]!r}: {exc.strerror or exc}; check the step's execution.command"
        run_finish(run.pk, RunStatus.CANCELLED, error=error, retry=False, logs=[("orchestra", error)])
        return
    timed_out = False
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        stdout, stderr = _kill(process)
    logs = [("stdout", stdout[-LOG_LIMIT:]), ("stderr", stderr[-LOG_LIMIT:])]
    status, output, error = _outcome(run.pk, process.returncode, timed_out, timeout, stdout, stderr)
    if error:
        logs.append(("orchestra", error))
    run_finish(
        run.pk,
        status,
        output=output,
        error=error,
        retry=status == RunStatus.FAILED,
        exit_code=process.returncode,
        logs=logs,
        actor=claim.owner,
    )


def _cwd(claim: Claim, relative: str) -> str | None:
    directory = (
        WorkflowVersion.objects.filter(pk=claim.version_id).values_list("workflow__code_directory", flat=True).first()
    )
    if not directory:
        return relative or None
    return str(Path(directory) / relative)


def _kill(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM the process group, then SIGKILL it if it is still there after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            return process.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return "", ""  # not reached: communicate() without a timeout returns once SIGKILL lands


def _outcome(
    run_id: Any, code: int, timed_out: bool, timeout: float, stdout: str, stderr: str
) -> tuple[RunStatus, dict[str, Any] | None, str]:
    """(status, output, error) of a finished process, from its exit, stdout and what it reported."""
    if timed_out:
        return RunStatus.FAILED, None, f"timed out after {timeout:g} s (the step's timeout_seconds); killed"
    if code != 0:
        tail = stderr.strip()[-2000:]
        return RunStatus.FAILED, None, f"exited with status {code}" + (f": {tail}" if tail else "")
    run = get_run(run_id)
    reported, failure = sdk_outcome(run)
    if reported == "CANCELLED":
        return RunStatus.CANCELLED, None, "the script reported CANCELLED"
    if reported == "FAILED":
        return RunStatus.FAILED, None, failure or "the script reported FAILED"
    if reported or run.outputs:
        # It reported through the SDK: its outputs are the output, stdout is only a log (SDK clients print).
        return RunStatus.SUCCEEDED, None, ""
    output = _json_object(stdout)
    if output is None:
        return (
            RunStatus.FAILED,
            None,
            "stdout is not a JSON object: print one JSON object as the step's output (or as its last line),"
            " or set outputs through the orchestra-sdk",
        )
    return RunStatus.SUCCEEDED, output, ""


def _json_object(stdout: str) -> dict[str, Any] | None:
    text = stdout.strip()
    if not text:
        return {}
    candidates = [text, text.splitlines()[-1]]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
