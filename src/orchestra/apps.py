from __future__ import annotations

from django.apps import AppConfig


class OrchestraConfig(AppConfig):
    name = "orchestra"
    verbose_name = "Orchestra"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orchestra import checks  # noqa: F401  (registers system checks)
