"""Loading workflow definitions into the database.

A definition is validated completely before the database is touched, so a failed load changes nothing.
Reloading an unchanged version is a no-op. A version that has projects may only change compatibly (no
step removed, no kind changed, no dependency added: B12's rules) and only with `force=True`.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.engine._references import import_dotted
from orchestra.engine.definitions import (
    LoadedWorkflow,
    VersionDef,
    WorkflowDef,
    load_workflow_directory,
    parse_version,
    parse_workflow,
)
from orchestra.engine.errors import NotFound, VersionChangeRefused
from orchestra.engine.execution import pull_queue
from orchestra.engine.lifecycle import StepKind
from orchestra.models import Certification, Step, Workflow, WorkflowVersion
from orchestra.services._base import ActorLike, Tx, service


@dataclass
class VersionOutcome:
    slug: str
    outcome: str  # "created" | "unchanged" | "updated"
    changes: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    workflow: str
    directory: Path
    versions: list[VersionOutcome]
    warnings: list[str]


def resolve_workflow_directory(path_or_app_label: str | Path) -> Path:
    """A directory path, or the name of an importable package holding workflow.json (B12's app label)."""
    path = Path(path_or_app_label)
    if path.is_dir():
        return path.resolve()
    label = str(path_or_app_label)
    try:
        module = importlib.import_module(label)
    except ImportError as exc:
        raise NotFound(
            f"{label!r} is neither a directory nor an importable workflow package ({exc});"
            " pass the directory holding workflow.json, or install the package",
            source=label,
        ) from None
    locations = list(getattr(module, "__path__", []))
    if not locations:
        raise NotFound(f"{label!r} is a module, not a package directory holding workflow.json", source=label)
    return Path(locations[0]).resolve()


def workflow_load(
    *, source: str | Path, version: str | None = None, force: bool = False, actor: ActorLike = None
) -> LoadResult:
    directory = resolve_workflow_directory(source)
    return _load(load_workflow_directory(directory, version=version), force=force, actor=actor)


def _load(loaded: LoadedWorkflow, *, force: bool, actor: ActorLike) -> LoadResult:
    directory = loaded.directory
    with service(actor) as tx:
        workflow = _upsert_workflow(tx, loaded)
        outcomes = [
            _load_version(tx, workflow, loaded.workflow, vdef, force=force) for vdef in loaded.versions.values()
        ]
    warnings = loaded.warnings + [w for vdef in loaded.versions.values() for w in _ignored_settings(vdef)]
    return LoadResult(loaded.workflow.slug, directory, outcomes, warnings)


def workflow_register_tasks(*, path: str, slug: str | None = None, actor: ActorLike = None) -> LoadResult:
    """Register an Invenio-style task list (a list, or an object whose `workflow` is one) as a workflow
    with one `tasks` step, named after the last part of `path` unless `slug` is given. Re-registering is a
    no-op: the definition names the list by path, and each object detects a changed list by its hash."""
    try:
        found = import_dotted(path)
    except ImportError as exc:
        raise NotFound(f"{exc}; give the dotted path of a task list or of a class with a 'workflow' list") from None
    slug = slug or path.rsplit(".", 1)[-1]
    doc = (getattr(found, "__doc__", None) or "").strip().splitlines()
    description = doc[0] if doc and not isinstance(found, list) else ""
    name = str(getattr(found, "name", "") or slug)
    workflow, _ = parse_workflow({"slug": slug, "name": name, "description": description}, source=path)
    step = {
        "slug": slug,
        "name": name,
        "description": description,
        "kind": "tasks",
        "execution": {"workflow": path},
        # Invenio sends an object that raised to the Holding Pen at once, rather than retrying it.
        "retry": {"max_attempts": 1},
    }
    version, _ = parse_version(
        {"slug": "v1", "name": name, "description": description, "steps": [step]}, workflow=workflow, source=path
    )
    module = sys.modules[found.__module__] if hasattr(found, "__module__") else None
    directory = Path(module.__file__).parent if module is not None and module.__file__ else Path.cwd()
    return _load(
        LoadedWorkflow(workflow=workflow, versions={"v1": version}, directory=directory), force=False, actor=actor
    )


def _ignored_settings(vdef: VersionDef) -> list[str]:
    """Parts of a valid definition that have no effect on their kind of step: say so at load time."""
    warnings = []
    for i, step in enumerate(vdef.steps):
        if step.timeout_seconds is not None and step.kind in (StepKind.HUMAN, StepKind.EXTERNAL):
            limit = "execution.wait_seconds" if step.kind == StepKind.EXTERNAL else "no time limit"
            warnings.append(
                f"{vdef.slug}: steps[{i}] ('{step.slug}'): timeout_seconds is ignored on {step.kind} steps"
                f" (they have {limit})"
            )
    return warnings


def _upsert_workflow(tx: Tx, loaded: LoadedWorkflow) -> Workflow:
    wdef = loaded.workflow
    fields = {
        "name": wdef.name,
        "description": wdef.description,
        "code_directory": str(loaded.directory),
        "sample_data_load_function": (
            wdef.sample_data_load_function.model_dump(mode="json") if wdef.sample_data_load_function else None
        ),
        "definition": wdef.model_dump(mode="json"),
    }
    workflow = Workflow.objects.filter(slug=wdef.slug).first()
    if workflow is None:
        workflow = Workflow.objects.create(slug=wdef.slug, **fields)
        tx.event("workflow_created", project_id=None, workflow=wdef.slug)
    elif any(getattr(workflow, k) != v for k, v in fields.items()):
        for key, value in fields.items():
            setattr(workflow, key, value)
        workflow.save()
        tx.event("workflow_updated", project_id=None, workflow=wdef.slug)

    existing = {c.slug: c for c in Certification.objects.filter(workflow=workflow)}
    for cdef in wdef.certifications:
        cert = existing.get(cdef.slug)
        if cert is None:
            existing[cdef.slug] = Certification.objects.create(
                workflow=workflow, slug=cdef.slug, name=cdef.name, description=cdef.description
            )
        elif (cert.name, cert.description) != (cdef.name, cdef.description):
            cert.name, cert.description = cdef.name, cdef.description
            cert.save(update_fields=["name", "description"])
    for cdef in wdef.certifications:
        if cdef.required_certifications:
            existing[cdef.slug].required_certifications.set(
                [existing[s] for s in cdef.required_certifications if s in existing]
            )
    return workflow


def _compatibility_problems(old: VersionDef, new: VersionDef) -> list[str]:
    problems = []
    new_steps = {s.slug: s for s in new.steps}
    for step in old.steps:
        changed = new_steps.get(step.slug)
        if changed is None:
            problems.append(f"step '{step.slug}' was removed")
            continue
        if changed.kind != step.kind:
            problems.append(f"step '{step.slug}' changed kind from {step.kind} to {changed.kind}")
        added = sorted(set(changed.creation_depends_on) - set(step.creation_depends_on))
        if added:
            problems.append(f"step '{step.slug}' gained creation dependencies {added} (cannot change the topology)")
    return problems


def _describe_changes(old: VersionDef, new: VersionDef) -> list[str]:
    old_steps = {s.slug: s for s in old.steps}
    new_steps = {s.slug: s for s in new.steps}
    changes = [f"added step '{s}'" for s in new_steps if s not in old_steps]
    changes += [f"removed step '{s}'" for s in old_steps if s not in new_steps]
    changes += [f"changed step '{s}'" for s in new_steps if s in old_steps and new_steps[s] != old_steps[s]]
    if (old.name, old.description) != (new.name, new.description):
        changes.append("changed name or description")
    return changes or ["changed version settings"]


def _load_version(tx: Tx, workflow: Workflow, wdef: WorkflowDef, vdef: VersionDef, *, force: bool) -> VersionOutcome:
    digest = vdef.digest()
    version = WorkflowVersion.objects.filter(workflow=workflow, slug=vdef.slug).first()
    if version is not None and version.digest == digest:
        return VersionOutcome(vdef.slug, "unchanged")
    definition = vdef.model_dump(mode="json")
    if version is None:
        version = WorkflowVersion.objects.create(
            workflow=workflow,
            slug=vdef.slug,
            name=vdef.name,
            description=vdef.description,
            definition=definition,
            digest=digest,
        )
        _sync_steps(version, vdef)
        tx.event("version_created", project_id=None, workflow=wdef.slug, version=vdef.slug, digest=digest)
        return VersionOutcome(vdef.slug, "created")

    old = VersionDef.model_validate(version.definition)
    changes = _describe_changes(old, vdef)
    project_count = version.projects.count()
    if project_count:
        where = f"version '{vdef.slug}' of workflow '{wdef.slug}' has {project_count} project(s)"
        if not force:
            raise VersionChangeRefused(
                f"{where} and its definition changed ({'; '.join(changes)}). Load it under a new version slug,"
                " or pass --force if the change is compatible (no step removed, no kind changed,"
                " no dependency added)",
                version=vdef.slug,
                changes=changes,
            )
        problems = _compatibility_problems(old, vdef)
        if problems:
            raise VersionChangeRefused(
                f"{where}; even with --force it cannot change like this: {'; '.join(problems)}."
                " Load it under a new version slug instead",
                version=vdef.slug,
                changes=problems,
            )
    version.name, version.description = vdef.name, vdef.description
    version.definition, version.digest = definition, digest
    version.save()
    _sync_steps(version, vdef)
    tx.event(
        "version_updated",
        project_id=None,
        workflow=wdef.slug,
        version=vdef.slug,
        digest=digest,
        changes=changes,
    )
    return VersionOutcome(vdef.slug, "updated", changes)


def _sync_steps(version: WorkflowVersion, vdef: VersionDef) -> None:
    certs = {c.slug: c for c in Certification.objects.filter(workflow_id=version.workflow_id)}
    existing = {s.slug: s for s in Step.objects.filter(version=version)}
    positions = {slug: i for i, slug in enumerate(vdef.topological_order())}
    wanted = {s.slug for s in vdef.steps}
    # Only reachable without projects (or for steps no task uses): compatibility forbids removals otherwise.
    Step.objects.filter(version=version).exclude(slug__in=wanted).delete()
    for sdef in vdef.steps:
        fields = {
            "name": sdef.name,
            "description": sdef.description,
            "kind": str(sdef.kind),
            "queue": pull_queue(sdef.kind, sdef.execution),
            "position": positions[sdef.slug],
        }
        step = existing.get(sdef.slug)
        if step is None:
            step = Step.objects.create(version=version, slug=sdef.slug, **fields)
        else:
            for key, value in fields.items():
                setattr(step, key, value)
            step.save()
        step.required_certifications.set([certs[c] for c in sdef.required_certifications])


def workflow_load_sample_data(*, workflow_slug: str, version_slug: str) -> None:
    """Run the workflow's `sample_data_load_function(version)` (B12's `loadworkflowsampledata`)."""
    from django.db import transaction

    try:
        version = WorkflowVersion.objects.select_related("workflow").get(
            workflow__slug=workflow_slug, slug=version_slug
        )
    except WorkflowVersion.DoesNotExist:
        known = [f"{w}/{v}" for w, v in WorkflowVersion.objects.values_list("workflow__slug", "slug")]
        raise NotFound(
            f"no workflow version '{workflow_slug}/{version_slug}' is loaded"
            f" (loaded: {', '.join(known) or 'none'}); run `orchestra loadworkflow` first",
            workflow=workflow_slug,
            version=version_slug,
        ) from None
    wdef = WorkflowDef.model_validate(version.workflow.definition)
    if wdef.sample_data_load_function is None:
        raise NotFound(f"workflow '{workflow_slug}' declares no sample_data_load_function", workflow=workflow_slug)
    fn = wdef.sample_data_load_function.resolve()
    with transaction.atomic():
        fn(version, **wdef.sample_data_load_function.kwargs)
