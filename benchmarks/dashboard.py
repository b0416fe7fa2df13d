#!/usr/bin/env python
"""Web pages benchmark: a worker's dashboard, task page and project page over a database of 100,000 tasks.

    .venv/bin/python benchmarks/dashboard.py [--tasks 100000] [--assignments 500] [--requests 50] [--warmup 5]
                                             [--database-url URL] [--seed 4] [--json] [--show-sql]
                                             [--profile [--profile-top 30]] [--keep]

The script sets up a fresh ORCHESTRA_HOME (SQLite file, or the PostgreSQL database given with --database-url,
dropped and recreated), migrates, loads B12's journalism workflow with its six sample users, and builds:

1. through the services, 16 projects in which worker `bench` holds a seat on the `reporting` task, two of
   each case (in progress, reviewing, pending review, returned, awaiting processing, complete, paused,
   aborted);
2. with bulk inserts, journalism projects with the shapes those services produce (tasks, seats, iterations
   and events, statuses spread over every stage of the workflow) until the database holds --tasks tasks and
   `bench` holds --assignments assignments.

It then requests, in this process with Django's test Client (force_login, no network), each page --requests
times after --warmup requests, timing each request and counting its SQL statements, and checks every
response (status 200 and the rows, counts and statuses the database says it must show).
See benchmarks/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import random
import re
import shutil
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for `benchmarks.engine` when run as a script
    sys.path.insert(0, str(REPO))

DEFAULT_TASKS = 100_000
DEFAULT_ASSIGNMENTS = 500
DEFAULT_REQUESTS = 50
DEFAULT_WARMUP = 5
BATCH_PROJECTS = 1000  # bulk projects expanded and inserted at a time

# Targets (printed next to the results, never asserted) and the published reference figure.
TARGET_QUERIES = 15
TARGET_MS = 30.0
REFERENCE = "B12 Orchestra's dashboard: 807 queries and 240 ms for 200 rows, on this kind of machine"

WORKFLOW, VERSION = "journalism", "v1"
STEPS = ("document_creation", "article_planning", "reporting", "photography", "photo_adjustment", "copy_editing")
STEP_NAMES = {
    "article_planning": "Article Planning",
    "reporting": "Reporting",
    "photography": "Photography",
    "copy_editing": "Copy Editing",
}
OWNER = "eager:bench"  # the machine steps' executor, as it appears in events and claims
CMS = "newsroom-cms"  # the client that creates projects
FEEDBACK = "Add quotes from the other side."
ADMIN = "bench-admin"

# A human task's history is a prefix of one of these; its status, seats, iterations and events follow from it.
FULL = ("assign0", "submit0", "assign1", "accept1")
FULL_RETURN = ("assign0", "submit0", "assign1", "return1", "resubmit0", "accept1")
OPEN_REVIEWED = (FULL[:0], FULL[:1], FULL[:2], FULL[:3], FULL_RETURN[:4], FULL_RETURN[:5])
SINGLE = ("assign0", "submit0")  # steps without review
OPEN_SINGLE = ((), ("assign0",))

# Where `bench` sits for each dashboard bucket: (level, history of the task), one picked at random.
BENCH_SEATS: dict[str, list[tuple[int, tuple[str, ...]]]] = {
    "in_progress": [(0, FULL[:1]), (1, FULL[:3]), (1, FULL_RETURN[:5])],
    "returned": [(0, FULL_RETURN[:4])],
    "pending_review": [(0, FULL[:2]), (0, FULL[:3]), (0, FULL_RETURN[:5])],
    "pending_processing": [(1, FULL_RETURN[:4])],
    "complete": [(0, FULL), (0, FULL_RETURN), (1, FULL), (1, FULL_RETURN)],
    "paused": [(0, FULL[:1]), (0, FULL[:2]), (1, FULL[:3]), (0, FULL_RETURN[:4]), (1, FULL_RETURN[:5])],
    "aborted": [(0, FULL[:1]), (0, FULL[:2]), (1, FULL[:3]), (0, FULL_RETURN[:4]), (1, FULL_RETURN[:5])],
}
# How `bench`'s bulk assignments spread over the buckets (aborted work is left off the dashboard).
BENCH_SPREAD = {
    "complete": 0.55,
    "in_progress": 0.12,
    "pending_review": 0.10,
    "returned": 0.05,
    "pending_processing": 0.05,
    "paused": 0.05,
    "aborted": 0.08,
}
# The service-made projects: how far `bench`'s reporting task gets, and the bucket it lands in.
SCENARIOS = {
    "in_progress": "in_progress",
    "reviewing": "in_progress",
    "pending_review": "pending_review",
    "returned": "returned",
    "pending_processing": "pending_processing",
    "complete": "complete",
    "paused": "paused",
    "aborted": "aborted",
}
# Bulk workers per human step: (entry-level workers, of whom reviewers).
POOLS = {"article_planning": (20, 0), "reporting": (80, 20), "photography": (60, 15), "copy_editing": (20, 0)}
CERTIFICATIONS = {
    "article_planning": "editor",
    "reporting": "reporter",
    "photography": "photographer",
    "copy_editing": "copy_editor",
}
TITLES = (
    "Harbour dredging runs over budget",
    "School meals go local",
    "Night buses return to the east side",
    "Library hours cut again",
    "Stadium vote splits the council",
    "Who runs the city?",
    "Flood defences, ten years on",
    "The last bakery on Mill Street",
)
ARTICLE = (
    " The council met on Tuesday evening and voted after three hours of debate. Residents who spoke said"
    " the decision came too late, and officials promised a review before the spring. The figures published"
    " with the minutes show the cost has doubled since the plan was first approved, and the opposition"
    " wants an independent audit. Local businesses, meanwhile, say they have not been consulted at all."
)


# --- environment and Django setup (benchmarks/engine.py's) ---------------------------------------------


def configure(database_url: str | None) -> Path:
    from benchmarks.engine import configure as configure_engine

    return configure_engine(database_url, prefix="orchestra-dashboard-bench-")


# --- building the database: the services ---------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    worker_id: int
    user_id: int
    username: str


@dataclass
class Built:
    """What the database holds, as the build made it: the ground truth the pages are checked against."""

    bench: Person
    admin_user_id: int
    bench_user_id: int
    service_projects: list[int] = field(default_factory=list)
    buckets: Counter[str] = field(default_factory=Counter)  # bench's assignments by dashboard bucket
    seconds: dict[str, float] = field(default_factory=dict)


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _article(title: str, version: str) -> dict[str, Any]:
    return {"article": f"{version}: {title}.{ARTICLE}", "sources": [{"name": "A. Source", "on_record": True}]}


def build_with_services(built: Built) -> None:
    """Set-up through the public API, and 16 projects driven through the lifecycle services."""
    from orchestra import files
    from orchestra.models import Task
    from orchestra.services.projects import project_create, project_end, project_pause
    from orchestra.services.tasks import task_assign, task_return, task_submit

    def ids(project_id: int) -> dict[str, int]:
        return dict(Task.objects.filter(project_id=project_id).values_list("step__slug", "id"))

    def seat(task_id: int, worker: str) -> None:
        task_assign(task_id=task_id, worker=worker, actor=ADMIN)

    bench, r1, r2 = "bench", "journalism-reporter-1", "journalism-reporter-2"
    for i, scenario in enumerate(list(SCENARIOS) * 2):
        title = TITLES[i % len(TITLES)]
        project = project_create(
            workflow_slug=WORKFLOW,
            version_slug=VERSION,
            description=f"{title} ({scenario})",
            project_data={"article_title": title},
            actor=CMS,
        )
        built.service_projects.append(project.pk)
        plan = ids(project.pk)["article_planning"]
        seat(plan, "journalism-editor")
        story = {"story": f"{title}: what happened and why readers care.", "section": "news"}
        task_submit(task_id=plan, worker="journalism-editor", data=story)
        tasks = ids(project.pk)
        rep = tasks["reporting"]
        if scenario in ("reviewing", "pending_processing"):
            seat(rep, r1)
            task_submit(task_id=rep, worker=r1, data=_article(title, "First draft"))
            seat(rep, bench)
            if scenario == "pending_processing":
                task_return(task_id=rep, worker=bench, data=_article(title, "First draft"), feedback="Add quotes")
        else:
            seat(rep, bench)
            if scenario in ("pending_review", "returned", "complete"):
                task_submit(task_id=rep, worker=bench, data=_article(title, "First draft"))
            if scenario in ("returned", "complete"):
                seat(rep, r2)
                task_return(task_id=rep, worker=r2, data=_article(title, "First draft"), feedback="Add quotes")
            if scenario == "complete":
                task_submit(task_id=rep, worker=bench, data=_article(title, "With quotes"))
                task_submit(task_id=rep, worker=r2, data=_article(title, "Final"), command="accept")
                raw = Task.objects.get(pk=tasks["document_creation"]).data["raw_photos_folder"]
                files.save_file(f"{raw}/street.png", _png())
                photos = {"photos": [{"name": f"{raw}/street.png", "url": files.file_url(f"{raw}/street.png")}]}
                shoot = tasks["photography"]
                seat(shoot, "journalism-photographer-1")
                task_submit(task_id=shoot, worker="journalism-photographer-1", data=photos)
                seat(shoot, "journalism-photographer-2")
                task_submit(task_id=shoot, worker="journalism-photographer-2", data=photos, command="accept")
                tasks = ids(project.pk)
                adjusted = Task.objects.get(pk=tasks["photo_adjustment"]).data["photos"]
                copy = tasks["copy_editing"]
                seat(copy, "journalism-copy-editor")
                captions = [{"name": p["name"], "caption": "The street, this morning."} for p in adjusted]
                data = {"headline": title, "captions": captions, "ready_to_publish": True}
                task_submit(task_id=copy, worker="journalism-copy-editor", data=data)
            elif scenario == "paused":
                project_pause(project_id=project.pk, actor=ADMIN)
            elif scenario == "aborted":
                project_end(project_id=project.pk, actor=ADMIN)
        built.buckets[SCENARIOS[scenario]] += 1


def set_up() -> Built:
    """Workflow, sample users, the measured worker `bench` and the project admin `bench-admin`."""
    from orchestra.services.workers import worker_certify, worker_create
    from orchestra.services.workflows import workflow_load, workflow_load_sample_data

    workflow_load(source="journalism_workflow")
    workflow_load_sample_data(workflow_slug=WORKFLOW, version_slug=VERSION)
    bench = worker_create(username="bench", password="bench", first_name="Bea", last_name="Bench")
    for certification in ("reporter", "photographer"):
        for role in ("entry_level", "reviewer"):
            worker_certify(worker=bench, workflow_slug=WORKFLOW, certification_slug=certification, role=role)
    admin = worker_create(username=ADMIN, password="bench-admin", project_admin=True)
    return Built(
        bench=Person(bench.pk, bench.user_id, "bench"), admin_user_id=admin.user_id, bench_user_id=bench.user_id
    )


# --- building the database: bulk inserts with the same shapes ------------------------------------------


def _reviewed(rng: random.Random, done: bool | None = None) -> tuple[str, ...]:
    if done is None:
        done = rng.random() < 0.5
    if done:
        return FULL_RETURN if rng.random() < 0.3 else FULL
    return rng.choice(OPEN_REVIEWED)


def _is_done(history: tuple[str, ...]) -> bool:
    """Whether a reviewed step (reporting, photography) with this history is Complete."""
    return history[-1:] == ("accept1",)


def _sizes_for(step: str, history: tuple[str, ...]) -> list[int]:
    """How many tasks a project can have when `step` (reporting or photography) has this history."""
    done = _is_done(history)
    if step == "reporting":
        return [4, 6] if done else [4, 5]
    return [5, 6] if done else [4]


def _histories(rng: random.Random, size: int, fixed: dict[str, tuple[str, ...]], copy_done: bool) -> dict[str, Any]:
    """The human steps' histories of a project with `size` tasks (2, 4, 5 or 6; no machine work pending)."""
    if size == 2:
        return {"article_planning": rng.choice(OPEN_SINGLE)}

    def pick(step: str, done: bool | None) -> tuple[str, ...]:
        return fixed[step] if step in fixed else _reviewed(rng, done)

    # Photography completing creates photo_adjustment (task 5); both completing creates copy_editing (6).
    reporting_done, photography_done = {4: (None, False), 5: (False, True), 6: (True, True)}[size]
    plan: dict[str, Any] = {
        "article_planning": SINGLE,
        "reporting": pick("reporting", reporting_done),
        "photography": pick("photography", photography_done),
    }
    if size == 6:
        plan["copy_editing"] = SINGLE if copy_done else rng.choice(OPEN_SINGLE)
    return plan


