"""Runs of script and external steps: one per attempt, keyed by the attempt's claim token, with the
status, outputs and logs the run reported (through the SDK endpoints, or a script's stdout and stderr)."""

from __future__ import annotations

from enum import StrEnum

from django.db import models

from orchestra.models._choices import choices
from orchestra.models.projects import Task


class RunStatus(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class TaskRun(models.Model):
    # The attempt's claim token: the run id handed to the step as ORCHESTRA_TASK_RUN_ID.
    id = models.UUIDField(primary_key=True, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs")
    attempt = models.PositiveIntegerField()
    owner = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=choices(RunStatus), default=RunStatus.RUNNING)
    # The last status the run itself reported through the SDK (RUNNING, WARNING, SUCCEEDED, ...).
    reported_status = models.CharField(max_length=16, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task_id", "attempt"]

    def __str__(self) -> str:
        return f"run {self.id} of task {self.task_id} (attempt {self.attempt})"


class LogSource(StrEnum):
    SDK = "sdk"
    STDOUT = "stdout"
    STDERR = "stderr"
    ORCHESTRA = "orchestra"


class TaskLog(models.Model):
    run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="logs")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="logs")
    created_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=choices(LogSource))
    level = models.CharField(max_length=16, blank=True)  # the SDK status for status updates (WARNING, ...)
    name = models.CharField(max_length=200, blank=True)  # the SDK's log_name
    message = models.TextField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "id"], name="orchestra_tasklog_task")]

    def __str__(self) -> str:
        return f"{self.source} log of run {self.run_id}"
