from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orchestra.engine.errors import OrchestraError


class OrchestraCommand(BaseCommand):
    """Turns OrchestraError into a CommandError: a clear message and exit status 1, no traceback.

    Commands that read or write the database first check that it is migrated (`needs_database`)."""

    needs_database = True

    def execute(self, *args: Any, **options: Any) -> Any:
        if self.needs_database:
            _require_migrated()
        try:
            return super().execute(*args, **options)
        except OrchestraError as exc:
            raise CommandError(exc.message) from exc


def _require_migrated() -> None:
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        name = connection.settings_dict["NAME"]
        raise CommandError(
            f"the database ({name}) is not migrated: run `orchestra migrate` first (`orchestra serve` does it too)"
        )