def task_count(plan: dict[str, Any]) -> int:
    if len(plan) == 1:
        return 2
    if "copy_editing" in plan:
        return 6
    return 5 if _is_done(plan["photography"]) else 4


@dataclass
class Spec:
    """One bulk project before it is inserted."""

    plan: dict[str, Any]
    status: str  # Active, Paused or Aborted; Completed when every task completes
    bench: tuple[str, int] | None = None  # (step, level) of bench's seat


class Bulk:
    """Journalism projects as the services leave them, written with bulk_create."""

    def __init__(self, built: Built, rng: random.Random, url: str) -> None:
        self.built, self.rng, self.url = built, rng, url
        self.pools: dict[str, tuple[list[Person], list[Person]]] = {}
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.steps: dict[str, int] = {}  # step slug -> id

    # workers ---------------------------------------------------------------------------------------

    def create_workers(self) -> None:
        from django.contrib.auth import get_user_model

        from orchestra.models import Certification, Worker, WorkerCertification

        user_model = get_user_model()
        certs = dict(Certification.objects.filter(workflow__slug=WORKFLOW).values_list("slug", "id"))
        for step, (n, reviewers) in POOLS.items():
            users = user_model.objects.bulk_create(
                [
                    user_model(username=f"{step}-{i}", first_name="Sam", last_name=f"{step.title()} {i}", password="!")
                    for i in range(n)
                ]
            )
            workers = Worker.objects.bulk_create([Worker(user=u) for u in users])
            people = [Person(w.pk, u.pk, u.username) for w, u in zip(workers, users, strict=True)]
            cert = certs[CERTIFICATIONS[step]]
            rows = [
                WorkerCertification(worker_id=p.worker_id, certification_id=cert, role="entry_level") for p in people
            ]
            rows += [
                WorkerCertification(worker_id=p.worker_id, certification_id=cert, role="reviewer")
                for p in people[:reviewers]
            ]
            WorkerCertification.objects.bulk_create(rows)
            self.pools[step] = (people, people[:reviewers])

    # what to build --------------------------------------------------------------------------------------

    def specs(self, task_budget: int, bench_seats: int) -> list[Spec]:
        rng = self.rng
        specs: list[Spec] = []
        wanted = {b: int(share * bench_seats) for b, share in BENCH_SPREAD.items()}
        wanted["complete"] += bench_seats - sum(wanted.values())
        for bucket, n in wanted.items():
            for _ in range(n):
                step = rng.choice(("reporting", "photography"))
                level, history = rng.choice(BENCH_SEATS[bucket])
                size = rng.choice(_sizes_for(step, history))
                plan = _histories(rng, size, {step: history}, copy_done=rng.random() < 0.7)
                status = {"paused": "Paused", "aborted": "Aborted"}.get(bucket, "Active")
                specs.append(Spec(plan, status, (step, level)))
                self.built.buckets[bucket] += 1
        remaining = task_budget - sum(task_count(s.plan) for s in specs)
        if remaining < 0:
            raise SystemExit(f"--tasks is too small for --assignments: raise it by at least {-remaining}")
        while remaining > 0:
            completed = rng.random() < 0.75
            size = 6 if completed else rng.choices((2, 4, 5, 6), weights=(15, 45, 20, 20))[0]
            if remaining - size < 0 or remaining - size in (1, 3):
                fits = [s for s in (6, 5, 4, 2) if remaining - s >= 0 and remaining - s not in (1, 3)]
                if not fits:
                    raise SystemExit(f"cannot make exactly --tasks tasks ({remaining} left over); try another number")
                size = fits[0]
                completed = size == 6
            status = "Active" if completed else rng.choices(("Active", "Paused", "Aborted"), weights=(85, 5, 10))[0]
            specs.append(Spec(_histories(rng, size, {}, copy_done=completed), status))
            remaining -= size
        rng.shuffle(specs)
        return specs

    # inserting --------------------------------------------------------------------------------------

    def insert(self, specs: list[Spec]) -> None:
        from django.db import transaction

        from orchestra.models import (
            Event,
            Iteration,
            LedgerHead,
            Project,
            Step,
            Task,
            TaskAssignment,
            WorkflowVersion,
        )

        version = WorkflowVersion.objects.get(workflow__slug=WORKFLOW, slug=VERSION)
        self.steps = dict(Step.objects.filter(version=version).values_list("slug", "id"))
        start = self.now - dt.timedelta(days=365)
        span = dt.timedelta(days=364) / max(1, len(specs))
        with transaction.atomic():
            for first in range(0, len(specs), BATCH_PROJECTS):
                batch = specs[first : first + BATCH_PROJECTS]
                projects = []
                for k in range(len(batch)):
                    at = start + span * (first + k) + dt.timedelta(seconds=self.rng.randrange(60))
                    title = self.rng.choice(TITLES)
                    projects.append(
                        Project(
                            version=version,
                            short_description=title,
                            priority=self.rng.choices((0, 1, 2, 3, 5), weights=(70, 12, 8, 6, 4))[0],
                            project_data={"article_title": title},
                            created_at=at,
                            updated_at=at,
                        )
                    )
                Project.objects.bulk_create(projects)
                out = _Rows()
                for project, spec in zip(projects, batch, strict=True):
                    self._expand(project, spec, out)
                # Statuses, dates and end times are only known once the whole history is played.
                Project.objects.bulk_update(projects, ["status", "updated_at", "ended_at"])
                for model, rows in (
                    (Task, out.tasks),
                    (TaskAssignment, out.seats),
                    (Iteration, out.iterations),
                ):
                    model.objects.bulk_create(rows, batch_size=2000)
                heads = _chain(out.events)  # the events' task ids are known now
                Event.objects.bulk_create(out.events, batch_size=2000)
                LedgerHead.objects.bulk_create(heads)

    def _expand(self, project: Any, spec: Spec, out: _Rows) -> None:
        """Play the project's history: tasks, seats, iterations and events, each at its time."""
        rng, pk = self.rng, project.pk
        base = f"journalism/project-{pk}"
        files_url = f"{self.url}/orchestra/files"
        raw = [f"{base}/raw_photos/photo-{n}.jpg" for n in (1, 2)]
        adjusted = [f"{base}/adjusted_photos/photo-{n}.png" for n in (1, 2)]
        title = project.short_description
        outputs: dict[str, dict[str, Any]] = {
            "document_creation": {
                "articleURL": f"{files_url}/{base}/article.md",
                "article_document": f"{base}/article.md",
                "raw_photos_folder": f"{base}/raw_photos",
                "photos_folder_url": f"{files_url}/{base}/raw_photos",
            },
            "article_planning": {
                "story": f"{title}: what happened, and why readers care.",
                "angle": "follow the money",
                "section": rng.choice(("news", "politics", "business", "culture")),
                "word_count": 800,
                "deadline": None,
                "photo_brief": "The people it affects, where it happens.",
            },
            "photography": {"photos": [{"name": n, "url": f"{files_url}/{n}"} for n in raw], "notes": ""},
            "photo_adjustment": {
                "photos": [
                    {"src": f"{files_url}/{a}", "name": a, "original": r} for a, r in zip(adjusted, raw, strict=True)
                ]
            },
            "copy_editing": {
                "headline": title,
                "captions": [{"name": a, "caption": "On the scene this morning."} for a in adjusted],
                "ready_to_publish": True,
            },
        }
        play = _Play(self, project, out)
        t = project.created_at
        play.event(
            t,
            CMS,
            "project_created",
            to="Active",
            workflow=WORKFLOW,
            version=VERSION,
            priority=project.priority,
            task_class="real",
        )
        t = play.machine("document_creation", t, CMS, outputs["document_creation"], inputs=[])
        plan = spec.plan
        planning = play.human("article_planning", plan["article_planning"], t, OWNER, outputs, spec)
        if "reporting" in plan:
            reporting = play.human("reporting", plan["reporting"], planning.end, planning.by, outputs, spec)
            photos = play.human("photography", plan["photography"], planning.end, planning.by, outputs, spec)
            if photos.done:
                adjusted_at = play.machine(
                    "photo_adjustment",
                    photos.end,
                    photos.by,
                    outputs["photo_adjustment"],
                    inputs=["document_creation", "article_planning", "photography"],
                )
                if "copy_editing" in plan:
                    creator = OWNER if adjusted_at >= reporting.end else reporting.by
                    copy_start = max(adjusted_at, reporting.end)
                    play.human("copy_editing", plan["copy_editing"], copy_start, creator, outputs, spec)
        play.finish(spec.status)


