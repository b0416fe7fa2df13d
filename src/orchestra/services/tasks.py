"""Human task lifecycle: assign, pull, save, submit/accept, return, and the admin actions."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from django.db import connection

from orchestra import conf
from orchestra.engine.definitions import StepDef
from orchestra.engine.errors import (
    AssignmentError,
    Conflict,
    FormInvalid,
    IllegalTransition,
    NoTaskAvailable,
    NotFound,
    PermissionDenied,
    StateError,
    ValidationError,
)
from orchestra.engine.forms import clean_values, step_form
from orchestra.engine.lifecycle import (
    AssignmentStatus,
    IterationStatus,
    ProjectAction,
    ProjectStatus,
    Role,
    StepKind,
    TaskAction,
    TaskClass,
    TaskStatus,
    task_transition,
)
from orchestra.engine.policies.review import ReviewContext, Rng, review_needed
from orchestra.engine.revert import IterationInfo, plan_revert
from orchestra.models import Iteration, Project, Step, Task, TaskAssignment, Worker, WorkerCertification
from orchestra.services._base import ActorLike, Tx, cas, compiled, insert_objects, service, update_rows
from orchestra.services._loading import (
    Loaded,
    as_worker,
    check_data,
    load_task,
    project_and_task,
    require_active,
    require_open_project,
    rows_all,
    table,
)
from orchestra.services._progress import (
    advance,
    apply_assignment_policy,
    change_project_status,
    check_certified,
    prerequisites,
    seat_worker,
)

_rng: Rng = random.Random()


# --- assigning ------------------------------------------------------------------------------------


def task_assign(*, task_id: int, worker: Worker | str, actor: ActorLike = None) -> TaskAssignment:
    """Push a worker onto a task: the entry-level seat, or the next review level when Pending Review."""
    worker = as_worker(worker)
    with service(actor) as tx:
        loaded = load_task(task_id)
        return seat_worker(tx, project=loaded.project, task=loaded.task, step=loaded.step, worker=worker)


def _held(task: Task, worker: Worker, found: list[TaskAssignment] | None) -> TaskAssignment:
    """The worker's assignment that currently holds the task (status Processing), from the seats load_task
    read for the worker."""
    assert found is not None, "load_task(..., worker_id=worker.pk) reads the worker's seats"
    if not found:
        raise PermissionDenied(
            f"worker '{worker.username}' has no seat on task {task.pk}",
            task_id=task.pk,
            worker=worker.username,
        )
    (assignment,) = found
    if assignment.status != AssignmentStatus.PROCESSING:
        raise StateError(
            f"worker '{worker.username}' already handed task {task.pk} on (their level-{assignment.level}"
            f" assignment is '{assignment.status}'; the task is '{task.status}')",
            task_id=task.pk,
            worker=worker.username,
            current=task.status,
        )
    return assignment


def task_pull(*, worker: Worker | str, role: Role | str) -> TaskAssignment:
    """Give the worker the next task they may do (B12's "New delivery task" / "New review task").

    Highest project priority first, then the oldest project, then the oldest task. Paused and aborted
    projects are skipped, and certifications and task class are respected. Concurrent pulls never share a
    seat: each seat is taken by a compare-and-set on the task, under a shared lock on its project.
    """
    worker = as_worker(worker)
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError(f"role: expected 'entry_level' or 'reviewer', got {role!r}", field="role") from None
    target = TaskStatus.AWAITING_PROCESSING if role == Role.ENTRY_LEVEL else TaskStatus.PENDING_REVIEW
    with service(worker) as tx:
        # The returned-work check and the first candidates in one round trip on PostgreSQL (rows_all).
        enforce = bool(conf.get("ORCHESTRA_ENFORCE_NO_NEW_TASKS_DURING_REVIEW"))
        statements = [_returned_work(worker)] if enforce else []
        statements.append(_pull_candidates(worker, role, target, exclude=[]))
        found = rows_all(statements)
        if enforce and found[0]:
            returned = int(found[0][0][0])
            raise AssignmentError(
                f"worker '{worker.username}' has returned work outstanding on task {returned};"
                " finish and resubmit it before taking a new task",
                task_id=returned,
                worker=worker.username,
            )
        candidates = found[-1]
        tried: list[int] = []
        while True:
            for task_id, project_id in candidates:
                assignment = _try_seat(tx, worker, task_id, project_id, target)
                if assignment is not None:
                    return assignment
                tried.append(task_id)
            if len(candidates) < _BATCH:
                break  # every candidate was taken by concurrent pulls
            (candidates,) = rows_all([_pull_candidates(worker, role, target, exclude=tried)])
        raise NoTaskAvailable(_nothing_available_reason(worker, role, target), worker=worker.username, role=role)


_BATCH = 50


def _pull_candidates(worker: Worker, role: Role, target: TaskStatus, *, exclude: list[int]) -> tuple[str, list[Any]]:
    """The statement whose rows (task id, project id) are the tasks the worker may take, best first. One
    prepared statement: the pull is the busiest call of all.

    A step is open to the worker when it requires no certification the worker lacks in the role (steps
    without certifications are open to anyone, as in B12); real projects need real certifications,
    training projects accept training or real ones.
    """
    q = connection.ops.quote_name
    task, project, step = table(Task), table(Project), table(Step)
    seats, held = table(TaskAssignment), table(WorkerCertification)
    required = q(Step.required_certifications.through._meta.db_table)
    lacks = (
        f"EXISTS (SELECT 1 FROM {required} r WHERE r.step_id = t.step_id AND r.certification_id NOT IN"
        f" (SELECT h.certification_id FROM {held} h WHERE h.worker_id = %s AND h.role = %s{{classes}}))"
    )
    skip = f" AND t.id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    # CROSS JOIN keeps SQLite's join order: projects first, walked in the queue's order on
    # orchestra_project_queue, so it stops after the first candidates instead of sorting every open task
    # (0.08 ms instead of 1.2 ms with 2,000 open tasks). PostgreSQL plans CROSS JOIN ... WHERE as any join.
    sql = (
        f"SELECT t.id, t.project_id FROM {project} p CROSS JOIN {task} t CROSS JOIN {step} s"
        f" WHERE t.project_id = p.id AND s.id = t.step_id AND t.status = %s AND p.status = %s AND s.kind = %s"
        f" AND NOT EXISTS (SELECT 1 FROM {seats} a WHERE a.task_id = t.id AND a.worker_id = %s)"
        f" AND ((p.task_class = %s AND NOT {lacks.format(classes=' AND h.task_class = %s')})"
        f" OR (p.task_class = %s AND NOT {lacks.format(classes='')})){skip}"
        f" ORDER BY p.priority DESC, p.created_at, p.id, t.created_at, t.id LIMIT {_BATCH}"
    )
    params = [target, ProjectStatus.ACTIVE, StepKind.HUMAN, worker.pk]
    params += [TaskClass.REAL, worker.pk, role, TaskClass.REAL, TaskClass.TRAINING, worker.pk, role, *exclude]
    return sql, [str(p) if isinstance(p, str) else p for p in params]


def _returned_work(worker: Worker) -> tuple[str, list[Any]]:
    """The statement whose row, if any, is a task whose work came back to this worker with feedback and is
    not resubmitted yet."""
    sql = (
        f"SELECT a.task_id FROM {table(TaskAssignment)} a JOIN {table(Task)} t ON t.id = a.task_id"
        " WHERE a.worker_id = %s AND a.status = %s AND t.status = %s ORDER BY a.task_id LIMIT 1"
    )
    return sql, [worker.pk, str(AssignmentStatus.PROCESSING), str(TaskStatus.POST_REVIEW_PROCESSING)]


def _try_seat(tx: Tx, worker: Worker, task_id: int, project_id: int, target: TaskStatus) -> TaskAssignment | None:
    """Seat the worker on one candidate, or None if someone else took it first.

    The project is share-locked: concurrent pulls do not wait for each other (the task's compare-and-set
    decides between them), while a pause or an end, which lock the project exclusively, wait for us.
    """
    found = project_and_task(task_id, lock="share")
    if found is None:
        return None
    project, task = found
    if project.status != ProjectStatus.ACTIVE or task.status != target:
        return None
    cv = compiled(project.version)
    step = cv.definition.step(cv.slugs_by_step_id[task.step_id])
    try:
        return seat_worker(tx, project=project, task=task, step=step, worker=worker, certified=True, cause="pull")
    except (Conflict, AssignmentError):
        return None


def _nothing_available_reason(worker: Worker, role: Role, target: TaskStatus) -> str:
    waiting = (
        Task.objects.filter(status=target, project__status=ProjectStatus.ACTIVE, step__kind=StepKind.HUMAN)
        .exclude(assignments__worker=worker)
        .count()
    )
    kind = "review" if role == Role.REVIEWER else "delivery"
    who = "a reviewer" if role == Role.REVIEWER else "an entry-level worker"
    if waiting == 0:
        return f"no {kind} task is available for worker '{worker.username}': no task is waiting for {who}"
    return (
        f"no {kind} task is available for worker '{worker.username}': {waiting} task(s) are waiting, but none"
        f" matches your {role} certifications (ask a project admin for the certification the step needs)"
    )


# --- doing the work -------------------------------------------------------------------------------


def _inputs(loaded: Loaded) -> dict[str, Any]:
    """The task's prerequisites from what `load_task` read already (no query)."""
    return {slug: loaded.outputs[slug] for slug in loaded.cv.ancestors[loaded.step.slug] if slug in loaded.outputs}


def _checked_against_form(
    task_id: int, step: StepDef, data: dict[str, Any], *, partial: bool, inputs: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`data` cleaned by the step's declared form (`user_interface.form`); FormInvalid lists every bad field.

    Drafts and returns (`partial`) may leave required fields empty; submissions and accepts may not.
    """
    form = step_form(step.user_interface)
    if form is None:
        return data
    clean, errors = clean_values(form, data, prerequisites=inputs(), partial=partial)
    if errors:
        raise FormInvalid(task_id, errors)
    return clean


def task_save(*, task_id: int, worker: Worker | str, data: dict[str, Any]) -> TaskAssignment:
    """Save a draft. The status never changes, so a save racing a submit cannot undo the submission.

    Drafts are accepted while the project is paused (nothing is handed on, and nothing typed is lost);
    submissions are not.
    """
    worker = as_worker(worker)
    data = check_data(data)
    with service(worker) as tx:
        assignment = (
            TaskAssignment.objects.select_related("task__step", "task__project__version")
            .filter(task_id=task_id, worker=worker)
            .first()
        )
        if assignment is None:
            if not Task.objects.filter(pk=task_id).exists():
                raise NotFound(f"task {task_id} does not exist", task_id=task_id)
            raise PermissionDenied(f"worker '{worker.username}' has no seat on task {task_id}", task_id=task_id)
        task = assignment.task
        task_transition(task.status, TaskAction.SAVE, kind=StepKind(task.step.kind), task_id=task.pk)
        if assignment.status != AssignmentStatus.PROCESSING:
            raise StateError(
                f"task {task.pk} is '{task.status}' and worker '{worker.username}' already handed it on;"
                " only the worker holding it can save",
                task_id=task.pk,
            )
        cv = compiled(task.project.version)
        slug = task.step.slug
        data = _checked_against_form(
            task.pk,
            cv.definition.step(slug),
            data,
            partial=True,
            inputs=lambda: prerequisites(task.project_id, cv, slug),
        )
        cas(
            TaskAssignment,
            {"pk": assignment.pk, "status": AssignmentStatus.PROCESSING},
            f"assignment {assignment.pk} of task {task.pk}",
            in_progress_task_data=data,
            updated_at=tx.now,
        )
        assignment.in_progress_task_data = data
        tx.event("task_saved", project_id=task.project_id, task_id=task.pk, level=assignment.level)
        return assignment


def task_submit(
    *,
    task_id: int,
    worker: Worker | str,
    data: dict[str, Any],
    command: str = "submit",
    rng: Rng | None = None,
) -> Task:
    """Submit (entry level), accept (a reviewer), or resubmit after a return.

    The review policy decides whether a submission or an accept goes to another reviewer (Pending Review)
    or completes the task; a resubmission goes back to the reviewer who returned it.
    """
    worker = as_worker(worker)
    data = check_data(data)
    if command not in ("submit", "accept"):
        raise ValidationError(f"command: expected 'submit' or 'accept', got {command!r}", field="command")
    with service(worker) as tx:
        loaded = load_task(task_id, worker_id=worker.pk)
        project, task, step = loaded.project, loaded.task, loaded.step
        current = TaskStatus(task.status)
        action = TaskAction.ACCEPT if command == "accept" else TaskAction.SUBMIT
        task_transition(current, action, kind=step.kind, review_needed=False, task_id=task.pk)
        require_active(project, f"submitting task {task.pk}")
        assignment = _held(task, worker, loaded.seats)
        statuses = loaded.statuses
        if step.submission_depends_on:
            unmet = [s for s in step.submission_depends_on if statuses.get(s) != TaskStatus.COMPLETE]
            if unmet:
                raise StateError(
                    f"task {task.pk} (step '{step.slug}') cannot be submitted until step(s)"
                    f" {', '.join(repr(s) for s in unmet)} are Complete (submission_depends_on)",
                    task_id=task.pk,
                )
        data = _checked_against_form(task.pk, step, data, partial=False, inputs=lambda: _inputs(loaded))
        resubmit = current == TaskStatus.POST_REVIEW_PROCESSING
        if resubmit:
            new = task_transition(current, action, kind=step.kind, task_id=task.pk)
        else:
            assert step.review_policy is not None
            context = ReviewContext(
                step_slug=step.slug,
                reviews_so_far=assignment.level,
                project_data=project.project_data,
                task_data=data,
                worker=worker.username,
            )
            needed = review_needed(step.review_policy, context, rng or _rng)
            new = task_transition(current, action, kind=step.kind, review_needed=needed, task_id=task.pk)
        _hand_on(tx, task, assignment, data, current, new, IterationStatus.REQUESTED_REVIEW)
        if resubmit:
            _reopen(tx, task, assignment.level + 1, data)
        tx.event(
            "task_resubmitted"
            if resubmit
            else ("task_accepted" if current == TaskStatus.REVIEWING else "task_submitted"),
            project_id=project.pk,
            task_id=task.pk,
            from_status=current,
            to_status=new,
            worker=worker.username,
            level=assignment.level,
        )
        if new == TaskStatus.PENDING_REVIEW:
            apply_assignment_policy(tx, project=project, task=task, step=step, role=Role.REVIEWER)
        elif new == TaskStatus.COMPLETE:
            loaded.changed(new, data)
            advance(tx, project, loaded.statuses, loaded.outputs)
        return task


def task_return(*, task_id: int, worker: Worker | str, data: dict[str, Any], feedback: str) -> Task:
    """A reviewer returns the work to the level below with feedback (B12's `reject`)."""
    worker = as_worker(worker)
    data = check_data(data)
    if not isinstance(feedback, str) or not feedback.strip():
        raise ValidationError("feedback: a return needs feedback telling the worker what to change", field="feedback")
    with service(worker) as tx:
        loaded = load_task(task_id, worker_id=worker.pk)
        project, task, step = loaded.project, loaded.task, loaded.step
        current = TaskStatus(task.status)
        new = task_transition(current, TaskAction.RETURN, kind=step.kind, task_id=task.pk)
        require_active(project, f"returning task {task.pk}")
        assignment = _held(task, worker, loaded.seats)
        if assignment.level == 0:
            raise IllegalTransition(
                f"worker '{worker.username}' holds the entry-level seat of task {task.pk}; only a reviewer can return",
                task_id=task.pk,
            )
        data = _checked_against_form(task.pk, step, data, partial=True, inputs=lambda: _inputs(loaded))
        _hand_on(tx, task, assignment, data, current, new, IterationStatus.PROVIDED_REVIEW, feedback=feedback)
        _reopen(tx, task, assignment.level - 1, data)
        tx.event(
            "task_returned",
            project_id=project.pk,
            task_id=task.pk,
            from_status=current,
            to_status=new,
            worker=worker.username,
            level=assignment.level,
            feedback=feedback,
        )
        return task


def _hand_on(
    tx: Tx,
    task: Task,
    assignment: TaskAssignment,
    data: dict[str, Any],
    current: TaskStatus,
    new: TaskStatus,
    iteration_status: IterationStatus,
    feedback: str = "",
) -> None:
    """The worker's stint ends: task to `new` with `data`, their assignment Submitted, iteration closed."""
    completed = tx.now if new == TaskStatus.COMPLETE else None
    cas(
        Task,
        {"pk": task.pk, "status": current},
        f"task {task.pk}",
        status=new,
        data=data,
        updated_at=tx.now,
        completed_at=completed,
    )
    task.status, task.data = new, data
    cas(
        TaskAssignment,
        {"pk": assignment.pk, "status": AssignmentStatus.PROCESSING},
        f"assignment {assignment.pk} of task {task.pk}",
        status=AssignmentStatus.SUBMITTED,
        in_progress_task_data=data,
        updated_at=tx.now,
    )
    update_rows(
        Iteration,
        {"assignment": assignment, "status": IterationStatus.PROCESSING},
        status=iteration_status,
        submitted_data=data,
        feedback=feedback,
        end_datetime=tx.now,
    )


def _reopen(tx: Tx, task: Task, level: int, data: dict[str, Any]) -> None:
    """The assignment at `level` gets the task back with a new iteration."""
    other = TaskAssignment.objects.get(task=task, level=level)
    cas(
        TaskAssignment,
        {"pk": other.pk, "status": AssignmentStatus.SUBMITTED},
        f"assignment {other.pk} of task {task.pk}",
        status=AssignmentStatus.PROCESSING,
        in_progress_task_data=data,
        updated_at=tx.now,
    )
    insert_objects([Iteration(assignment=other, worker_id=other.worker_id, start_datetime=tx.now)])


# --- admin actions --------------------------------------------------------------------------------


def assignment_reassign(*, assignment_id: int, worker: Worker | str, actor: ActorLike = None) -> TaskAssignment:
    """Move a seat to another worker. Finished iterations stay credited to whoever did them."""
    worker = as_worker(worker)
    with service(actor) as tx:
        task_id = TaskAssignment.objects.filter(pk=assignment_id).values_list("task_id", flat=True).first()
        if task_id is None:
            raise NotFound(f"assignment {assignment_id} does not exist", assignment_id=assignment_id)
        loaded = load_task(task_id)
        project, task, step = loaded.project, loaded.task, loaded.step
        require_open_project(project, f"reassigning task {task.pk}")
        task_transition(task.status, TaskAction.REASSIGN, kind=step.kind, task_id=task.pk)
        assignment = TaskAssignment.objects.select_related("worker__user").get(pk=assignment_id)
        previous = assignment.worker
        if previous.pk == worker.pk:
            raise AssignmentError(
                f"worker: '{worker.username}' already holds assignment {assignment_id}", field="worker"
            )
        if TaskAssignment.objects.filter(task=task, worker=worker).exists():
            raise AssignmentError(
                f"worker '{worker.username}' already holds a seat on task {task.pk}; a worker never holds two seats",
                task_id=task.pk,
            )
        role = Role.ENTRY_LEVEL if assignment.level == 0 else Role.REVIEWER
        check_certified(worker, project, task, step, role)
        cas(
            TaskAssignment,
            {"pk": assignment.pk, "worker": previous.pk},
            f"assignment {assignment.pk}",
            worker=worker,
            updated_at=tx.now,
        )
        update_rows(Iteration, {"assignment": assignment, "status": IterationStatus.PROCESSING}, worker=worker)
        assignment.worker = worker
        tx.event(
            "task_reassigned",
            project_id=project.pk,
            task_id=task.pk,
            from_status=task.status,
            to_status=task.status,
            from_worker=previous.username,
            to_worker=worker.username,
            level=assignment.level,
        )
        return assignment


def task_complete_and_skip(*, task_id: int, actor: ActorLike = None, data: dict[str, Any] | None = None) -> Task:
    """Mark a task Complete without (further) review and create the tasks that follow it.

    B12 could send the task to review instead, and left the next tasks uncreated; both are fixed here.
    """
    with service(actor) as tx:
        loaded = load_task(task_id)
        project, task, step = loaded.project, loaded.task, loaded.step
        require_open_project(project, f"completing task {task.pk}")
        current = TaskStatus(task.status)
        new = task_transition(current, TaskAction.COMPLETE_AND_SKIP, kind=step.kind, task_id=task.pk)
        holder = TaskAssignment.objects.filter(task=task, status=AssignmentStatus.PROCESSING).first()
        final = check_data(data) if data is not None else (holder.in_progress_task_data if holder else task.data)
        if holder is not None:
            update_rows(TaskAssignment, {"pk": holder.pk}, status=AssignmentStatus.SUBMITTED, updated_at=tx.now)
            update_rows(
                Iteration,
                {"assignment": holder, "status": IterationStatus.PROCESSING},
                status=IterationStatus.REQUESTED_REVIEW,
                submitted_data=final,
                end_datetime=tx.now,
            )
        cas(
            Task,
            {"pk": task.pk, "status": current},
            f"task {task.pk}",
            status=new,
            data=final,
            updated_at=tx.now,
            completed_at=tx.now,
            claim_token=None,
            lease_expires_at=None,
        )
        task.status, task.data = new, final
        tx.event("task_skipped", project_id=project.pk, task_id=task.pk, from_status=current, to_status=new)
        loaded.changed(new, final)
        advance(tx, project, loaded.statuses, loaded.outputs)
        return task


def task_revert(*, task_id: int, iteration_id: int, revert_before: bool = False, actor: ActorLike = None) -> Task:
    """Roll a human task back to an iteration: later iterations go, the task's data rolls back with them."""
    with service(actor) as tx:
        loaded = load_task(task_id)
        project, task, step = loaded.project, loaded.task, loaded.step
        if project.status == ProjectStatus.ABORTED:
            require_open_project(project, f"reverting task {task.pk}")
        current = TaskStatus(task.status)
        task_transition(current, TaskAction.REVERT, kind=step.kind, target=TaskStatus.PROCESSING, task_id=task.pk)
        iterations = list(
            Iteration.objects.filter(assignment__task=task)
            .select_related("assignment")
            .order_by("start_datetime", "id")
        )
        plan = plan_revert(
            [
                IterationInfo(
                    it.id,
                    it.assignment_id,
                    it.assignment.level,
                    IterationStatus(it.status),
                    it.submitted_data,
                )
                for it in iterations
            ],
            target_id=iteration_id,
            revert_before=revert_before,
            current_data={it.assignment_id: it.assignment.in_progress_task_data for it in iterations},
        )
        new = task_transition(current, TaskAction.REVERT, kind=step.kind, target=plan.task_status, task_id=task.pk)
        Iteration.objects.filter(pk__in=plan.delete_iterations).delete()
        if plan.reopen_iteration is not None:
            update_rows(
                Iteration,
                {"pk": plan.reopen_iteration},
                status=IterationStatus.PROCESSING,
                submitted_data=None,
                feedback="",
                end_datetime=None,
            )
        TaskAssignment.objects.filter(pk__in=plan.delete_assignments).delete()
        for assignment_id, status in plan.assignment_status.items():
            fields: dict[str, Any] = {"status": status, "updated_at": tx.now}
            if assignment_id == plan.processing_assignment:
                fields["in_progress_task_data"] = plan.task_data or {}
            update_rows(TaskAssignment, {"pk": assignment_id}, **fields)
        cas(
            Task,
            {"pk": task.pk, "status": current},
            f"task {task.pk}",
            status=new,
            data=plan.task_data,
            updated_at=tx.now,
            completed_at=None,
        )
        task.status, task.data = new, plan.task_data
        if project.status == ProjectStatus.COMPLETED:
            change_project_status(tx, project, ProjectAction.REOPEN)
        tx.event(
            "task_reverted",
            project_id=project.pk,
            task_id=task.pk,
            from_status=current,
            to_status=new,
            iteration_id=iteration_id,
            revert_before=revert_before,
            deleted_iterations=list(plan.delete_iterations),
            deleted_assignments=list(plan.delete_assignments),
        )
        if new == TaskStatus.PENDING_REVIEW:
            apply_assignment_policy(tx, project=project, task=task, step=step, role=Role.REVIEWER)
        return task


__all__ = [
    "assignment_reassign",
    "task_assign",
    "task_complete_and_skip",
    "task_pull",
    "task_return",
    "task_revert",
    "task_save",
    "task_submit",
]
