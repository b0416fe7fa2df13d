"""The `orchestra` command: Django's management commands with Orchestra's standalone settings.

Run `orchestra help` for the list; Orchestra's own commands are listed first.
"""

from __future__ import annotations

import os
import sys

ORCHESTRA_COMMANDS = {
    "serve": "start the web server and the local executor (migrates first)",
    "worker": "run machine steps in a separate process (local executor, or a Celery worker with --celery)",
    "demo": "walk through the simple workflow, as B12's interactive demo did",
    "loadworkflow": "load a workflow definition (directory or package) into the database",
    "loadallworkflows": "load every workflow in ORCHESTRA_WORKFLOWS",
    "loadworkflowsampledata": "create a workflow's sample users and certifications (SLUG/VERSION)",
    "apikey": "client API keys: create NAME, list, revoke KEY_ID_OR_NAME",
    "token": "workers' personal API tokens: create USERNAME, list [USERNAME], revoke ID",
    "audit": "the audit ledger: verify [--project N], export [--project N] [-o FILE]",
    "webhook": "webhook and Slack subscriptions: add, list, remove, types, deliveries, redeliver",
    "migrate": "create or update the database tables",
    "createsuperuser": "create an admin user",
}


def _usage() -> str:
    lines = ["usage: orchestra <command> [options]", "", "Orchestra commands:"]
    lines += [f"  {name:<24}{text}" for name, text in ORCHESTRA_COMMANDS.items()]
    lines += [
        "",
        "Every Django management command works too (check, shell, makemigrations, ...).",
        "`orchestra <command> --help` describes a command's options.",
        "Configuration comes from ORCHESTRA_* environment variables; see the README.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestra.settings")
    if not argv or argv[0] in ("-h", "--help", "help") and len(argv) == 1:
        print(_usage())
        return
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:  # load the settings now, so that a bad ORCHESTRA_* variable is one line and not a traceback
        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as exc:
        sys.exit(f"orchestra: {exc}")
    execute_from_command_line(["orchestra", *argv])


if __name__ == "__main__":
    main()