@dataclass
class _Rows:
    tasks: list[Any] = field(default_factory=list)
    seats: list[Any] = field(default_factory=list)
    iterations: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)


@dataclass
class _Done:
    end: dt.datetime  # when the task completed, or its last change
    by: Person | str  # who made the last change (and so created the tasks that follow)
    done: bool


class _Play:
    """One bulk project's history, played step by step into model rows (not yet inserted)."""

    def __init__(self, bulk: Bulk, project: Any, out: _Rows) -> None:
        self.bulk, self.project, self.out = bulk, project, out
        self.rng = bulk.rng
        self.tasks: list[Any] = []
        self.events: list[Any] = []  # in the order played; sorted by time at the end, as the services log them
        self.last = project.created_at
        self.completed_by: Person | str = OWNER  # who completed the last task to complete

    def _later(self, t: dt.datetime, low: int = 300, high: int = 6 * 3600) -> dt.datetime:
        return t + dt.timedelta(seconds=self.rng.randrange(low, high))

    def event(self, at: dt.datetime, who: Person | str, action: str, task: Any = None, **kw: Any) -> None:
        from orchestra.models import Event

        frm, to = kw.pop("frm", ""), kw.pop("to", "")
        person = who if isinstance(who, Person) else None
        self.events.append(
            Event(
                at=at,
                actor_user_id=person.user_id if person else None,
                actor=person.username if person else str(who),
                action=action,
                project=self.project,
                task=task,
                from_status=frm,
                to_status=to,
                data=kw,
            )
        )
        self.last = max(self.last, at)

    def _task(self, step: str, at: dt.datetime, creator: Person | str) -> Any:
        from orchestra.models import Task

        task = Task(project=self.project, step_id=self.bulk.steps[step], created_at=at, updated_at=at)
        self.tasks.append(task)
        self.out.tasks.append(task)
        self.event(at, creator, "task_created", task, to="Awaiting Processing", step=step)
        return task

    def machine(
        self, step: str, at: dt.datetime, creator: Person | str, data: dict[str, Any], inputs: list[str]
    ) -> Any:
        task = self._task(step, at, creator)
        claimed, done = at + dt.timedelta(milliseconds=5), at + dt.timedelta(seconds=self.rng.randrange(1, 20))
        owner = {"attempt": 1, "owner": OWNER, "took_over": ""}
        self.event(claimed, creator, "task_claimed", task, frm="Awaiting Processing", to="Processing", **owner)
        function = {
            "document_creation": "journalism_workflow.v1.documents.create_documents",
            "photo_adjustment": "journalism_workflow.v1.adjust_photos.autoadjust_photos",
        }[step]
        self.event(
            done,
            OWNER,
            "task_completed",
            task,
            frm="Processing",
            to="Complete",
            attempt=1,
            function=function,
            inputs=inputs,
        )
        task.status, task.data, task.attempts, task.claimed_by = "Complete", data, 1, OWNER
        task.updated_at = task.completed_at = done
        return done

    def human(
        self,
        step: str,
        history: tuple[str, ...],
        at: dt.datetime,
        creator: Person | str,
        outputs: dict[str, dict[str, Any]],
        spec: Spec,
    ) -> _Done:
        from orchestra.models import Iteration, TaskAssignment

        task = self._task(step, at, creator)
        reviewed = step in ("reporting", "photography")
        entry, reviewers = self.bulk.pools[step]
        bench = self.bulk.built.bench
        if spec.bench and spec.bench[0] == step:
            other = self.rng.choice(reviewers if spec.bench[1] == 0 else entry)
            people = [bench, other] if spec.bench[1] == 0 else [other, bench]
        else:
            first = self.rng.choice(entry)
            people = [first, self.rng.choice([p for p in reviewers if p != first] or [first])]
        title = self.project.short_description
        status, t, by = "Awaiting Processing", at, creator
        seats: dict[int, Any] = {}
        current: dict[int, Any] = {}  # level -> its open iteration
        data: dict[str, Any] | None = None

        def work(level: int, final: bool) -> dict[str, Any]:
            if step == "reporting":
                return _article(title, "Final" if final else ("Draft" if level == 0 else "Edited"))
            return outputs[step]

        def start(level: int) -> None:
            it = Iteration(assignment=seats[level], worker_id=people[level].worker_id, start_datetime=t)
            current[level] = it
            self.out.iterations.append(it)

        def close(level: int, outcome: str, submitted: dict[str, Any], feedback: str = "") -> None:
            it = current.pop(level)
            it.status, it.end_datetime, it.submitted_data, it.feedback = outcome, t, submitted, feedback
            seat = seats[level]
            seat.status, seat.updated_at, seat.in_progress_task_data = "Submitted", t, submitted

        for action in history:
            t = self._later(t)
            kind, level = action[:-1], int(action[-1])
            who = people[level]
            by = who
            info = {"worker": who.username, "level": level}
            if kind == "assign":
                new = "Processing" if level == 0 else "Reviewing"
                seats[level] = TaskAssignment(
                    task=task, worker_id=who.worker_id, level=level, created_at=t, updated_at=t
                )
                self.out.seats.append(seats[level])
                start(level)
                role = "entry_level" if level == 0 else "reviewer"
                self.event(t, who, "task_assigned", task, frm=status, to=new, **info, role=role, cause="pull")
            elif kind == "return":
                new = "Post-review Processing"
                close(level, "Provided Review", work(level, False), feedback=FEEDBACK)
                self.event(t, who, "task_returned", task, frm=status, to=new, **info, feedback=FEEDBACK)
                seats[0].status, seats[0].updated_at = "Processing", t
                start(0)
            else:
                final = kind == "accept" or not reviewed
                data = work(level, final)
                close(level, "Requested Review", data)
                if kind == "resubmit":
                    new = "Reviewing"
                    seats[1].status, seats[1].updated_at = "Processing", t
                    start(1)
                else:
                    new = "Complete" if final else "Pending Review"
                name = {"submit": "task_submitted", "resubmit": "task_resubmitted", "accept": "task_accepted"}[kind]
                self.event(t, who, name, task, frm=status, to=new, **info)
            status = new
        task.status, task.data, task.updated_at = status, data, t
        if status == "Complete":
            task.completed_at = t
            self.completed_by = by
        return _Done(t, by, status == "Complete")

    def finish(self, status: str) -> None:
        project = self.project
        open_tasks = [t for t in self.tasks if t.status != "Complete"]
        t = self._later(self.last)
        if not open_tasks:
            reason = "every task is complete"
            self.event(self.last, self.completed_by, "project_completed", frm="Active", to="Completed", reason=reason)
            project.status, project.ended_at = "Completed", self.last
        elif status == "Paused":
            self.event(t, ADMIN, "project_paused", frm="Active", to="Paused")
            project.status = "Paused"
        elif status == "Aborted":
            for task in open_tasks:
                self.event(t, ADMIN, "task_aborted", task, frm=task.status, to="Aborted")
                task.status, task.updated_at = "Aborted", t
            self.event(t, ADMIN, "project_ended", frm="Active", to="Aborted")
            project.status, project.ended_at = "Aborted", t
        else:
            project.status = "Active"
        project.updated_at = self.last
        self.out.events += sorted(self.events, key=lambda e: e.at)


