"""Checks on raw (parsed JSON/YAML) workflow definitions, before pydantic sees them.

Pydantic checks the types of plain fields. This module checks what pydantic cannot say well: unknown
keys (with "did you mean"), B12's nested policy formats, references between steps and certifications,
cycles, imports and declared forms (`forms.check_form`). It works on the raw data so every problem is
reported at the path the author wrote (`steps[1].assignment_policy.policy_function.entry_level.path`),
and returns a cleaned copy for pydantic: unknown keys removed and every sub-object it already found
wrong dropped, so no problem is reported twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from orchestra.engine._forms_check import step_references
from orchestra.engine._references import REF_EXAMPLE, RefChecker, describe, did_you_mean, join, strings
from orchestra.engine.errors import Problem
from orchestra.engine.execution import check_execution, task_list
from orchestra.engine.forms import check_form
from orchestra.engine.graph import ancestors, find_cycle
from orchestra.engine.lifecycle import StepKind

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
SLUG_RULE = "use letters, digits, '_' and '-', starting with a letter or digit"

WORKFLOW_KEYS = ("slug", "name", "description", "certifications", "sample_data_load_function")
CERTIFICATION_KEYS = ("slug", "name", "description", "required_certifications")
VERSION_KEYS = ("slug", "name", "description", "steps", "sanity_checks", "abort_completion_function")
STEP_KEYS = (
    "slug",
    "name",
    "description",
    "kind",
    "is_human",
    "execution_function",
    "execution",
    "creation_depends_on",
    "submission_depends_on",
    "required_certifications",
    "review_policy",
    "assignment_policy",
    "creation_policy",
    "user_interface",
    "completion_ends_project",
    "retry",
    "timeout_seconds",
    "todolist_templates_to_apply",
    "detailed_description_function",
    "assignable_hours_function",
)
RETRY_KEYS = ("max_attempts", "backoff_seconds", "backoff_factor", "max_backoff_seconds", "jitter")

HUMAN_ONLY_KEYS = ("review_policy", "assignment_policy", "required_certifications", "user_interface")
ANGULAR_UI_KEYS = ("angular_module", "angular_directive", "javascript_includes", "stylesheet_includes")
UI_KEYS = ("form", "template")


# --- pydantic errors as problems ---------------------------------------------------------------------

# What a field holds, for type errors on it (or, second table, on one of its items).
_FIELD_EXPECTS = {
    "creation_depends_on": "a list of step slugs",
    "submission_depends_on": "a list of step slugs",
    "required_certifications": "a list of certification slugs",
    "todolist_templates_to_apply": "a list of template slugs",
    "steps": "a list of steps",
    "certifications": "a list of certifications",
    "kwargs": "an object of keyword arguments",
    "execution": "an object of execution settings",
    "user_interface": "an object",
    "sanity_checks": "an object",
}
_ITEM_EXPECTS = {
    "creation_depends_on": "a step slug (a string)",
    "submission_depends_on": "a step slug (a string)",
    "required_certifications": "a certification slug (a string)",
    "todolist_templates_to_apply": "a template slug (a string)",
    "steps": "an object describing a step",
    "certifications": "an object describing a certification",
}
_TYPE_EXPECTS = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def problems_from_pydantic(error: pydantic.ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        path = prefix
        for key in loc:
            path = join(path, key)
        problems.append(Problem(path, _pydantic_message(item, loc)))
    return problems


def _pydantic_message(item: Any, loc: tuple[str | int, ...]) -> str:
    kind: str = item["type"]
    value = item.get("input")
    ctx = item.get("ctx") or {}
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in _TYPE_EXPECTS:
        last = loc[-1] if loc else ""
        parent = loc[-2] if len(loc) > 1 else ""
        if isinstance(last, int) and isinstance(parent, str) and parent in _ITEM_EXPECTS:
            expected = _ITEM_EXPECTS[parent]
        elif isinstance(last, str) and last in _FIELD_EXPECTS:
            expected = _FIELD_EXPECTS[last]
        else:
            expected = _TYPE_EXPECTS[kind]
        return f"expected {expected}, got {describe(value)}"
    if kind in _BOUNDS:
        # Bounds come back as floats for float fields; "at least 1" reads better than "at least 1.0".
        bounds = {
            key: int(bound) if isinstance(bound, float) and bound.is_integer() else bound for key, bound in ctx.items()
        }
        return f"{_BOUNDS[kind].format(**bounds)}, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} is not a valid slug; {SLUG_RULE}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return "must not be empty"
    if kind == "enum":
        return f"expected one of: {ctx.get('expected', '')}, got {describe(value)}"
    message: str = item["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(noise)
    if message[1:2].islower():  # "Field required" -> "field required"; leave names like "ORCHESTRA_X" alone
        message = message[:1].lower() + message[1:]
    return message


# --- the checker -------------------------------------------------------------------------------------


@dataclass
class Checked:
    """What a check found: problems (errors), warnings, and the cleaned data to hand to pydantic."""

    problems: list[Problem]
    warnings: list[str]
    cleaned: dict[str, Any] | None


@dataclass
class _StepInfo:
    """What the cross-step checks need from one step; each reference keeps the path it was found at."""

    path: str
    slug: str | None
    kind: StepKind | None
    creation_depends_on: list[tuple[str, str]] = field(default_factory=list)
    submission_depends_on: list[tuple[str, str]] = field(default_factory=list)
    required_certifications: list[tuple[str, str]] = field(default_factory=list)
    related_steps: list[tuple[str, str]] = field(default_factory=list)
    form_sources: list[tuple[str, str]] = field(default_factory=list)  # steps whose output the form reads


def _present(value: object) -> bool:
    # An empty list or object (as in a stored model dump) means the key is unused, not misplaced.
    return value is not None and value != [] and value != {}


def declared_certifications(data: object) -> list[str]:
    """The certification slugs a (possibly invalid) workflow.json declares, to check versions against."""
    if not isinstance(data, Mapping) or not isinstance(data.get("certifications"), list):
        return []
    return [c["slug"] for c in data["certifications"] if isinstance(c, Mapping) and isinstance(c.get("slug"), str)]


class _Checker(RefChecker):
    def result(self, cleaned: dict[str, Any] | None) -> Checked:
        return Checked(self.problems, self.warnings, cleaned)

    def step_kind(self, step: dict[str, Any], path: str) -> StepKind | None:
        """The step's kind from `kind` or B12's `is_human`; None when they are wrong or contradict.

        Leaves `step` with a valid `kind` (or none) and without `is_human`, ready for pydantic.
        """
        kinds = [k.value for k in StepKind]
        kind: StepKind | None = None
        ok = True
        raw_kind = step.get("kind")
        if raw_kind is not None:
            if isinstance(raw_kind, str) and raw_kind in kinds:
                kind = StepKind(raw_kind)
            else:
                what = f"unknown step kind {raw_kind!r}" if isinstance(raw_kind, str) else describe(raw_kind)
                hint = did_you_mean(raw_kind, kinds)
                self.add(join(path, "kind"), f"{what}{hint}; use one of: {', '.join(kinds)}")
                del step["kind"]
                ok = False
        is_human = step.pop("is_human", None)
        if is_human is None:
            if raw_kind is None:
                kind = StepKind.HUMAN  # B12's default
        elif not isinstance(is_human, bool):
            self.add(join(path, "is_human"), f"expected true or false, got {describe(is_human)}")
            ok = False
        elif kind is not None:
            if (kind == StepKind.HUMAN) != is_human:
                self.add(
                    join(path, "kind"),
                    f'"kind": "{kind}" contradicts "is_human": {json.dumps(is_human)}; remove "is_human"',
                )
                ok = False
        elif raw_kind is None:
            kind = StepKind.HUMAN if is_human else StepKind.MACHINE
            step["kind"] = kind.value
        return kind if ok else None

    def step(self, raw: dict[str, Any], path: str) -> tuple[_StepInfo, dict[str, Any]]:
        step = self.known_keys(raw, STEP_KEYS, path)
        explicit_kind = step.get("kind") is not None
        kind = self.step_kind(step, path)
        slug = step.get("slug")
        info = _StepInfo(path, slug if isinstance(slug, str) else None, kind)
        if kind is not None and kind != StepKind.HUMAN:
            fix = 'set "kind": "human"' if explicit_kind else 'set "is_human": true'
            for key in HUMAN_ONLY_KEYS:
                if _present(step.get(key)):
                    self.add(join(path, key), f"only human steps take '{key}'; remove it or {fix}")
                    del step[key]
        if kind == StepKind.HUMAN and _present(step.get("execution_function")):
            fix = 'set "kind": "machine"' if explicit_kind else 'set "is_human": false'
            self.add(
                join(path, "execution_function"),
                f"human steps are done by workers and take no 'execution_function'; remove it or {fix}",
            )
            del step["execution_function"]
        if kind == StepKind.MACHINE and step.get("execution_function") is None:
            self.add(
                join(path, "execution_function"),
                f"machine steps need an 'execution_function', e.g. {REF_EXAMPLE}",
            )
        if kind is not None:
            bad = check_execution(kind, step.get("execution"), join(path, "execution"))
            if bad:
                self.problems.extend(bad)
                step.pop("execution", None)
            elif kind == StepKind.TASKS and self.check_imports:
                try:
                    task_list(step["execution"])
                except Exception as exc:  # ImportError or TaskListError: either way the list is unusable
                    self.add(join(join(path, "execution"), "workflow"), str(exc))
                    step.pop("execution", None)
        for key in ("execution_function", "detailed_description_function", "assignable_hours_function"):
            if step.get(key) is not None and self.callable_ref(step[key], join(path, key)) is None:
                del step[key]
        checks: dict[str, Callable[[object, str], bool]] = {
            "review_policy": self.review_policy,
            "assignment_policy": lambda value, where: self.assignment_policy(value, where, info.related_steps),
            "creation_policy": self.creation_policy,
        }
        for key, check in checks.items():
            if step.get(key) is not None and not check(step[key], join(path, key)):
                del step[key]
        ui = step.get("user_interface")
        if isinstance(ui, dict) and (angular := sorted(k for k in ui if k in ANGULAR_UI_KEYS)):
            step["user_interface"] = {k: v for k, v in ui.items() if k not in ANGULAR_UI_KEYS}
            self.warnings.append(
                f"{join(path, 'user_interface')}: step {slug!r}: ignoring B12 Angular keys "
                f"{', '.join(angular)}; Orchestra renders human steps from 'user_interface.form'"
            )
        if isinstance(step.get("user_interface"), dict):
            step["user_interface"] = self.user_interface(step["user_interface"], join(path, "user_interface"), info)
        if isinstance(step.get("retry"), dict):
            step["retry"] = self.known_keys(step["retry"], RETRY_KEYS, join(path, "retry"))
        if _present(step.get("todolist_templates_to_apply")):
            self.warnings.append(
                f"{join(path, 'todolist_templates_to_apply')}: todo-list templates are not supported; ignored"
            )
        for name in ("creation_depends_on", "submission_depends_on", "required_certifications"):
            setattr(info, name, strings(step.get(name), join(path, name)))
        return info, step

    def user_interface(self, ui: dict[str, Any], path: str, info: _StepInfo) -> dict[str, Any]:
        """`ui` without unknown keys and without a `form` or `template` found wrong (each reported)."""
        cleaned: dict[str, Any] = {}
        for key, value in ui.items():
            if key in UI_KEYS:
                cleaned[key] = value
            else:
                self.add(
                    join(path, str(key)),
                    f"unknown key '{key}' in user_interface{did_you_mean(key, UI_KEYS)}; "
                    f"the keys are: {', '.join(UI_KEYS)}",
                )
        template = cleaned.get("template")
        if "template" in cleaned and not (
            isinstance(template, str) and len(template) > 5 and template.endswith(".html")
        ):
            self.add(
                join(path, "template"),
                f"expected a Django template name ending in '.html', like 'my_workflow/rate.html', "
                f"got {describe(template)}",
            )
            del cleaned["template"]
        if "form" in cleaned:
            bad = check_form(cleaned["form"], join(path, "form"))
            if bad:
                self.problems.extend(bad)
                del cleaned["form"]
            info.form_sources = step_references(ui["form"], join(path, "form"))
        return cleaned

    def form_sources(self, info: _StepInfo, by_slug: Mapping[str, _StepInfo], creation: dict[str, list[str]]) -> None:
        """A form reads the outputs of earlier steps: they must exist and be among its prerequisites."""
        for where, slug in info.form_sources:
            if slug == info.slug:
                self.add(where, f"a step's form cannot read the step's own output; use an earlier step than '{slug}'")
            elif slug not in by_slug:
                self.unknown_step(where, slug, list(by_slug))
            elif info.slug is not None and slug not in ancestors(info.slug, creation):
                self.add(
                    where,
                    f"step '{slug}' is not a prerequisite of '{info.slug}', so its output is not available "
                    f"here; add '{slug}' to creation_depends_on",
                )

    def unknown_step(self, path: str, slug: str, known: Sequence[str]) -> None:
        hint = did_you_mean(slug, known) or f"; the steps are: {', '.join(known) or 'none'}"
        self.add(path, f"unknown step '{slug}'{hint}")

    def unknown_certification(self, path: str, slug: str, known: Sequence[str]) -> None:
        if known:
            listing = f"; workflow.json declares: {', '.join(known)}"
        else:
            listing = "; workflow.json declares no certifications: add it to 'certifications' there"
        self.add(path, f"unknown certification '{slug}'{did_you_mean(slug, known)}{listing}")

    def cross_step(self, infos: list[_StepInfo], certifications: Sequence[str] | None) -> None:
        by_slug: dict[str, _StepInfo] = {}
        for info in infos:
            if info.slug is None:
                continue
            if info.slug in by_slug:
                self.add(
                    join(info.path, "slug"),
                    f"duplicate step slug '{info.slug}' (also {by_slug[info.slug].path})",
                )
            else:
                by_slug[info.slug] = info
        slugs = list(by_slug)
        for info in infos:
            for where, dep in info.creation_depends_on + info.submission_depends_on:
                if dep == info.slug:
                    self.add(where, f"a step cannot depend on itself; remove '{dep}'")
                elif dep not in by_slug:
                    self.unknown_step(where, dep, slugs)
            for where, related in info.related_steps:
                other = by_slug.get(related)
                if other is None:
                    self.unknown_step(where, related, slugs)
                elif other is info:
                    self.add(where, "a step cannot take its worker from itself")
                elif other.kind not in (StepKind.HUMAN, None):
                    self.add(
                        where,
                        f"'{related}' is a {other.kind} step; previously_completed_steps reuses the worker "
                        "of human steps only",
                    )
            if certifications is not None:
                for where, cert in info.required_certifications:
                    if cert not in certifications:
                        self.unknown_certification(where, cert, certifications)
        creation = {
            slug: [dep for _, dep in info.creation_depends_on if dep in by_slug and dep != slug]
            for slug, info in by_slug.items()
        }
        for info in infos:
            self.form_sources(info, by_slug, creation)
        cycle = find_cycle(creation)
        if cycle:
            self.add(
                "steps",
                f"dependency cycle: {' -> '.join(cycle)} (each step's creation_depends_on names the next, "
                "so none can start); remove one of these dependencies",
            )
            return
        # A step cannot complete before the steps it must wait for at submission either, so a loop
        # that mixes the two kinds of dependency deadlocks just the same.
        both = {
            slug: creation[slug] + [dep for _, dep in info.submission_depends_on if dep in by_slug and dep != slug]
            for slug, info in by_slug.items()
        }
        cycle = find_cycle(both)
        if cycle:
            self.add(
                "steps",
                f"dependency cycle through submission_depends_on: {' -> '.join(cycle)} (no step in it can "
                "complete); remove one of these dependencies",
            )


def check_version(data: object, *, certifications: Sequence[str] | None, check_imports: bool) -> Checked:
    """Problems, warnings and cleaned data for one version.json. `certifications` None skips that check."""
    checker = _Checker(check_imports=check_imports)
    if not checker.is_object(data, "", '{"slug": "v1", "name": "...", "steps": [...]}'):
        return checker.result(None)
    assert isinstance(data, dict)
    version = checker.known_keys(data, VERSION_KEYS, "")
    abort = version.get("abort_completion_function")
    if abort is not None and checker.callable_ref(abort, "abort_completion_function") is None:
        del version["abort_completion_function"]
    if version.get("sanity_checks") is not None:
        checker.warnings.append("sanity_checks: sanity checks are not supported; ignored")
    steps = version.get("steps")
    if isinstance(steps, list):
        if not steps:
            checker.add("steps", "a version needs at least one step")
        infos: list[_StepInfo] = []
        cleaned_steps: list[Any] = []
        for i, raw in enumerate(steps):
            # Items that are not objects stay in place for pydantic to report, so indexes still match.
            if isinstance(raw, dict):
                info, raw = checker.step(raw, join("steps", i))
                infos.append(info)
            cleaned_steps.append(raw)
        version["steps"] = cleaned_steps
        checker.cross_step(infos, certifications)
    return checker.result(version)


def check_workflow(data: object) -> Checked:
    """Problems, warnings and cleaned data for one workflow.json.

    Its one function, `sample_data_load_function`, is checked for form but not imported: it writes
    sample rows through Django, so importing it needs a configured project, and only the
    `loadworkflowsampledata` command ever calls it (and reports a failed import there).
    """
    checker = _Checker(check_imports=False)
    if not checker.is_object(data, "", '{"slug": "my_workflow", "name": "...", "certifications": []}'):
        return checker.result(None)
    assert isinstance(data, dict)
    workflow = checker.known_keys(data, WORKFLOW_KEYS, "")
    sample = workflow.get("sample_data_load_function")
    if sample is not None and checker.callable_ref(sample, "sample_data_load_function") is None:
        del workflow["sample_data_load_function"]
    certifications = workflow.get("certifications")
    if not isinstance(certifications, list):
        return checker.result(workflow)
    first: dict[str, str] = {}
    requires: dict[str, list[tuple[str, str]]] = {}
    cleaned: list[Any] = []
    for i, raw in enumerate(certifications):
        path = join("certifications", i)
        if isinstance(raw, dict):
            raw = checker.known_keys(raw, CERTIFICATION_KEYS, path)
            slug = raw.get("slug")
            if isinstance(slug, str):
                if slug in first:
                    checker.add(join(path, "slug"), f"duplicate certification slug '{slug}' (also {first[slug]})")
                else:
                    first[slug] = path
                    requires[slug] = strings(raw.get("required_certifications"), join(path, "required_certifications"))
        cleaned.append(raw)
    workflow["certifications"] = cleaned
    known = list(first)
    for slug, needed in requires.items():
        for where, other in needed:
            if other == slug:
                checker.add(where, f"a certification cannot require itself; remove '{other}'")
            elif other not in first:
                checker.unknown_certification(where, other, known)
    cycle = find_cycle({slug: [o for _, o in needed if o in first and o != slug] for slug, needed in requires.items()})
    if cycle:
        checker.add(
            "certifications",
            f"required_certifications cycle: {' -> '.join(cycle)} (no worker could ever hold them); "
            "remove one of these requirements",
        )
    return checker.result(workflow)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Group problems by top-level key and step (`steps[2]` before `steps[10]`); keep the order within."""

    def key(problem: Problem) -> tuple[tuple[int, int | str], ...]:
        parts: list[tuple[int, int | str]] = []
        for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", problem.path):
            parts.append((0, int(index)) if index else (1, name))
            if index:
                break
        return tuple(parts[:2])

    return sorted(problems, key=key)
