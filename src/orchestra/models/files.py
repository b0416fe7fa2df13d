from __future__ import annotations

from django.db import models


class StoredFile(models.Model):
    """Which project a file in the file store (orchestra.files) belongs to, so that it is served only to
    the people working on that project. Written by `files.save_file` for uploads and for files a machine
    step saves; a file saved outside any project's work has no row."""

    name = models.CharField(max_length=1000, unique=True)
    project = models.ForeignKey("orchestra.Project", on_delete=models.CASCADE, related_name="files")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} (project {self.project_id})"