def _chain(events: list[Any]) -> list[Any]:
    """Each project's events (in the order played) as its audit ledger chain: seq, prev_hash and hash, as
    orchestra.events.log writes them; returns the chains' heads."""
    from orchestra.engine.ledger import GENESIS, Content, chain_hashes
    from orchestra.models import LedgerHead

    by_project: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        if event.task is not None:
            event.task_id = event.task.pk
        by_project[event.project_id].append(event)
    heads = []
    for project_id, rows in by_project.items():
        contents = [
            Content(
                e.at, e.actor_user_id, e.actor, e.action, e.project_id, e.task_id, e.from_status, e.to_status, e.data
            )
            for e in rows
        ]
        links = chain_hashes(contents, GENESIS)
        for seq, (event, (prev, own)) in enumerate(zip(rows, links, strict=True), start=1):
            event.seq, event.prev_hash, event.hash = seq, prev, own
        heads.append(LedgerHead(chain=project_id, seq=len(rows), hash=links[-1][1]))
    return heads


def build(tasks: int, assignments: int, seed: int) -> Built:
    """The whole database; returns the ground truth the pages are checked against."""
    from django.conf import settings
    from django.db import connection

    from orchestra.models import Task, TaskAssignment

    t0 = time.perf_counter()
    built = set_up()
    build_with_services(built)
    t1 = time.perf_counter()
    bulk = Bulk(built, random.Random(seed), str(settings.ORCHESTRA_URL).rstrip("/"))
    bulk.create_workers()
    seats = TaskAssignment.objects.filter(worker_id=built.bench.worker_id).count()
    if assignments < seats:
        raise SystemExit(f"--assignments must be at least {seats} (the service-made projects' seats)")
    bulk.insert(bulk.specs(tasks - Task.objects.count(), assignments - seats))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum would do soon after a load this size
    built.seconds = {"services": t1 - t0, "bulk": time.perf_counter() - t1}
    have = (Task.objects.count(), TaskAssignment.objects.filter(worker_id=built.bench.worker_id).count())
    if have != (tasks, assignments):
        raise SystemExit(f"built {have[0]} tasks and {have[1]} bench assignments, wanted {tasks} and {assignments}")
    return built


