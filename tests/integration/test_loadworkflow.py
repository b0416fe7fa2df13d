"""Loading definitions through the `orchestra` commands: errors name the path; failures change nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orchestra.models import Certification, Event, Step, Workflow, WorkflowVersion
from orchestra.services.projects import project_create
from tests.conftest import B12_WORKFLOWS
from tests.support.workflows import NO_REVIEW, human, machine, write_workflow

pytestmark = pytest.mark.django_db

GOOD = [machine("fetch"), human("review_it", "fetch", review=NO_REVIEW, certs=["editor"])]


def _snapshot():
    return [
        sorted(Workflow.objects.values_list("slug", "definition")),
        sorted(WorkflowVersion.objects.values_list("slug", "digest")),
        sorted(Step.objects.values_list("version_id", "slug", "kind")),
        sorted(Certification.objects.values_list("slug", flat=True)),
        Event.objects.count(),
    ]


def _mutate(path: str, value):
    """A copy of GOOD with `path` (like "1.review_policy") set to value (None deletes the key)."""
    steps = copy.deepcopy(GOOD)
    index, _, key = path.partition(".")
    if key:
        if value is None:
            steps[int(index)].pop(key)
        else:
            steps[int(index)][key] = value
    else:
        steps.append(value)
    return steps


MALFORMED = [
    (
        "unknown dependency",
        _mutate("1.creation_depends_on", ["fecth"]),
        "steps[1].creation_depends_on[0]",
        "did you mean 'fetch'",
    ),
    ("cycle", [machine("a", "b"), machine("b", "a")], "steps", "a -> b -> a"),
    ("self dependency", [machine("a", "a")], "steps[0].creation_depends_on[0]", "itself"),
    ("duplicate slug", [machine("a"), machine("a")], "steps[1].slug", "duplicate"),
    (
        "undeclared certification",
        _mutate("1.required_certifications", ["edtor"]),
        "steps[1].required_certifications[0]",
        "did you mean 'editor'",
    ),
    (
        "unknown review policy",
        _mutate("1.review_policy", {"policy": "sampled"}),
        "steps[1].review_policy",
        "sampled_review",
    ),
    (
        "rate out of range",
        _mutate("1.review_policy", {"policy": "sampled_review", "rate": 2, "max_reviews": 1}),
        "steps[1].review_policy.rate",
        "",
    ),
    (
        "missing max_reviews",
        _mutate("1.review_policy", {"policy": "sampled_review", "rate": 1}),
        "steps[1].review_policy",
        "max_reviews",
    ),
    (
        "unimportable custom review policy",
        _mutate("1.review_policy", {"policy": "nowhere.policy"}),
        "steps[1].review_policy",
        "nowhere",
    ),
    (
        "unknown assignment policy",
        _mutate("1.assignment_policy", {"policy_function": {"entry_level": {"path": "nobody.anywhere"}}}),
        "steps[1].assignment_policy",
        "nobody",
    ),
    (
        "specified_worker without username",
        _mutate(
            "1.assignment_policy",
            {"policy_function": {"entry_level": {"path": "orchestra.assignment_policies.specified_worker"}}},
        ),
        "steps[1].assignment_policy",
        "username",
    ),
    (
        "unimportable creation policy",
        _mutate("1.creation_policy", {"policy_function": {"path": "no.such.policy"}}),
        "steps[1].creation_policy",
        "no.such",
    ),
    (
        "machine function missing module",
        _mutate("0.execution_function", {"path": "missing_mod.fn"}),
        "steps[0].execution_function",
        "missing_mod",
    ),
    (
        "machine step without function",
        _mutate("0.execution_function", None),
        "steps[0]",
        "execution_function",
    ),
    (
        "human-only key on machine step",
        _mutate("0.review_policy", {"policy": "no_review"}),
        "steps[0].review_policy",
        "only human steps",
    ),
    (
        "unknown step key",
        _mutate("1.creation_depend_on", ["fetch"]),
        "steps[1].creation_depend_on",
        "did you mean 'creation_depends_on'",
    ),
    ("wrong type", _mutate("1.creation_depends_on", "fetch"), "steps[1].creation_depends_on", ""),
    ("bad kind", _mutate("0.kind", "robot"), "steps[0].kind", ""),
    (
        "completion_ends_project not bool",
        _mutate("1.completion_ends_project", "yes"),
        "steps[1].completion_ends_project",
        "",
    ),
]


@pytest.mark.parametrize(("name", "steps", "path", "fragment"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_definition_is_refused_and_changes_nothing(tmp_path, name, steps, path, fragment):
    call_command("loadworkflow", str(write_workflow(tmp_path / "ok", GOOD, slug="other", certifications=["editor"])))
    before = _snapshot()
    directory = write_workflow(tmp_path, steps, certifications=["editor"])
    with pytest.raises(CommandError) as info:
        call_command("loadworkflow", str(directory))
    message = str(info.value)
    assert f"{path}" in message, message
    assert fragment in message, message
    assert _snapshot() == before


def test_every_problem_is_reported_at_once(tmp_path):
    steps = [machine("a", "zz"), human("b", certs=["nope"], review={"policy": "bogus"}), machine("a")]
    with pytest.raises(CommandError) as info:
        call_command("loadworkflow", str(write_workflow(tmp_path, steps)))
    message = str(info.value)
    for path in (
        "steps[0].creation_depends_on[0]",
        "steps[1].required_certifications[0]",
        "steps[1].review_policy",
        "steps[2].slug",
    ):
        assert path in message, message


def test_b12_example_definitions_load_unchanged(capsys):
    if not B12_WORKFLOWS.is_dir():
        pytest.skip(f"B12's example workflows are not beside the repo ({B12_WORKFLOWS})")
    for name in ("simple_workflow", "journalism_workflow"):
        ours = Path(__import__(name).__path__[0])
        assert json.loads((ours / "workflow.json").read_text()) == json.loads(
            (B12_WORKFLOWS / name / "workflow.json").read_text()
        )
        # Our copies differ from B12's only in `user_interface`: declared forms instead of Angular directives.
        mine, b12 = (json.loads((d / "v1/version.json").read_text()) for d in (ours, B12_WORKFLOWS / name))
        for step in mine["steps"]:
            assert ("form" in step.pop("user_interface", {})) == step["is_human"], step["slug"]
        for step in b12["steps"]:
            step.pop("user_interface", None)
        assert mine == b12
        call_command("loadworkflow", str(B12_WORKFLOWS / name), "v1")
    err = capsys.readouterr().err
    assert "angular" in err.lower()
    assert list(Step.objects.filter(version__workflow__slug="journalism").values_list("slug", flat=True)) == [
        "document_creation",
        "article_planning",
        "reporting",
        "photography",
        "photo_adjustment",
        "copy_editing",
    ]


def test_reload_rules(tmp_path, capsys):
    directory = write_workflow(tmp_path, GOOD, certifications=["editor"])
    call_command("loadworkflow", str(directory))
    assert "wf/v1: created" in capsys.readouterr().out
    events = Event.objects.count()
    call_command("loadworkflow", str(directory))
    assert "wf/v1: unchanged" in capsys.readouterr().out
    assert Event.objects.count() == events

    project_create(workflow_slug="wf", version_slug="v1")
    renamed = copy.deepcopy(GOOD)
    renamed[1]["name"] = "Review it carefully"
    write_workflow(tmp_path, renamed, certifications=["editor"])
    with pytest.raises(
        CommandError, match="has 1 project\\(s\\) and its definition changed .*changed step 'review_it'"
    ):
        call_command("loadworkflow", str(directory))
    call_command("loadworkflow", str(directory), "--force")
    assert Step.objects.get(slug="review_it").name == "Review it carefully"

    write_workflow(tmp_path, GOOD[:1], certifications=["editor"])
    with pytest.raises(CommandError, match="even with --force .*step 'review_it' was removed"):
        call_command("loadworkflow", str(directory), "--force")
    assert Step.objects.filter(slug="review_it").exists()


def test_app_label_and_unknown_source(capsys):
    call_command("loadworkflow", "simple_workflow", "v1")
    assert "simple_workflow/v1: created" in capsys.readouterr().out
    with pytest.raises(CommandError, match="neither a directory nor an importable workflow package"):
        call_command("loadworkflow", "not_a_workflow_pkg")
    with pytest.raises(CommandError, match="v7"):
        call_command("loadworkflow", "simple_workflow", "v7")


def test_sample_data_command(capsys):
    with pytest.raises(CommandError, match="expected SLUG/VERSION"):
        call_command("loadworkflowsampledata", "journalism")
    with pytest.raises(CommandError, match="no workflow version 'journalism/v1' is loaded"):
        call_command("loadworkflowsampledata", "journalism/v1")
    call_command("loadworkflow", "journalism_workflow")
    call_command("loadworkflowsampledata", "journalism/v1")
    assert "loaded sample data for journalism/v1" in capsys.readouterr().out


def test_settings_without_effect_are_named_at_load_time(tmp_path, capsys):
    steps = [
        machine("fetch", timeout_seconds=30),
        {"slug": "later", "name": "Later", "is_human": True, "creation_depends_on": ["fetch"], "timeout_seconds": 5},
    ]
    call_command("loadworkflow", str(write_workflow(tmp_path, steps)))
    err = capsys.readouterr().err
    assert "fetch" not in err  # machine steps enforce their timeout
    assert "v1: steps[1] ('later'): timeout_seconds is ignored on human steps (they have no time limit)" in err


def test_script_and_external_settings_are_checked_at_load_time(tmp_path):
    steps = [
        {"slug": "fetch", "name": "Fetch", "kind": "script", "execution": {"comand": "python fetch.py"}},
        {"slug": "ship", "name": "Ship", "kind": "external", "execution": {"url": "https://x.test", "queue": "q"}},
        {"slug": "push", "name": "Push", "kind": "external", "execution": {"url": "ftp://x", "wait_seconds": 0}},
        {"slug": "calc", "name": "Calc", "kind": "script"},
        machine("prep", execution={"command": "true"}),
        {
            "slug": "env",
            "name": "Env",
            "kind": "script",
            "execution": {"command": "true", "env": {"ORCHESTRA_API_KEY": "x", "1BAD": "y"}},
        },
    ]
    with pytest.raises(CommandError) as info:
        call_command("loadworkflow", str(write_workflow(tmp_path, steps)))
    err = str(info.value)
    assert "steps[0].execution.comand: unknown key" in err
    assert "steps[0].execution.command: field required" in err
    assert "steps[1].execution: give exactly one of 'url'" in err
    assert "steps[2].execution.url: 'ftp://x' is not an http(s) URL" in err
    assert "steps[2].execution.wait_seconds: must be greater than 0" in err
    assert "steps[3].execution: script steps need 'execution'" in err
    assert "steps[4].execution: only script, external and tasks steps take 'execution'" in err
    assert "ORCHESTRA_API_KEY is set by Orchestra for each run" in err
    assert "'1BAD' is not a variable name" in err
    assert not Workflow.objects.exists()
