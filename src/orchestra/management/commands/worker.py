from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import CommandError, CommandParser

from orchestra import conf
from orchestra.execution.local import LocalExecutor
from orchestra.management.commands._base import OrchestraCommand


class Command(OrchestraCommand):
    help = (
        "Run the local executor as its own process: it claims queued machine steps from the database and runs"
        " them until stopped (Ctrl-C or SIGTERM). Run as many as you like; they never run a step twice at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--threads", type=int, default=None, help="steps run at once (default 4)")

    def handle(self, *args: Any, **options: Any) -> None:
        if conf.get("ORCHESTRA_EXECUTOR") == "celery":
            raise CommandError("ORCHESTRA_EXECUTOR is celery: start Celery workers instead of `orchestra worker`")
        executor = LocalExecutor(threads=options["threads"]).start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"orchestra worker running ({executor.threads} threads); Ctrl-C to stop")
        stop.wait()
        self.stdout.write("stopping: waiting for running steps to finish")
        executor.stop()
