from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from django.core.management.base import CommandError, CommandParser

from orchestra import conf
from orchestra.management.commands._base import OrchestraCommand


def _server_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/orchestra/status/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Command(OrchestraCommand):
    help = (
        "Walk through the simple workflow, like B12's interactive demo: create a project, watch the machine"
        " step crawl a page for an image, then wait for a human to rate it in the browser. --yes has the"
        " demo worker rate it instead. Starts a server for the demo if none answers at ORCHESTRA_URL."
    )
    needs_database = False  # it migrates the database itself

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yes", action="store_true", help="do not wait for a human: the demo worker rates it")
        parser.add_argument("--url", help="page to crawl for an image (default: Orchestra's own demo gallery)")
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the rating")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.management import call_command

        from orchestra.models import Task
        from orchestra.selectors.projects import project_information
        from orchestra.services.projects import project_create
        from orchestra.services.workflows import workflow_load, workflow_load_sample_data

        say = self.stdout.write
        call_command("migrate", interactive=False, verbosity=0)
        workflow_load(source="simple_workflow")
        workflow_load_sample_data(workflow_slug="simple_workflow", version_slug="v1")
        base = conf.get("ORCHESTRA_URL").rstrip("/")
        server = executor = None
        if not _server_up(base):
            server, executor = self._start_server(base)
        say("Welcome to the Orchestra Simple Workflow Demo.\n")
        say("The Simple Workflow has two steps, one automated and one human.")
        say("The automated step (crawl) fetches a web page and picks a random image from it.")
        say("The human step (rate) asks an expert to rate how awesome the image is, from one to five.\n")
        url = options["url"] or f"{base}/orchestra/demo/gallery/"
        say(f"Creating a project that crawls {url} ...")
        project = project_create(
            workflow_slug="simple_workflow",
            version_slug="v1",
            description="A test run of our simple workflow",
            priority=10,
            project_data={"url": url},
            actor="demo-command",
        )
        say(f"Project with id {project.pk} created!\n")
        crawl = self._wait(
            lambda: Task.objects.get(project=project, step__slug="crawl").status, {"Complete", "Failed"}, 60
        )
        info = project_information([project.pk])[project.pk]
        say(json.dumps(info, indent=2))
        if crawl != "Complete":
            error = (info["tasks"]["crawl"]["last_error"] or "").strip().split("\n", 1)[0]
            raise CommandError(
                f"the crawl step ended '{crawl}': {error} (its traceback is on the project page,"
                f" {base}/orchestra/app/projects/{project.pk}/)"
            )
        say(f"\nThe crawl step is Complete; the image it found: {info['tasks']['crawl']['latest_data']['image']}")
        rate_id = info["tasks"]["rate"]["id"]
        if options["yes"]:
            self._rate_as_demo_worker(rate_id)
        else:
            say(
                f"\nNow a human rates the image: the demo worker (demo / demo) takes the rating task"
                f" (task {rate_id}) in the worker app at {base}/orchestra/app/ ('New delivery task')"
                " and submits a rating."
                " Waiting for the rating... (or rerun with --yes to have the demo worker rate it)"
            )
        self._wait(lambda: Task.objects.get(pk=rate_id).status, {"Complete"}, options["timeout"])
        info = project_information([project.pk])[project.pk]
        say(json.dumps(info, indent=2))
        say(
            f"\nTask complete! The rating: {info['tasks']['rate']['latest_data']}. Project status: "
            f"{info['project']['status']}."
        )
        if executor is not None:
            executor.stop(wait=False)
        if server is not None:
            server.close()

    def _wait(self, read: Any, done: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status = read()
            if status in done:
                return str(status)
            if time.monotonic() > deadline:
                raise CommandError(f"gave up waiting after {timeout:.0f}s (status is still '{status}')")
            time.sleep(0.5)

    def _rate_as_demo_worker(self, task_id: int) -> None:
        from orchestra.services.tasks import task_assign, task_submit

        self.stdout.write("\n--yes: the demo worker takes the rating task and rates the image 5.")
        task_assign(task_id=task_id, worker="demo", actor="demo-command")
        task_submit(task_id=task_id, worker="demo", data={"rating": 5})

    def _start_server(self, base: str) -> tuple[Any, Any]:
        import threading
        from urllib.parse import urlsplit

        from waitress.server import create_server

        from orchestra.execution.local import LocalExecutor
        from orchestra.wsgi import application

        parts = urlsplit(base)
        try:
            server = create_server(application, host=parts.hostname, port=parts.port or 80, threads=4)
        except OSError as exc:
            raise CommandError(f"nothing answers at {base} and the demo could not start a server there: {exc}")
        threading.Thread(target=server.run, daemon=True).start()
        executor = LocalExecutor().start() if conf.get("ORCHESTRA_EXECUTOR") == "local" else None
        self.stdout.write(f"(started a server for the demo at {base})")
        return server, executor
