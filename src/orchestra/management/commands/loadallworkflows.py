from __future__ import annotations

import functools
from typing import Any

from django.core.management.base import CommandError, CommandParser

from orchestra import conf
from orchestra.engine.errors import OrchestraError
from orchestra.management.commands._base import OrchestraCommand
from orchestra.management.commands.loadworkflow import report
from orchestra.services.workflows import workflow_load, workflow_register_tasks


class Command(OrchestraCommand):
    help = (
        "Load every version of every workflow package named in ORCHESTRA_WORKFLOWS, and register the task lists"
        " named in ORCHESTRA_TASK_WORKFLOWS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="allow compatible changes to versions with projects")

    def handle(self, *args: Any, **options: Any) -> None:
        workflows = conf.get("ORCHESTRA_WORKFLOWS")
        task_lists = conf.get("ORCHESTRA_TASK_WORKFLOWS")
        if not workflows and not task_lists:
            raise CommandError(
                "ORCHESTRA_WORKFLOWS and ORCHESTRA_TASK_WORKFLOWS are empty; set ORCHESTRA_WORKFLOWS to a"
                " comma-separated list of workflow packages"
            )
        failed = []
        loads = [(s, functools.partial(workflow_load, source=s, force=options["force"])) for s in workflows]
        loads += [(p, functools.partial(workflow_register_tasks, path=p)) for p in task_lists]
        for source, load in loads:
            try:
                report(self, load())
            except OrchestraError as exc:
                failed.append(source)
                self.stderr.write(self.style.ERROR(f"{source}: {exc.message}"))
        if failed:
            raise CommandError(f"{len(failed)} workflow(s) failed to load: {', '.join(failed)}")
