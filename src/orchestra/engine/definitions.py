"""Workflow definitions: the models, and loading them from B12-format directories (JSON or YAML).

A workflow directory holds `workflow.json` and one subdirectory per version (`v1/version.json`, ...).
B12's files load unchanged; `parse_*` and `load_workflow_directory` validate everything and raise one
`DefinitionError` listing every problem, each with its path (`steps[2].creation_depends_on[0]`).

The models normalize B12's spellings (`is_human`, `{"module", "name"}`, `policy_function` wrappers,
`orchestra.assignment_policies.*`), so `model_dump(mode="json")` is the canonical stored form and parses
back to an equal definition. Build definitions through `parse_*`: constructing a model directly checks
types only, not references between steps, cycles or imports.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictFloat, StrictInt

from orchestra.engine import graph
from orchestra.engine._references import (
    ASSIGNMENT_BUILTINS,
    ASSIGNMENT_PREFIXES,
    CREATION_BUILTINS,
    CREATION_PREFIXES,
    REVIEW_BUILTINS,
    ROLES,
    did_you_mean,
    join_module_name,
    normalize_policy_path,
    resolve_dotted,
)
from orchestra.engine._validation import (
    ANGULAR_UI_KEYS,
    SLUG_PATTERN,
    Checked,
    check_version,
    check_workflow,
    declared_certifications,
    problems_from_pydantic,
    sort_problems,
)
from orchestra.engine.errors import DefinitionError, Problem
from orchestra.engine.lifecycle import StepKind

__all__ = [
    "AssignmentPolicy",
    "CallableRef",
    "CertificationDef",
    "LoadedWorkflow",
    "RetryPolicy",
    "ReviewPolicy",
    "StepDef",
    "VersionDef",
    "WorkflowDef",
    "load_workflow_directory",
    "parse_version",
    "parse_workflow",
    "read_definition_file",
]

Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
Name = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallableRef(BaseModel):
    """A function named by dotted path, with keyword arguments. Built-in policies use a bare name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)
    kwargs: dict[str, Any] = {}

    @pydantic.model_validator(mode="before")
    @classmethod
    def _b12_module_name(cls, data: Any) -> Any:
        return join_module_name(data) if isinstance(data, dict) else data

    def resolve(self) -> Callable[..., Any]:
        """The function itself (imported once, then cached); ImportError says why it is unusable."""
        return resolve_dotted(self.path)


def _policy_ref(data: Any, builtins: Collection[str], prefixes: Sequence[str]) -> Any:
    """A reference with B12's long names for built-ins shortened to the bare name."""
    if not isinstance(data, dict):
        return data
    data = join_module_name(data)
    if isinstance(data.get("path"), str):
        data = {**data, "path": normalize_policy_path(data["path"], builtins, prefixes)}
    return data


class CertificationDef(_Model):
    slug: Slug
    name: Name
    description: str = ""
    required_certifications: list[str] = []


class ReviewPolicy(_Model):
    """`no_review`, `sampled_review` (`rate` of submissions reviewed, up to `max_reviews` levels) or the
    dotted path of a custom policy function, which receives `kwargs`."""

    policy: str = Field(min_length=1)
    rate: StrictFloat | None = Field(default=None, ge=0, le=1)
    max_reviews: StrictInt | None = Field(default=None, ge=0)
    kwargs: dict[str, Any] = {}

    @pydantic.model_validator(mode="after")
    def _complete(self) -> ReviewPolicy:
        if self.policy not in REVIEW_BUILTINS and "." not in self.policy:
            raise ValueError(f"unknown review policy '{self.policy}'{did_you_mean(self.policy, REVIEW_BUILTINS)}")
        if self.policy == "sampled_review" and (self.rate is None or self.max_reviews is None):
            raise ValueError("sampled_review needs 'rate' and 'max_reviews'")
        return self

    @property
    def is_custom(self) -> bool:
        return self.policy not in REVIEW_BUILTINS


def _anyone_certified() -> CallableRef:
    return CallableRef(path="anyone_certified")


