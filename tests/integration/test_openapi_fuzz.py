"""Schemathesis over the whole OpenAPI document, as CI runs it: every operation the document lists, each
request authenticated as its operation's `security` says, must answer without a 5xx and as documented
(a documented status code, content type and body schema).

The document is fetched from the app, so operations added later are fuzzed without listing them here.
Requests travel through `requests` (so a signature covers the exact bytes sent, as B12's `httpsig` client
signs them) to Django's WSGI handler in-process, through a transport adapter instead of a socket.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import uuid
from collections.abc import Callable
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from httpsig.requests_auth import HTTPSignatureAuth
from hypothesis import settings
from hypothesis import strategies as st
from requests.adapters import BaseAdapter, HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from urllib3 import HTTPHeaderDict, HTTPResponse
from werkzeug.test import EnvironBuilder, run_wsgi_app

from orchestra.models import Iteration, Project, Task, TaskAssignment, TimeEntry, Worker, Workflow, WorkflowVersion
from orchestra.services.access import apikey_create, token_create
from orchestra.services.projects import project_create
from orchestra.services.tasks import task_pull
from orchestra.services.timekeeping import time_entry_create
from orchestra.services.workers import worker_create
from orchestra.services.workflows import workflow_load, workflow_load_sample_data
from tests.support.workflows import NO_REVIEW, human, load, machine

pytestmark = [pytest.mark.django_db(transaction=True)]

BASE_URL = "http://testserver"
SIGNED_HEADERS = ["(request-target)", "host", "date", "digest", "x-request-id"]


class WSGIAdapter(HTTPAdapter):
    """Hands each prepared request to Django's WSGI handler, byte for byte, as a server would."""

    def __init__(self) -> None:
        super().__init__()
        self.app = WSGIHandler()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url)
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        environ = EnvironBuilder(
            method=request.method,
            base_url=f"{url.scheme}://{url.netloc}",
            path=url.path,
            query_string=url.query,
            headers=list(request.headers.items()),
            input_stream=BytesIO(body),
            content_length=len(body),
        ).get_environ()
        # As Django's test client does, keep the database connection open across requests (a server closes
        # it after each one; reconnecting every time would make this module several times slower).
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        code, _, reason = status.partition(" ")
        raw = HTTPResponse(
            body=BytesIO(b"".join(chunks)),
            headers=HTTPHeaderDict(headers.to_wsgi_list()),
            status=int(code),
            reason=reason,
            preload_content=False,
            version=11,
        )
        return self.build_response(request, raw)


