"""What a worker sees: their dashboard and one task with its prerequisites (fixed query counts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestra.engine.errors import NotFound
from orchestra.engine.lifecycle import AssignmentStatus, ProjectStatus, Role, StepKind, TaskStatus
from orchestra.models import Step, Task, TaskAssignment, TimeEntry, Worker, WorkerCertification
from orchestra.selectors.projects import _dt
from orchestra.services._base import compiled
from orchestra.services._progress import prerequisites

# B12's dashboard buckets, in the order the dashboard shows them.
STATES = ("returned", "in_progress", "pending_review", "pending_processing", "paused", "complete")


def bucket(assignment_status: str, task_status: str, project_status: str) -> str | None:
    """Which dashboard bucket an assignment is in; None for work that is gone (aborted)."""
    if task_status == TaskStatus.ABORTED or project_status == ProjectStatus.ABORTED:
        return None
    if task_status == TaskStatus.COMPLETE:
        return "complete"
    if project_status == ProjectStatus.PAUSED:
        return "paused"
    if assignment_status == AssignmentStatus.PROCESSING:
        return "returned" if task_status == TaskStatus.POST_REVIEW_PROCESSING else "in_progress"
    if task_status in (TaskStatus.PENDING_REVIEW, TaskStatus.REVIEWING):
        return "pending_review"
    return "pending_processing"


# What a dashboard row shows; everything else (task data, drafts, the version's definition) stays unread.
_ROW_FIELDS = (
    "id",
    "level",
    "created_at",
    "task__id",
    "task__status",
    "task__step__name",
    "task__step__slug",
    "task__project__id",
    "task__project__short_description",
    "task__project__priority",
    "task__project__version__name",
    "task__project__version__workflow__slug",
)


def dashboard_tasks(worker: Worker, *, state: str | None = None, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    """The worker's tasks in B12's buckets with counts, highest priority then newest first; a page of one
    bucket (or of all).

    Three or four queries: the bucket of every assignment from four narrow columns, the page's rows with
    the columns they show, the worker's certification roles, and (without both roles) whether some human
    step needs no certification. The cost grows with the worker's assignments only through the first.
    """
    counts = dict.fromkeys(STATES, 0)
    wanted: list[tuple[int, str]] = []
    seats = (
        TaskAssignment.objects.filter(worker=worker)
        .order_by("-task__project__priority", "-created_at", "-id")
        .values_list("id", "status", "task__status", "task__project__status")
    )
    for assignment_id, status, task_status, project_status in seats:
        where = bucket(status, task_status, project_status)
        if where is None:
            continue
        counts[where] += 1
        if state is None or where == state:
            wanted.append((assignment_id, where))
    start = (page - 1) * page_size
    shown = dict(wanted[start : start + page_size])
    rows = {
        a.pk: a
        for a in TaskAssignment.objects.filter(pk__in=list(shown))
        .select_related("task__step", "task__project__version__workflow")
        .only(*_ROW_FIELDS)
    }
    tasks = [
        {
            "id": a.task_id,
            "assignment_id": a.pk,
            "step": a.task.step.name,
            "step_slug": a.task.step.slug,
            "project": a.task.project.version.name,
            "project_id": a.task.project_id,
            "workflow_slug": a.task.project.version.workflow.slug,
            "detail": a.task.project.short_description,
            "priority": a.task.project.priority,
            "state": where,
            "task_status": a.task.status,
            "is_reviewer": a.level > 0,
            "assignment_start_datetime": _dt(a.created_at),
        }
        for assignment_id, where in shown.items()
        if (a := rows.get(assignment_id)) is not None
    ]
    roles = set(WorkerCertification.objects.filter(worker=worker).values_list("role", flat=True))
    if len(roles) < len(Role) and Step.objects.filter(kind=StepKind.HUMAN, required_certifications=None).exists():
        roles = set(Role)  # a step that needs no certification can be done (and reviewed) by any worker
    return {
        "tasks": tasks,
        "counts": counts,
        "count": len(wanted),
        "page": page,
        "page_size": page_size,
        "reviewerStatus": Role.REVIEWER in roles,
        "entryLevelStatus": Role.ENTRY_LEVEL in roles,
    }


def task_assignment_information(task_id: int, worker: Worker, *, is_project_admin: bool = False) -> dict[str, Any]:
    """One task as its worker sees it (B12's shape). A worker sees only tasks they hold a seat on; project
    admins see any. Four queries."""
    task = Task.objects.select_related("step", "project__version__workflow").filter(pk=task_id).first()
    seats = list(TaskAssignment.objects.filter(task_id=task_id).select_related("worker__user").order_by("level"))
    mine = next((a for a in seats if a.worker_id == worker.pk), None)
    if task is None or (mine is None and not is_project_admin):
        raise NotFound(f"task_id: you have no assignment on task {task_id}", field="task_id", task_id=task_id)
    project, version = task.project, task.project.version
    cv = compiled(version)
    inputs = prerequisites(project.pk, cv, task.step.slug)
    holder = next((a for a in seats if a.status == AssignmentStatus.PROCESSING), None)
    shown = mine or holder or (seats[-1] if seats else None)
    is_mine_processing = mine is not None and mine.status == AssignmentStatus.PROCESSING
    return {
        "assignment_id": shown.pk if shown else None,
        "task_id": task.pk,
        "task": {"data": shown.in_progress_task_data if shown else task.data, "status": task.status},
        "worker": (
            {
                "username": shown.worker.username,
                "first_name": shown.worker.user.first_name,
                "last_name": shown.worker.user.last_name,
            }
            if shown
            else None
        ),
        "status": shown.status if shown else None,
        "is_reviewer": bool(mine and mine.level > 0),
        "is_read_only": not (is_mine_processing and project.status == ProjectStatus.ACTIVE),
        "workflow": {"slug": version.workflow.slug, "name": version.workflow.name},
        "workflow_version": {"slug": version.slug, "name": version.name},
        "step": {"slug": task.step.slug, "name": task.step.name, "description": task.step.description},
        "project": {
            "id": project.pk,
            "details": project.short_description,
            "project_data": project.project_data,
            "status": project.status,
            "priority": project.priority,
        },
        "prerequisites": inputs,
        "is_project_admin": is_project_admin,
    }


def time_entries(
    worker: Worker,
    *,
    min_date: dt.date | None = None,
    max_date: dt.date | None = None,
    assignment_id: int | None = None,
    limit: int = 1000,
) -> list[TimeEntry]:
    """The worker's time entries, newest first, optionally between two dates or for one assignment."""
    entries = TimeEntry.objects.filter(worker=worker)
    if min_date:
        entries = entries.filter(date__gte=min_date)
    if max_date:
        entries = entries.filter(date__lte=max_date)
    if assignment_id:
        entries = entries.filter(assignment_id=assignment_id)
    return list(entries[:limit])