class AssignmentPolicy(_Model):
    """Who is offered the task at each role: a built-in name (`anyone_certified`, `specified_worker`,
    `previously_completed_steps`) or the dotted path of a custom policy function."""

    entry_level: CallableRef = Field(default_factory=_anyone_certified)
    reviewer: CallableRef = Field(default_factory=_anyone_certified)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _b12_policy_function(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if set(data) == {"policy_function"} and isinstance(data["policy_function"], dict):
            data = data["policy_function"]
        data = {k: v for k, v in data.items() if not (k in ROLES and v is None)}
        for role in ROLES:
            if role in data:
                data[role] = _policy_ref(data[role], ASSIGNMENT_BUILTINS, ASSIGNMENT_PREFIXES)
        return data


class RetryPolicy(_Model):
    """Attempts of an automated step: exponential backoff between them, capped, with optional jitter."""

    max_attempts: StrictInt = Field(default=3, ge=1)
    backoff_seconds: StrictFloat = Field(default=1.0, ge=0)
    backoff_factor: StrictFloat = Field(default=2.0, ge=1)
    max_backoff_seconds: StrictFloat = Field(default=300.0, ge=0)
    jitter: StrictBool = True


def _always_create() -> CallableRef:
    return CallableRef(path="always_create")


def _default_review() -> ReviewPolicy:
    # B12 reviews every human step once unless told otherwise.
    return ReviewPolicy(policy="sampled_review", rate=1.0, max_reviews=1)


class StepDef(_Model):
    slug: Slug
    name: Name
    description: str = ""
    kind: StepKind = StepKind.HUMAN
    execution_function: CallableRef | None = None
    execution: dict[str, Any] = {}
    creation_depends_on: list[str] = []
    submission_depends_on: list[str] = []
    required_certifications: list[str] = []
    review_policy: ReviewPolicy | None = None
    assignment_policy: AssignmentPolicy | None = None
    creation_policy: CallableRef = Field(default_factory=_always_create)
    user_interface: dict[str, Any] = {}
    completion_ends_project: StrictBool = False
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: StrictFloat | None = Field(default=None, gt=0)
    todolist_templates_to_apply: list[str] = []
    detailed_description_function: CallableRef | None = None
    assignable_hours_function: CallableRef | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _from_b12(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        is_human = data.pop("is_human", None)
        if is_human is not None:
            if not isinstance(is_human, bool):
                raise ValueError("is_human must be true or false")
            kind = data.get("kind")
            if kind is None:
                data["kind"] = StepKind.HUMAN if is_human else StepKind.MACHINE
            elif (kind == StepKind.HUMAN) != is_human:
                raise ValueError(f'"kind": "{kind}" contradicts "is_human": {json.dumps(is_human)}')
        for key in ("kind", "creation_policy"):
            if key in data and data[key] is None:
                del data[key]
        ui = data.get("user_interface")
        if isinstance(ui, dict):
            data["user_interface"] = {k: v for k, v in ui.items() if k not in ANGULAR_UI_KEYS}
        creation = data.get("creation_policy")
        if isinstance(creation, dict):
            if set(creation) == {"policy_function"}:
                creation = creation["policy_function"]
            data["creation_policy"] = _policy_ref(creation, CREATION_BUILTINS, CREATION_PREFIXES)
        return data

    @pydantic.model_validator(mode="after")
    def _human_defaults(self) -> StepDef:
        if self.kind == StepKind.HUMAN:
            if self.review_policy is None:
                self.review_policy = _default_review()
            if self.assignment_policy is None:
                self.assignment_policy = AssignmentPolicy()
        return self

    @property
    def is_human(self) -> bool:
        return self.kind == StepKind.HUMAN


class WorkflowDef(_Model):
    slug: Slug
    name: Name
    description: str = ""
    certifications: list[CertificationDef] = []
    sample_data_load_function: CallableRef | None = None


class VersionDef(_Model):
    """One version of a workflow. Treat it as immutable once built: it indexes its steps by slug."""

    slug: Slug
    name: Name
    description: str = ""
    steps: list[StepDef] = Field(min_length=1)
    sanity_checks: dict[str, Any] | None = None
    abort_completion_function: CallableRef | None = None

    _by_slug: dict[str, StepDef] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._by_slug = {}
        for step in self.steps:
            self._by_slug.setdefault(step.slug, step)

    def step(self, slug: str) -> StepDef:
        """The step named `slug`; KeyError (naming the version's steps) if there is none."""
        try:
            return self._by_slug[slug]
        except KeyError:
            hint = did_you_mean(slug, self._by_slug)
            known = ", ".join(self._by_slug)
            raise KeyError(f"version '{self.slug}' has no step '{slug}'{hint}; its steps are: {known}") from None

    def _edges(self) -> dict[str, list[str]]:
        return {step.slug: step.creation_depends_on for step in self.steps}

    def topological_order(self) -> list[str]:
        """Step slugs, each after the steps it needs to be created; ties in declaration order."""
        return graph.topological_order([step.slug for step in self.steps], self._edges())

    def ancestors(self, slug: str) -> list[str]:
        """The steps `slug` transitively waits for (its prerequisites), in topological order."""
        self.step(slug)
        found = graph.ancestors(slug, self._edges())
        return [other for other in self.topological_order() if other in found]

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: equal for equal definitions however they were written."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class LoadedWorkflow:
    workflow: WorkflowDef
    versions: dict[str, VersionDef]  # by slug, in natural order (v1, v2, v10)
    directory: Path
    warnings: list[str] = field(default_factory=list)


# --- parsing ---------------------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def _build(model: type[_M], checked: Checked) -> tuple[_M | None, list[Problem]]:
    """The model from cleaned data, with the checker's problems and pydantic's merged (same path once)."""
    problems = list(checked.problems)
    if checked.cleaned is None:
        return None, problems
    try:
        # The checks were made on the raw data; this only turns it into models.
        built = model.model_validate(checked.cleaned)
    except pydantic.ValidationError as exc:
        seen = {p.path for p in problems}
        problems += [p for p in problems_from_pydantic(exc) if p.path not in seen]
        built = None
    if problems:
        return None, sort_problems(problems)
    return built, []


def _parse_workflow(data: Any) -> tuple[WorkflowDef | None, list[Problem], list[str]]:
    checked = check_workflow(data)
    workflow, problems = _build(WorkflowDef, checked)
    return workflow, problems, checked.warnings


def _parse_version(
    data: Any, certifications: Sequence[str] | None, check_imports: bool
) -> tuple[VersionDef | None, list[Problem], list[str]]:
    checked = check_version(data, certifications=certifications, check_imports=check_imports)
    version, problems = _build(VersionDef, checked)
    return version, problems, checked.warnings


def parse_workflow(data: Any, *, source: str = "") -> tuple[WorkflowDef, list[str]]:
    """A workflow (workflow.json's content) and its warnings; DefinitionError lists every problem.

    `sample_data_load_function` is not imported here (see `_validation.check_workflow`).
    """
    workflow, problems, warnings = _parse_workflow(data)
    if workflow is None:
        raise DefinitionError(problems, source=source)
    return workflow, warnings


def parse_version(
    data: Any, *, workflow: WorkflowDef, source: str = "", check_imports: bool = True
) -> tuple[VersionDef, list[str]]:
    """A version (version.json's content) of `workflow` and its warnings; DefinitionError lists every
    problem. `check_imports=False` skips importing the functions it names (for stored definitions)."""
    certifications = [c.slug for c in workflow.certifications]
    version, problems, warnings = _parse_version(data, certifications, check_imports)
    if version is None:
        raise DefinitionError(problems, source=source)
    return version, warnings


# --- files and directories -------------------------------------------------------------------------

_SUFFIXES = (".json", ".yaml", ".yml")


def read_definition_file(path: Path) -> Any:
    """The parsed content of a .json, .yaml or .yml file; DefinitionError (with the line) if it is not."""
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise DefinitionError(
            [Problem("", f"unsupported file type '{suffix}'; use .json, .yaml or .yml")], source=source
        )
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate the BOM some Windows editors write
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem("", f"cannot read the file: {exc}")], source=source) from exc
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            message = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            raise DefinitionError([Problem("", message)], source=source) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError([Problem("", f"invalid YAML{where}: {reason}")], source=source) from exc


