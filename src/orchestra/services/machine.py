"""Automated steps: claiming queued work with a lease, applying results, failures and retries.

The database is the queue of record. A claim is a compare-and-set that stores a fresh `claim_token`;
only the holder of the current token can apply a result, so a result from a worker whose lease expired
(and whose task someone else took over) is refused, and no completion is ever applied twice.
"""

from __future__ import annotations

import functools
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q

from orchestra import conf, execution
from orchestra.engine.definitions import StepDef
from orchestra.engine.errors import Conflict
from orchestra.engine.lifecycle import ProjectStatus, TaskAction, TaskStatus, task_transition
from orchestra.engine.policies.review import Rng
from orchestra.engine.retry import attempts_left, backoff_seconds
from orchestra.engine.text import storable
from orchestra.models import RunStatus, Task, TaskRun
from orchestra.services._base import ActorLike, _compile, cas, service, supports_skip_locked, update_rows
from orchestra.services._loading import check_data, load_task, require_open_project
from orchestra.services._progress import RUNNABLE_KINDS, Claim, advance, prerequisites

_rng: Rng = random.Random()


@dataclass(frozen=True)
class RunSpec:
    task_id: int
    project_id: int
    step: StepDef
    project_data: dict[str, Any]
    prerequisites: dict[str, Any]


def machine_claim(
    *,
    owner: str,
    limit: int = 1,
    task_ids: list[int] | None = None,
    queue: str = "",
    lease_seconds: float | None = None,
) -> list[Claim]:
    """Claim up to `limit` runnable tasks: queued and due, or Processing with an expired lease.

    Executors claim with `queue=""`; outside workers claim the tasks of a pull-mode external step's queue.
    """
    claims: list[Claim] = []
    with service(owner) as tx:
        lease = timedelta(seconds=lease_seconds or conf.get("ORCHESTRA_LEASE_SECONDS"))
        queryset = Task.objects.filter(_claimable(tx.now, queue=queue))
        if task_ids is not None:
            queryset = queryset.filter(pk__in=task_ids)
        if supports_skip_locked():
            queryset = queryset.select_for_update(skip_locked=True, of=("self",), no_key=True)
        rows = list(
            queryset.order_by("-project__priority", "id").values_list(
                "id",
                "status",
                "claim_token",
                "attempts",
                "project_id",
                "claimed_by",
                "project__version_id",
                "project__version__digest",
                "step_id",
                "project__project_data",
            )[:limit]
        )
        for task_id, status, old_token, attempts, project_id, old_owner, version_id, digest, step_id, data in rows:
            cv = _compile(version_id, digest)
            step = cv.definition.step(cv.slugs_by_step_id[step_id])
            if status == TaskStatus.PROCESSING:
                _run_lost(old_token, tx.now, f"worker {old_owner} stopped reporting (lease expired)")
            if status == TaskStatus.PROCESSING and not attempts_left(step.retry, attempts):
                # The last attempt's worker vanished (crash, kill): that attempt failed for good.
                update_rows(
                    Task,
                    {"pk": task_id, "status": status, "claim_token": old_token},
                    status=TaskStatus.FAILED,
                    claim_token=None,
                    lease_expires_at=None,
                    updated_at=tx.now,
                    last_error=f"worker {old_owner} stopped reporting (lease expired) on the last attempt",
                )
                tx.event(
                    "task_failed",
                    project_id=project_id,
                    task_id=task_id,
                    from_status=status,
                    to_status=TaskStatus.FAILED,
                    attempt=attempts,
                    error="lease expired",
                    retry=False,
                )
                continue
            new = task_transition(status, TaskAction.CLAIM, kind=step.kind, task_id=task_id)
            token = uuid.uuid4()
            changed = update_rows(
                Task,
                {"pk": task_id, "status": status, "claim_token": old_token},
                status=new,
                claim_token=token,
                claimed_by=owner,
                lease_expires_at=tx.now + lease,
                attempts=attempts + 1,
                updated_at=tx.now,
            )
            if changed != 1:
                continue  # another executor claimed it first
            tx.event(
                "task_claimed",
                project_id=project_id,
                task_id=task_id,
                from_status=status,
                to_status=new,
                attempt=attempts + 1,
                owner=owner,
                took_over=old_owner if status == TaskStatus.PROCESSING else "",
            )
            claims.append(Claim(task_id, token, attempts + 1, owner, project_id, version_id, digest, step.slug, data))
    return claims


