"""Shared steps of the lifecycle services: seating a worker, and moving a project forward."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from orchestra import conf, execution
from orchestra.engine.definitions import StepDef
from orchestra.engine.errors import AssignmentError, CertificationError, OrchestraError, ProjectNotActive
from orchestra.engine.execution import pull_queue
from orchestra.engine.lifecycle import (
    OPEN,
    ProjectAction,
    ProjectStatus,
    Role,
    StepKind,
    TaskAction,
    TaskClass,
    TaskStatus,
    project_transition,
    task_transition,
)
from orchestra.engine.planner import plan
from orchestra.engine.policies.assignment import AssignmentContext, candidates
from orchestra.engine.policies.creation import creation_allowed, is_builtin_always
from orchestra.models import Iteration, Project, Task, TaskAssignment, Worker, WorkerCertification
from orchestra.services._base import CompiledVersion, Tx, cas, compiled, insert_objects

log = logging.getLogger(__name__)


class PolicyError(OrchestraError):
    """A workflow's policy function raised; the message names the step and the error."""

    code = "policy_error"
    http_status = 422


def role_for(status: TaskStatus) -> Role:
    return Role.REVIEWER if status == TaskStatus.PENDING_REVIEW else Role.ENTRY_LEVEL


def allowed_task_classes(project: Project) -> list[str]:
    """Real projects need real certifications; training projects accept training or real ones."""
    if project.task_class == TaskClass.REAL:
        return [TaskClass.REAL]
    return [TaskClass.REAL, TaskClass.TRAINING]


def check_certified(worker: Worker, project: Project, task: Task, step: StepDef, role: Role) -> None:
    required = step.required_certifications
    if not required:
        return
    held = set(
        WorkerCertification.objects.filter(
            worker=worker,
            role=role,
            task_class__in=allowed_task_classes(project),
            certification__workflow_id=project.version.workflow_id,
            certification__slug__in=required,
        ).values_list("certification__slug", flat=True)
    )
    missing = [c for c in required if c not in held]
    if missing:
        raise CertificationError(
            f"worker '{worker.username}' cannot take the {role} seat of task {task.pk} (step '{step.slug}'):"
            f" it needs the {role} certification(s) {', '.join(repr(m) for m in missing)}"
            f" for {project.task_class} projects",
            task_id=task.pk,
            worker=worker.username,
            missing=missing,
        )


def seat_worker(
    tx: Tx,
    *,
    project: Project,
    task: Task,
    step: StepDef,
    worker: Worker,
    certified: bool = False,
    cause: str = "assign",
) -> TaskAssignment:
    """Give `worker` the next seat on `task`: entry level when Awaiting Processing, a review level when
    Pending Review. Checks come before writes, so a refusal leaves nothing behind."""
    if project.status != ProjectStatus.ACTIVE:
        raise ProjectNotActive(
            f"project {project.pk} is '{project.status}'; work is only handed out on Active projects",
            project_id=project.pk,
        )
    current = TaskStatus(task.status)
    new_status = task_transition(current, TaskAction.ASSIGN, kind=step.kind, task_id=task.pk)
    role = role_for(current)
    # An Awaiting Processing task has no seats yet (a revert to that status removes them all).
    seats = (
        []
        if role == Role.ENTRY_LEVEL
        else list(TaskAssignment.objects.filter(task=task).values_list("worker_id", "level"))
    )
    if any(worker_id == worker.pk for worker_id, _ in seats):
        raise AssignmentError(
            f"worker '{worker.username}' already holds a seat on task {task.pk}; a worker never holds two"
            " seats on one task (nobody reviews their own work)",
            task_id=task.pk,
            worker=worker.username,
        )
    if not certified:
        check_certified(worker, project, task, step, role)
    level = len(seats)
    cas(
        Task,
        {"pk": task.pk, "status": current},
        f"task {task.pk}",
        status=new_status,
        updated_at=tx.now,
    )
    task.status = new_status
    (assignment,) = insert_objects(
        [
            TaskAssignment(
                task=task,
                worker=worker,
                level=level,
                in_progress_task_data=task.data or {},
                created_at=tx.now,
                updated_at=tx.now,
            )
        ]
    )
    insert_objects([Iteration(assignment=assignment, worker=worker, start_datetime=tx.now)])
    tx.event(
        "task_assigned",
        project_id=project.pk,
        task_id=task.pk,
        from_status=current,
        to_status=new_status,
        worker=worker.username,
        level=level,
        role=str(role),
        cause=cause,
    )
    return assignment


