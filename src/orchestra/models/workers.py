from __future__ import annotations

from django.conf import settings
from django.db import models

from orchestra.engine.lifecycle import Role, TaskClass
from orchestra.models._choices import choices


class Worker(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orchestra_worker")
    created_at = models.DateTimeField(auto_now_add=True)
    # Email notifications the worker turned off, e.g. {"assigned": false}; a kind not named here is on.
    notifications = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["user__username"]

    @property
    def username(self) -> str:
        return str(self.user.get_username())

    def __str__(self) -> str:
        return self.username


class WorkerCertification(models.Model):
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="certifications")
    certification = models.ForeignKey("orchestra.Certification", on_delete=models.CASCADE, related_name="holders")
    role = models.CharField(max_length=16, choices=choices(Role))
    task_class = models.CharField(max_length=16, choices=choices(TaskClass), default=TaskClass.REAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "certification", "role", "task_class"], name="orchestra_workercert_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.worker_id}:{self.certification_id}:{self.role}:{self.task_class}"
