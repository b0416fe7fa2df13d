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
    # PROTECT: a project or task with history cannot be deleted (its events are its audit trail).
    # No index of its own: orchestra_event_chain (project, seq) serves every lookup by project.
    project = models.ForeignKey(
        "orchestra.Project", null=True, blank=True, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    task = models.ForeignKey("orchestra.Task", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # The audit ledger (orchestra.engine.ledger): the row's place in its project's chain (the global chain
    # for events of no project), the hash of the row before it, and its own hash.
    seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "seq"], name="orchestra_event_chain"),
            models.UniqueConstraint(
                fields=["seq"], condition=models.Q(project__isnull=True), name="orchestra_event_global_chain"
            ),
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        # Append-only: the event log is the history, so an existing row is never rewritten.
        if self.pk is not None:
            raise ValueError("events are append-only; create a new Event instead of changing one")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("events are append-only and cannot be deleted")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"


class LedgerHead(models.Model):
    """The last row of one chain (a project's id, or 0 for the global chain): appends lock this row, so
    appends to one project's chain take turns and appends to different projects never wait for each other.
    It outlives its rows, so deleting a chain's last rows (or all of them) shows."""

    chain = models.PositiveBigIntegerField(primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"chain {self.chain} at seq {self.seq}"
