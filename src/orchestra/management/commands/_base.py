from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orchestra.engine.errors import OrchestraError


class OrchestraCommand(BaseCommand):
    """Turns OrchestraError into a CommandError: a clear message and exit status 1, no traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except OrchestraError as exc:
            raise CommandError(exc.message) from exc
