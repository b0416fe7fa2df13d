"""Time tracking: a worker's time entries and their one running timer (B12's TimeEntry and TaskTimer)."""

from __future__ import annotations

from django.db import models


class TimeEntry(models.Model):
    worker = models.ForeignKey("orchestra.Worker", on_delete=models.CASCADE, related_name="time_entries")
    date = models.DateField()
    time_worked = models.DurationField()
    description = models.CharField(max_length=200, blank=True)
    assignment = models.ForeignKey(
        "orchestra.TaskAssignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="time_entries"
    )
    # When the entry came from the timer, when the timer ran.
    timer_start_time = models.DateTimeField(null=True, blank=True)
    timer_stop_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["worker", "date"], name="orchestra_timeentry_worker")]
        verbose_name_plural = "time entries"

    def __str__(self) -> str:
        return f"{self.worker_id} {self.date} {self.time_worked}"


class TaskTimer(models.Model):
    """The worker's timer; running while `start_time` is set."""

    worker = models.OneToOneField("orchestra.Worker", on_delete=models.CASCADE, related_name="timer")
    assignment = models.ForeignKey(
        "orchestra.TaskAssignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.CharField(max_length=200, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    stop_time = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"timer of {self.worker_id}"