def apply_assignment_policy(tx: Tx, *, project: Project, task: Task, step: StepDef, role: Role) -> None:
    """Run the step's assignment policy for `role`; workers it names who cannot take the seat are skipped."""
    policy = step.assignment_policy
    if policy is None:
        return
    ref = policy.entry_level if role == Role.ENTRY_LEVEL else policy.reviewer
    if ref.path == "anyone_certified":
        return
    cv = compiled(project.version)
    entry_workers = {
        cv.slugs_by_step_id[step_id]: username
        for step_id, username in TaskAssignment.objects.filter(task__project=project, level=0).values_list(
            "task__step_id", "worker__user__username"
        )
    }
    context = AssignmentContext(
        step_slug=step.slug, role=role, project_data=project.project_data, entry_workers_by_step=entry_workers
    )
    try:
        usernames = candidates(ref, context)
    except Exception as exc:
        raise PolicyError(f"step '{step.slug}': assignment policy {ref.path} raised {exc!r}") from exc
    workers = {w.username: w for w in Worker.objects.select_related("user").filter(user__username__in=usernames)}
    for username in usernames:
        worker = workers.get(username)
        reason = f"no worker named '{username}'" if worker is None else ""
        if worker is not None:
            try:
                seat_worker(tx, project=project, task=task, step=step, worker=worker, cause="assignment_policy")
                return
            except (AssignmentError, CertificationError) as exc:
                reason = exc.message
        tx.event(
            "assignment_policy_skipped",
            project_id=project.pk,
            task_id=task.pk,
            worker=username,
            reason=reason,
        )


def prerequisites(project_id: int, cv: CompiledVersion, slug: str) -> dict[str, Any]:
    """Outputs of every transitive `creation_depends_on` ancestor of `slug`, keyed by step slug."""
    ancestors = cv.ancestors[slug]
    if not ancestors:
        return {}
    rows = Task.objects.filter(project_id=project_id, step_id__in=[cv.step_ids[a] for a in ancestors]).values_list(
        "step_id", "data"
    )
    data = {cv.slugs_by_step_id[step_id]: value for step_id, value in rows}
    return {slug: data[slug] for slug in ancestors if slug in data}


# Kinds an executor claims and starts: a Python callable, a task list, a subprocess, or a trigger POSTed to an outside
# service (which then reports back through the SDK endpoints). External steps in pull mode (`Step.queue`)
# are claimed by outside workers instead.
RUNNABLE_KINDS = frozenset({StepKind.MACHINE, StepKind.SCRIPT, StepKind.EXTERNAL, StepKind.TASKS})


@dataclass(frozen=True)
class Claim:
    """A claimed attempt, with what its runner needs to start without reading the task again."""

    task_id: int
    token: uuid.UUID
    attempt: int
    owner: str
    project_id: int
    version_id: int
    digest: str
    step_slug: str
    project_data: dict[str, Any]
    # Known when the task was claimed by the transaction that created it; else read before running.
    prerequisites: dict[str, Any] | None = None


def task_statuses(project: Project, cv: CompiledVersion) -> dict[str, TaskStatus]:
    rows = Task.objects.filter(project=project).values_list("step_id", "status")
    return {cv.slugs_by_step_id[step_id]: TaskStatus(status) for step_id, status in rows}


def advance(
    tx: Tx,
    project: Project,
    statuses: dict[str, TaskStatus] | None = None,
    outputs: dict[str, Any] | None = None,
) -> list[Task]:
    """Create the tasks whose dependencies are now Complete, and complete the project when it is done.

    `statuses` and `outputs` (by step slug) are the project's tasks as the caller read them after taking
    the project lock, with its own change applied; without them they are read here.
    """
    cv = compiled(project.version)
    if statuses is None:
        statuses = task_statuses(project, cv)

    def inputs(slug: str) -> dict[str, Any]:
        if outputs is None:
            return prerequisites(project.pk, cv, slug)
        return {a: outputs[a] for a in cv.ancestors[slug] if a in outputs}

    def allowed(step: StepDef) -> bool:
        if is_builtin_always(step.creation_policy):
            return True
        try:
            return creation_allowed(step.creation_policy, inputs(step.slug), project.project_data)
        except Exception as exc:
            raise PolicyError(
                f"step '{step.slug}': creation policy {step.creation_policy.path} raised {exc!r}",
                step=step.slug,
            ) from exc

    result = plan(cv.definition, statuses, creation_allowed=allowed, topological_order=cv.order)
    if result.create:
        return _create_tasks(tx, project, cv, result.create, statuses, inputs)
    if result.project_complete and project.status == ProjectStatus.ACTIVE:
        complete_project(tx, project, cv, statuses, reason=result.reason)
    return []