# --- what each page must show (read with the ORM, not with the pages' selectors) ------------------------


class Problems:
    """Responses that were not what the page must show; any of them fails the run."""

    def __init__(self) -> None:
        self.counts = Counter[str]()
        self.examples: list[str] = []

    def add(self, page: str, url: str, detail: str) -> None:
        self.counts[page] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{page} {url}: {detail}")


@dataclass
class Page:
    name: str
    user_id: int
    urls: list[str]
    check: Callable[[str, str], str | None]  # (url, html) -> what is wrong, or None
    path: str
    over: str
    headers: dict[str, str] = field(default_factory=dict)
    target: bool = True


def _dashboard(built: Built) -> Page:
    from orchestra.models import TaskAssignment

    counts = {b: n for b, n in built.buckets.items() if b != "aborted"}
    first = list(
        TaskAssignment.objects.filter(worker_id=built.bench.worker_id)
        .exclude(task__status="Aborted")
        .exclude(task__project__status="Aborted")
        .order_by("-task__project__priority", "-created_at", "-id")
        .values_list("task_id", flat=True)[:25]
    )

    def check(url: str, html: str) -> str | None:
        shown = {b: int(n) for b, n in re.findall(r'data-bucket="(\w+)">[^<]*<span class="badge">(\d+)</span>', html)}
        if {b: n for b, n in shown.items() if n} != counts:
            return f"bucket counts {shown}, expected {counts}"
        rows = [int(x) for x in re.findall(r'<tr data-task="(\d+)">', html)]
        return None if rows == first else f"rows {rows[:5]}... ({len(rows)}), expected {first[:5]}... ({len(first)})"

    n = sum(counts.values())
    return Page("dashboard", built.bench_user_id, ["/orchestra/app/"], check, "/orchestra/app/", f"{n} tasks, 25 rows")


