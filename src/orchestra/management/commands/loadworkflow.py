from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from orchestra.management.commands._base import OrchestraCommand
from orchestra.services.workflows import LoadResult, workflow_load


def report(command: OrchestraCommand, result: LoadResult) -> None:
    for warning in result.warnings:
        command.stderr.write(command.style.WARNING(f"warning: {warning}"))
    for outcome in result.versions:
        detail = f" ({'; '.join(outcome.changes)})" if outcome.changes else ""
        command.stdout.write(f"{result.workflow}/{outcome.slug}: {outcome.outcome}{detail}")


class Command(OrchestraCommand):
    help = (
        "Load a workflow definition into the database. PATH_OR_APP_LABEL is a directory holding workflow.json"
        " (or .yaml) and vN/version.json, or the name of an importable package that holds them (B12's app"
        " label). Without VERSION every version is loaded. Reloading an unchanged version does nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path_or_app_label")
        parser.add_argument("version", nargs="?", help="the version slug to load, e.g. v1 (default: all)")
        parser.add_argument(
            "--force",
            action="store_true",
            help="allow a compatible change to a version that already has projects",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = workflow_load(source=options["path_or_app_label"], version=options["version"], force=options["force"])
        report(self, result)