def _claimable(now: datetime, *, queue: str = "", queued: bool = True, due_before: datetime | None = None) -> Q:
    """Tasks an executor may claim at `now`: queued and due, or Processing with an expired lease, of an
    active project. `queued=False` leaves queued tasks out; `due_before` keeps only queued tasks that were
    already due then. Only external steps have a queue (Step.queue), so a queue names external tasks alone."""
    condition = Q(status=TaskStatus.PROCESSING, lease_expires_at__lt=now)
    if queued:
        if due_before is None:
            waiting = Q(run_after__isnull=True) | Q(run_after__lte=now)
        else:
            waiting = Q(run_after__isnull=True, updated_at__lte=due_before) | Q(run_after__lte=due_before)
        condition = (Q(status=TaskStatus.AWAITING_PROCESSING) & waiting) | condition
    return condition & Q(project__status=ProjectStatus.ACTIVE, step__kind__in=list(RUNNABLE_KINDS), step__queue=queue)


def machine_due_ids(*, now: datetime, limit: int, queued: bool = True, queued_for: float = 0.0) -> list[int]:
    """Ids of tasks an executor would claim now, in machine_claim's order, without claiming them.

    `queued=False` leaves out queued tasks (only expired leases); `queued_for` leaves out queued tasks that
    became due less than that many seconds ago (their message is most likely on its way)."""
    condition = _claimable(now, queued=queued, due_before=now - timedelta(seconds=queued_for))
    rows = Task.objects.filter(condition).order_by("-project__priority", "id").values_list("id", flat=True)
    return list(rows[:limit])


def machine_heartbeat(*, task_id: int, token: uuid.UUID, lease_seconds: float | None = None) -> bool:
    """Extend a claim's lease while its step runs; False if the claim is no longer current.

    A heartbeat never shortens a lease (an external step's run may hold one longer than the default)."""
    from django.utils import timezone

    lease = timedelta(seconds=lease_seconds or conf.get("ORCHESTRA_LEASE_SECONDS"))
    until = timezone.now() + lease
    current = {"pk": task_id, "status": TaskStatus.PROCESSING, "claim_token": token}
    if Task.objects.filter(**current, lease_expires_at__lt=until).update(lease_expires_at=until) == 1:
        return True
    return Task.objects.filter(**current).exists()


def _run_lost(token: uuid.UUID | None, now: datetime, error: str) -> None:
    """The run of an attempt whose lease expired ends as Failed (a script or external step's run)."""
    if token is not None:
        TaskRun.objects.filter(pk=token, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, error=error, finished_at=now
        )


def machine_run_spec(claim: Claim) -> RunSpec:
    """What a runner needs to execute a claimed task: the step, project data and prerequisites."""
    cv = _compile(claim.version_id, claim.digest)
    step = cv.definition.step(claim.step_slug)
    # B12 hands machine steps the project data with the project's id added.
    project_data = {**claim.project_data, "project_id": claim.project_id}
    inputs = claim.prerequisites
    if inputs is None:
        inputs = prerequisites(claim.project_id, cv, claim.step_slug)
    return RunSpec(claim.task_id, claim.project_id, step, project_data, inputs)


def _refused(task: Task, token: uuid.UUID) -> Conflict:
    return Conflict(
        f"task {task.pk}: result refused; the attempt holding claim {token} is no longer current"
        f" (the task is '{task.status}'{', claimed by ' + task.claimed_by if task.claimed_by else ''})",
        task_id=task.pk,
    )