def _sample_tasks(built: Built, n: int, rng: random.Random) -> list[int]:
    """Task ids of bench's seats: the service-made ones first, then bulk ones at random."""
    from orchestra.models import TaskAssignment

    seats = TaskAssignment.objects.filter(worker_id=built.bench.worker_id).order_by("task_id")
    made = set(built.service_projects)
    service: list[int] = []
    rest: list[int] = []
    for task_id, project_id in seats.values_list("task_id", "task__project_id"):
        (service if project_id in made else rest).append(task_id)
    return (service + rng.sample(rest, min(len(rest), max(0, n - len(service)))))[:n]


def _task_page(built: Built, task_ids: list[int]) -> Page:
    from django.db.models import Count

    from orchestra.models import Task

    facts = {
        t.pk: (t.step.name, t.status, t.n)
        for t in Task.objects.filter(pk__in=task_ids)
        .select_related("step")
        .annotate(n=Count("assignments__iterations"))
    }

    def check(url: str, html: str) -> str | None:
        task_id = int(url.rstrip("/").rsplit("/", 1)[1])
        name, status, iterations = facts[task_id]
        wanted = [f"› task {task_id}</p>", f"<h1>{name}</h1>", f'id="task-status">{status}</span>', 'id="task-form"']
        missing = [w for w in wanted if w not in html]
        if missing:
            return f"missing {missing}"
        shown = html.count("<li data-iteration=")
        return None if shown == iterations else f"{shown} iterations shown, the task has {iterations}"

    urls = [f"/orchestra/app/tasks/{i}/" for i in task_ids]
    return Page(
        "task page", built.bench_user_id, urls, check, "/orchestra/app/tasks/<id>/", f"{len(urls)} of bench's tasks"
    )


