"""Workflow definitions: B12's files load unchanged, and every malformed definition is reported at once,
each problem at its path with a message that says how to fix it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestra.engine import _references, _validation
from orchestra.engine.definitions import (
    AssignmentPolicy,
    CallableRef,
    CertificationDef,
    RetryPolicy,
    ReviewPolicy,
    StepDef,
    VersionDef,
    WorkflowDef,
    load_workflow_directory,
    parse_version,
    parse_workflow,
    read_definition_file,
)
from orchestra.engine.errors import DefinitionError, Problem
from orchestra.engine.lifecycle import StepKind
from orchestra.engine.policies import assignment as assignment_policies
from orchestra.engine.policies import creation as creation_policies

B12_EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "b12-example-workflows"
FIXTURES = "tests.unit.policy_fixtures"

WORKFLOW_DATA: dict[str, Any] = {
    "slug": "news",
    "name": "News",
    "certifications": [
        {"slug": "reporter", "name": "Reporter"},
        {"slug": "editor", "name": "Editor", "required_certifications": ["reporter"]},
    ],
}
WORKFLOW = WorkflowDef.model_validate(WORKFLOW_DATA)


def version_data() -> dict[str, Any]:
    """A valid version: a machine step, then two human steps in a chain."""
    return {
        "slug": "v1",
        "name": "Version 1",
        "steps": [
            {
                "slug": "crawl",
                "name": "Crawl",
                "is_human": False,
                "execution_function": {"path": f"{FIXTURES}.run_step", "kwargs": {"depth": 2}},
            },
            {
                "slug": "reporting",
                "name": "Reporting",
                "is_human": True,
                "creation_depends_on": ["crawl"],
                "required_certifications": ["reporter"],
                "review_policy": {"policy": "sampled_review", "rate": 1, "max_reviews": 1},
            },
            {
                "slug": "editing",
                "name": "Editing",
                "creation_depends_on": ["reporting"],
                "required_certifications": ["editor"],
                "review_policy": {"policy": "no_review"},
            },
        ],
    }


def problems_of(data: Any, **kwargs: Any) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        parse_version(data, workflow=WORKFLOW, **kwargs)
    return info.value.problems


def assert_reported(problems: list[Problem], path: str, fragment: str) -> None:
    matching = [p for p in problems if p.path == path]
    assert matching, f"no problem at {path!r}; got:\n" + "\n".join(map(str, problems))
    assert any(fragment in p.message for p in matching), "\n".join(map(str, matching))


# --- B12's examples -------------------------------------------------------------------------------


def b12_example(name: str) -> Path:
    directory = B12_EXAMPLES / name
    if not directory.is_dir():
        pytest.skip(f"B12 example workflows not found at {directory} (they live in /work/shared/reference)")
    return directory


def test_b12_simple_workflow_loads_unchanged() -> None:
    loaded = load_workflow_directory(b12_example("simple_workflow"), check_imports=False)

    assert loaded.workflow.slug == "simple_workflow"
    assert loaded.workflow.sample_data_load_function == CallableRef(path="simple_workflow.load_sample_data.load")
    assert list(loaded.versions) == ["v1"]
    crawl, rate = loaded.versions["v1"].steps
    assert crawl.kind == StepKind.MACHINE and not crawl.is_human
    assert crawl.execution_function == CallableRef(path="simple_workflow.v1.crawl.crawl_page")
    assert crawl.review_policy is None and crawl.assignment_policy is None
    assert rate.kind == StepKind.HUMAN and rate.creation_depends_on == ["crawl"]
    assert rate.review_policy == ReviewPolicy(policy="no_review")
    assert rate.assignment_policy == AssignmentPolicy()
    assert rate.assignment_policy.entry_level.path == "anyone_certified"
    assert rate.creation_policy == CallableRef(path="always_create")
    assert rate.user_interface == {}
    assert loaded.warnings == [
        "v1/version.json: steps[1].user_interface: step 'rate': ignoring B12 Angular keys angular_directive, "
        "angular_module, javascript_includes; Orchestra renders human steps from 'user_interface.form'"
    ]


def test_b12_journalism_workflow_loads_unchanged() -> None:
    loaded = load_workflow_directory(b12_example("journalism_workflow"), check_imports=False)

    assert loaded.workflow.slug == "journalism"
    assert [c.slug for c in loaded.workflow.certifications] == [
        "editor",
        "reporter",
        "photographer",
        "copy_editor",
    ]
    version = loaded.versions["v1"]
    kinds = {step.slug: step.kind for step in version.steps}
    assert kinds == {
        "document_creation": StepKind.MACHINE,
        "article_planning": StepKind.HUMAN,
        "reporting": StepKind.HUMAN,
        "photography": StepKind.HUMAN,
        "photo_adjustment": StepKind.MACHINE,
        "copy_editing": StepKind.HUMAN,
    }
    assert version.step("reporting").review_policy == ReviewPolicy(policy="sampled_review", rate=1, max_reviews=1)
    assert version.step("copy_editing").creation_depends_on == ["photo_adjustment", "reporting"]
    assert version.step("photography").required_certifications == ["photographer"]
    assert version.ancestors("copy_editing") == [
        "document_creation",
        "article_planning",
        "reporting",
        "photography",
        "photo_adjustment",
    ]
    assert len(loaded.warnings) == 4
    assert all("ignoring B12 Angular keys" in w for w in loaded.warnings)


def test_a_human_step_without_policies_gets_b12_defaults() -> None:
    data = version_data()
    del data["steps"][1]["review_policy"]
    version, _ = parse_version(data, workflow=WORKFLOW)

    reporting = version.step("reporting")
    assert reporting.review_policy == ReviewPolicy(policy="sampled_review", rate=1.0, max_reviews=1)
    assert reporting.assignment_policy == AssignmentPolicy(
        entry_level=CallableRef(path="anyone_certified"), reviewer=CallableRef(path="anyone_certified")
    )
    assert reporting.creation_policy.path == "always_create"
    assert reporting.retry == RetryPolicy()


def test_b12_long_policy_names_become_builtin_names() -> None:
    data = version_data()
    data["steps"][2]["assignment_policy"] = {
        "policy_function": {
            "entry_level": {
                "path": "orchestra.assignment_policies.previously_completed_steps",
                "kwargs": {"related_steps": ["reporting"]},
            },
            "reviewer": {
                "path": "orchestra.assignment_policies.specified_worker",
                "kwargs": {"username": "ed"},
            },
        }
    }
    data["steps"][2]["creation_policy"] = {"policy_function": {"path": "orchestra.creation_policies.always_create"}}
    version, warnings = parse_version(data, workflow=WORKFLOW)

    editing = version.step("editing")
    assert editing.assignment_policy is not None
    assert editing.assignment_policy.entry_level == CallableRef(
        path="previously_completed_steps", kwargs={"related_steps": ["reporting"]}
    )
    assert editing.assignment_policy.reviewer == CallableRef(path="specified_worker", kwargs={"username": "ed"})
    assert editing.creation_policy == CallableRef(path="always_create")
    assert warnings == []


def test_kind_extends_is_human() -> None:
    data = version_data()
    data["steps"].append(
        {"slug": "publish", "name": "Publish", "kind": "external", "execution": {"url": "https://example.com/hook"}}
    )
    data["steps"].append({"slug": "check", "name": "Check", "kind": "human", "is_human": True})
    version, _ = parse_version(data, workflow=WORKFLOW)

    assert version.step("publish").kind == StepKind.EXTERNAL
    assert version.step("publish").execution == {"url": "https://example.com/hook"}
    assert version.step("publish").review_policy is None
    assert version.step("check").is_human


# --- malformed definitions -------------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], Any]


def steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = data["steps"]
    return result


def assign_policy(role: str, ref: Any) -> dict[str, Any]:
    return {"policy_function": {role: ref}}


VERSION_CASES: list[tuple[str, Edit, str, str]] = [
    (
        "unknown step key",
        lambda d: steps(d)[1].update(creation_depend_on=["crawl"]),
        "steps[1].creation_depend_on",
        "unknown key (did you mean 'creation_depends_on'?)",
    ),
    ("unknown version key", lambda d: d.update(step=[]), "step", "unknown key (did you mean 'steps'?)"),
    (
        "unknown key without a close match lists the allowed ones",
        lambda d: steps(d)[0].update(zzz=1),
        "steps[0].zzz",
        "unknown key; expected one of: slug, name,",
    ),
    ("missing step name", lambda d: steps(d)[1].pop("name"), "steps[1].name", "field required"),
    ("missing version slug", lambda d: d.pop("slug"), "slug", "field required"),
    (
        "dependencies not a list",
        lambda d: steps(d)[1].update(creation_depends_on="crawl"),
        "steps[1].creation_depends_on",
        "expected a list of step slugs, got a string ('crawl')",
    ),
    (
        "dependency not a string",
        lambda d: steps(d)[1].update(creation_depends_on=[3]),
        "steps[1].creation_depends_on[0]",
        "expected a step slug (a string), got a number (3)",
    ),
    (
        "unknown dependency",
        lambda d: steps(d)[2].update(creation_depends_on=["reportin"]),
        "steps[2].creation_depends_on[0]",
        "unknown step 'reportin' (did you mean 'reporting'?)",
    ),
    (
        "unknown dependency without a close match lists the steps",
        lambda d: steps(d)[2].update(creation_depends_on=["zzz"]),
        "steps[2].creation_depends_on[0]",
        "unknown step 'zzz'; the steps are: crawl, reporting, editing",
    ),
    (
        "unknown submission dependency",
        lambda d: steps(d)[2].update(submission_depends_on=["crawll"]),
        "steps[2].submission_depends_on[0]",
        "unknown step 'crawll' (did you mean 'crawl'?)",
    ),
    (
        "step depends on itself",
        lambda d: steps(d)[1].update(creation_depends_on=["crawl", "reporting"]),
        "steps[1].creation_depends_on[1]",
        "a step cannot depend on itself",
    ),
    (
        "creation cycle",
        lambda d: steps(d)[0].update(creation_depends_on=["editing"]),
        "steps",
        "dependency cycle: crawl -> editing -> reporting -> crawl",
    ),
    (
        "cycle through submission dependencies",
        lambda d: steps(d)[0].update(submission_depends_on=["editing"]),
        "steps",
        "dependency cycle through submission_depends_on: crawl -> editing -> reporting -> crawl",
    ),
    (
        "duplicate step slug",
        lambda d: steps(d).append({"slug": "reporting", "name": "Again"}),
        "steps[3].slug",
        "duplicate step slug 'reporting' (also steps[1])",
    ),
    (
        "bad step slug",
        lambda d: steps(d)[2].update(slug="bad slug"),
        "steps[2].slug",
        "'bad slug' is not a valid slug",
    ),
    ("bad version slug", lambda d: d.update(slug="-v1"), "slug", "'-v1' is not a valid slug"),
    (
        "unknown certification",
        lambda d: steps(d)[1].update(required_certifications=["reportr"]),
        "steps[1].required_certifications[0]",
        "unknown certification 'reportr' (did you mean 'reporter'?); workflow.json declares: reporter, editor",
    ),
    (
        "unknown review policy",
        lambda d: steps(d)[1].update(review_policy={"policy": "sampled_reviw", "rate": 1, "max_reviews": 1}),
        "steps[1].review_policy.policy",
        "unknown review policy 'sampled_reviw' (did you mean 'sampled_review'?)",
    ),
    (
        "review rate out of range",
        lambda d: steps(d)[1]["review_policy"].update(rate=1.5),
        "steps[1].review_policy.rate",
        "must be between 0 and 1, got 1.5",
    ),
    (
        "review rate not a number",
        lambda d: steps(d)[1]["review_policy"].update(rate="all"),
        "steps[1].review_policy.rate",
        "expected a number from 0 to 1, got a string ('all')",
    ),
    (
        "sampled review without max_reviews",
        lambda d: steps(d)[1]["review_policy"].pop("max_reviews"),
        "steps[1].review_policy.max_reviews",
        "sampled_review needs 'max_reviews'",
    ),
    (
        "negative max_reviews",
        lambda d: steps(d)[1]["review_policy"].update(max_reviews=-1),
        "steps[1].review_policy.max_reviews",
        "must be 0 or more, got -1",
    ),
    (
        "custom review policy not importable",
        lambda d: steps(d)[1].update(review_policy={"policy": "nowhere_at_all.policy"}),
        "steps[1].review_policy.policy",
        "cannot import 'nowhere_at_all.policy': No module named 'nowhere_at_all'",
    ),
    (
        "unknown assignment policy",
        lambda d: steps(d)[1].update(assignment_policy=assign_policy("entry_level", {"path": "anyone_certifed"})),
        "steps[1].assignment_policy.policy_function.entry_level.path",
        "unknown assignment policy 'anyone_certifed' (did you mean 'anyone_certified'?)",
    ),
    (
        "unknown B12 assignment policy",
        lambda d: steps(d)[1].update(
            assignment_policy=assign_policy("reviewer", {"path": "orchestra.assignment_policies.specified_workr"})
        ),
        "steps[1].assignment_policy.policy_function.reviewer.path",
        "'orchestra.assignment_policies.specified_workr' is not a built-in assignment policy "
        "(did you mean 'specified_worker'?)",
    ),
    (
        "unknown key in assignment policy",
        lambda d: steps(d)[1].update(assignment_policy={"policy_function": {"entry_levl": {"path": "x.y"}}}),
        "steps[1].assignment_policy.policy_function.entry_levl",
        "unknown key (did you mean 'entry_level'?)",
    ),
    (
        "specified_worker without username",
        lambda d: steps(d)[1].update(assignment_policy=assign_policy("entry_level", {"path": "specified_worker"})),
        "steps[1].assignment_policy.policy_function.entry_level.kwargs.username",
        "specified_worker needs 'username'",
    ),
    (
        "specified_worker with a misspelt argument",
        lambda d: steps(d)[1].update(
            assignment_policy=assign_policy(
                "entry_level", {"path": "specified_worker", "kwargs": {"username": "a", "usernme": "b"}}
            )
        ),
        "steps[1].assignment_policy.policy_function.entry_level.kwargs.usernme",
        "unknown argument for specified_worker (did you mean 'username'?)",
    ),
    (
        "previously_completed_steps naming a machine step",
        lambda d: steps(d)[2].update(
            assignment_policy=assign_policy(
                "reviewer", {"path": "previously_completed_steps", "kwargs": {"related_steps": ["crawl"]}}
            )
        ),
        "steps[2].assignment_policy.policy_function.reviewer.kwargs.related_steps[0]",
        "'crawl' is a machine step",
    ),
    (
        "previously_completed_steps naming an unknown step",
        lambda d: steps(d)[2].update(
            assignment_policy=assign_policy(
                "entry_level",
                {"path": "previously_completed_steps", "kwargs": {"related_steps": ["reportng"]}},
            )
        ),
        "steps[2].assignment_policy.policy_function.entry_level.kwargs.related_steps[0]",
        "unknown step 'reportng' (did you mean 'reporting'?)",
    ),
    (
        "previously_completed_steps without related_steps",
        lambda d: steps(d)[2].update(
            assignment_policy=assign_policy("entry_level", {"path": "previously_completed_steps"})
        ),
        "steps[2].assignment_policy.policy_function.entry_level.kwargs.related_steps",
        "previously_completed_steps needs 'related_steps'",
    ),
    (
        "unknown B12 creation policy",
        lambda d: steps(d)[1].update(
            creation_policy={"policy_function": {"path": "orchestra.creation_policies.never_create"}}
        ),
        "steps[1].creation_policy.policy_function.path",
        "'orchestra.creation_policies.never_create' is not a built-in creation policy",
    ),
    (
        "creation policy with unimportable path",
        lambda d: steps(d)[1].update(creation_policy={"policy_function": {"path": "x.y"}}),
        "steps[1].creation_policy.policy_function.path",
        "cannot import 'x.y': No module named 'x'",
    ),
    (
        "machine step without execution_function",
        lambda d: steps(d)[0].pop("execution_function"),
        "steps[0].execution_function",
        "machine steps need an 'execution_function'",
    ),
    (
        "execution_function not importable",
        lambda d: steps(d)[0].update(execution_function={"path": "x.y"}),
        "steps[0].execution_function.path",
        "cannot import 'x.y': No module named 'x'",
    ),
    (
        "execution_function names a missing attribute",
        lambda d: steps(d)[0].update(execution_function={"path": f"{FIXTURES}.nope"}),
        "steps[0].execution_function.path",
        f"cannot import '{FIXTURES}.nope': '{FIXTURES}' has no attribute 'nope'",
    ),
    (
        "execution_function not callable",
        lambda d: steps(d)[0].update(execution_function={"path": f"{FIXTURES}.NOT_CALLABLE"}),
        "steps[0].execution_function.path",
        "is an object, not a function",
    ),
    (
        "execution_function not a dotted path",
        lambda d: steps(d)[0].update(execution_function={"path": "run_step"}),
        "steps[0].execution_function.path",
        "'run_step' is not a dotted path",
    ),
    (
        "B12 module/name form missing its name",
        lambda d: steps(d)[0].update(execution_function={"module": FIXTURES}),
        "steps[0].execution_function.name",
        "field required with 'module'",
    ),
    (
        "execution_function kwargs not an object",
        lambda d: steps(d)[0]["execution_function"].update(kwargs=[1]),
        "steps[0].execution_function.kwargs",
        "expected an object of keyword arguments, got a list",
    ),
    (
        "review_policy on a machine step",
        lambda d: steps(d)[0].update(review_policy={"policy": "no_review"}),
        "steps[0].review_policy",
        "only human steps take 'review_policy'; remove it or set \"is_human\": true",
    ),
    (
        "required_certifications on a step of explicit kind",
        lambda d: steps(d).append({"slug": "s", "name": "S", "kind": "script", "required_certifications": ["editor"]}),
        "steps[3].required_certifications",
        'only human steps take \'required_certifications\'; remove it or set "kind": "human"',
    ),
    (
        "execution_function on a human step",
        lambda d: steps(d)[1].update(execution_function={"path": f"{FIXTURES}.run_step"}),
        "steps[1].execution_function",
        "human steps are done by workers and take no 'execution_function'",
    ),
    (
        "kind contradicts is_human",
        lambda d: steps(d)[0].update(kind="human"),
        "steps[0].kind",
        '"kind": "human" contradicts "is_human": false',
    ),
    (
        "unknown kind",
        lambda d: steps(d)[2].update(kind="humn"),
        "steps[2].kind",
        "unknown step kind 'humn' (did you mean 'human'?); use one of: human, machine, script, external, tasks",
    ),
    (
        "is_human not a boolean",
        lambda d: steps(d)[2].update(is_human="yes"),
        "steps[2].is_human",
        "expected true or false, got a string ('yes')",
    ),
    (
        "completion_ends_project not a boolean",
        lambda d: steps(d)[2].update(completion_ends_project="yes"),
        "steps[2].completion_ends_project",
        "expected true or false, got a string ('yes')",
    ),
    (
        "timeout not positive",
        lambda d: steps(d)[0].update(timeout_seconds=0),
        "steps[0].timeout_seconds",
        "must be greater than 0, got 0",
    ),
    (
        "retry attempts below one",
        lambda d: steps(d)[0].update(retry={"max_attempts": 0}),
        "steps[0].retry.max_attempts",
        "must be at least 1, got 0",
    ),
    (
        "retry key misspelt",
        lambda d: steps(d)[0].update(retry={"backof_factor": 3}),
        "steps[0].retry.backof_factor",
        "unknown key (did you mean 'backoff_factor'?)",
    ),
    ("empty steps", lambda d: d.update(steps=[]), "steps", "a version needs at least one step"),
    ("steps not a list", lambda d: d.update(steps={}), "steps", "expected a list of steps, got an object"),
    (
        "step not an object",
        lambda d: steps(d).insert(1, "reporting"),
        "steps[1]",
        "expected an object describing a step, got a string ('reporting')",
    ),
]


@pytest.mark.parametrize(
    ("edit", "path", "fragment"), [c[1:] for c in VERSION_CASES], ids=[c[0] for c in VERSION_CASES]
)
def test_malformed_version_is_reported_at_its_path(edit: Edit, path: str, fragment: str) -> None:
    data = version_data()
    edit(data)
    assert_reported(problems_of(data), path, fragment)


WORKFLOW_CASES: list[tuple[str, Edit, str, str]] = [
    (
        "unknown key",
        lambda d: d.update(certification=[]),
        "certification",
        "unknown key (did you mean 'certifications'?)",
    ),
    ("missing name", lambda d: d.pop("name"), "name", "field required"),
    ("empty name", lambda d: d.update(name=""), "name", "must not be empty"),
    ("bad slug", lambda d: d.update(slug="news feed"), "slug", "'news feed' is not a valid slug"),
    (
        "duplicate certification",
        lambda d: d["certifications"].append({"slug": "reporter", "name": "Again"}),
        "certifications[2].slug",
        "duplicate certification slug 'reporter' (also certifications[0])",
    ),
    (
        "certification requires an unknown one",
        lambda d: d["certifications"][1].update(required_certifications=["reportr"]),
        "certifications[1].required_certifications[0]",
        "unknown certification 'reportr' (did you mean 'reporter'?)",
    ),
    (
        "certification key misspelt",
        lambda d: d["certifications"][0].update(descripton="x"),
        "certifications[0].descripton",
        "unknown key (did you mean 'description'?)",
    ),
    (
        "sample data function in the wrong form",
        lambda d: d.update(sample_data_load_function="a.b"),
        "sample_data_load_function",
        'expected an object like {"path": "package.module.function"}, got a string',
    ),
]


@pytest.mark.parametrize(
    ("edit", "path", "fragment"), [c[1:] for c in WORKFLOW_CASES], ids=[c[0] for c in WORKFLOW_CASES]
)
def test_malformed_workflow_is_reported_at_its_path(edit: Edit, path: str, fragment: str) -> None:
    data = copy.deepcopy(WORKFLOW_DATA)
    edit(data)
    with pytest.raises(DefinitionError) as info:
        parse_workflow(data, source="workflow.json")
    assert info.value.source == "workflow.json"
    assert_reported(info.value.problems, path, fragment)


def test_every_problem_is_reported_at_once() -> None:
    data = version_data()
    steps(data)[0].pop("execution_function")
    steps(data)[1]["creation_depend_on"] = ["crawl"]
    steps(data)[1]["review_policy"]["rate"] = 2
    steps(data)[2]["creation_depends_on"] = ["reportin"]
    steps(data)[2]["required_certifications"] = ["editr"]
    steps(data)[2]["completion_ends_project"] = "no"

    problems = problems_of(data)

    assert {p.path for p in problems} == {
        "steps[0].execution_function",
        "steps[1].creation_depend_on",
        "steps[1].review_policy.rate",
        "steps[2].creation_depends_on[0]",
        "steps[2].required_certifications[0]",
        "steps[2].completion_ends_project",
    }
    assert len(problems) == 6, "each problem is reported once"
    assert [p.path for p in problems][0].startswith("steps[0]"), "problems are grouped by step"


def test_definition_error_message_lists_every_problem() -> None:
    data = version_data()
    steps(data)[2]["creation_depends_on"] = ["reportin"]
    with pytest.raises(DefinitionError) as info:
        parse_version(data, workflow=WORKFLOW, source="news/v1/version.json")
    text = str(info.value)
    assert "1 problem(s) in news/v1/version.json" in text
    assert "steps[2].creation_depends_on[0]: unknown step 'reportin' (did you mean 'reporting'?)" in text
    assert info.value.as_dict()["problems"][0]["path"] == "steps[2].creation_depends_on[0]"


def test_not_an_object_at_all() -> None:
    assert_reported(problems_of(["v1"]), "", "expected an object like")


# --- references and imports ------------------------------------------------------------------------


def test_module_and_name_form_of_execution_function() -> None:
    data = version_data()
    steps(data)[0]["execution_function"] = {"module": FIXTURES, "name": "run_step", "kwargs": {"x": 1}}
    version, _ = parse_version(data, workflow=WORKFLOW)

    ref = version.step("crawl").execution_function
    assert ref == CallableRef(path=f"{FIXTURES}.run_step", kwargs={"x": 1})
    assert ref.resolve()({}, {}, **ref.kwargs) == {"ran": True, "x": 1}
    assert CallableRef.model_validate({"module": "a.b", "name": "c"}).path == "a.b.c"


def test_custom_policies_by_dotted_path() -> None:
    data = version_data()
    steps(data)[1]["review_policy"] = {"policy": f"{FIXTURES}.always_review", "kwargs": {"level": 2}}
    steps(data)[1]["assignment_policy"] = assign_policy("reviewer", {"path": f"{FIXTURES}.pick_alice"})
    steps(data)[1]["creation_policy"] = {"policy_function": {"path": f"{FIXTURES}.create_when_flagged"}}
    version, _ = parse_version(data, workflow=WORKFLOW)

    reporting = version.step("reporting")
    assert reporting.review_policy is not None and reporting.review_policy.is_custom
    assert reporting.review_policy.kwargs == {"level": 2}
    assert reporting.assignment_policy is not None
    assert reporting.assignment_policy.entry_level.path == "anyone_certified"
    assert reporting.assignment_policy.reviewer.resolve()(None) == ["alice"]
    assert reporting.creation_policy.resolve()({}, {"flag": True}) is True
    assert not ReviewPolicy(policy="no_review").is_custom


def test_unimportable_references_pass_without_import_checks() -> None:
    data = version_data()
    steps(data)[0]["execution_function"] = {"path": "not_installed.module.run"}
    steps(data)[1]["review_policy"] = {"policy": "not_installed.policy"}
    version, _ = parse_version(data, workflow=WORKFLOW, check_imports=False)
    assert version.step("crawl").execution_function == CallableRef(path="not_installed.module.run")

    problems = problems_of(data)
    assert_reported(problems, "steps[0].execution_function.path", "No module named 'not_installed'")
    assert_reported(problems, "steps[1].review_policy.policy", "No module named 'not_installed'")


def test_resolve_names_what_is_wrong() -> None:
    with pytest.raises(ImportError, match=r"cannot import 'x\.y': No module named 'x'"):
        CallableRef(path="x.y").resolve()
    with pytest.raises(ImportError, match="is an object, not a function"):
        CallableRef(path=f"{FIXTURES}.NOT_CALLABLE").resolve()
    ref = CallableRef(path=f"{FIXTURES}.run_step")
    assert ref.resolve() is ref.resolve()


# --- files and directories -------------------------------------------------------------------------


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_yaml_directory_loads_like_json(tmp_path: Path) -> None:
    for root, suffix in ((tmp_path / "yaml", ".yaml"), (tmp_path / "json", ".json")):
        write(root / f"workflow{suffix}", WORKFLOW_DATA)
        for slug in ("v10", "v2", "v1"):
            write(root / slug / f"version{suffix}", {**version_data(), "slug": slug})
    (tmp_path / "yaml" / "static").mkdir()  # not a version: no version file

    from_yaml = load_workflow_directory(tmp_path / "yaml")
    from_json = load_workflow_directory(tmp_path / "json")

    assert list(from_yaml.versions) == ["v1", "v2", "v10"]
    assert from_yaml.workflow == from_json.workflow
    assert from_yaml.directory == tmp_path / "yaml"
    assert from_yaml.warnings == []
    for slug in ("v1", "v2", "v10"):
        assert from_yaml.versions[slug].digest() == from_json.versions[slug].digest()
    only = load_workflow_directory(tmp_path / "yaml", version="v2")
    assert list(only.versions) == ["v2"]


def test_directory_problems_from_every_file_in_one_error(tmp_path: Path) -> None:
    write(tmp_path / "workflow.json", {**WORKFLOW_DATA, "nme": "x"})
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "version.json").write_text('{\n  "slug": "v1",\n  "name": "V1"\n  "steps": []\n}\n')
    bad = version_data()
    steps(bad)[2]["creation_depends_on"] = ["reportin"]
    write(tmp_path / "v2" / "version.yaml", bad)
    (tmp_path / "v3").mkdir()
    (tmp_path / "v3" / "version.yml").write_text("slug: v3\nsteps: [a, b\n")
    write(tmp_path / "v4" / "version.json", {**version_data(), "slug": "v5"})

    with pytest.raises(DefinitionError) as info:
        load_workflow_directory(tmp_path)

    problems = info.value.problems
    assert info.value.source == str(tmp_path)
    assert_reported(problems, "workflow.json: nme", "unknown key (did you mean 'name'?)")
    assert_reported(problems, "v1/version.json", "invalid JSON at line 4, column 3: Expecting ',' delimiter")
    assert_reported(problems, "v2/version.yaml: steps[2].creation_depends_on[0]", "unknown step 'reportin'")
    assert_reported(problems, "v3/version.yml", "invalid YAML at line 3")
    assert_reported(problems, "v4/version.json: slug", "version slug 'v5' does not match its directory 'v4'")
    assert str(problems[2]).startswith("v2/version.yaml: steps[2].creation_depends_on[0]: unknown step")


def test_versions_are_checked_against_an_invalid_workflow_certifications(tmp_path: Path) -> None:
    write(tmp_path / "workflow.json", {**WORKFLOW_DATA, "slug": "bad slug"})
    bad = version_data()
    steps(bad)[2]["required_certifications"] = ["editr"]
    write(tmp_path / "v1" / "version.json", bad)

    with pytest.raises(DefinitionError) as info:
        load_workflow_directory(tmp_path)

    assert_reported(info.value.problems, "workflow.json: slug", "not a valid slug")
    assert_reported(
        info.value.problems, "v1/version.json: steps[2].required_certifications[0]", "did you mean 'editor'?"
    )


def test_unknown_version_suggests_the_closest(tmp_path: Path) -> None:
    write(tmp_path / "workflow.json", WORKFLOW_DATA)
    write(tmp_path / "v1" / "version.json", version_data())
    write(tmp_path / "v2" / "version.json", {**version_data(), "slug": "v2"})

    with pytest.raises(DefinitionError) as info:
        load_workflow_directory(tmp_path, version="v22")
    assert_reported(info.value.problems, "", "unknown version 'v22' (did you mean 'v2'?); available: v1, v2")


def test_directory_without_workflow_or_versions(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        load_workflow_directory(tmp_path)
    assert_reported(info.value.problems, "workflow.json", "file missing")
    assert_reported(info.value.problems, "", "no versions")
    with pytest.raises(DefinitionError, match="is not a directory"):
        load_workflow_directory(tmp_path / "missing")


def test_read_definition_file(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("slug: x\nlist: [1, 2]\n")
    assert read_definition_file(tmp_path / "a.yml") == {"slug": "x", "list": [1, 2]}
    (tmp_path / "a.toml").write_text("")
    with pytest.raises(DefinitionError, match="unsupported file type '.toml'"):
        read_definition_file(tmp_path / "a.toml")


# --- the version's graph and digest ----------------------------------------------------------------


def diamond() -> VersionDef:
    data = version_data()
    steps(data).insert(1, {"slug": "photos", "name": "Photos", "creation_depends_on": ["crawl"]})
    steps(data)[3]["creation_depends_on"] = ["photos", "reporting"]
    steps(data).insert(0, {"slug": "late", "name": "Late", "creation_depends_on": ["editing"]})
    version, _ = parse_version(data, workflow=WORKFLOW)
    return version


def test_topological_order_keeps_declaration_order_among_ready_steps() -> None:
    version = diamond()
    assert [s.slug for s in version.steps] == ["late", "crawl", "photos", "reporting", "editing"]
    assert version.topological_order() == ["crawl", "photos", "reporting", "editing", "late"]
    assert version.ancestors("editing") == ["crawl", "photos", "reporting"]
    assert version.ancestors("crawl") == []
    with pytest.raises(KeyError, match="has no step 'editng' \\(did you mean 'editing'\\?\\)"):
        version.step("editng")


def test_digest_is_stable_and_canonical() -> None:
    version, _ = parse_version(version_data(), workflow=WORKFLOW)
    reordered = version_data()
    steps(reordered)[0] = dict(reversed(list(steps(reordered)[0].items())))
    steps(reordered)[2]["kind"] = "human"  # what B12's default already means

    assert version.digest() == parse_version(version_data(), workflow=WORKFLOW)[0].digest()
    assert version.digest() == parse_version(reordered, workflow=WORKFLOW)[0].digest()
    assert len(version.digest()) == 64

    changed = version_data()
    steps(changed)[0]["execution_function"]["kwargs"]["depth"] = 3
    assert parse_version(changed, workflow=WORKFLOW)[0].digest() != version.digest()


def test_stored_form_parses_back_to_the_same_definition() -> None:
    version, _ = parse_version(version_data(), workflow=WORKFLOW)
    stored = json.loads(json.dumps(version.model_dump(mode="json")))

    again, warnings = parse_version(stored, workflow=WORKFLOW, check_imports=False)

    assert again == version
    assert again.digest() == version.digest()
    assert warnings == []
    assert stored["steps"][0]["kind"] == "machine" and "is_human" not in stored["steps"][0]


def test_stored_b12_example_parses_back(tmp_path: Path) -> None:
    loaded = load_workflow_directory(b12_example("journalism_workflow"), check_imports=False)
    version = loaded.versions["v1"]
    again, _ = parse_version(version.model_dump(mode="json"), workflow=loaded.workflow, check_imports=False)
    assert again.digest() == version.digest()


def test_unsupported_b12_features_warn() -> None:
    data = version_data()
    data["sanity_checks"] = {"sanity_check_function": {"path": "a.b"}}
    steps(data)[1]["todolist_templates_to_apply"] = ["checklist"]
    _, warnings = parse_version(data, workflow=WORKFLOW)
    assert warnings == [
        "sanity_checks: sanity checks are not supported; ignored",
        "steps[1].todolist_templates_to_apply: todo-list templates are not supported; ignored",
    ]


# --- the checker and the models agree ---------------------------------------------------------------


def test_known_keys_match_the_models() -> None:
    assert set(_validation.STEP_KEYS) == set(StepDef.model_fields) | {"is_human"}
    assert set(_validation.VERSION_KEYS) == set(VersionDef.model_fields)
    assert set(_validation.WORKFLOW_KEYS) == set(WorkflowDef.model_fields)
    assert set(_validation.CERTIFICATION_KEYS) == set(CertificationDef.model_fields)
    assert set(_validation.RETRY_KEYS) == set(RetryPolicy.model_fields)
    assert set(_references.REVIEW_KEYS) == set(ReviewPolicy.model_fields)
    assert set(_references.CALLABLE_KEYS) == set(CallableRef.model_fields) | {"module", "name"}


def test_builtin_names_match_the_policies() -> None:
    assert set(_references.ASSIGNMENT_BUILTINS) == set(assignment_policies.BUILTINS)
    assert set(_references.CREATION_BUILTINS) == set(creation_policies.BUILTINS)
