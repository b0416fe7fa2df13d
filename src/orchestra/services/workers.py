"""Workers and their certifications."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from orchestra import conf
from orchestra.engine.errors import NotFound, PermissionDenied, ValidationError
from orchestra.engine.lifecycle import Role, TaskClass
from orchestra.events.notifications import KINDS
from orchestra.models import Certification, Worker, WorkerCertification
from orchestra.services._base import ActorLike, lock, service


def worker_create(
    *,
    username: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    project_admin: bool = False,
    superuser: bool = False,
) -> Worker:
    """Create (or update) a user and its Worker. Idempotent, so sample data can be loaded twice."""
    if not username:
        raise ValidationError("username: must not be empty", field="username")
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.update_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "is_staff": superuser,
                "is_superuser": superuser,
            },
        )
        if password is not None:
            user.set_password(password)
            user.save(update_fields=["password"])
        if project_admin:
            group, _ = Group.objects.get_or_create(name=conf.get("ORCHESTRA_PROJECT_ADMIN_GROUP"))
            user.groups.add(group)
        worker, _ = Worker.objects.get_or_create(user=user)
    return worker


def worker_get(username: str) -> Worker:
    try:
        return Worker.objects.select_related("user").get(user__username=username)
    except Worker.DoesNotExist:
        raise NotFound(f"no worker with username {username!r}", username=username)


def worker_by_id_or_username(key: int | str) -> Worker:
    """A worker by its id (B12's `worker_id`) or its username."""
    if isinstance(key, int) and not isinstance(key, bool):
        try:
            return Worker.objects.select_related("user").get(pk=key)
        except Worker.DoesNotExist:
            raise NotFound(f"worker_id: no worker with id {key}", field="worker_id") from None
    return worker_get(str(key))


def worker_certify(
    *,
    worker: Worker | str,
    workflow_slug: str,
    certification_slug: str,
    role: Role | str = Role.ENTRY_LEVEL,
    task_class: TaskClass | str = TaskClass.REAL,
) -> WorkerCertification:
    """Give a worker a certification. A reviewer certification needs the entry-level one first (B12's rule)."""
    if isinstance(worker, str):
        worker = worker_get(worker)
    role, task_class = Role(role), TaskClass(task_class)
    try:
        certification = Certification.objects.get(workflow__slug=workflow_slug, slug=certification_slug)
    except Certification.DoesNotExist:
        known = sorted(Certification.objects.filter(workflow__slug=workflow_slug).values_list("slug", flat=True))
        raise NotFound(
            f"workflow {workflow_slug!r} has no certification {certification_slug!r}"
            f" (it has: {', '.join(known) or 'none; is the workflow loaded?'})",
            workflow=workflow_slug,
            certification=certification_slug,
        )
    with transaction.atomic():
        if (
            role == Role.REVIEWER
            and not WorkerCertification.objects.filter(
                worker=worker, certification=certification, role=Role.ENTRY_LEVEL, task_class=task_class
            ).exists()
        ):
            raise ValidationError(
                f"worker {worker.username!r} needs the entry_level {task_class} certification"
                f" {certification_slug!r} before the reviewer one",
                field="role",
            )
        cert, _ = WorkerCertification.objects.get_or_create(
            worker=worker, certification=certification, role=role, task_class=task_class
        )
    return cert


def is_project_admin(user: AbstractBaseUser) -> bool:
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return user.groups.filter(name=conf.get("ORCHESTRA_PROJECT_ADMIN_GROUP")).exists()  # type: ignore[attr-defined]


def worker_set_notifications(
    *, user: AbstractBaseUser | Worker | str, enabled: dict[str, bool], actor: ActorLike
) -> Worker:
    """Turn email notification kinds on (True) or off (False) for a worker; kinds not named keep their setting.

    Only what is off is stored (`Worker.notifications`, e.g. {"assigned": false}): a kind added later starts on.
    A worker sets their own; a project admin may set anyone's. An unchanged setting writes nothing.
    """
    unknown = sorted(set(enabled) - set(KINDS))
    if unknown:
        raise ValidationError(
            f"enabled: no notification kind {', '.join(map(repr, unknown))}; the kinds are: {', '.join(KINDS)}",
            field="enabled",
            unknown=unknown,
        )
    not_bool = sorted(kind for kind, on in enabled.items() if not isinstance(on, bool))
    if not_bool:
        raise ValidationError(f"enabled.{not_bool[0]}: must be true or false", field=f"enabled.{not_bool[0]}")
    if isinstance(user, Worker):
        target = user
    elif isinstance(user, str):
        target = worker_get(user)
    else:
        found = Worker.objects.select_related("user").filter(user=user).first()
        if found is None:
            raise NotFound(f"user {user.get_username()!r} is not an Orchestra worker", username=user.get_username())
        target = found
    acting_user = actor.user if isinstance(actor, Worker) else actor
    if (
        isinstance(acting_user, AbstractBaseUser)
        and acting_user.pk != target.user_id
        and not is_project_admin(acting_user)
    ):
        raise PermissionDenied(
            f"{acting_user.get_username()!r} may not change the notifications of {target.username!r}; only their own",
            username=target.username,
        )
    with service(actor) as tx:
        row = lock(Worker, pk=target.pk)
        on = {kind: bool((row.notifications or {}).get(kind, True)) for kind in KINDS}
        on.update(enabled)
        off = [kind for kind in KINDS if not on[kind]]
        stored = {kind: False for kind in off}
        if stored != (row.notifications or {}):
            Worker.objects.filter(pk=target.pk).update(notifications=stored)
            tx.event("notifications_updated", project_id=None, user=target.username, off=off)
    target.notifications = stored
    return target
