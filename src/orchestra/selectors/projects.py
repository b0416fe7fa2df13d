"""Reading projects in B12's `project_information` shape, with a fixed number of queries."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orchestra.engine.errors import NotFound
from orchestra.engine.lifecycle import AssignmentStatus
from orchestra.models import Iteration, Project, Step, Task, TaskAssignment, WorkflowVersion


def _dt(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def project_information(project_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Projects by id: project fields, steps in dependency order, tasks keyed by step slug with their
    assignments and iterations. Five queries, however many projects, tasks or iterations."""
    projects = list(Project.objects.select_related("version__workflow").filter(pk__in=project_ids))
    missing = sorted(set(project_ids) - {p.pk for p in projects})
    if missing:
        raise NotFound(f"project(s) {', '.join(map(str, missing))} do not exist", project_ids=missing)
    version_ids = {p.version_id for p in projects}
    steps_by_version: dict[int, list[Step]] = defaultdict(list)
    for step in Step.objects.filter(version_id__in=version_ids).order_by("version_id", "position"):
        steps_by_version[step.version_id].append(step)
    tasks = list(Task.objects.filter(project_id__in=project_ids).select_related("step").order_by("id"))
    assignments = list(
        TaskAssignment.objects.filter(task__project_id__in=project_ids).select_related("worker__user").order_by("level")
    )
    iterations = list(
        Iteration.objects.filter(assignment__task__project_id__in=project_ids)
        .select_related("worker__user")
        .order_by("start_datetime", "id")
    )
    iterations_by_assignment: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for it in iterations:
        iterations_by_assignment[it.assignment_id].append(
            {
                "id": it.pk,
                "assignment": it.assignment_id,
                "worker": it.worker.username,
                "start_datetime": _dt(it.start_datetime),
                "end_datetime": _dt(it.end_datetime),
                "status": it.status,
                "submitted_data": it.submitted_data,
                "feedback": it.feedback,
            }
        )
    assignments_by_task: dict[int, list[TaskAssignment]] = defaultdict(list)
    for a in assignments:
        assignments_by_task[a.task_id].append(a)
    tasks_by_project: dict[int, dict[str, Any]] = defaultdict(dict)
    for task in tasks:
        seats = assignments_by_task[task.pk]
        holder = next((a for a in seats if a.status == AssignmentStatus.PROCESSING), None)
        tasks_by_project[task.project_id][task.step.slug] = {
            "id": task.pk,
            "step_slug": task.step.slug,
            "project": task.project_id,
            "status": task.status,
            "start_datetime": _dt(task.created_at),
            "completed_datetime": _dt(task.completed_at),
            "latest_data": holder.in_progress_task_data if holder else task.data,
            "attempts": task.attempts,
            "last_error": task.last_error or None,
            "assignments": [
                {
                    "id": a.pk,
                    "level": a.level,
                    "start_datetime": _dt(a.created_at),
                    "worker": {
                        "id": a.worker_id,
                        "username": a.worker.username,
                        "first_name": a.worker.user.first_name,
                        "last_name": a.worker.user.last_name,
                    },
                    "task": task.pk,
                    "status": a.status,
                    "in_progress_task_data": a.in_progress_task_data,
                    "iterations": iterations_by_assignment[a.pk],
                }
                for a in seats
            ],
        }
    return {
        p.pk: {
            "project": {
                "id": p.pk,
                "workflow_slug": p.version.workflow.slug,
                "workflow_version_slug": p.version.slug,
                "short_description": p.short_description,
                "start_datetime": _dt(p.created_at),
                "priority": p.priority,
                "project_data": p.project_data,
                "task_class": p.task_class,
                "status": p.status,
            },
            "steps": [
                {
                    "slug": s.slug,
                    "name": s.name,
                    "description": s.description,
                    "is_human": s.is_human,
                    "kind": s.kind,
                }
                for s in steps_by_version[p.version_id]
            ],
            "tasks": tasks_by_project[p.pk],
        }
        for p in projects
    }


def workflow_types() -> dict[str, Any]:
    """B12's `workflow_types` shape: {slug: {name, versions: {slug: {name, description}}}}; one query."""
    out: dict[str, Any] = {}
    for version in WorkflowVersion.objects.select_related("workflow").order_by("workflow__slug", "slug"):
        workflow = out.setdefault(
            version.workflow.slug,
            {"name": version.workflow.name, "description": version.workflow.description, "versions": {}},
        )
        workflow["versions"][version.slug] = {"name": version.name, "description": version.description}
    return out


def project_summary(p: Project) -> dict[str, Any]:
    return {
        "id": p.pk,
        "workflow_slug": p.version.workflow.slug,
        "workflow_version_slug": p.version.slug,
        "short_description": p.short_description,
        "priority": p.priority,
        "task_class": p.task_class,
        "status": p.status,
        "start_datetime": _dt(p.created_at),
    }


def project_list(
    *, status: str | None = None, workflow: str | None = None, page: int = 1, page_size: int = 50
) -> dict[str, Any]:
    """A page of projects, newest first; two queries (the count and the page)."""
    projects = Project.objects.select_related("version__workflow").order_by("-id")
    if status:
        projects = projects.filter(status=status)
    if workflow:
        projects = projects.filter(version__workflow__slug=workflow)
    count = projects.count()
    start = (page - 1) * page_size
    return {
        "count": count,
        "page": page,
        "page_size": page_size,
        "projects": [project_summary(p) for p in projects[start : start + page_size]],
    }


def require_project(project_id: int) -> None:
    """NotFound unless the project exists; one query."""
    if not Project.objects.filter(pk=project_id).exists():
        raise NotFound(f"project_id: project {project_id} does not exist", field="project_id")
