#!/usr/bin/env python
"""HTTP benchmark: Orchestra's API under gunicorn, with signed client requests and a worker's personal token.

    .venv/bin/python benchmarks/http_api.py [--database-url URL] [--threads 8] [--requests 2000] [--warmup 50]
                                        [--rounds 50] [--workflow human|simple] [--workers 2] [--floor] [--json]
                                        [--keep]

The script sets up a fresh ORCHESTRA_HOME (SQLite file, or the PostgreSQL database given with --database-url,
dropped and recreated), migrates, loads the benchmark workflow, creates an API key and a worker with a personal
token, then starts `gunicorn orchestra.wsgi:application` (sync workers, eager executor) on a free port of
127.0.0.1 and measures, from this process:

1. create_project throughput: N signed requests from T client threads (one session each), with each client
   (`requests`, and the standard library's http.client; --client picks one);
2. a full round trip, one request after the other: create_project, project_information, new task (worker
   API), submit (worker API), project_information (the project must be Completed). Before it, the database
   runs ANALYZE, as autovacuum would soon after the load of step 1;
3. with --floor, what that work needs with none of Orchestra's own: the same load of signed requests to a view
   that reads no database, and the round trip's and create_project's statements replayed through the bare
   database driver (benchmarks/floor.py).

Every response is checked; failed requests are reported and make the script exit non-zero.
See benchmarks/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for `benchmarks.engine` when run as a script
    sys.path.insert(0, str(REPO))

DEFAULT_THREADS = 8
DEFAULT_REQUESTS = 2000
DEFAULT_WARMUP = 50
DEFAULT_ROUNDS = 50
WARMUP_ROUNDS = 5
STATUS_REQUESTS = 200
DEFAULT_WORKERS = 2
CLIENTS = ("requests", "http.client")
REQUEST_TIMEOUT = 60.0
STARTUP_TIMEOUT = 60.0

CLIENT_API = "/orchestra/api/project/"
WORKER_API = "/orchestra/api/interface/"

# Targets (printed next to the results, never asserted) and a published reference figure.
TARGET_CREATE_RPS = 500.0
TARGET_ROUND_TRIP_MS = 14.0
REFERENCE = "B12 Orchestra round trip: 142 ms on this kind of machine"

HUMAN_WORKFLOW = "http_bench"
HUMAN_STEP = {
    "slug": "rate",
    "name": "Rate",
    "description": "Rate something (a human step with no review: no machine code runs)",
    "is_human": True,
    "creation_depends_on": [],
    "required_certifications": [],
    "review_policy": {"policy": "no_review"},
}
WORKFLOWS = {
    "human": (HUMAN_WORKFLOW, "v1", f"{HUMAN_WORKFLOW} v1: one human step 'rate' (no review), no machine code runs"),
    "simple": (
        "simple_workflow",
        "v1",
        "B12 simple_workflow v1: machine step 'crawl' (HTTP GET of a 3-image page from a local ThreadingHTTPServer,"
        " run eagerly inside the create_project request) -> human step 'rate' (no review)",
    ),
}


# --- environment and Django setup (benchmarks/engine.py's) ---------------------------------------------


def configure(database_url: str | None) -> Path:
    """benchmarks/engine.py's setup, with a quieter log and the hosts gunicorn is reached at."""
    from benchmarks.engine import configure as configure_engine

    return configure_engine(
        database_url,
        prefix="orchestra-http-bench-",
        ORCHESTRA_LOG_LEVEL="WARNING",
        ORCHESTRA_ALLOWED_HOSTS="127.0.0.1,localhost",
    )


def write_human_workflow(home: Path) -> Path:
    """The default workflow: one human step, in B12's on-disk format (workflow.json + v1/version.json)."""
    directory = home / "workflows" / HUMAN_WORKFLOW
    (directory / "v1").mkdir(parents=True)
    (directory / "workflow.json").write_text(
        json.dumps(
            {
                "slug": HUMAN_WORKFLOW,
                "name": "HTTP benchmark",
                "description": "One human step, so the HTTP benchmark runs no machine code",
                "certifications": [],
            }
        )
    )
    (directory / "v1" / "version.json").write_text(
        json.dumps({"slug": "v1", "name": "HTTP benchmark v1", "description": "rate", "steps": [HUMAN_STEP]})
    )
    return directory


@dataclass
class Credentials:
    key_id: str
    secret: str
    token: str


def set_up_data(home: Path, workflow: str) -> Credentials:
    from orchestra.services.access import apikey_create, token_create
    from orchestra.services.workers import worker_create
    from orchestra.services.workflows import workflow_load

    workflow_load(source=write_human_workflow(home) if workflow == "human" else "simple_workflow")
    issued = apikey_create(name="http-bench")
    worker_create(username="bench", password="bench")
    _, raw = token_create(user="bench", name="http-bench")
    return Credentials(issued.key.key_id, issued.secret, raw)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- gunicorn --------------------------------------------------------------------------------------------


