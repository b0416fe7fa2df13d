"""Standalone settings: everything is configured by environment variables (12-factor).

| variable | default | meaning |
|---|---|---|
| ORCHESTRA_HOME | ./.orchestra | where the SQLite database, uploaded files and the secret key live |
| ORCHESTRA_DATABASE_URL | sqlite:///$ORCHESTRA_HOME/orchestra.sqlite3 | any URL dj-database-url understands |
| ORCHESTRA_DATABASE_CONN_MAX_AGE | 60 | seconds a database connection is kept for reuse (0: one per request) |
| ORCHESTRA_SECRET_KEY | generated once into $ORCHESTRA_HOME/secret_key | Django's SECRET_KEY |
| ORCHESTRA_DEBUG | 0 | Django's DEBUG |
| ORCHESTRA_ALLOWED_HOSTS | localhost,127.0.0.1,[::1] | comma separated |
| ORCHESTRA_URL | http://127.0.0.1:8000 | the address users and the examples reach Orchestra at |
| ORCHESTRA_EXECUTOR | local | local (threads in serve/worker), eager (inline, for tests), celery |
| ORCHESTRA_BROKER_URL | redis://127.0.0.1:6379/0 | the Celery broker (celery executor): Redis or RabbitMQ (amqp://) |
| ORCHESTRA_CELERY_QUEUE | orchestra | the Celery queue of Orchestra's messages (`orchestra worker --celery` reads it) |
| ORCHESTRA_LEASE_SECONDS | 300 | how long a claimed machine task stays reserved without a heartbeat from its worker |
| ORCHESTRA_POLL_SECONDS | 1.0 | how often an idle executor (or a Celery worker's sweeper) looks for work |
| ORCHESTRA_WORKFLOWS | simple_workflow,journalism_workflow | workflow packages `loadallworkflows` loads |
| ORCHESTRA_TASK_WORKFLOWS | orchestra.workflows.examples.myworkflow | task lists registered as workflows |
| ORCHESTRA_API_SIGNING_KEY | (derived from the secret key) | what client API key secrets are derived from |
| ORCHESTRA_SIGNATURE_MAX_SKEW_SECONDS | 300 | how far a signed request's Date may be from the server's clock |
| ORCHESTRA_SCRIPT_TIMEOUT_SECONDS | 3600 | how long a script step runs when it sets no timeout_seconds |
| ORCHESTRA_TRIGGER_SECRET | (none) | what external step triggers are signed with (unless the step sets secret_env) |
| ORCHESTRA_ALLOW_REGISTRATION | 0 | 1: anyone may create a worker account at /orchestra/accounts/register/ |
| ORCHESTRA_EMAIL_URL | (none: mail is written to $ORCHESTRA_HOME/mail/) | smtp://user:password@host:port?tls=1 |
| ORCHESTRA_EMAIL_FROM | orchestra@localhost | the sender of Orchestra's emails |
| ORCHESTRA_EMAIL_NOTIFICATIONS | 1 | 0: no notification emails to workers |
| ORCHESTRA_OUTBOX_TIMEOUT_SECONDS | 10 | how long a webhook receiver may take to answer |
| ORCHESTRA_OUTBOX_MAX_ATTEMPTS | 10 | attempts before a delivery is a dead letter |
| ORCHESTRA_OUTBOX_BACKOFF_SECONDS | 10 | the first retry's delay, doubled each time ... |
| ORCHESTRA_OUTBOX_BACKOFF_MAX_SECONDS | 3600 | ... up to this |
| ORCHESTRA_OUTBOX_LEASE_SECONDS | 60 | how long a delivery being sent stays reserved for its sender |
| ORCHESTRA_OUTBOX_THREADS | 4 | how many deliveries the local executor sends at once |
| ORCHESTRA_OUTBOX_RETENTION_DAYS | 30 | delivered deliveries older than this are deleted (0: kept forever) |

An empty variable counts as unset. A value the setting cannot take (a number that is not one, or below its
least value; a yes/no that is neither; an unknown log level) stops start-up with an error that names the
variable and what it takes.

To use Orchestra inside your own Django project, do not import this module: add "orchestra" to your
INSTALLED_APPS and set the ``ORCHESTRA_*`` settings you need (see ``orchestra.conf``).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _env_bool(name: str, default: bool = False) -> bool:
    value = _env(name, "").lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={os.environ[name]!r} is not a yes/no value: set it to 1 or 0, or unset it")


def _env_number(name: str, default: float, *, minimum: float, whole: bool = False, above: bool = False) -> Any:
    """A number from the environment: at least `minimum` (more than it, with `above`), an int with `whole`."""
    raw = _env(name, "")
    what = "a whole number" if whole else "a number"
    bound = f"{'more than' if above else 'at least'} {minimum:g}"
    if not raw:
        return int(default) if whole else float(default)
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum or (above and value == minimum):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not {what} {bound}: set it to one (the default is {default:g}), or unset it"
        )
    return value


ORCHESTRA_HOME = Path(_env("ORCHESTRA_HOME", ".orchestra")).resolve()


def _secret_key() -> str:
    if key := os.environ.get("ORCHESTRA_SECRET_KEY"):
        return key
    path = ORCHESTRA_HOME / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        ORCHESTRA_HOME.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        path.chmod(0o600)
        return key


def database_from_url(url: str | None) -> dict[str, object]:
    """Django DATABASES entry for a URL; SQLite gets WAL, a busy timeout and IMMEDIATE transactions."""
    if not url:
        ORCHESTRA_HOME.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{ORCHESTRA_HOME / 'orchestra.sqlite3'}"
    # Persistent connections (checked before reuse): opening one per request cost about 3 ms on PostgreSQL.
    max_age = _env_number("ORCHESTRA_DATABASE_CONN_MAX_AGE", 60, minimum=0, whole=True)
    config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=max_age, conn_health_checks=True))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Django's backend, converting each statement's placeholders once (orchestra/db/sqlite3/base.py).
        config["ENGINE"] = "orchestra.db.sqlite3"
        # IMMEDIATE: a write transaction takes the write lock when it begins, so two writers queue on
        # the busy timeout instead of one failing with "database is locked" when it upgrades its lock.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a health check that needs no round trip while the connection is quiet
        # (orchestra/db/postgresql/base.py).
        config["ENGINE"] = "orchestra.db.postgresql"
    if config["ENGINE"] == "orchestra.db.postgresql" and _env_bool("ORCHESTRA_DATABASE_PREPARED", True):
        # Parameters bound by the server, and a statement run twice on a connection prepared there: the
        # API's reads spent more time in PostgreSQL's planner than in running them (project_information:
        # 1.8 ms of planning for 0.4 ms of execution; 2.1 -> 1.0 ms per call prepared). Off (0) behind a
        # connection pooler that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
        config["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}
    return config


SECRET_KEY = _secret_key()
DEBUG = _env_bool("ORCHESTRA_DEBUG")
ALLOWED_HOSTS = _env("ORCHESTRA_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "orchestra",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "orchestra.standalone_urls"
WSGI_APPLICATION = "orchestra.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("ORCHESTRA_DATABASE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/orchestra/static/"
STATIC_ROOT = ORCHESTRA_HOME / "static"
# WhiteNoise serves straight from the apps' static folders (no collectstatic needed) but wants this to exist.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/orchestra/media/"
MEDIA_ROOT = ORCHESTRA_HOME / "media"
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "orchestra:login"
LOGIN_REDIRECT_URL = "orchestra:dashboard"
LOGOUT_REDIRECT_URL = "orchestra:login"


def _email(url: str) -> dict[str, object]:
    """Django's EMAIL_* settings from ORCHESTRA_EMAIL_URL (smtp://user:password@host:port?tls=1)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    if not url:
        # No mail server: write each message to a file, so nothing fails and nothing is lost.
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(ORCHESTRA_HOME / "mail"),
        }
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"}:
        raise ValueError(f"ORCHESTRA_EMAIL_URL must be smtp://user:password@host:port (got scheme {parts.scheme!r})")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": query.get("tls", "0") in {"1", "true", "yes"},
        "EMAIL_USE_SSL": parts.scheme == "smtps" or query.get("ssl", "0") in {"1", "true", "yes"},
        "EMAIL_TIMEOUT": 10,
    }