def machine_succeed(*, task_id: int, token: uuid.UUID, output: dict[str, Any], actor: ActorLike = None) -> None:
    """Apply a successful attempt: the output becomes the task's data; the next tasks are created."""
    output = check_data(output, field="output")
    with service(actor or "executor") as tx:
        loaded = load_task(task_id)
        project, task, step = loaded.project, loaded.task, loaded.step
        if task.status != TaskStatus.PROCESSING or task.claim_token != token:
            raise _refused(task, token)
        new = task_transition(task.status, TaskAction.SUCCEED, kind=step.kind, task_id=task.pk)
        changed = update_rows(
            Task,
            {"pk": task.pk, "status": task.status, "claim_token": token},
            status=new,
            data=output,
            completed_at=tx.now,
            updated_at=tx.now,
            claim_token=None,
            lease_expires_at=None,
            last_error="",
        )
        if changed != 1:
            raise _refused(task, token)
        tx.event(
            "task_completed",
            project_id=project.pk,
            task_id=task.pk,
            from_status=task.status,
            to_status=new,
            attempt=task.attempts,
            function=step.execution_function.path if step.execution_function else "",
            inputs=loaded.cv.ancestors[step.slug],
        )
        loaded.changed(new, output)
        advance(tx, project, loaded.statuses, loaded.outputs)


def machine_fail(
    *,
    task_id: int,
    token: uuid.UUID,
    error: str,
    traceback: str = "",
    retry: bool = True,
    actor: ActorLike = None,
    rng: Rng | None = None,
) -> TaskStatus:
    """Record a failed attempt: queued again after a backoff while attempts are left, else Failed."""
    error, traceback = storable(error), storable(traceback)  # whatever the step raised or printed is kept
    with service(actor or "executor") as tx:
        loaded = load_task(task_id)
        project, task, step = loaded.project, loaded.task, loaded.step
        if task.status != TaskStatus.PROCESSING or task.claim_token != token:
            raise _refused(task, token)
        _run_lost(token, tx.now, error)
        again = retry and attempts_left(step.retry, task.attempts)
        action = TaskAction.FAIL if again else TaskAction.GIVE_UP
        new = task_transition(task.status, action, kind=step.kind, task_id=task.pk)
        delay = backoff_seconds(step.retry, task.attempts, rng or _rng) if again else None
        run_after = tx.now + timedelta(seconds=delay) if delay is not None else None
        cas(
            Task,
            {"pk": task.pk, "status": task.status, "claim_token": token},
            f"task {task.pk}",
            status=new,
            claim_token=None,
            lease_expires_at=None,
            run_after=run_after,
            updated_at=tx.now,
            last_error=f"{error}\n\n{traceback}".strip(),
        )
        tx.event(
            "task_failed",
            project_id=project.pk,
            task_id=task.pk,
            from_status=task.status,
            to_status=new,
            attempt=task.attempts,
            error=error,
            traceback=traceback[-8000:],
            retry=again,
            retry_in_seconds=delay,
        )
        if again:
            tx.after_commit.append(functools.partial(execution.work_queued, [task.pk], delay))
        return new


def task_retry(*, task_id: int, actor: ActorLike = None) -> Task:
    """Queue a Failed automated task again, with a fresh set of attempts."""
    with service(actor) as tx:
        loaded = load_task(task_id)
        project, task, step = loaded.project, loaded.task, loaded.step
        require_open_project(project, f"retrying task {task.pk}")
        new = task_transition(task.status, TaskAction.RETRY, kind=step.kind, task_id=task.pk)
        cas(
            Task,
            {"pk": task.pk, "status": task.status},
            f"task {task.pk}",
            status=new,
            attempts=0,
            run_after=None,
            claim_token=None,
            lease_expires_at=None,
            updated_at=tx.now,
        )
        tx.event("task_retried", project_id=project.pk, task_id=task.pk, from_status=task.status, to_status=new)
        task.status = new
        tx.after_commit.append(functools.partial(execution.work_queued, [task.pk]))
        return task


__all__ = [
    "Claim",
    "RunSpec",
    "machine_claim",
    "machine_due_ids",
    "machine_fail",
    "machine_heartbeat",
    "machine_run_spec",
    "machine_succeed",
    "task_retry",
]
