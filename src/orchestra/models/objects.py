"""The data object of a `tasks` step (Invenio-Workflows' WorkflowObject): one per task of such a step.

The object's id is its task's id. It holds the data the task list works on, its extra data (task
history, results, the pending action), the engine's own extra data (loop state), and where the list
stopped (`callback_pos`) with a hash of the task list, so resuming after the definition changed is
detected instead of guessed.
"""

from __future__ import annotations

from django.db import models

from orchestra.models.projects import Task

OBJECT_STATUSES = ("INITIAL", "COMPLETED", "HALTED", "RUNNING", "WAITING", "ERROR")


class WorkflowObject(models.Model):
    task = models.OneToOneField(Task, on_delete=models.CASCADE, primary_key=True, related_name="object")
    status = models.CharField(max_length=16, choices=[(s, s) for s in OBJECT_STATUSES], default="INITIAL")
    data = models.JSONField(null=True, blank=True)
    # The data the object started with: restarting from the first task starts from it again.
    initial_data = models.JSONField(null=True, blank=True)
    extra_data = models.JSONField(default=dict, blank=True)
    engine_data = models.JSONField(default=dict, blank=True)
    callback_pos = models.JSONField(default=list, blank=True)
    # How the next run starts relative to callback_pos (a StartPoint); set by resume and restart actions.
    start_point = models.CharField(max_length=16, default="restart_task")
    tasks_hash = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["task_id"]
        indexes = [models.Index(fields=["status", "action"], name="orchestra_object_pen")]

    def __str__(self) -> str:
        return f"object {self.task_id}"


__all__ = ["OBJECT_STATUSES", "WorkflowObject"]
