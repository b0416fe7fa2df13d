"""The home page's overview: loaded workflows and the latest projects (four queries)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from orchestra.models import Project, WorkflowVersion


def home_overview(limit: int = 20) -> dict[str, Any]:
    versions = list(
        WorkflowVersion.objects.select_related("workflow")
        .annotate(step_count=Count("steps", distinct=True), project_count=Count("projects", distinct=True))
        .order_by("workflow__slug", "slug")
    )
    projects = list(Project.objects.select_related("version__workflow").order_by("-id")[:limit])
    counts = dict(Project.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {"versions": versions, "projects": projects, "project_counts": counts}
