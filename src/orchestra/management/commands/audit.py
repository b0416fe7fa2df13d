from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from orchestra.events import ledger
from orchestra.management.commands._base import OrchestraCommand


class Command(OrchestraCommand):
    help = (
        "The audit ledger: `audit verify [--project N]` recomputes every hash chain and names the first row of"
        " each that was edited, deleted, inserted or reordered (exit status 1 if any); `audit export"
        " [--project N] [--output FILE]` writes the events and chain heads as JSON lines."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{verify,export}")
        verify = actions.add_parser("verify", help="check the hash chains; exit status 1 when one is broken")
        verify.add_argument("--project", type=int, metavar="N", help="only project N's chain")
        export = actions.add_parser("export", help="write events and chain heads as JSON lines")
        export.add_argument("--project", type=int, metavar="N", help="only project N's chain")
        export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        project = options.get("project")
        if options["action"] == "verify":
            report = ledger.verify(project)
            if not report.rows and project is not None:
                raise CommandError(f"--project: project {project} has no events (is the id right?)")
            for problem in report.problems:
                self.stderr.write(f"BROKEN {problem}")
            summary = f"{report.chains} chain(s), {report.rows} event(s) checked"
            if report.problems:
                raise CommandError(f"{len(report.problems)} chain(s) broken; {summary}")
            self.stdout.write(f"ok: {summary}; every hash and link matches")
            return
        if options.get("output"):
            try:
                with open(options["output"], "w", encoding="utf-8") as out:
                    lines = ledger.export(out, project)
            except OSError as exc:
                raise CommandError(f"--output: cannot write {options['output']}: {exc.strerror}") from exc
            self.stderr.write(f"wrote {lines} line(s) to {options['output']}")
        else:
            for line in ledger.export_lines(project):
                self.stdout.write(line)
