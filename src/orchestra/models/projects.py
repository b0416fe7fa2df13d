from __future__ import annotations

from django.db import models

from orchestra.engine.lifecycle import AssignmentStatus, IterationStatus, ProjectStatus, TaskClass, TaskStatus
from orchestra.models._choices import choices


class Project(models.Model):
    version = models.ForeignKey("orchestra.WorkflowVersion", on_delete=models.PROTECT, related_name="projects")
    short_description = models.TextField(blank=True)
    priority = models.IntegerField(default=0)
    project_data = models.JSONField(default=dict, blank=True)
    task_class = models.CharField(max_length=16, choices=choices(TaskClass), default=TaskClass.REAL)
    status = models.CharField(max_length=16, choices=choices(ProjectStatus), default=ProjectStatus.ACTIVE)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-priority", "created_at"], name="orchestra_project_queue")]

    def __str__(self) -> str:
        return f"project {self.pk}"


class Task(models.Model):
    # No index of its own on project, task (assignments) or worker (assignments), nor on the events' project:
    # each is the first column of a unique constraint or index below, which serves the same lookups, and every
    # insert paid for the extra index in pages written (SQLite's checkpoints, PostgreSQL's WAL).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks", db_index=False)
    step = models.ForeignKey("orchestra.Step", on_delete=models.PROTECT, related_name="tasks")
    status = models.CharField(max_length=32, choices=choices(TaskStatus), default=TaskStatus.AWAITING_PROCESSING)
    # The task's output so far: the last submitted data for human steps, the result for automated ones.
    data = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    # Automated execution: attempts so far, when the next may start, and the current claim.
    attempts = models.PositiveIntegerField(default=0)
    run_after = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "step"], name="orchestra_task_one_per_step")]
        indexes = [models.Index(fields=["status", "run_after"], name="orchestra_task_queue")]

    def __str__(self) -> str:
        return f"task {self.pk}"


class TaskAssignment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    worker = models.ForeignKey("orchestra.Worker", on_delete=models.PROTECT, related_name="assignments", db_index=False)
    # B12's assignment_counter: 0 is the entry-level worker, k the k-th reviewer.
    level = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=choices(AssignmentStatus), default=AssignmentStatus.PROCESSING)
    in_progress_task_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["task_id", "level"]
        constraints = [
            models.UniqueConstraint(fields=["task", "worker"], name="orchestra_assignment_one_seat_per_worker"),
            models.UniqueConstraint(fields=["task", "level"], name="orchestra_assignment_one_worker_per_level"),
        ]
        indexes = [models.Index(fields=["worker", "status"], name="orchestra_assignment_worker")]

    def __str__(self) -> str:
        return f"assignment {self.pk} (task {self.task_id}, level {self.level})"


class Iteration(models.Model):
    assignment = models.ForeignKey(TaskAssignment, on_delete=models.CASCADE, related_name="iterations")
    # Who did this stint: kept apart from the assignment's worker so a reassignment does not rewrite history.
    worker = models.ForeignKey("orchestra.Worker", on_delete=models.PROTECT, related_name="iterations")
    status = models.CharField(max_length=20, choices=choices(IterationStatus), default=IterationStatus.PROCESSING)
    submitted_data = models.JSONField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    start_datetime = models.DateTimeField()
    end_datetime = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start_datetime", "id"]

    def __str__(self) -> str:
        return f"iteration {self.pk}"