globals().update(_email(os.environ.get("ORCHESTRA_EMAIL_URL", "")))
DEFAULT_FROM_EMAIL = _env("ORCHESTRA_EMAIL_FROM", "orchestra@localhost")
ORCHESTRA_EMAIL_NOTIFICATIONS = _env_bool("ORCHESTRA_EMAIL_NOTIFICATIONS", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"orchestra": {"handlers": ["console"], "level": _env("ORCHESTRA_LOG_LEVEL", "INFO").upper()}},
}
if not isinstance(logging.getLevelName(LOGGING["loggers"]["orchestra"]["level"]), int):  # type: ignore[index]
    raise ImproperlyConfigured(
        f"ORCHESTRA_LOG_LEVEL={os.environ['ORCHESTRA_LOG_LEVEL']!r} is not a log level: set it to DEBUG, INFO,"
        " WARNING, ERROR or CRITICAL, or unset it"
    )

ORCHESTRA_URL = _env("ORCHESTRA_URL", "http://127.0.0.1:8000")
ORCHESTRA_EXECUTOR = _env("ORCHESTRA_EXECUTOR", "local")
ORCHESTRA_POLL_SECONDS = _env_number("ORCHESTRA_POLL_SECONDS", 1.0, minimum=0, above=True)
ORCHESTRA_LEASE_SECONDS = _env_number("ORCHESTRA_LEASE_SECONDS", 300, minimum=0, above=True)
ORCHESTRA_BROKER_URL = _env("ORCHESTRA_BROKER_URL", "redis://127.0.0.1:6379/0")
ORCHESTRA_OUTBOX_TIMEOUT_SECONDS = _env_number("ORCHESTRA_OUTBOX_TIMEOUT_SECONDS", 10, minimum=0, above=True)
ORCHESTRA_OUTBOX_MAX_ATTEMPTS = _env_number("ORCHESTRA_OUTBOX_MAX_ATTEMPTS", 10, minimum=1, whole=True)
ORCHESTRA_OUTBOX_BACKOFF_SECONDS = _env_number("ORCHESTRA_OUTBOX_BACKOFF_SECONDS", 10, minimum=0)
ORCHESTRA_OUTBOX_BACKOFF_MAX_SECONDS = _env_number("ORCHESTRA_OUTBOX_BACKOFF_MAX_SECONDS", 3600, minimum=0)
ORCHESTRA_OUTBOX_LEASE_SECONDS = _env_number("ORCHESTRA_OUTBOX_LEASE_SECONDS", 60, minimum=0, above=True)
ORCHESTRA_OUTBOX_THREADS = _env_number("ORCHESTRA_OUTBOX_THREADS", 4, minimum=1, whole=True)
ORCHESTRA_OUTBOX_RETENTION_DAYS = _env_number("ORCHESTRA_OUTBOX_RETENTION_DAYS", 30, minimum=0)
ORCHESTRA_CELERY_QUEUE = _env("ORCHESTRA_CELERY_QUEUE", "orchestra")
ORCHESTRA_WORKFLOWS = [
    w.strip()
    for w in os.environ.get("ORCHESTRA_WORKFLOWS", "simple_workflow,journalism_workflow").split(",")
    if w.strip()
]
ORCHESTRA_TASK_WORKFLOWS = [
    w.strip()
    for w in os.environ.get("ORCHESTRA_TASK_WORKFLOWS", "orchestra.workflows.examples.myworkflow").split(",")
    if w.strip()
]
ORCHESTRA_API_SIGNING_KEY = os.environ.get("ORCHESTRA_API_SIGNING_KEY", "")
ORCHESTRA_SIGNATURE_MAX_SKEW_SECONDS = _env_number("ORCHESTRA_SIGNATURE_MAX_SKEW_SECONDS", 300, minimum=0, above=True)
ORCHESTRA_SCRIPT_TIMEOUT_SECONDS = _env_number("ORCHESTRA_SCRIPT_TIMEOUT_SECONDS", 3600, minimum=0, above=True)
ORCHESTRA_TRIGGER_SECRET = os.environ.get("ORCHESTRA_TRIGGER_SECRET", "")
ORCHESTRA_ALLOW_REGISTRATION = _env_bool("ORCHESTRA_ALLOW_REGISTRATION")
