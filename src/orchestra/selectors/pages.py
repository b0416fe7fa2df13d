"""What the worker and admin pages show, each in a fixed number of queries.

The selectors return plain values (model rows and dicts); the views render them. Permissions are part of
reading: a worker gets only tasks they hold a seat on (project admins get any).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import IO, Any

from django.db.models import Count, Q, QuerySet

from orchestra import files
from orchestra.engine.definitions import StepDef
from orchestra.engine.errors import NotFound
from orchestra.engine.lifecycle import (
    AssignmentStatus,
    ProjectStatus,
    StepKind,
    TaskAction,
    TaskStatus,
    available_actions,
)
from orchestra.events.ledger import Report, lineage, verify
from orchestra.models import (
    Event,
    Iteration,
    PersonalToken,
    Project,
    Task,
    TaskAssignment,
    TimeEntry,
    Worker,
    WorkflowVersion,
)
from orchestra.services._base import CompiledVersion, compiled
from orchestra.services._progress import prerequisites

# What a seat holder may do from the task page, by seat: entry level, or reviewer.
_WORKER_ACTIONS = {
    False: (TaskAction.SAVE, TaskAction.SUBMIT),
    True: (TaskAction.SAVE, TaskAction.ACCEPT, TaskAction.RETURN),
}


@dataclass
class TaskPage:
    task: Task
    step: StepDef
    cv: CompiledVersion
    seats: list[TaskAssignment]
    mine: TaskAssignment | None
    iterations: list[Iteration]
    prerequisites: dict[str, Any]
    prerequisite_names: dict[str, str]
    actions: list[str] = field(default_factory=list)

    @property
    def project(self) -> Project:
        return self.task.project

    @property
    def data(self) -> dict[str, Any]:
        """The work as this viewer should see it: their own draft, else the holder's, else the task's."""
        if self.mine is not None:
            return dict(self.mine.in_progress_task_data or {})
        holder = next((a for a in self.seats if a.status == AssignmentStatus.PROCESSING), None)
        if holder is not None:
            return dict(holder.in_progress_task_data or {})
        return dict(self.task.data or {})

    @property
    def is_read_only(self) -> bool:
        return not self.actions


def task_page(task_id: int, worker: Worker, *, is_project_admin: bool) -> TaskPage:
    """One task with its step, project, seats, iteration history and prerequisites; four queries."""
    task = Task.objects.select_related("step", "project__version__workflow").filter(pk=task_id).first()
    seats = list(TaskAssignment.objects.filter(task_id=task_id).select_related("worker__user").order_by("level"))
    mine = next((a for a in seats if a.worker_id == worker.pk), None)
    if task is None or (mine is None and not is_project_admin):
        # The same answer whether the task exists or not: a worker learns nothing about others' tasks.
        raise NotFound(f"task {task_id}: you have no assignment on this task", task_id=task_id)
    cv = compiled(task.project.version)
    step = cv.definition.step(cv.slugs_by_step_id[task.step_id])
    iterations = list(
        Iteration.objects.filter(assignment__task_id=task_id)
        .select_related("worker__user", "assignment")
        .order_by("start_datetime", "id")
    )
    names = {s.slug: s.name for s in cv.definition.steps}
    actions: list[str] = []
    project_active = task.project.status == ProjectStatus.ACTIVE
    if mine is not None and mine.status == AssignmentStatus.PROCESSING and project_active:
        allowed = set(available_actions(task.status, StepKind(task.step.kind)))
        actions = [a.value for a in _WORKER_ACTIONS[mine.level > 0] if a in allowed]
    inputs = prerequisites(task.project_id, cv, step.slug)
    return TaskPage(task, step, cv, seats, mine, iterations, inputs, names, actions)


def stored_file(name: str, worker: Worker | None, *, is_project_admin: bool) -> IO[bytes]:
    """A file of the file store opened for reading, for someone who may see it; the caller closes it.

    A file that belongs to a project (an upload, or what its machine step saved) is for project admins and
    the workers holding a seat on one of the project's tasks; a file saved outside any project's work for any
    worker. Anyone else gets NotFound, the same answer as for a file that does not exist. Two queries."""
    missing = NotFound(f"no stored file {name!r}", name=name)
    try:
        project_id = files.owner_of(name)
    except ValueError:
        raise missing from None
    if not is_project_admin:
        if worker is None:
            raise missing
        if project_id is not None and not (
            TaskAssignment.objects.filter(worker=worker, task__project_id=project_id).exists()
        ):
            raise missing
    try:
        return files.open_file(name)
    except (FileNotFoundError, ValueError):
        raise missing from None


# --- project admin pages -----------------------------------------------------------------------------


def projects_page(
    *,
    status: str = "",
    workflow: str = "",
    priority: int | None = None,
    text: str = "",
    page: int = 1,
    page_size: int = 25,
) -> dict[str, Any]:
    """A page of projects, newest first, with filters; task counts by status per project. Four queries."""
    projects: QuerySet[Project] = Project.objects.select_related("version__workflow").order_by("-id")
    if status:
        projects = projects.filter(status=status)
    if workflow:
        projects = projects.filter(version__workflow__slug=workflow)
    if priority is not None:
        projects = projects.filter(priority=priority)
    if text:
        projects = projects.filter(Q(short_description__icontains=text) | Q(pk=int(text) if text.isdigit() else -1))
    count = projects.count()
    start = (page - 1) * page_size
    rows = list(projects[start : start + page_size])
    counts: dict[int, dict[str, int]] = {p.pk: {} for p in rows}
    for project_id, task_status, n in (
        Task.objects.filter(project_id__in=list(counts)).values_list("project_id", "status").annotate(n=Count("id"))
    ):
        counts[project_id][task_status] = n
    workflows = list(WorkflowVersion.objects.values_list("workflow__slug", "workflow__name").distinct())
    return {
        "projects": [{"project": p, "task_counts": counts[p.pk]} for p in rows],
        "count": count,
        "page": page,
        "pages": max(1, (count + page_size - 1) // page_size),
        "workflows": sorted(set(workflows)),
    }


@dataclass
class ProjectPage:
    project: Project
    cv: CompiledVersion
    tasks: dict[str, Task]
    seats: dict[int, list[TaskAssignment]]
    iterations: dict[int, list[Iteration]]
    events: list[Event]
    # Per task in step order: inputs, producer and output hash (orchestra.events.ledger.lineage).
    lineage: list[dict[str, Any]]
    # The project's hash chain checked from the first row: `ok`, `rows`, and the first break if any.
    ledger: Report


def project_page(project_id: int, *, event_limit: int = 200) -> ProjectPage:
    """A project with its tasks, seats, iterations, latest events, lineage and a check of its ledger chain;
    ten queries whatever the project's size (the chain check reads every event row of the project, in one)."""
    project = Project.objects.select_related("version__workflow").filter(pk=project_id).first()
    if project is None:
        raise NotFound(f"project {project_id} does not exist", project_id=project_id)
    cv = compiled(project.version)
    tasks = list(Task.objects.filter(project=project).order_by("id"))
    by_slug = {cv.slugs_by_step_id[t.step_id]: t for t in tasks}
    seats: dict[int, list[TaskAssignment]] = {t.pk: [] for t in tasks}
    for a in TaskAssignment.objects.filter(task__project=project).select_related("worker__user").order_by("level"):
        seats[a.task_id].append(a)
    iterations: dict[int, list[Iteration]] = {}
    for it in (
        Iteration.objects.filter(assignment__task__project=project)
        .select_related("worker__user")
        .order_by("start_datetime", "id")
    ):
        iterations.setdefault(it.assignment_id, []).append(it)
    events = list(Event.objects.filter(project_id=project.pk).order_by("-seq")[:event_limit])
    history = lineage(project, tasks=by_slug, seats=seats)
    return ProjectPage(project, cv, by_slug, seats, iterations, events, history, verify(project.pk))


