from __future__ import annotations

import importlib
import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser

from orchestra import conf
from orchestra.management.commands._base import OrchestraCommand


def load_examples(command: OrchestraCommand) -> list[tuple[str, str, str]]:
    """Load ORCHESTRA_WORKFLOWS and their sample data, and register ORCHESTRA_TASK_WORKFLOWS; returns
    (username, password, what) logins."""
    from orchestra.models import WorkflowVersion
    from orchestra.services.workers import worker_create
    from orchestra.services.workflows import workflow_load, workflow_load_sample_data, workflow_register_tasks

    logins: list[tuple[str, str, str]] = []
    for source in conf.get("ORCHESTRA_WORKFLOWS"):
        result = workflow_load(source=source)
        for version in WorkflowVersion.objects.filter(workflow__slug=result.workflow):
            workflow_load_sample_data(workflow_slug=result.workflow, version_slug=version.slug)
        module = importlib.import_module(source)
        sample = importlib.import_module(f"{module.__name__}.load_sample_data") if hasattr(module, "__path__") else None
        for username, password in getattr(sample, "SAMPLE_LOGINS", []):
            logins.append((username, password, result.workflow))
    for path in conf.get("ORCHESTRA_TASK_WORKFLOWS"):
        workflow_register_tasks(path=path)
    # B12 shipped an admin/admin fixture for the demo; the same here, for the Django admin.
    worker_create(username="admin", password="admin", superuser=True, project_admin=True)
    logins.append(("admin", "admin", "superuser: Django admin"))
    return logins


class Command(OrchestraCommand):
    help = "Start Orchestra: migrate the database, start the local executor, and serve the web app."
    needs_database = False  # it migrates the database itself

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--threads", type=int, default=8, help="web server threads")
        parser.add_argument("--no-executor", action="store_true", help="do not run machine steps in this process")
        parser.add_argument(
            "--load-examples",
            action="store_true",
            help="load the example workflows and their demo users first",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import waitress

        from orchestra.execution.local import LocalExecutor
        from orchestra.wsgi import application

        if not 1 <= options["port"] <= 65535:
            raise CommandError(f"--port must be 1 to 65535 (got {options['port']})")
        if options["threads"] < 1:
            raise CommandError(f"--threads must be at least 1 (got {options['threads']})")
        try:  # bind first: a port in use is an error before anything starts or says it is running
            server = waitress.create_server(
                application, host=options["host"], port=options["port"], threads=options["threads"]
            )
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']} ({exc.strerror or exc}): stop what uses it,"
                " or choose another --host or --port"
            ) from None
        if "ORCHESTRA_URL" not in os.environ:
            # Links (and the demo crawl's default page) point at this server unless told otherwise.
            host = "127.0.0.1" if options["host"] in ("0.0.0.0", "::") else options["host"]
            settings.ORCHESTRA_URL = f"http://{host}:{options['port']}"
        call_command("migrate", interactive=False, verbosity=0)
        logins = load_examples(self) if options["load_examples"] else []
        executor = None
        if conf.get("ORCHESTRA_EXECUTOR") == "local" and not options["no_executor"]:
            executor = LocalExecutor().start()
        url = f"http://{options['host']}:{options['port']}/orchestra/"
        self.stdout.write(f"Orchestra is running at {url}  (Ctrl-C to stop); workers sign in at {url}app/")
        if logins:
            self.stdout.write("Demo logins (username / password):")
            for username, password, what in logins:
                self.stdout.write(f"  {username:<28} {password:<14} {what}")
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
            if executor is not None:
                executor.stop(wait=False)
