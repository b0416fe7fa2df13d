from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from orchestra import conf
from orchestra.engine.errors import OrchestraError
from orchestra.management.commands._base import OrchestraCommand
from orchestra.management.commands.loadworkflow import report
from orchestra.services.workflows import workflow_load


class Command(OrchestraCommand):
    help = "Load every version of every workflow package named in ORCHESTRA_WORKFLOWS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="allow compatible changes to versions with projects")

    def handle(self, *args: Any, **options: Any) -> None:
        workflows = conf.get("ORCHESTRA_WORKFLOWS")
        if not workflows:
            raise CommandError("ORCHESTRA_WORKFLOWS is empty; set it to a comma-separated list of workflow packages")
        failed = []
        for source in workflows:
            try:
                report(self, workflow_load(source=source, force=options["force"]))
            except OrchestraError as exc:
                failed.append(source)
                self.stderr.write(self.style.ERROR(f"{source}: {exc.message}"))
        if failed:
            raise CommandError(f"{len(failed)} workflow(s) failed to load: {', '.join(failed)}")
