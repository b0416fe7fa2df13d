from __future__ import annotations

from django.conf import settings
from django.db import models


class Event(models.Model):
    """One change, appended in the same transaction as the change. Rows are never updated or deleted."""

    at = models.DateTimeField()
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who did it, as text that survives the user's deletion: a username, "system" or "executor:<host>".
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    project = models.ForeignKey(
        "orchestra.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    task = models.ForeignKey("orchestra.Task", null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "id"], name="orchestra_event_project")]

    def save(self, *args: object, **kwargs: object) -> None:
        # Append-only: the event log is the history, so an existing row is never rewritten.
        if self.pk is not None:
            raise ValueError("events are append-only; create a new Event instead of changing one")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("events are append-only and cannot be deleted")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"