def _create_tasks(
    tx: Tx,
    project: Project,
    cv: CompiledVersion,
    slugs: tuple[str, ...],
    statuses: dict[str, TaskStatus],
    inputs: Callable[[str], dict[str, Any]],
) -> list[Task]:
    """Create the tasks of `slugs`. When this process will run automated work right after commit, those
    tasks are created already claimed, which saves each a claim transaction."""
    steps = [cv.definition.step(slug) for slug in slugs]
    runnable = [s.slug for s in steps if s.kind in RUNNABLE_KINDS and not pull_queue(s.kind, s.execution)]
    owner = execution.new_work_owner(len(runnable)) if runnable and project.status == ProjectStatus.ACTIVE else None
    lease = timedelta(seconds=conf.get("ORCHESTRA_LEASE_SECONDS"))
    tasks = []
    for step in steps:
        task = Task(project=project, step_id=cv.step_ids[step.slug], created_at=tx.now, updated_at=tx.now)
        if owner is not None and step.slug in runnable:
            task.status, task.attempts = TaskStatus.PROCESSING, 1
            task.claim_token, task.claimed_by, task.lease_expires_at = uuid.uuid4(), owner, tx.now + lease
        tasks.append(task)
    created = insert_objects(tasks)
    claims = []
    queued: list[int] = []
    for step, task in zip(steps, created, strict=True):
        statuses[step.slug] = TaskStatus(task.status)
        tx.event(
            "task_created",
            project_id=project.pk,
            task_id=task.pk,
            to_status=TaskStatus.AWAITING_PROCESSING,
            step=step.slug,
        )
        if step.kind == StepKind.HUMAN:
            apply_assignment_policy(tx, project=project, task=task, step=step, role=Role.ENTRY_LEVEL)
        elif task.claim_token is not None:
            tx.event(
                "task_claimed",
                project_id=project.pk,
                task_id=task.pk,
                from_status=TaskStatus.AWAITING_PROCESSING,
                to_status=TaskStatus.PROCESSING,
                attempt=1,
                owner=owner,
                took_over="",
            )
            claims.append(
                Claim(
                    task.pk,
                    task.claim_token,
                    1,
                    task.claimed_by,
                    project.pk,
                    cv.id,
                    cv.digest,
                    step.slug,
                    project.project_data,
                    inputs(step.slug),
                )
            )
        elif step.kind in RUNNABLE_KINDS:
            queued.append(task.pk)
    if claims:
        tx.after_commit.append(functools.partial(execution.run_claims, claims))
    if queued:
        tx.after_commit.append(functools.partial(execution.work_queued, queued))
    return created


_PROJECT_EVENTS = {
    ProjectAction.PAUSE: "project_paused",
    ProjectAction.RESUME: "project_resumed",
    ProjectAction.END: "project_ended",
    ProjectAction.COMPLETE: "project_completed",
    ProjectAction.REOPEN: "project_reopened",
}


def change_project_status(tx: Tx, project: Project, action: ProjectAction, **data: Any) -> ProjectStatus:
    """Apply a project transition: compare-and-set on its status, and its event."""
    new = project_transition(project.status, action, project_id=project.pk)
    fields: dict[str, Any] = {"status": new, "updated_at": tx.now}
    if action in (ProjectAction.END, ProjectAction.COMPLETE):
        fields["ended_at"] = tx.now
    elif action == ProjectAction.REOPEN:
        fields["ended_at"] = None
    cas(Project, {"pk": project.pk, "status": project.status}, f"project {project.pk}", **fields)
    tx.event(_PROJECT_EVENTS[action], project_id=project.pk, from_status=project.status, to_status=new, **data)
    project.status = new
    return new


def complete_project(
    tx: Tx, project: Project, cv: CompiledVersion, statuses: dict[str, TaskStatus], *, reason: str
) -> None:
    # A step with completion_ends_project may leave other tasks open; nobody should work on them now.
    open_slugs = [slug for slug, status in statuses.items() if status in OPEN]
    if open_slugs:
        abort_tasks(tx, project, cv, open_slugs, statuses)
    change_project_status(tx, project, ProjectAction.COMPLETE, reason=reason)


def abort_tasks(
    tx: Tx, project: Project, cv: CompiledVersion, slugs: list[str], statuses: dict[str, TaskStatus]
) -> None:
    rows = list(
        Task.objects.filter(project=project, step_id__in=[cv.step_ids[s] for s in slugs]).values_list(
            "id", "step_id", "status"
        )
    )
    Task.objects.filter(pk__in=[r[0] for r in rows], status__in=list(OPEN)).update(
        status=TaskStatus.ABORTED, updated_at=tx.now, claim_token=None, lease_expires_at=None
    )
    for task_id, step_id, status in rows:
        statuses[cv.slugs_by_step_id[step_id]] = TaskStatus.ABORTED
        tx.event("task_aborted", project_id=project.pk, task_id=task_id, from_status=status, to_status="Aborted")