def _project_page(built: Built, task_ids: list[int]) -> Page:
    from orchestra.models import Event, Iteration, Project, Task

    project_ids = list(dict.fromkeys(Task.objects.filter(pk__in=task_ids).values_list("project_id", flat=True)))
    facts: dict[int, tuple[str, list[str], int, int]] = {}
    for project in Project.objects.filter(pk__in=project_ids):
        statuses = sorted(Task.objects.filter(project=project).values_list("status", flat=True))
        statuses = sorted(statuses + ["not started"] * (len(STEPS) - len(statuses)))
        events = Event.objects.filter(project=project).count()
        iterations = Iteration.objects.filter(assignment__task__project=project).count()
        facts[project.pk] = (project.status, statuses, min(events, 200), iterations)

    def check(url: str, html: str) -> str | None:
        project_id = int(url.rstrip("/").rsplit("/", 1)[1])
        status, statuses, events, iterations = facts[project_id]
        if f'id="project-status">{status}</span>' not in html:
            return f"project status is not {status!r}"
        nodes = html.count('class="dag-node')
        if nodes != len(STEPS):
            return f"{nodes} dag-node elements, expected {len(STEPS)}"
        shown = sorted(re.findall(r"data-task-status>([^<]*)</span>", html))
        if shown != statuses:
            return f"task statuses {shown}, expected {statuses}"
        timeline = len(re.findall(r'<li id="event-\d+" data-seq=', html))
        if timeline != events:
            return f"{timeline} events in the timeline, expected {events}"
        shown_its = html.count("<li data-iteration=")
        return None if shown_its == iterations else f"{shown_its} iterations, expected {iterations}"

    urls = [f"/orchestra/app/projects/{i}/" for i in project_ids]
    path = "/orchestra/app/projects/<id>/"
    return Page("project page", built.admin_user_id, urls, check, path, f"{len(urls)} projects, as {ADMIN}")


def _timer(built: Built) -> Page:
    from orchestra.models import TaskAssignment

    # Seats in the worker's hands, less those of ended projects (their tasks are Aborted: no place for time).
    seats = TaskAssignment.objects.filter(worker_id=built.bench.worker_id, status="Processing")
    held = min(100, seats.exclude(task__status="Aborted").count())

    def check(url: str, html: str) -> str | None:
        options = len(re.findall(r'<option value="\d+"', html))
        if 'id="timer-elapsed"' not in html:
            return "no timer"
        return None if options == held else f"{options} tasks to log time against, expected {held}"

    return Page(
        "timer (htmx, on every page)",
        built.bench_user_id,
        ["/orchestra/app/timer/"],
        check,
        "/orchestra/app/timer/",
        "bench's open seats",
        headers={"HX-Request": "true"},
        target=False,
    )


# --- measuring --------------------------------------------------------------------------------------------


@dataclass
class SqlCounter:
    queries: int = 0
    seconds: float = 0.0
    capture: list[str] | None = None

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        if self.capture is not None:
            self.capture.append(sql)
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start


@contextmanager
def counting() -> Iterator[SqlCounter]:
    from django.db import connection

    counter = SqlCounter()
    with connection.execute_wrapper(counter):
        yield counter


def _client(user_id: int) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return client


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def measure(page: Page, requests: int, warmup: int, problems: Problems, profile_top: int | None) -> dict[str, Any]:
    client = _client(page.user_id)
    samples: list[tuple[float, int, float, int]] = []
    profiler = cProfile.Profile() if profile_top else None
    with counting() as counter:
        for i in range(warmup + requests):
            url = page.urls[i % len(page.urls)]
            measured = i >= warmup
            q0, s0 = counter.queries, counter.seconds
            if profiler and measured:
                profiler.enable()
            start = time.perf_counter()
            response = client.get(url, headers=page.headers)
            elapsed = time.perf_counter() - start
            if profiler and measured:
                profiler.disable()
            html = response.content.decode()
            wrong = f"HTTP {response.status_code}" if response.status_code != 200 else page.check(url, html)
            if wrong:
                problems.add(page.name, url, wrong)
            if measured:
                samples.append((elapsed * 1000, counter.queries - q0, (counter.seconds - s0) * 1000, len(html)))
    ms = [s[0] for s in samples]
    queries = [s[1] for s in samples]
    result = {
        "page": page.name,
        "path": page.path,
        "over": page.over,
        "requests": len(samples),
        "median_ms": statistics.median(ms),
        "p95_ms": _p95(ms),
        "max_ms": max(ms),
        "median_queries": statistics.median(queries),
        "min_queries": min(queries),
        "max_queries": max(queries),
        "median_sql_ms": statistics.median(s[2] for s in samples),
        "median_kb": statistics.median(s[3] for s in samples) / 1024,
        "target": page.target,
    }
    if profiler and profile_top:
        from benchmarks.engine import profile_text

        result["profile_text"] = profile_text(profiler, profile_top)
    return result


def floor(requests: int) -> dict[str, Any]:
    """GET /orchestra/status/ (no login, no database): what the test Client and the middleware cost."""
    from django.test import Client

    client = Client()
    ms = []
    for i in range(requests + 5):
        start = time.perf_counter()
        response = client.get("/orchestra/status/")
        if i >= 5:
            ms.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    return {"median_ms": statistics.median(ms), "p95_ms": _p95(ms)}


def sql_of_one(page: Page) -> list[str]:
    client = _client(page.user_id)
    with counting() as counter:
        counter.capture = []
        client.get(page.urls[0], headers=page.headers)
        return counter.capture


# --- printing ---------------------------------------------------------------------------------------------

BUCKET_ORDER = ("returned", "in_progress", "pending_review", "pending_processing", "paused", "complete", "aborted")