class Server:
    """`gunicorn orchestra.wsgi:application` in a session of its own, its output in <home>/gunicorn.log."""

    def __init__(self, home: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = home / "gunicorn.log"
        env = dict(os.environ)
        env["ORCHESTRA_URL"] = self.url
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "orchestra.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
            "--graceful-timeout",
            "10",
        ]  # no --access-logfile: access logging stays off
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + STARTUP_TIMEOUT
        with requests.Session() as session:
            session.trust_env = False
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    response = session.get(self.url + "/orchestra/status/", timeout=2)
                    if response.status_code == 200 and response.text == "OK":
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer within {STARTUP_TIMEOUT:.0f} s:\n{self.log_tail()}")
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers), wait; SIGKILL the session's group if it hangs."""
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log.close()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the worker processes have used so far, from Linux's /proc; NaN elsewhere."""
        try:
            pid = self.process.pid
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            total = 0
            for child in children:
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat
            return total / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def problems(self) -> list[str]:
        """Lines of the server's log that say something went wrong (tracebacks, errors, worker timeouts)."""
        marks = ("Traceback", " ERROR ", "[ERROR]", "[CRITICAL]", "WORKER TIMEOUT", "Exception")
        return [line for line in self.log_text().splitlines() if any(m in line for m in marks)]


# --- HTTP client -----------------------------------------------------------------------------------------


@dataclass
class Failures:
    """Failed requests (wrong status, not the expected JSON, a connection error), counted per request kind."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, detail: str) -> None:
        with self.lock:
            self.counts[what] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{what}: {detail}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


Payload = dict[str, Any]


class Reply:
    """What the benchmark reads of a response."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.text = body.decode()

    def json(self) -> Any:
        return json.loads(self.text)


class StdlibSession:
    """What Api needs of a requests.Session, with the standard library's http.client (the layer under
    orchestra.client's urllib): a connection per request, as gunicorn's sync workers close each one anyway."""

    def __enter__(self) -> StdlibSession:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def post(self, url: str, data: bytes, headers: dict[str, str], timeout: float) -> Reply:
        return self._request("POST", url, data, headers, timeout)

    def get(self, url: str, headers: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT) -> Reply:
        return self._request("GET", url, None, headers or {}, timeout)

    @staticmethod
    def _request(method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float) -> Reply:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
            response = conn.getresponse()
            return Reply(response.status, response.read())
        finally:
            conn.close()


# requests' exceptions are OSErrors too
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


