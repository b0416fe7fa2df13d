from __future__ import annotations

from django.db import models

from orchestra.engine.lifecycle import StepKind
from orchestra.models._choices import choices


class Workflow(models.Model):
    slug = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Where the definition was loaded from (a directory), so `loadallworkflows` can reload it.
    code_directory = models.CharField(max_length=1000, blank=True)
    sample_data_load_function = models.JSONField(null=True, blank=True)
    definition = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Certification(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="certifications")
    slug = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    required_certifications = models.ManyToManyField("self", symmetrical=False, blank=True)

    class Meta:
        ordering = ["workflow_id", "slug"]
        constraints = [models.UniqueConstraint(fields=["workflow", "slug"], name="orchestra_cert_unique_slug")]

    def __str__(self) -> str:
        return f"{self.workflow_id}:{self.slug}"


class WorkflowVersion(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    slug = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The normalized definition (engine.definitions.VersionDef dumped as JSON) and its sha256, so services
    # rebuild the definition once per process and a reload can tell "unchanged" from "changed".
    definition = models.JSONField(default=dict)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workflow_id", "slug"]
        constraints = [models.UniqueConstraint(fields=["workflow", "slug"], name="orchestra_version_unique_slug")]

    def __str__(self) -> str:
        return f"{self.workflow.slug}/{self.slug}"


class Step(models.Model):
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="steps")
    slug = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=choices(StepKind))
    # Topological position, so steps list in dependency order without recomputing the graph.
    position = models.PositiveIntegerField(default=0)
    # For external steps in pull mode: the queue outside workers claim this step's tasks from.
    queue = models.CharField(max_length=100, blank=True, db_index=True)
    required_certifications = models.ManyToManyField(Certification, blank=True, related_name="steps")

    class Meta:
        ordering = ["version_id", "position"]
        constraints = [models.UniqueConstraint(fields=["version", "slug"], name="orchestra_step_unique_slug")]

    @property
    def is_human(self) -> bool:
        return self.kind == StepKind.HUMAN

    def __str__(self) -> str:
        return self.slug