def print_report(
    env: dict[str, Any], data: dict[str, Any], results: list[dict[str, Any]], base: dict[str, Any], broken: bool
) -> None:
    from benchmarks.engine import _fmt, table

    buckets = ", ".join(f"{b.replace('_', ' ')} {data['bench_buckets'].get(b, 0)}" for b in BUCKET_ORDER)
    print("Orchestra web pages benchmark")
    print(
        table(
            None,
            left=2,
            rows=[
                ["date", env["date"]],
                ["database", f"{env['database']} ({env['database_name']})"],
                ["python", env["python"]],
                ["django", env["django"]],
                ["cpus", env["cpus"]],
                ["platform", env["platform"]],
                ["cpu check", env["cpu_check"]],
                ["commit", env["commit"] or "?"],
                [
                    "data",
                    f"{data['tasks']:,} tasks in {data['projects']:,} journalism projects"
                    f" ({data['service_projects']} made through the services, the rest bulk-inserted),"
                    f" {data['seats']:,} assignments, {data['iterations']:,} iterations, {data['events']:,} events",
                ],
                ["bench", f"{data['assignments']} assignments: {buckets} (aborted ones are not shown)"],
                ["build", f"services {data['build_s']['services']:.1f} s, bulk {data['build_s']['bulk']:.1f} s"],
                [
                    "requests",
                    f"{data['requests']} per page after {data['warmup']} warm-up, Django test Client in this"
                    " process (force_login), no network",
                ],
            ],
        )
    )
    if any("profile_text" in r for r in results):
        print("\nNOTE: run under cProfile; times are inflated by the profiler.")
    print()
    print(
        table(
            ["page", "path", "measured over", "median ms", "p95 ms", "max ms", "queries", "SQL ms", "KB"],
            [
                [
                    r["page"],
                    r["path"],
                    r["over"],
                    _fmt(r["median_ms"]),
                    _fmt(r["p95_ms"]),
                    _fmt(r["max_ms"]),
                    f"{r['min_queries']}"
                    if r["min_queries"] == r["max_queries"]
                    else f"{r['min_queries']}-{r['max_queries']}",
                    _fmt(r["median_sql_ms"]),
                    _fmt(r["median_kb"], 1),
                ]
                for r in results
            ],
            left=3,
        )
    )
    print(
        f"floor: GET /orchestra/status/ (no login, no database) through the same Client: median"
        f" {_fmt(base['median_ms'], 3)} ms, p95 {_fmt(base['p95_ms'], 3)} ms"
    )
    print(
        "\nNotes: times are the server's (the view, middleware, session and user lookups, template rendering),"
        "\nmeasured around Client.get in this process. 'queries' are every SQL statement of a request, session"
        "\nand user included (min-max over the requests); 'SQL ms' the median time spent executing them."
    )

    def verdict(ok: bool) -> str:
        return "(broken responses)" if broken else ("met" if ok else "MISSED")

    rows_t = []
    for r in results:
        if r["target"]:
            queries, ms = r["max_queries"], r["median_ms"]
            rows_t.append(
                [f"{r['page']} <= {TARGET_QUERIES} queries", str(queries), verdict(queries <= TARGET_QUERIES)]
            )
            rows_t.append([f"{r['page']} <= {TARGET_MS:.0f} ms (median)", _fmt(ms), verdict(ms <= TARGET_MS)])
    print("\nTargets (not asserted)")
    print(table(["target", "measured", ""], rows_t))
    print(f"\nFor comparison: {REFERENCE}")


def print_problems(problems: Problems) -> None:
    total = sum(problems.counts.values())
    if not total:
        print("\nEvery response was checked: 200 and what the database says the page must show.")
        return
    print(f"\nBROKEN RESPONSES: {total} ({', '.join(f'{k} {v}' for k, v in problems.counts.items())})")
    for example in problems.examples:
        print(f"  {example}")


# --- main -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, help="tasks in the whole database")
    parser.add_argument("--assignments", type=int, default=DEFAULT_ASSIGNMENTS, help="the measured worker's seats")
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="requests per page before those")
    parser.add_argument(
        "--database-url",
        help="default: a fresh SQLite file in a temp dir; a postgresql:// database is dropped and recreated",
    )
    parser.add_argument("--seed", type=int, default=4, help="seed of the bulk data's random choices")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of one request per page")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured requests (inflates times)")
    parser.add_argument("--profile-top", type=int, default=30, help="rows of each page's profile to print")
    parser.add_argument("--keep", action="store_true", help="keep the temp ORCHESTRA_HOME (SQLite file, media)")
    args = parser.parse_args(argv)
    for name in ("tasks", "assignments", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")

    home = configure(args.database_url)
    try:
        from benchmarks.engine import environment, short_sql
        from orchestra.models import Event, Iteration, Project, TaskAssignment

        built = build(args.tasks, args.assignments, args.seed)
        env = environment()
        env.pop("executor", None)
        task_ids = _sample_tasks(built, args.requests, random.Random(args.seed))
        pages = [_dashboard(built), _task_page(built, task_ids), _project_page(built, task_ids), _timer(built)]
        problems = Problems()
        top = args.profile_top if args.profile else None
        results = [measure(page, args.requests, args.warmup, problems, top) for page in pages]
        base = floor(args.requests)
        data = {
            "tasks": args.tasks,
            "projects": Project.objects.count(),
            "service_projects": len(built.service_projects),
            "seats": TaskAssignment.objects.count(),
            "iterations": Iteration.objects.count(),
            "events": Event.objects.count(),
            "assignments": args.assignments,
            "bench_buckets": dict(built.buckets),
            "build_s": built.seconds,
            "requests": args.requests,
            "warmup": args.warmup,
        }
        print_report(env, data, results, base, broken=bool(problems.counts))
        print_problems(problems)
        if args.show_sql:
            for page in pages:
                statements = sql_of_one(page)
                print(f"\nSQL of one {page.name} request ({page.urls[0]}): {len(statements)} statements")
                for k, sql in enumerate(statements, 1):
                    print(f"  {k:2}. {short_sql(sql)}")
        for r in results:
            if "profile_text" in r:
                print(f"\n=== cProfile: {r['page']} ({r['requests']} requests), top {args.profile_top} ===")
                print(r["profile_text"])
        if args.json:
            payload = {
                "environment": env,
                "data": data,
                "pages": [{k: v for k, v in r.items() if k != "profile_text"} for r in results],
                "floor": base,
                "broken_responses": dict(problems.counts),
            }
            print("\n" + json.dumps(payload, indent=2, default=str))
        return 1 if problems.counts else 0
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"\nkept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
