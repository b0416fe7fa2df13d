from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from django.db import connections

from orchestra import conf
from orchestra.management.commands._base import OrchestraCommand

POOLS = ("prefork", "threads", "solo")


class Command(OrchestraCommand):
    help = (
        "Run machine steps in this process until stopped (Ctrl-C or SIGTERM waits for running steps). Which"
        " executor depends on ORCHESTRA_EXECUTOR: `local` (the default) claims queued steps from the database"
        " with a thread pool; `celery` starts a Celery worker that takes messages from ORCHESTRA_BROKER_URL"
        " (the same as --celery). Run as many workers, on as many hosts, as you like: a step never runs twice"
        " at once, and the steps of a worker that dies are taken over once their lease"
        " (ORCHESTRA_LEASE_SECONDS) expires."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--threads", type=int, default=None, help="local executor: steps run at once (default 4)")
        celery = parser.add_argument_group("Celery worker (ORCHESTRA_EXECUTOR=celery)")
        celery.add_argument(
            "--celery",
            action="store_true",
            help="start a Celery worker (needs ORCHESTRA_EXECUTOR=celery, which also implies it), with a"
            " sweeper thread that re-sends work whose message was lost or whose worker died",
        )
        celery.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="steps run at once: processes (prefork) or threads (default: the number of CPUs)",
        )
        celery.add_argument(
            "--pool",
            choices=POOLS,
            default="prefork",
            help="prefork (default): one process per concurrent step, for CPU-bound steps; threads: for steps"
            " that mostly wait on I/O; solo: one step at a time in this process",
        )
        celery.add_argument(
            "--queues",
            default=None,
            help="comma-separated Celery queues to read (default: ORCHESTRA_CELERY_QUEUE, 'orchestra')",
        )
        celery.add_argument(
            "--loglevel", default="INFO", help="Celery's log level: DEBUG, INFO (default), WARNING, ERROR"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        executor = conf.get("ORCHESTRA_EXECUTOR")
        celery_options = [f"--{name}" for name in ("concurrency", "queues") if options[name] is not None]
        celery_options += ["--pool"] if options["pool"] != "prefork" else []
        celery_options += ["--loglevel"] if options["loglevel"] != "INFO" else []
        if options["celery"] or executor == "celery":
            if options["threads"] is not None:
                raise CommandError("--threads is for the local executor; a Celery worker takes --concurrency")
            self._celery(options)
            return
        if celery_options:
            raise CommandError(
                f"{' and '.join(celery_options)} {'are' if len(celery_options) > 1 else 'is'} for a Celery worker:"
                " add --celery (with ORCHESTRA_EXECUTOR=celery), or leave them out to run the local executor"
            )
        self._local(options)

    def _local(self, options: dict[str, Any]) -> None:
        from orchestra.execution.local import LocalExecutor

        if options["threads"] is not None and options["threads"] < 1:
            raise CommandError(f"--threads must be at least 1 (got {options['threads']})")
        executor = LocalExecutor(threads=options["threads"]).start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"orchestra worker running ({executor.threads} threads); Ctrl-C to stop")
        stop.wait()
        self.stdout.write("stopping: waiting for running steps to finish")
        executor.stop()

    def _celery(self, options: dict[str, Any]) -> None:
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError(f"--concurrency must be at least 1 (got {options['concurrency']})")
        try:
            from orchestra.execution import celery
        except ImportError as exc:
            raise CommandError(f"the celery executor needs Celery ({exc}): pip install 'orchestra[celery]'") from exc
        try:
            celery.check_configuration()
            celery.check_broker()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        queues = options["queues"] or conf.get("ORCHESTRA_CELERY_QUEUE")
        # The pool forks worker processes from this one: hand them no open database connection.
        connections.close_all()
        worker = celery.app.Worker(
            hostname=f"orchestra-{os.getpid()}@{socket.gethostname()}",
            pool_cls=options["pool"],
            concurrency=options["concurrency"],
            queues=[q.strip() for q in queues.split(",") if q.strip()],
            loglevel=options["loglevel"],
            # Orchestra's workers need no start-up sync or gossip with each other: the database coordinates them.
            without_mingle=True,
            without_gossip=True,
        )
        self.stdout.write(
            f"orchestra worker (Celery, {options['pool']} pool) reading queue(s) {queues} from {celery.broker_url()};"
            " Ctrl-C to stop"
        )
        self.stdout.flush()
        worker.start()
        if worker.exitcode:
            raise CommandError(f"the Celery worker stopped with exit code {worker.exitcode}")
