from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from orchestra.management.commands._base import OrchestraCommand
from orchestra.services.workflows import workflow_load_sample_data


class Command(OrchestraCommand):
    help = "Run a workflow version's sample data loader (users, workers, certifications). Argument: SLUG/VERSION."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_version", metavar="SLUG/VERSION", help="e.g. journalism/v1")

    def handle(self, *args: Any, **options: Any) -> None:
        value = options["workflow_version"]
        if value.count("/") != 1 or not all(value.split("/")):
            raise CommandError(f"expected SLUG/VERSION such as journalism/v1, got {value!r}")
        workflow_slug, version_slug = value.split("/")
        workflow_load_sample_data(workflow_slug=workflow_slug, version_slug=version_slug)
        self.stdout.write(f"loaded sample data for {workflow_slug}/{version_slug}")