class Api:
    """Orchestra's client API (signed with sign_cavage: a fresh X-Request-Id each time, so no request is ever
    mistaken for a replay) and worker API (`Authorization: Token …`), every response checked."""

    def __init__(self, url: str, credentials: Credentials, failures: Failures, client: str = "requests") -> None:
        self.url = url
        self.host = urlsplit(url).netloc
        self.credentials = credentials
        self.failures = failures
        self.client_kind = client

    def session(self) -> Any:
        """A requests.Session (`requests`), or the same calls made with the standard library (`http.client`)."""
        if self.client_kind == "http.client":
            return StdlibSession()
        import requests

        session = requests.Session()
        session.trust_env = False  # 127.0.0.1 only: no proxy, no .netrc
        return session

    def _post(self, session: Any, what: str, path: str, body: bytes, headers: dict[str, str]) -> Payload | None:
        try:
            response = session.post(self.url + path, data=body, headers=headers, timeout=REQUEST_TIMEOUT)
        except CONNECTION_ERRORS as exc:
            self.failures.add(what, f"{type(exc).__name__}: {exc}")
            return None
        if response.status_code != 200:
            self.failures.add(what, f"HTTP {response.status_code}: {response.text[:400]}")
            return None
        try:
            payload = response.json()
        except ValueError:
            self.failures.add(what, f"HTTP 200 but not JSON: {response.text[:400]!r}")
            return None
        if not isinstance(payload, dict):
            self.failures.add(what, f"HTTP 200 but not a JSON object: {response.text[:400]}")
            return None
        return payload

    def client(self, session: Any, endpoint: str, data: Payload) -> Payload | None:
        from orchestra.api.signatures import sign_cavage

        path = f"{CLIENT_API}{endpoint}/"
        body = json.dumps(data).encode()
        headers = {"Host": self.host, "Content-Type": "application/json", "Accept": "application/json"}
        c = self.credentials
        headers.update(sign_cavage("POST", path, headers, body, c.key_id, c.secret, now=time.time()))
        return self._post(session, endpoint, path, body, headers)

    def worker(self, session: Any, endpoint: str, data: Payload | None = None) -> Payload | None:
        body = b"" if data is None else json.dumps(data).encode()
        headers = {
            "Authorization": f"Token {self.credentials.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        return self._post(session, endpoint.split("/")[0], f"{WORKER_API}{endpoint}/", body, headers)

    def expect(self, what: str, payload: Payload | None, ok: Callable[[Payload], bool], wanted: str) -> bool:
        if payload is None:
            return False  # counted already
        try:
            good = ok(payload)
        except (KeyError, TypeError, AttributeError):
            good = False
        if not good:
            self.failures.add(what, f"unexpected JSON (wanted {wanted}): {json.dumps(payload)[:400]}")
        return good

    # The calls the benchmark makes ------------------------------------------------------------------------

    def create_project(self, session: Any, workflow: str, description: str, priority: int = 0) -> int | None:
        slug, version, _ = WORKFLOWS[workflow]
        data: Payload = {
            "workflow_slug": slug,
            "workflow_version_slug": version,
            "description": description,
            "priority": priority,
            "project_data": PROJECT_DATA.get(workflow, {}),
        }
        payload = self.client(session, "create_project", data)
        if self.expect("create_project", payload, lambda p: isinstance(p["project_id"], int), "a project_id"):
            return int(payload["project_id"])  # type: ignore[index]
        return None

    def project_information(self, session: Any, project_id: int, status: str) -> Payload | None:
        payload = self.client(session, "project_information", {"project_id": project_id})
        ok = self.expect(
            "project_information",
            payload,
            lambda p: (
                p["project"]["id"] == project_id
                and p["project"]["status"] == status
                and isinstance(p["tasks"]["rate"]["id"], int)
            ),
            f"project {project_id}, status {status!r}, a 'rate' task",
        )
        return payload if ok else None

    def new_task(self, session: Any, expected_task: int) -> int | None:
        payload = self.worker(session, "new_task_assignment/entry_level")
        if self.expect(
            "new_task_assignment",
            payload,
            lambda p: p["task_id"] == expected_task and isinstance(p["assignment_id"], int),
            f"task {expected_task} (the new project's) and an assignment_id",
        ):
            return expected_task
        return None

    def submit(self, session: Any, task_id: int) -> bool:
        data = {"task_id": task_id, "task_data": {"rating": "5"}, "command_type": "submit"}
        payload = self.worker(session, "submit_task_assignment", data)
        return self.expect(
            "submit_task_assignment",
            payload,
            lambda p: p["task_id"] == task_id and p["status"] == "Complete",
            f"task {task_id}, status 'Complete'",
        )


PROJECT_DATA: dict[str, Payload] = {}  # the simple workflow's {"url": <local page>}, set in main


# --- measuring -------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has been busy (every process: client, server, database), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return float("nan")


class CpuMeter:
    """CPU seconds used by the server's workers, by this process (the client) and by the whole machine (with the
    database's processes) between start and stop."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.server_s = self.client_s = self.machine_s = 0.0

    def __enter__(self) -> CpuMeter:
        self._server0, self._client0 = self.server.cpu_seconds(), time.process_time()
        self._machine0 = machine_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server_s = self.server.cpu_seconds() - self._server0
        self.client_s = time.process_time() - self._client0
        self.machine_s = machine_cpu_seconds() - self._machine0

    def per_request(self, requests: int) -> dict[str, float]:
        return {
            "server_cpu_ms_per_request": self.server_s * 1000 / requests,
            "client_cpu_ms_per_request": self.client_s * 1000 / requests,
            "machine_cpu_ms_per_request": self.machine_s * 1000 / requests,
        }


def create_load(api: Api, server: Server, workflow: str, total: int, threads: int, tag: str) -> dict[str, Any]:
    """`total` create_project requests shared by `threads` client threads, all started together."""
    return run_load(server, total, threads, lambda session, i: api.create_project(session, workflow, f"{tag} {i}"), api)


def stack_load(api: Api, server: Server, total: int, threads: int) -> dict[str, Any]:
    """The same load with none of Orchestra's work: each request signs a create_project body as the client does
    (sign_cavage), then `GET /orchestra/status/` (a plain Django view, no database)."""
    from orchestra.api.signatures import sign_cavage

    body = json.dumps({"workflow_slug": "x", "workflow_version_slug": "v1", "description": "floor"}).encode()
    path = f"{CLIENT_API}create_project/"
    c = api.credentials

    def call(session: Any, i: int) -> int | None:
        headers = {"Host": api.host, "Content-Type": "application/json", "Accept": "application/json"}
        headers.update(sign_cavage("POST", path, headers, body, c.key_id, c.secret, now=time.time()))
        try:
            response = session.get(api.url + "/orchestra/status/", headers=headers, timeout=REQUEST_TIMEOUT)
        except CONNECTION_ERRORS as exc:
            api.failures.add("stack load", f"{type(exc).__name__}: {exc}")
            return None
        if response.status_code != 200 or response.text != "OK":
            api.failures.add("stack load", f"HTTP {response.status_code}: {response.text[:200]}")
            return None
        return i

    return run_load(server, total, threads, call, api)


def run_load(
    server: Server, total: int, threads: int, call: Callable[[Any, int], int | None], api: Api
) -> dict[str, Any]:
    """`total` calls shared by `threads` client threads (a session each), all started together; a call
    returns an id, or None when it failed (and said so in api.failures)."""
    counter = itertools.count()
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    created: list[list[int]] = [[] for _ in range(threads)]

    def client_thread(k: int) -> None:
        try:
            with api.session() as session:
                barrier.wait()
                while (i := next(counter)) < total:
                    t0 = time.perf_counter()
                    result = call(session, i)
                    latencies[k].append((time.perf_counter() - t0) * 1000)
                    if result is not None:
                        created[k].append(result)
        except Exception as exc:  # a bug in this script: count it, never hang the barrier
            barrier.abort()
            api.failures.add("client thread", f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=client_thread, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    with CpuMeter(server) as cpu:
        barrier.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0
    ms = [x for per_thread in latencies for x in per_thread]
    ids = [x for per_thread in created for x in per_thread]
    return {
        "requests": len(ms),
        "succeeded": len(ids),
        "failed": len(ms) - len(ids),
        "distinct_project_ids": len(set(ids)),
        "threads": threads,
        "wall_s": wall,
        "requests_per_s": len(ms) / wall,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=float("nan")),
        **cpu.per_request(max(len(ms), 1)),
    }


ROUND_TRIP_CALLS = [
    "create_project",
    "project_information",
    "new_task_assignment/entry_level",
    "submit_task_assignment",
    "project_information (Completed)",
]


def round_trip(api: Api, session: Any, workflow: str, i: int) -> dict[str, float] | None:
    """One project through the API, one request after the other; ms per call and in all, or None if one failed.

    Its project has priority 1, so the pull takes its task before those of the create_project run (priority 0)."""
    ms: dict[str, float] = {}
    start = t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        ms[name], t = (now - t) * 1000, now

    project_id = api.create_project(session, workflow, f"bench round trip {i}", priority=1)
    lap(ROUND_TRIP_CALLS[0])
    if project_id is None:
        return None
    info = api.project_information(session, project_id, "Active")
    lap(ROUND_TRIP_CALLS[1])
    if info is None:
        return None
    task_id = api.new_task(session, int(info["tasks"]["rate"]["id"]))
    lap(ROUND_TRIP_CALLS[2])
    if task_id is None:
        return None
    submitted = api.submit(session, task_id)
    lap(ROUND_TRIP_CALLS[3])
    if not submitted:
        return None
    done = api.project_information(session, project_id, "Completed")
    lap(ROUND_TRIP_CALLS[4])
    if done is None:
        return None
    ms["round trip"] = (time.perf_counter() - start) * 1000
    return ms


def analyze() -> None:
    """Give the planner statistics for the rows the load just wrote, as autovacuum would within its naptime
    (a minute): on a fresh PostgreSQL database the pull's candidate query otherwise believes its tables hold
    one row and picks a plan that reads every open task (24 ms with 2,000 of them, 0.25 ms after ANALYZE)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()


def round_trips(api: Api, server: Server, workflow: str, rounds: int, warmup: int) -> dict[str, Any]:
    with api.session() as session:
        for i in range(warmup):
            round_trip(api, session, workflow, -1 - i)
        samples: list[dict[str, float]] = []
        failed = 0
        with CpuMeter(server) as cpu:
            t0 = time.perf_counter()
            for i in range(rounds):
                sample = round_trip(api, session, workflow, i)
                if sample is None:
                    failed += 1
                else:
                    samples.append(sample)
            wall = time.perf_counter() - t0
    per_call = {}
    for name in [*ROUND_TRIP_CALLS, "round trip"]:
        values = [s[name] for s in samples]
        per_call[name] = {"median_ms": percentile(values, 50), "p90_ms": percentile(values, 90)}
    return {
        "rounds": rounds,
        "completed": len(samples),
        "failed": failed,
        "wall_s": wall,
        "requests_per_s": rounds * len(ROUND_TRIP_CALLS) / wall,
        "median_ms": per_call["round trip"]["median_ms"],
        "p90_ms": per_call["round trip"]["p90_ms"],
        "per_call": per_call,
        **cpu.per_request(rounds * len(ROUND_TRIP_CALLS)),
    }


def status_baseline(api: Api, server: Server, n: int) -> dict[str, Any]:
    """The floor under every figure: `GET /orchestra/status/` (a plain Django view, no database), one at a time."""
    ms: list[float] = []
    with api.session() as session, CpuMeter(server) as cpu:
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                response = session.get(api.url + "/orchestra/status/", timeout=REQUEST_TIMEOUT)
                ok = response.status_code == 200 and response.text == "OK"
                detail = f"HTTP {response.status_code}: {response.text[:200]}"
            except CONNECTION_ERRORS as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            ms.append((time.perf_counter() - t0) * 1000)
            if not ok:
                api.failures.add("status", detail)
    return {"requests": n, "median_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90), **cpu.per_request(n)}


# --- the floor (--floor) ---------------------------------------------------------------------------------


class InProcessSession:
    """What Api needs of a requests.Session, answered by calling Orchestra's WSGI application in this process
    (no HTTP); `before` runs ahead of each request."""

    def __init__(self, before: Callable[[], None] = lambda: None) -> None:
        from django.core.wsgi import get_wsgi_application

        self.app = get_wsgi_application()
        self.before = before

    def post(self, url: str, data: bytes, headers: dict[str, str], timeout: float) -> Reply:
        import io

        parts = urlsplit(url)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "SERVER_NAME": parts.hostname or "127.0.0.1",
            "SERVER_PORT": str(parts.port or 80),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(data)),
            "HTTP_HOST": parts.netloc,
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
        status: list[str] = []
        self.before()
        body = b"".join(self.app(environ, lambda s, h, exc=None: status.append(s)))
        return Reply(int(status[0].split()[0]), body)


FLOOR_REPLAYS = 3
FLOOR_CREATES = 200


def database_floor(
    credentials: Credentials, workflow: str, rounds: int, creates: int, failures: Failures
) -> dict[str, Any]:
    """What the database itself needs for the benchmark's requests (benchmarks/floor.py): `rounds` round trips
    and `creates` create_project requests run in this process (the WSGI application called directly), every
    statement recorded per request, then replayed through the bare driver on copies of the database as it was
    before them; the median of FLOOR_REPLAYS replays. On PostgreSQL each request's statements go in one
    pipeline: a single exchange with the server, which Orchestra (reading results between statements) cannot
    beat."""
    from django.db import connection

    from benchmarks import floor

    init = str(connection.settings_dict.get("OPTIONS", {}).get("init_command", ""))
    api = Api("http://127.0.0.1", credentials, failures)
    warm = InProcessSession()
    for i in range(WARMUP_ROUNDS):  # this process's caches (compiled workflow, ledger heads), as a worker's are
        round_trip(api, warm, workflow, -100 - i)
    in_process = [t["round trip"] for i in range(rounds) if (t := round_trip(api, warm, workflow, -300 - i))]
    make_copy = floor.snapshot("httpfloor")
    with floor.recording() as rec:
        session = InProcessSession(before=rec.mark)
        completed = sum(round_trip(api, session, workflow, -200 - i) is not None for i in range(rounds))
        for i in range(creates):
            api.create_project(session, workflow, f"floor {i}")
    calls = len(ROUND_TRIP_CALLS)
    if completed != rounds or len(in_process) != rounds or len(rec.groups) != rounds * calls + creates:
        failures.add("floor", f"{completed} of {rounds} round trips, {len(rec.groups)} requests recorded")
        return {}

    def replayed(k: int, pipelined: bool = True) -> list[float]:
        copy = make_copy(k)
        try:
            return floor.replay(copy, rec, init, pipelined=pipelined).seconds
        finally:
            floor.drop(copy)

    def round_trip_ms(seconds: list[float]) -> float:
        return percentile([sum(seconds[r * calls : (r + 1) * calls]) * 1000 for r in range(rounds)], 50)

    pipelined = connection.vendor == "postgresql"
    # On PostgreSQL, also one statement per exchange: what the exchanges themselves cost.
    one_by_one = [round_trip_ms(replayed(FLOOR_REPLAYS + k, False)) for k in range(FLOOR_REPLAYS)] if pipelined else []
    replays = []
    for k in range(FLOOR_REPLAYS):
        seconds = replayed(k)
        per_call = {
            name: percentile([seconds[r * calls + c] * 1000 for r in range(rounds)], 50)
            for c, name in enumerate(ROUND_TRIP_CALLS)
        }
        alone = [x * 1000 for x in seconds[rounds * calls :]]  # the create_project requests
        replays.append((round_trip_ms(seconds), percentile(alone, 50), per_call))
    floor.drop_snapshot("httpfloor")
    trip_ms, create_ms, per_call = sorted(replays, key=lambda r: r[0])[len(replays) // 2]
    trip_statements = sum(1 for g in rec.groups[: rounds * calls] for e in g if not isinstance(e, str))
    return {
        "in_process_round_trip_ms": percentile(in_process, 50),
        "round_trip_ms": trip_ms,
        "round_trip_replays_ms": [round(r[0], 3) for r in replays],
        "per_call_ms": per_call,
        "create_project_ms": create_ms,
        "statements_per_round_trip": trip_statements / rounds,
        "pipelined": pipelined,
        "one_by_one_round_trip_ms": sorted(one_by_one)[len(one_by_one) // 2] if one_by_one else None,
        "one_by_one_replays_ms": [round(x, 3) for x in one_by_one],
    }


def database_check(expected_projects: int, expected_completed: int, failures: Failures) -> dict[str, int]:
    """What the server wrote, read back through the ORM: every project there, the round trips Completed."""
    from django.db import connections

    from orchestra.models import Project

    connections.close_all()
    projects = Project.objects.count()
    completed = Project.objects.filter(status="Completed").count()
    if projects != expected_projects or completed != expected_completed:
        failures.add(
            "database check",
            f"{projects} projects ({expected_projects} expected),"
            f" {completed} Completed ({expected_completed} expected)",
        )
    return {"projects": projects, "completed": completed}


# --- printing --------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def print_report(
    env: dict[str, Any],
    loads: dict[str, dict[str, Any]],
    trips: dict[str, dict[str, Any]],
    baselines: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    from benchmarks.engine import table

    print("Orchestra HTTP benchmark")
    print(
        table(
            None,
            left=2,
            rows=[
                ["date", env["date"]],
                ["database", f"{env['database']} ({env['database_name']})"],
                ["python", env["python"]],
                ["django", env["django"]],
                ["server", env["server"]],
                ["clients", env["client"]],
                ["cpus", env["cpus"]],
                ["platform", env["platform"]],
                ["cpu check", env["cpu_check"]],
                ["commit", env["commit"] or "?"],
                ["workflow", env["workflow"]],
            ],
        )
    )
    first = next(iter(loads.values()))
    print(
        f"\ncreate_project (client API, signed): {first['threads']} client threads, {first['requests']:,} requests"
        f" after {args.warmup} warm-up, for each client"
    )
    print(
        table(
            [
                "client",
                "requests",
                "failed",
                "wall s",
                "requests/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "server CPU ms/req",
                "client CPU ms/req",
                "machine CPU ms/req",
            ],
            [
                [
                    kind,
                    f"{load['requests']:,}",
                    load["failed"],
                    _fmt(load["wall_s"], 3),
                    _fmt(load["requests_per_s"], 1),
                    _fmt(load["p50_ms"]),
                    _fmt(load["p90_ms"]),
                    _fmt(load["p99_ms"]),
                    _fmt(load["max_ms"]),
                    _fmt(load["server_cpu_ms_per_request"]),
                    _fmt(load["client_cpu_ms_per_request"]),
                    _fmt(load["machine_cpu_ms_per_request"]),
                ]
                for kind, load in loads.items()
            ],
            left=0,
        )
    )
    kinds = list(trips)
    some = trips[kinds[0]]
    print(
        f"\nRound trip over HTTP: one client, one request after the other, {some['rounds']} rounds after"
        f" {WARMUP_ROUNDS} warm-up, for each client; "
        + ", ".join(f"{kind}: {t['completed']} completed, {t['failed']} failed" for kind, t in trips.items())
    )

    def cell(figures: dict[str, float]) -> str:
        return f"{_fmt(figures['median_ms'], 3)} ({_fmt(figures['p90_ms'])})"

    print(
        table(
            ["median ms (p90)", *kinds],
            [[name, *(cell(trips[k]["per_call"][name]) for k in kinds)] for name in ROUND_TRIP_CALLS]
            + [["round trip (all five)", *(cell(trips[k]) for k in kinds)]],
        )
    )
    for kind in kinds:
        t, baseline = trips[kind], baselines[kind]
        print(
            f"{kind}: round-trip loop {_fmt(t['requests_per_s'], 1)} requests/s, CPU per request: server"
            f" {_fmt(t['server_cpu_ms_per_request'])} ms, client {_fmt(t['client_cpu_ms_per_request'])} ms;"
            f" baseline GET /orchestra/status/ (no database), {baseline['requests']} one at a time: median"
            f" {_fmt(baseline['median_ms'], 3)} ms, p90 {_fmt(baseline['p90_ms'], 3)} ms, CPU per request: server"
            f" {_fmt(baseline['server_cpu_ms_per_request'])} ms,"
            f" client {_fmt(baseline['client_cpu_ms_per_request'])} ms"
        )
    cores = os.cpu_count() or 1
    print(
        "\nNotes: latencies are measured at the client, signing included. Server CPU is the gunicorn workers'"
        "\n(user + system, from /proc; PostgreSQL's own processes are not in it), client CPU this process's,"
        "\nmachine CPU the whole machine's (/proc/stat: everything, the database included). On"
        f" {cores} cores,\n{TARGET_CREATE_RPS:.0f} requests/s leaves {cores * 1000 / TARGET_CREATE_RPS:.1f} ms of"
        " machine CPU per request."
        "\nThe clients send the same signed requests and check the same answers: `requests` (one Session per thread,"
        "\nas B12's client code uses it) and the standard library's http.client (what orchestra.client's urllib uses"
        "\nunderneath). Client and server share this machine's cores, so a client's own CPU is in every figure."
        "\nThe round trips run after the create_project runs, so the pull chooses among those runs' open 'rate'"
        "\ntasks too; the round-trip projects have priority 1, so the pull takes theirs. gunicorn's sync"
        "\nworkers close every connection, so each request opens a new one."
        + (
            " With --workflow simple, client CPU includes the local page server's thread."
            if args.workflow == "simple"
            else ""
        )
    )
    rows = []
    for kind in kinds:
        rps, ms = loads[kind]["requests_per_s"], trips[kind]["median_ms"]
        rows.append(
            [
                f"create_project >= {TARGET_CREATE_RPS:.0f} requests/s",
                kind,
                _fmt(rps, 1),
                "met" if rps >= TARGET_CREATE_RPS else "MISSED",
            ]
        )
        rows.append(
            [
                f"round trip <= {TARGET_ROUND_TRIP_MS:.0f} ms (median)",
                kind,
                _fmt(ms, 2),
                "met" if ms <= TARGET_ROUND_TRIP_MS else "MISSED",
            ]
        )
    print("\nTargets (not asserted)")
    print(table(["target", "client", "measured", ""], rows))
    print("\nFor comparison")
    print(REFERENCE)


def print_floor(
    stacks: dict[str, dict[str, Any]],
    database: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    trips: dict[str, dict[str, Any]],
    loads: dict[str, dict[str, Any]],
) -> None:
    from benchmarks.engine import table

    how = (
        "each request's statements in one pipeline (one exchange with the server)"
        if database["pipelined"]
        else "one after the other, in-process"
    )
    calls = len(ROUND_TRIP_CALLS)
    print("\nFloor (--floor): what the stack and the database need, with none of Orchestra's own work")
    print(
        f"database: the requests' statements replayed through the bare driver, {how}, on copies of the database;"
        f"\nmedian of {FLOOR_REPLAYS} replays ({', '.join(_fmt(x, 2) for x in database['round_trip_replays_ms'])} ms)"
    )
    if database["one_by_one_round_trip_ms"] is not None:
        print(
            "the same statements one by one (each, and each BEGIN and COMMIT, an exchange of its own):"
            f" {_fmt(database['one_by_one_round_trip_ms'], 2)} ms a round trip (median of"
            f" {', '.join(_fmt(x, 2) for x in database['one_by_one_replays_ms'])} ms)"
        )
    print(
        table(
            ["request", "database floor ms"],
            [[name, _fmt(ms, 3)] for name, ms in database["per_call_ms"].items()]
            + [["round trip (all five)", _fmt(database["round_trip_ms"], 3)]],
        )
    )
    rows = []
    for kind in trips:
        http_ms = calls * baselines[kind]["median_ms"]
        floor_ms = http_ms + database["round_trip_ms"]
        stack = stacks[kind]
        rows += [
            [
                f"round trip ms: {calls} x the no-database request + the database floor",
                kind,
                f"{_fmt(http_ms)} + {_fmt(database['round_trip_ms'])} = {_fmt(floor_ms)}",
                _fmt(trips[kind]["median_ms"]),
                f"<= {TARGET_ROUND_TRIP_MS:.0f}",
            ],
            [
                f"create_project requests/s: the same load, signed, to GET /orchestra/status/ ({stack['threads']}"
                " threads)",
                kind,
                f"{_fmt(stack['requests_per_s'], 1)} (p50 {_fmt(stack['p50_ms'])} ms, machine CPU"
                f" {_fmt(stack['machine_cpu_ms_per_request'])} ms/req)",
                _fmt(loads[kind]["requests_per_s"], 1),
                f">= {TARGET_CREATE_RPS:.0f}",
            ],
        ]
    rows.append(["database floor of one create_project, ms", "", _fmt(database["create_project_ms"], 3), "", ""])
    print(table(["figure", "client", "floor", "measured", "target"], rows))
    in_process = database["in_process_round_trip_ms"]
    print(
        f"The round trip's {database['statements_per_round_trip']:.0f} statements. In-process (the WSGI application"
        f" called directly, no HTTP) the round trip takes {_fmt(in_process)} ms, {_fmt(database['round_trip_ms'])}"
        f" ms of it the database floor: Orchestra's own work is {_fmt(in_process - database['round_trip_ms'])} ms"
        + (" (with its exchanges with the server)." if database["pipelined"] else ".")
    )


def print_failures(failures: Failures, server_problems: list[str], db: dict[str, int]) -> None:
    print(f"\nDatabase afterwards: {db['projects']:,} projects, {db['completed']:,} Completed")
    if failures.total:
        print(f"\nFAILED REQUESTS: {failures.total} ({', '.join(f'{k} {v}' for k, v in failures.counts.items())})")
        for example in failures.examples:
            print(f"  {example}")
    else:
        print("Failed requests: 0")
    if server_problems:
        print(f"\nSERVER LOG: {len(server_problems)} lines report problems (first 20):")
        for line in server_problems[:20]:
            print(f"  {line}")


# --- main ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        help="default: a fresh SQLite file in a temp dir; a postgresql:// database is dropped and recreated",
    )
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="client threads for create_project")
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="measured create_project requests")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="create_project requests before that")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="measured round trips")
    parser.add_argument(
        "--workflow",
        choices=list(WORKFLOWS),
        default="human",
        help="human: one human step, no machine code (default); simple: B12's simple_workflow (crawl + rate)",
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn worker processes")
    parser.add_argument(
        "--client",
        choices=[*CLIENTS, "both"],
        default="both",
        help="the HTTP client the measurements use (default: each of them, one after the other)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure what the HTTP stack and the database need with none of Orchestra's work (see README)",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temp ORCHESTRA_HOME (SQLite file, gunicorn.log)")
    args = parser.parse_args(argv)
    for name in ("threads", "requests", "rounds", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")

    home = configure(args.database_url)
    server: Server | None = None
    page = None
    try:
        import requests
        from django.db import connections

        from benchmarks.engine import LocalPage, environment

        credentials = set_up_data(home, args.workflow)
        if args.workflow == "simple":
            page = LocalPage()
            PROJECT_DATA["simple"] = {"url": page.url}
        env = environment()
        connections.close_all()  # the server's processes have the database to themselves

        server = Server(home, args.workers)
        server.wait_ready()
        env.pop("executor", None)
        env["server"] = (
            f"gunicorn {package_version('gunicorn')}, {args.workers} sync workers, {server.url}, executor eager"
        )
        env["client"] = (
            f"requests {requests.__version__} (one Session per thread) and http.client (Python"
            f" {platform.python_version()}); gunicorn's sync workers close each connection"
        )
        default = " (the default; --workflow simple for B12's)" if args.workflow == "human" else ""
        env["workflow"] = WORKFLOWS[args.workflow][2] + default

        failures = Failures()
        clients = CLIENTS if args.client == "both" else (args.client,)
        apis = {kind: Api(server.url, credentials, failures, kind) for kind in clients}
        loads = {}
        for kind, api in apis.items():
            if args.warmup:
                create_load(api, server, args.workflow, args.warmup, args.threads, f"bench warm-up {kind}")
            loads[kind] = create_load(api, server, args.workflow, args.requests, args.threads, f"bench load {kind}")
        analyze()
        trips = {
            kind: round_trips(api, server, args.workflow, args.rounds, WARMUP_ROUNDS) for kind, api in apis.items()
        }
        baselines = {kind: status_baseline(api, server, STATUS_REQUESTS) for kind, api in apis.items()}
        stacks = (
            {kind: stack_load(api, server, args.requests, args.threads) for kind, api in apis.items()}
            if args.floor
            else {}
        )
        server.stop()
        rounds = args.rounds + WARMUP_ROUNDS
        db = database_check(len(clients) * (args.warmup + args.requests + rounds), len(clients) * rounds, failures)
        for kind, load in loads.items():
            if load["distinct_project_ids"] != load["succeeded"]:
                failures.add(
                    f"create_project ({kind})", f"{load['succeeded']} ids but {load['distinct_project_ids']} distinct"
                )
        problems = server.problems()
        database = (
            database_floor(credentials, args.workflow, args.rounds, min(args.requests, FLOOR_CREATES), failures)
            if args.floor
            else None
        )

        print_report(env, loads, trips, baselines, args)
        if stacks and database:
            print_floor(stacks, database, baselines, trips, loads)
        print_failures(failures, problems, db)
        if args.json:
            payload = {
                "environment": env,
                "create_project": loads,
                "round_trip": trips,
                "status_baseline": baselines,
                "floor": {"stack_load": stacks, "database": database} if args.floor else None,
                "database_check": db,
                "failed_requests": dict(failures.counts),
                "server_log_problems": len(problems),
            }
            print("\n" + json.dumps(payload, indent=2, default=str))
        if failures.total or problems:
            if problems:
                print(f"\n--- last lines of {server.log_path.name} ---\n{server.log_tail(80)}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        if page is not None:
            page.close()
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"\nkept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
