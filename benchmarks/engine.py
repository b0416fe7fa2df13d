#!/usr/bin/env python
"""Engine benchmark: N projects end to end through Orchestra's public services, eager execution.

    .venv/bin/python benchmarks/engine.py [--projects N] [--database-url URL]
                                          [--workloads simple,journalism,diamond] [--json]
                                          [--show-sql] [--profile [--profile-top 40]] [--floor] [--keep]

Everything runs single-threaded in eager mode (machine steps run inline when their transaction commits),
so every SQL statement goes through one connection and is counted with `connection.execute_wrapper`.
See benchmarks/README.md for what each workload does and what the figures mean.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import http.server
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.support.functions (the no-op machine step) and tests.support.workflows

DEFAULT_PROJECTS = {"simple": 200, "journalism": 50, "diamond": 200}
WARMUP = 5

# Targets (printed next to the results, never asserted) and published reference figures.
TARGET_DIAMOND_SQLITE_PPS = 400.0
TARGET_SIMPLE_MS_PER_PROJECT = 4.0
TARGET_QUERIES_PER_TRANSITION = 10.0
REFERENCES = [
    ("B12 Orchestra, simple workflow", "45 ms per project"),
    ("B12 Orchestra, assign or submit", "~30 queries per call"),
    ("viewflow, diamond", "62 projects/s"),
    ("SpiffWorkflow + SQLite, diamond", "171 projects/s"),
    ("raw sqlite3 inserts, diamond-sized", "4,000 projects/s"),
]


# --- environment and Django setup ------------------------------------------------------------------


def reset_postgres(url: str) -> None:
    """Drop and recreate the benchmark database (connecting to the `postgres` maintenance database)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    if not dbname or dbname in ("postgres", "template0", "template1"):
        sys.exit(f"refusing to drop database {dbname!r}: give the benchmark a database of its own")
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql", "pgsql") else parts.scheme
    maintenance = urlunsplit((scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def configure(database_url: str | None, *, prefix: str = "orchestra-bench-", **env: str) -> Path:
    """Environment for orchestra.settings (plus `env`), then django.setup() and migrate. Returns
    ORCHESTRA_HOME. Processes started afterwards (benchmarks/http_api.py's gunicorn) inherit it."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(env)
    os.environ["ORCHESTRA_HOME"] = str(home)
    os.environ["ORCHESTRA_EXECUTOR"] = "eager"
    os.environ["ORCHESTRA_SECRET_KEY"] = "benchmark-only-secret-key-not-for-production-use-0123456789"
    os.environ["ORCHESTRA_DEBUG"] = "0"
    os.environ.setdefault("ORCHESTRA_LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "orchestra.settings"
    # The simple workflow crawls a page on 127.0.0.1: never send that through a proxy.
    for name in ("no_proxy", "NO_PROXY"):
        os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"]))
    if database_url:
        if urlsplit(database_url).scheme.startswith("postgres"):
            reset_postgres(database_url)
        os.environ["ORCHESTRA_DATABASE_URL"] = database_url
    else:
        os.environ["ORCHESTRA_DATABASE_URL"] = f"sqlite:///{home / 'bench.sqlite3'}"

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return home


def cpu_check() -> str:
    """This machine's speed at plain Python, measured now: the machines these figures come from are shared and
    their speed drifts (2x between sessions, 10-30% within minutes), so each report carries its own yardstick."""
    import timeit

    best = min(timeit.repeat("sum(range(10000))", number=200, repeat=5)) / 200
    return f"sum(range(10000)) in {best * 1e6:.0f} µs (best of 5; lower is faster)"


def environment() -> dict[str, Any]:
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            version = f"SQLite {cursor.fetchone()[0]}"
        elif connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            version = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            version = connection.vendor
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "database": version,
        "database_vendor": connection.vendor,
        "database_name": str(connection.settings_dict["NAME"]),
        "python": platform.python_version(),
        "django": django.get_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "cpu_check": cpu_check(),
        "commit": commit,
        "executor": "eager (single thread, one connection)",
    }


# --- measuring --------------------------------------------------------------------------------------


@dataclass
class Sample:
    ms: float  # inclusive: everything the call did, nested calls included
    queries: int
    self_ms: float  # minus the nested measured calls (eager machine steps run inside the outer call)
    self_queries: int


@dataclass
class _Frame:
    name: str
    nested_s: float = 0.0
    nested_q: int = 0


@dataclass
class Recorder:
    """Counts every SQL statement on the connection and times named calls (with nesting)."""

    queries: int = 0
    samples: dict[str, list[Sample]] = field(default_factory=lambda: defaultdict(list))
    stack: list[_Frame] = field(default_factory=list)
    capture: list[list[Any]] | None = None  # [label, sql, params] while capturing

    def sql_wrapper(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        if self.capture is not None:
            self.capture.append([self.stack[-1].name if self.stack else "(outside)", sql, params])
        return execute(sql, params, many, context)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        frame = _Frame(name)
        self.stack.append(frame)
        q0, t0 = self.queries, time.perf_counter()
        try:
            yield
        finally:
            elapsed, queries = time.perf_counter() - t0, self.queries - q0
            self.stack.pop()
            if self.stack:
                self.stack[-1].nested_s += elapsed
                self.stack[-1].nested_q += queries
            self.samples[name].append(
                Sample(elapsed * 1000, queries, (elapsed - frame.nested_s) * 1000, queries - frame.nested_q)
            )

    def call(self, name: str, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        with self.measure(name):
            return fn(**kwargs)

    def reset(self) -> None:
        self.samples = defaultdict(list)


REC = Recorder()


def instrument_executor() -> None:
    """Time the eager executor's claim and execute (claim+run+apply = one machine step)."""
    from orchestra.execution import runner

    claim, execute = runner.machine_claim, runner.execute

    def timed_claim(**kwargs: Any) -> Any:
        start = len(REC.capture) if REC.capture is not None else 0
        with REC.measure("_claim"):
            claims = claim(**kwargs)
        sample = REC.samples["_claim"].pop()
        REC.samples["machine_claim (hit)" if claims else "drain: final empty claim"].append(sample)
        if REC.capture is not None:
            label = "machine step: claim" if claims else "drain: final empty claim"
            for entry in REC.capture[start:]:
                entry[0] = label
        return claims

    def timed_execute(claim_: Any) -> None:
        with REC.measure("machine step: run_spec + function + apply"):
            execute(claim_)

    runner.machine_claim = timed_claim
    runner.execute = timed_execute


def instrument_step_functions() -> None:
    """Time the machine steps' own code (before any workflow is loaded, since resolved functions are cached)."""
    import importlib

    for path in (
        "tests.support.functions.noop",
        "simple_workflow.v1.crawl.crawl_page",
        "journalism_workflow.v1.documents.create_documents",
        "journalism_workflow.v1.adjust_photos.autoadjust_photos",
    ):
        module_name, attr = path.rsplit(".", 1)
        module = importlib.import_module(module_name)
        original = getattr(module, attr)

        def timed(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with REC.measure("step function (inside machine step)"):
                return __original(*args, **kwargs)

        setattr(module, attr, timed)


def machine_steps(samples: dict[str, list[Sample]]) -> list[Sample]:
    """Pair each successful claim with the execute that follows it (drain claims one at a time)."""
    claims = samples.get("machine_claim (hit)", [])
    runs = samples.get("machine step: run_spec + function + apply", [])
    return [
        Sample(c.ms + r.ms, c.queries + r.queries, c.self_ms + r.self_ms, c.self_queries + r.self_queries)
        for c, r in zip(claims, runs, strict=False)
    ]


# --- workloads --------------------------------------------------------------------------------------


class LocalPage:
    """A small HTML page with three <img> tags, served from 127.0.0.1 for the simple workflow's crawl."""

    BODY = (
        b"<!doctype html><html><head><title>bench gallery</title></head><body>"
        b'<img src="/images/one.png" alt="1"><img src="/images/two.png" alt="2">'
        b'<img src="/images/three.png" alt="3"></body></html>'
    )

    def __init__(self) -> None:
        body = self.BODY

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="bench-http", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gallery/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Workload:
    name = ""
    description = ""

    def setup(self, home: Path) -> None:
        raise NotImplementedError

    def run_one(self, i: int) -> int:
        """One project end to end; returns its id."""
        raise NotImplementedError

    def teardown(self) -> None:
        pass


class Simple(Workload):
    name = "simple"
    description = "B12 simple_workflow: crawl (machine, HTTP GET of a local page) -> rate (human, no review)"

    def setup(self, home: Path) -> None:
        from orchestra.services.workers import worker_get
        from orchestra.services.workflows import workflow_load, workflow_load_sample_data

        self.page = LocalPage()
        workflow_load(source="simple_workflow")
        workflow_load_sample_data(workflow_slug="simple_workflow", version_slug="v1")
        self.demo = worker_get("demo")

    def run_one(self, i: int) -> int:
        from orchestra.services.projects import project_create
        from orchestra.services.tasks import task_pull, task_submit

        project = REC.call(
            "project_create",
            project_create,
            workflow_slug="simple_workflow",
            version_slug="v1",
            description=f"bench simple {i}",
            project_data={"url": self.page.url},
        )
        assignment = REC.call("task_pull", task_pull, worker=self.demo, role="entry_level")
        REC.call("task_submit", task_submit, task_id=assignment.task_id, worker=self.demo, data={"rating": 5})
        return project.pk

    def teardown(self) -> None:
        self.page.close()


def _article(text: str) -> dict[str, Any]:
    """What the reporter's form asks for: the article (50 characters or more) and at least one source."""
    return {
        "article": f"{text}: the mayor's race is the most expensive in the city's history.",
        "sources": [{"name": "A"}],
    }


class Journalism(Workload):
    name = "journalism"
    description = (
        "B12 journalism_workflow, six sample users, one return on each reviewed step (a 64x48 photo is"
        " uploaded, which photo_adjustment greyscales)"
    )

    def setup(self, home: Path) -> None:
        from PIL import Image

        from orchestra.services.workers import worker_get
        from orchestra.services.workflows import workflow_load, workflow_load_sample_data

        workflow_load(source="journalism_workflow")
        workflow_load_sample_data(workflow_slug="journalism", version_slug="v1")
        self.w = {
            key: worker_get(f"journalism-{key}")
            for key in ("editor", "reporter-1", "reporter-2", "photographer-1", "photographer-2", "copy-editor")
        }
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="PNG")
        self.png = buffer.getvalue()

    def _reviewed(self, entry: str, reviewer: str, first: dict[str, Any], final: dict[str, Any]) -> None:
        from orchestra.services.tasks import task_pull, task_return, task_submit

        worker, boss = self.w[entry], self.w[reviewer]
        draft = REC.call("task_pull", task_pull, worker=worker, role="entry_level")
        REC.call("task_submit", task_submit, task_id=draft.task_id, worker=worker, data=first)
        review = REC.call("task_pull", task_pull, worker=boss, role="reviewer")
        assert review.task_id == draft.task_id, (review.task_id, draft.task_id)
        REC.call("task_return", task_return, task_id=draft.task_id, worker=boss, data=first, feedback="One more pass")
        REC.call("task_submit", task_submit, task_id=draft.task_id, worker=worker, data=final)
        REC.call("task_submit", task_submit, task_id=draft.task_id, worker=boss, data=final, command="accept")

    def run_one(self, i: int) -> int:
        from orchestra import files
        from orchestra.services.projects import project_create
        from orchestra.services.tasks import task_pull, task_submit

        project = REC.call(
            "project_create",
            project_create,
            workflow_slug="journalism",
            version_slug="v1",
            description=f"bench journalism {i}",
            priority=5,
            project_data={"article_title": f"Story {i}"},
            actor="newsroom-cms",
        )
        editor = self.w["editor"]
        plan = REC.call("task_pull", task_pull, worker=editor, role="entry_level")
        story = {"story": "s", "angle": "a", "section": "news"}
        REC.call("task_submit", task_submit, task_id=plan.task_id, worker=editor, data=story)
        self._reviewed("reporter-1", "reporter-2", _article("First draft"), _article("Final"))
        # The photographer's upload: one small picture in the project's raw photos folder (what the task
        # form would store), which photo_adjustment then greyscales.
        photo = f"journalism/project-{project.pk}/raw_photos/photo.png"
        files.save_file(photo, self.png)
        photos = {"photos": [{"name": photo, "url": files.file_url(photo)}]}
        self._reviewed("photographer-1", "photographer-2", photos, photos)  # then photo_adjustment runs
        copy = self.w["copy-editor"]
        task = REC.call("task_pull", task_pull, worker=copy, role="entry_level")
        adjusted = f"journalism/project-{project.pk}/adjusted_photos/photo.png"
        final = {"headline": "H", "captions": [{"name": adjusted, "caption": "c"}], "ready_to_publish": True}
        REC.call("task_submit", task_submit, task_id=task.task_id, worker=copy, data=final)
        return project.pk


class Diamond(Workload):
    name = "diamond"
    description = "4 no-op machine steps A -> (B, C) -> D, then human E (no review), one worker"

    def setup(self, home: Path) -> None:
        from orchestra.services.workers import worker_create, worker_get
        from orchestra.services.workflows import workflow_load
        from tests.support.workflows import NO_REVIEW, human, machine, write_workflow

        steps = [
            machine("a"),
            machine("b", "a"),
            machine("c", "a"),
            machine("d", "b", "c"),
            human("e", "d", review=NO_REVIEW),
        ]
        workflow_load(source=write_workflow(home / "workflows", steps, slug="diamond"))
        worker_create(username="bench-worker")
        self.worker = worker_get("bench-worker")

    def run_one(self, i: int) -> int:
        from orchestra.services.projects import project_create
        from orchestra.services.tasks import task_pull, task_submit

        project = REC.call("project_create", project_create, workflow_slug="diamond", version_slug="v1")
        assignment = REC.call("task_pull", task_pull, worker=self.worker, role="entry_level")
        REC.call("task_submit", task_submit, task_id=assignment.task_id, worker=self.worker, data={"done": True})
        return project.pk


WORKLOADS: dict[str, type[Workload]] = {"simple": Simple, "journalism": Journalism, "diamond": Diamond}


# --- running ----------------------------------------------------------------------------------------


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def verify_completed(workload: str, ids: list[int]) -> None:
    from orchestra.models import Project, Task

    bad = []
    for chunk in _chunks(ids):
        bad += list(Project.objects.filter(pk__in=chunk).exclude(status="Completed").values_list("pk", "status"))
    if bad:
        lines = [f"ERROR: {workload}: {len(bad)} of {len(ids)} projects did not end Completed:"]
        for pk, status in bad[:10]:
            tasks = ", ".join(
                f"{slug}={status}"
                for slug, status in Task.objects.filter(project_id=pk).values_list("step__slug", "status")
            )
            lines.append(f"  project {pk}: {status} (tasks: {tasks})")
        print("\n".join(lines), file=sys.stderr)
    assert not bad, f"{workload}: {len(bad)} projects did not end Completed"


def count_transitions(ids: list[int]) -> int:
    from django.db.models import F

    from orchestra.models import Event

    return sum(
        Event.objects.filter(project_id__in=chunk).exclude(from_status=F("to_status")).count() for chunk in _chunks(ids)
    )


def summarize(samples: list[Sample], attr: str = "ms", q: str = "queries") -> dict[str, Any]:
    ms = sorted(getattr(s, attr) for s in samples)
    qs = [getattr(s, q) for s in samples]
    return {
        "calls": len(samples),
        "median_ms": statistics.median(ms),
        "p90_ms": ms[min(len(ms) - 1, int(len(ms) * 0.9))],
        "median_queries": statistics.median(qs),
        "min_queries": min(qs),
        "max_queries": max(qs),
    }


def per_call(samples: dict[str, list[Sample]]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}

    def add(label: str, items: list[Sample], self_only: bool = False) -> None:
        if items:
            rows[label] = summarize(items, "self_ms", "self_queries") if self_only else summarize(items)

    add("project_create (incl. eager machine steps)", samples.get("project_create", []))
    add("project_create (its own transaction)", samples.get("project_create", []), self_only=True)
    add("machine step (claim+run+apply)", machine_steps(samples))
    add("  claim", samples.get("machine_claim (hit)", []))
    add("  run_spec + function + apply", samples.get("machine step: run_spec + function + apply", []))
    add("  step function alone", samples.get("step function (inside machine step)", []))
    add("drain: final empty claim", samples.get("drain: final empty claim", []))
    add("task_pull (assign)", samples.get("task_pull", []))
    submit = samples.get("task_submit", [])
    add("task_submit (its own transaction)", submit, self_only=True)
    if any(s.queries != s.self_queries for s in submit):
        add("task_submit (incl. eager machine steps)", submit)
    add("task_return", samples.get("task_return", []))
    return rows


def run_workload(
    name: str, n: int, home: Path, profile: bool, profile_top: int, show_sql: bool, floor: bool = False
) -> dict[str, Any]:
    from django.db import connection

    workload = WORKLOADS[name]()
    workload.setup(home)
    try:
        with connection.execute_wrapper(REC.sql_wrapper):
            for i in range(WARMUP):
                workload.run_one(-1 - i)
            REC.reset()
            profiler = cProfile.Profile() if profile else None
            q0 = REC.queries
            ids: list[int] = []
            if profiler:
                profiler.enable()
            start = time.perf_counter()
            for i in range(n):
                ids.append(workload.run_one(i))
            wall = time.perf_counter() - start
            if profiler:
                profiler.disable()
            queries = REC.queries - q0
            samples = REC.samples
            REC.reset()
        verify_completed(name, ids)
        transitions = count_transitions(ids)
        sql_listing = capture_one(workload) if show_sql else None
        floor_figures = sqlite_floor(workload, n, home) if floor else None
    finally:
        workload.teardown()

    step_ms = sum(s.ms for s in samples.get("step function (inside machine step)", []))
    result = {
        "workload": name,
        "description": workload.description,
        "projects": n,
        "wall_s": wall,
        "projects_per_s": n / wall,
        "ms_per_project": wall * 1000 / n,
        # The same without the machine steps' own code (the simple workflow's HTTP fetch, journalism's files).
        "engine_ms_per_project": (wall * 1000 - step_ms) / n,
        "transitions": transitions,
        "transitions_per_project": transitions / n,
        "ms_per_transition": wall * 1000 / transitions,
        "queries": queries,
        "queries_per_project": queries / n,
        "queries_per_transition": queries / transitions,
        "per_call": per_call(samples),
        "profiled": profile,
    }
    if profiler:
        result["profile_text"] = profile_text(profiler, profile_top)
    if sql_listing is not None:
        result["sql_listing"] = sql_listing
    if floor_figures is not None:
        result["floor"] = floor_figures
    return result


def capture_one(workload: Workload) -> list[list[Any]]:
    """Run one more project with every statement recorded and labelled by the service call issuing it."""
    from django.db import connection

    REC.capture = []
    try:
        with connection.execute_wrapper(REC.sql_wrapper):
            pk = workload.run_one(10**6)
        verify_completed(workload.name, [pk])
        return REC.capture
    finally:
        REC.capture = None
        REC.reset()


FLOOR_REPLAYS = 3


def sqlite_floor(workload: Workload, n: int, home: Path) -> dict[str, Any]:
    """What SQLite itself needs for this work: n more projects run with every statement and commit recorded,
    then replayed through a bare sqlite3 connection (same pragmas, same statements, parameters and commits,
    nothing around them but the loop) on copies of the database as it was before them. The median of
    FLOOR_REPLAYS replays. A yardstick that moves with the machine: 'orchestra at x% of it' compares across
    machines where projects/s cannot."""
    from django.db import connection

    from benchmarks import floor

    make_copy = floor.snapshot("floor")
    with floor.recording() as rec:
        ids = [workload.run_one(2 * 10**6 + i) for i in range(n)]
    verify_completed(workload.name, ids)

    init = str(connection.settings_dict.get("OPTIONS", {}).get("init_command", ""))
    runs = []
    for k in range(FLOOR_REPLAYS):
        copy = make_copy(k)
        replayed = floor.replay(copy, rec, init)
        floor.drop(copy)
        runs.append((sum(replayed.seconds), replayed.commit_seconds or 0.0))
    floor.drop_snapshot("floor")
    elapsed, in_commit = sorted(runs)[len(runs) // 2]
    return {
        "projects": n,
        "statements_per_project": rec.statements / n,
        "commits_per_project": rec.commits / n,
        "projects_per_s": n / elapsed,
        "ms_per_project": elapsed * 1000 / n,
        "commit_ms_per_project": in_commit * 1000 / n,
        "replays_ms_per_project": [round(e * 1000 / n, 3) for e, _ in runs],
    }


def profile_text(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    if os.environ.get("BENCH_CALLERS"):
        stats.print_callers(os.environ["BENCH_CALLERS"])
    out.write("\n--- by own time (tottime) ---\n")
    stats.sort_stats("tottime").print_stats(max(top // 2, 10))
    text = out.getvalue()
    # Shorten site-packages / repo paths so the listing fits a terminal.
    text = re.sub(r"\S*/site-packages/", "", text)
    return text.replace(str(REPO) + "/", "")


# --- printing ---------------------------------------------------------------------------------------


def table(headers: list[str] | None, rows: list[list[Any]], left: int = 1) -> str:
    """Aligned columns: the first `left` columns left-aligned, the rest right-aligned (numbers)."""
    cells = ([[str(h) for h in headers]] if headers else []) + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = []
    for k, row in enumerate(cells):
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if k == 0 and headers:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _q(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def print_report(env: dict[str, Any], results: list[dict[str, Any]]) -> None:
    print("Orchestra engine benchmark")
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
                ["executor", env["executor"]],
                ["warm-up", f"{WARMUP} projects per workload, excluded"],
            ],
        )
    )
    if any(r["profiled"] for r in results):
        print("\nNOTE: run under cProfile; times are inflated by the profiler.")
    print()
    print(
        table(
            [
                "workload",
                "projects",
                "wall s",
                "projects/s",
                "ms/project",
                "engine ms/proj",
                "transitions/proj",
                "ms/transition",
                "queries/proj",
                "queries/transition",
            ],
            [
                [
                    r["workload"],
                    r["projects"],
                    _fmt(r["wall_s"], 3),
                    _fmt(r["projects_per_s"], 1),
                    _fmt(r["ms_per_project"]),
                    _fmt(r["engine_ms_per_project"]),
                    _fmt(r["transitions_per_project"], 1),
                    _fmt(r["ms_per_transition"], 3),
                    _fmt(r["queries_per_project"], 1),
                    _fmt(r["queries_per_transition"], 2),
                ]
                for r in results
            ],
        )
    )
    for r in results:
        print(f"\n{r['workload']}: {r['description']}")
        print(
            table(
                ["per service call", "calls", "median ms", "p90 ms", "median queries", "min-max queries"],
                [
                    [
                        label,
                        s["calls"],
                        _fmt(s["median_ms"], 3),
                        _fmt(s["p90_ms"], 3),
                        _q(s["median_queries"]),
                        f"{s['min_queries']}-{s['max_queries']}",
                    ]
                    for label, s in r["per_call"].items()
                ],
            )
        )
    floors = [r for r in results if "floor" in r]
    if floors:
        print("\nSQLite floor: the same statements and commits through a bare sqlite3 connection (--floor)")
        print(
            table(
                [
                    "workload",
                    "statements/proj",
                    "commits/proj",
                    "floor projects/s",
                    "floor ms/proj",
                    "of it in COMMIT",
                    "orchestra at",
                ],
                [
                    [
                        r["workload"],
                        _fmt(r["floor"]["statements_per_project"], 1),
                        _fmt(r["floor"]["commits_per_project"], 1),
                        _fmt(r["floor"]["projects_per_s"], 1),
                        _fmt(r["floor"]["ms_per_project"], 3),
                        _fmt(r["floor"]["commit_ms_per_project"], 3),
                        f"{r['floor']['ms_per_project'] / r['engine_ms_per_project'] * 100:.0f}% of its speed",
                    ]
                    for r in floors
                ],
            )
        )
    print(
        "\nNotes: queries include BEGIN on SQLite, which runs through the cursor; COMMIT and PostgreSQL's"
        "\nimplicit BEGIN do not. A transition is an Event whose from_status != to_status. 'engine ms/proj'"
        "\nleaves out the time spent inside the machine steps' own functions (the simple workflow's HTTP fetch"
        "\nfrom the local ThreadingHTTPServer, journalism's file writes). '(its own transaction)' rows leave out"
        "\nthe machine steps that run eagerly when the call commits; those are the 'machine step' rows."
    )
    print_targets(env, results)


def print_targets(env: dict[str, Any], results: list[dict[str, Any]]) -> None:
    by_name = {r["workload"]: r for r in results}
    rows = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    if "diamond" in by_name:
        pps = by_name["diamond"]["projects_per_s"]
        note = "" if env["database_vendor"] == "sqlite" else " (target is for SQLite)"
        rows.append(["diamond >= 400 projects/s on SQLite" + note, _fmt(pps, 1), verdict(pps >= 400)])
    if "simple" in by_name:
        ms = by_name["simple"]["ms_per_project"]
        rows.append(["simple <= 4 ms per project", _fmt(ms, 2), verdict(ms <= TARGET_SIMPLE_MS_PER_PROJECT)])
    for r in results:
        qpt = r["queries_per_transition"]
        rows.append([f"{r['workload']} <= 10 queries per transition", _fmt(qpt, 2), verdict(qpt <= 10)])
    print("\nTargets (not asserted)")
    print(table(["target", "measured", ""], rows))
    print("\nReference figures (published / measured elsewhere, for comparison)")
    print(table(["system", "figure"], [list(x) for x in REFERENCES], left=2))


_SELECT_LIST = re.compile(r"^SELECT (?P<cols>.+?) FROM ", re.S)


def short_sql(sql: str) -> str:
    """Collapse long column lists so the WHERE / ORDER BY / JOIN parts stay readable."""
    sql = " ".join(sql.split())

    def collapse(match: re.Match[str]) -> str:
        cols = match.group("cols")
        if len(cols) <= 90:
            return match.group(0)
        return f"SELECT <{cols.count(', ') + 1} columns> FROM "

    sql = _SELECT_LIST.sub(collapse, sql, count=1)
    sql = re.sub(
        r"^(INSERT INTO \S+) \((.{90,}?)\) VALUES",
        lambda m: f"{m.group(1)} (<{m.group(2).count(',') + 1} columns>) VALUES",
        sql,
    )
    return sql


def print_sql(result: dict[str, Any]) -> None:
    listing = result["sql_listing"]
    print(f"\nSQL of one {result['workload']} project, grouped by the call that issued it")
    groups: list[tuple[str, list[list[Any]]]] = []
    for entry in listing:
        if groups and groups[-1][0] == entry[0]:
            groups[-1][1].append(entry)
        else:
            groups.append((entry[0], [entry]))
    for label, entries in groups:
        print(f"\n[{label}] {len(entries)} statements")
        for k, (_, sql, params) in enumerate(entries, 1):
            text = short_sql(sql)
            shown = repr(tuple(params))[:160] if params else ""
            print(f"  {k:2}. {text}" + (f"    -- params {shown}" if shown else ""))


# --- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--projects", type=int, help="projects per workload (default: simple 200, journalism 50, diamond 200)"
    )
    parser.add_argument(
        "--database-url",
        help="default: a fresh SQLite file in a temp dir; a postgresql:// database is dropped and recreated",
    )
    parser.add_argument("--workloads", default="simple,journalism,diamond", help="comma separated")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of one extra project per workload")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured runs (inflates times)")
    parser.add_argument("--profile-top", type=int, default=40, help="rows of the profile to print")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="SQLite: also replay the workload's statements and commits through a bare sqlite3 connection",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp ORCHESTRA_HOME (SQLite file, media)")
    args = parser.parse_args(argv)

    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown or not names:
        parser.error(f"--workloads: unknown {unknown}; choose from {', '.join(WORKLOADS)}")
    if args.projects is not None and args.projects < 1:
        parser.error("--projects must be at least 1")
    if args.floor and args.database_url and not args.database_url.startswith("sqlite"):
        parser.error("--floor replays through sqlite3: it needs the SQLite database (leave out --database-url)")

    home = configure(args.database_url)
    try:
        instrument_step_functions()
        instrument_executor()
        env = environment()
        results = []
        for name in names:
            n = args.projects or DEFAULT_PROJECTS[name]
            results.append(run_workload(name, n, home, args.profile, args.profile_top, args.show_sql, args.floor))
        print_report(env, results)
        for r in results:
            if "sql_listing" in r:
                print_sql(r)
        for r in results:
            if "profile_text" in r:
                print(f"\n=== cProfile: {r['workload']} ({r['projects']} projects), top {args.profile_top} ===")
                print(r["profile_text"])
        if args.json:
            payload = {
                "environment": env,
                "results": [{k: v for k, v in r.items() if k not in ("profile_text", "sql_listing")} for r in results],
            }
            print("\n" + json.dumps(payload, indent=2, default=str))
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"\nkept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