def _natural_key(text: str) -> tuple[list[int | str], str]:
    # re.split with a group puts the digit runs at the odd positions, so positions compare like with like.
    parts: list[int | str] = [int(p) if i % 2 else p.lower() for i, p in enumerate(re.split(r"(\d+)", text))]
    return parts, text


def _in_file(name: str, problems: Sequence[Problem]) -> list[Problem]:
    return [Problem(f"{name}: {p.path}" if p.path else name, p.message) for p in problems]


def _definition_file(directory: Path, stem: str, prefix: str, problems: list[Problem]) -> Path | None:
    found = [directory / f"{stem}{suffix}" for suffix in _SUFFIXES if (directory / f"{stem}{suffix}").is_file()]
    if len(found) > 1:
        names = " and ".join(f"{prefix}{f.name}" for f in found)
        problems.append(Problem(f"{prefix}{found[0].name}", f"found both {names}; keep one"))
    return found[0] if found else None


def _read(file: Path, name: str, problems: list[Problem]) -> tuple[bool, Any]:
    try:
        return True, read_definition_file(file)
    except DefinitionError as exc:
        problems += _in_file(name, exc.problems)
        return False, None


def load_workflow_directory(
    path: str | Path, *, version: str | None = None, check_imports: bool = True
) -> LoadedWorkflow:
    """Load `workflow.json` and every version subdirectory (or only `version`) of a workflow directory.

    Every file is checked before anything is raised: one DefinitionError lists the problems of all of
    them, each path starting with its file (`v1/version.json: steps[2].slug`). Warnings come back the
    same way in `LoadedWorkflow.warnings`.
    """
    directory = Path(path)
    source = str(directory)
    if not directory.is_dir():
        raise DefinitionError([Problem("", f"'{directory}' is not a directory")], source=source)
    problems: list[Problem] = []
    warnings: list[str] = []

    workflow: WorkflowDef | None = None
    certifications: list[str] | None = None
    workflow_file = _definition_file(directory, "workflow", "", problems)
    if workflow_file is None:
        problems.append(Problem("workflow.json", "file missing; a workflow directory needs workflow.json"))
    else:
        ok, data = _read(workflow_file, workflow_file.name, problems)
        if ok:
            workflow, found, found_warnings = _parse_workflow(data)
            problems += _in_file(workflow_file.name, found)
            warnings += [f"{workflow_file.name}: {w}" for w in found_warnings]
            # Versions are still checked against what an invalid workflow.json declares.
            certifications = [c.slug for c in workflow.certifications] if workflow else declared_certifications(data)

    available = {
        d.name: d
        for d in sorted(directory.iterdir(), key=lambda d: _natural_key(d.name))
        if d.is_dir() and any((d / f"version{suffix}").is_file() for suffix in _SUFFIXES)
    }
    if version is not None and version not in available:
        listing = ", ".join(available) or "none"
        problems.append(
            Problem("", f"unknown version '{version}'{did_you_mean(version, available)}; available: {listing}")
        )
    elif not available:
        problems.append(Problem("", "no versions: add a subdirectory such as v1/ holding a version.json"))
    selected = list(available) if version is None else [v for v in [version] if v in available]

    versions: dict[str, VersionDef] = {}
    for dirname in selected:
        version_file = _definition_file(available[dirname], "version", f"{dirname}/", problems)
        assert version_file is not None
        name = f"{dirname}/{version_file.name}"
        ok, data = _read(version_file, name, problems)
        if not ok:
            continue
        loaded, found, found_warnings = _parse_version(data, certifications, check_imports)
        problems += _in_file(name, found)
        warnings += [f"{name}: {w}" for w in found_warnings]
        if loaded is None:
            continue
        if loaded.slug != dirname:
            problems.append(
                Problem(
                    f"{name}: slug",
                    f"version slug '{loaded.slug}' does not match its directory '{dirname}'; rename one",
                )
            )
        versions[loaded.slug] = loaded

    if problems or workflow is None:
        raise DefinitionError(problems, source=source)
    return LoadedWorkflow(workflow=workflow, versions=versions, directory=directory, warnings=warnings)