def workflows_page() -> list[dict[str, Any]]:
    """Every loaded version with its definition and how many projects use it; one query (the definitions
    come from the compiled-version cache)."""
    versions = list(
        WorkflowVersion.objects.select_related("workflow")
        .annotate(project_count=Count("projects"))
        .order_by("workflow__slug", "slug")
    )
    out = []
    for v in versions:
        cv = compiled(v)
        out.append({"version": v, "definition": cv.definition, "cv": cv, "project_count": v.project_count})
    return out


# --- time and account -----------------------------------------------------------------------------------


def open_assignments(worker: Worker, also: int | None = None, *, limit: int = 100) -> list[TaskAssignment]:
    """The worker's assignments they can log time against: those in their hands (newest first), plus
    `also` (an entry's or the timer's own assignment, even if handed on). One query."""
    # A seat stays Processing when its project is ended; its task is Aborted then, and no place for time.
    wanted = Q(status=AssignmentStatus.PROCESSING) & ~Q(task__status=TaskStatus.ABORTED)
    if also:
        wanted |= Q(pk=also)
    seats = (
        TaskAssignment.objects.filter(wanted, worker=worker)
        .select_related("task__step")
        .only("id", "task__id", "task__step__id", "task__step__name")
    )
    return list(seats.order_by("-created_at")[:limit])


def week_entries(worker: Worker, start: dt.date) -> list[TimeEntry]:
    """The worker's time entries from `start` for seven days, oldest first; one query."""
    return list(
        TimeEntry.objects.filter(worker=worker, date__gte=start, date__lt=start + dt.timedelta(days=7))
        .select_related("assignment__task__step")
        .order_by("date", "id")
    )


def personal_tokens(user: Any) -> list[PersonalToken]:
    """A user's personal API tokens, newest first; one query."""
    return list(PersonalToken.objects.filter(user=user).order_by("-created_at"))
