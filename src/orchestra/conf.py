"""Orchestra's own settings, with defaults, read from Django settings (``ORCHESTRA_*``).

Works the same in standalone mode (``orchestra.settings`` sets them from the environment) and inside a
user's Django project (which sets only the ones it wants to change).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Where users and example workflows reach this server.
    "ORCHESTRA_URL": "http://127.0.0.1:8000",
    # local: thread pool inside `orchestra serve` / `orchestra worker`; eager: run inline after commit.
    "ORCHESTRA_EXECUTOR": "local",
    "ORCHESTRA_WORKFLOWS": [],
    # How long a claimed machine task is reserved for the worker that claimed it.
    "ORCHESTRA_LEASE_SECONDS": 300,
    "ORCHESTRA_LOCAL_EXECUTOR_THREADS": 4,
    # How often an idle local executor polls the database for work other processes queued.
    "ORCHESTRA_POLL_SECONDS": 1.0,
    # ORCHESTRA_EXECUTOR=celery: the broker Celery messages go through (one `orchestra.run_task` per
    # task), and the queue they go to, which `orchestra worker --celery` reads.
    "ORCHESTRA_BROKER_URL": "redis://127.0.0.1:6379/0",
    "ORCHESTRA_CELERY_QUEUE": "orchestra",
    # B12's rule: a worker with returned work outstanding gets no new task from the pull buttons.
    "ORCHESTRA_ENFORCE_NO_NEW_TASKS_DURING_REVIEW": True,
    # Members of this Django group (and superusers) are project admins.
    "ORCHESTRA_PROJECT_ADMIN_GROUP": "project_admins",
    # Client API credentials from settings, as in B12: {key_id: secret}. Keys made with
    # `orchestra apikey create` live in the database instead (hashed).
    "ORCHESTRA_PROJECT_API_CREDENTIALS": {},
    # The secret that API key secrets are derived from; empty means derive it from SECRET_KEY. Changing
    # it invalidates every database API key.
    "ORCHESTRA_API_SIGNING_KEY": "",
    # How far a signed request's Date (or RFC 9421 `created`) may be from the server's clock.
    "ORCHESTRA_SIGNATURE_MAX_SKEW_SECONDS": 300,
    # How long a script step may run when it sets no timeout_seconds of its own.
    "ORCHESTRA_SCRIPT_TIMEOUT_SECONDS": 3600,
    # What external step triggers are signed with, unless the step names its own (execution.secret_env).
    "ORCHESTRA_TRIGGER_SECRET": "",
    # Holding Pen actions beyond the built-in "approval": dotted paths of orchestra.actions.Action classes.
    "ORCHESTRA_HOLDING_PEN_ACTIONS": [],
    # Invenio-style task lists (a list, or a class with a `workflow` list) by dotted path, registered as
    # one-step workflows by `orchestra loadallworkflows`, `orchestra serve` and orchestra.workflows.start.
    "ORCHESTRA_TASK_WORKFLOWS": [],
    # The outbox (webhooks, Slack, email): how long a receiver may take, how many attempts a delivery gets
    # (then it is a dead letter), the first retry's delay (doubling each time, up to the max), how long a
    # claimed delivery stays reserved for its sender, and how many the local executor sends at once.
    "ORCHESTRA_OUTBOX_TIMEOUT_SECONDS": 10.0,
    "ORCHESTRA_OUTBOX_MAX_ATTEMPTS": 10,
    "ORCHESTRA_OUTBOX_BACKOFF_SECONDS": 10.0,
    "ORCHESTRA_OUTBOX_BACKOFF_MAX_SECONDS": 3600.0,
    "ORCHESTRA_OUTBOX_LEASE_SECONDS": 60.0,
    "ORCHESTRA_OUTBOX_THREADS": 4,
    # Delivered deliveries (and their attempts) older than this are deleted by the senders, hourly, and by
    # `orchestra webhook prune`; 0 keeps them forever. Pending ones and dead letters are never pruned.
    "ORCHESTRA_OUTBOX_RETENTION_DAYS": 30.0,
    # Email workers when work is assigned, returned, accepted or completed, or a project aborted (each
    # worker can turn kinds off); sent with Django's EMAIL_BACKEND.
    "ORCHESTRA_EMAIL_NOTIFICATIONS": True,
    # Whether anyone may create an account (a worker with no certifications) at accounts/register/.
    "ORCHESTRA_ALLOW_REGISTRATION": False,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