class Signature(requests.auth.AuthBase):
    """A fresh draft-cavage signature per request, by the real `httpsig`, over the method, URL, time and the
    exact body bytes (`Digest`); a unique request id keeps two identical requests from looking like a replay."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.signer = HTTPSignatureAuth(key_id=key_id, secret=secret, algorithm="hmac-sha256", headers=SIGNED_HEADERS)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        request.headers.update(
            {
                "Date": email.utils.formatdate(usegmt=True),
                "X-Api-Key": self.key_id,
                "Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
                "X-Request-Id": uuid.uuid4().hex,
            }
        )
        return self.signer(request)


def _rows(model: Any, field: str = "pk", **filters: Any) -> Callable[[], list[Any]]:
    return lambda: list(model.objects.filter(**filters).order_by("-pk").values_list(field, flat=True)[:10])


# What a request may name, read from the database as it is when the case runs. (Not simple_workflow: its crawl
# step would fetch a web page.)
NAMES: dict[str, Callable[[], list[Any]]] = {
    "project_id": _rows(Project),
    "task_id": _rows(Task),
    "assignment_id": _rows(TaskAssignment),
    "assignment": _rows(TaskAssignment),
    "iteration_id": _rows(Iteration),
    "entry_id": _rows(TimeEntry),
    "worker_username": _rows(Worker, "user__username"),
    "worker_id": lambda: _rows(Worker)() + _rows(Worker, "user__username")(),
    "workflow": _rows(Workflow, "slug", slug__in=["journalism", "qc"]),
}


class Callers:
    """Credentials for each security scheme of the document."""

    def __init__(self, signature: Signature, token: str) -> None:
        self.signature = signature
        self.token = token

    def kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        """Transport arguments for the first scheme we hold credentials for. Operations secured otherwise
        (e.g. a run's bearer key) go with whatever the fuzzer generated: they must still answer 4xx."""
        security = case.operation.definition.raw.get("security") or []
        schemes = [name for alternative in security for name in alternative]
        definitions = case.operation.schema.raw_schema["components"].get("securitySchemes", {})
        carriers = {str(definitions[name].get("name", "Authorization")).lower() for name in schemes}
        if case.meta is not None and (
            case.meta.is_negative_at(ParameterLocation.HEADER)
            or case.meta.is_negative_at(ParameterLocation.COOKIE)
            or str(case.meta.phase.data.parameter).lower() in carriers
        ):
            return {}  # the case is about missing or wrong credentials: send it as generated
        if "ClientSignature" in schemes:
            return {"auth": self.signature}
        if "WorkerToken" in schemes:
            return {"headers": {"Authorization": f"Token {self.token}"}}
        return {}


@st.composite
def _naming_existing_rows(draw: st.DrawFn, case: schemathesis.Case) -> schemathesis.Case:
    for location in ("body", "query", "path_parameters"):
        container = getattr(case, location)
        if not isinstance(container, dict):
            continue
        container = dict(container)
        for key in [k for k in container if k in NAMES or k in ("project_ids", "workflow_slug")]:
            if not draw(st.booleans()):
                continue
            if key == "project_ids":
                container[key] = draw(st.lists(st.sampled_from(NAMES["project_id"]()), max_size=3))
            elif key == "workflow_slug" and "workflow_version_slug" in container:
                versions = list(
                    WorkflowVersion.objects.filter(workflow__slug__in=["journalism", "qc"])
                    .order_by("pk")
                    .values_list("workflow__slug", "slug")
                )
                container[key], container["workflow_version_slug"] = draw(st.sampled_from(versions))
            elif key in NAMES and (existing := NAMES[key]()):
                container[key] = draw(st.sampled_from(existing))
        setattr(case, location, container)
    return case


def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case) -> st.SearchStrategy[schemathesis.Case]:
    """Random ids name nothing, so requests would rarely get past "not found": in valid fuzzed cases, let each
    field that names a row name one that exists about half the time (the case stays valid)."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return st.just(case)
    return _naming_existing_rows(case)


@pytest.fixture
def in_process(monkeypatch) -> None:
    """Every `requests` session reaches the app in-process: schemathesis's own probes (e.g. the same request
    without credentials, to check that authentication is enforced) use sessions of their own."""
    adapter = WSGIAdapter()
    get_adapter = requests.Session.get_adapter

    def route(session: requests.Session, url: str) -> BaseAdapter:
        return adapter if url.startswith(BASE_URL + "/") else get_adapter(session, url)

    monkeypatch.setattr(requests.Session, "get_adapter", route)


@pytest.fixture
def seeded(tmp_path, media, settings, in_process) -> Callers:
    """A project admin who is also a worker with work in hand, an API key, and projects of the examples and
    of a small workflow, so that requests naming them reach real code paths."""
    settings.STATIC_ROOT = media.parent / "static"
    settings.STATIC_ROOT.mkdir(parents=True)  # whitenoise warns about a missing one
    workflow_load(source="simple_workflow")
    workflow_load(source="journalism_workflow")
    workflow_load_sample_data(workflow_slug="journalism", version_slug="v1")
    load(tmp_path, [machine("prep"), human("rate", "prep", review=NO_REVIEW)], slug="qc")
    admin = worker_create(username="fuzz-admin", password="pw", project_admin=True)
    project_create(workflow_slug="journalism", version_slug="v1", project_data={"article_title": "Fuzz"})
    for _ in range(3):
        project_create(workflow_slug="qc", version_slug="v1", description="fuzzed")
    assignment = task_pull(worker=admin, role="entry_level")
    time_entry_create(
        worker=admin, date=dt.date(2024, 5, 1), time_worked=dt.timedelta(minutes=1), assignment_id=assignment.pk
    )
    issued = apikey_create(name="fuzz")
    _, raw = token_create(user="fuzz-admin")
    return Callers(Signature(issued.key.key_id, issued.secret), raw)


# Like most HTTP APIs, ours ignores query parameters it does not know, so an unknown one does not make a
# request invalid (by default schemathesis expects it rejected).
CONFIG = schemathesis.Config.from_dict({"generation": {"allow-extra-parameters": False}})


@pytest.fixture
def api_schema(request, seeded: Callers) -> Any:
    # schemathesis 4.32's lazy schemas read and rename `node._nodeid`, which pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    loaded = schemathesis.openapi.from_dict(Client().get("/orchestra/api/openapi.json").json(), config=CONFIG)
    loaded.hook(flatmap_case)
    return loaded


# Loaded in the test, after seeding, so that one database serves every operation (each a subtest).
schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=10, derandomize=True, deadline=None)
def test_every_operation_answers_as_documented(case: schemathesis.Case, seeded: Callers) -> None:
    # Every check schemathesis has: no 5xx; status, content type, headers and body as documented; invalid
    # requests refused and valid ones not refused with a 400; authentication enforced; 405 for other methods.
    case.call_and_validate(base_url=BASE_URL, **seeded.kwargs(case))
