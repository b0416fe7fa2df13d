"""Python client for Orchestra's client (project) API; standard library only.

    from orchestra.client import OrchestraClient
    client = OrchestraClient("http://127.0.0.1:8000", key_id, secret)
    project_id = client.create_project("simple_workflow", "v1", "Rate an image", project_data={"url": ...})
    client.project_information(project_id)

B12's module-level functions are here too, with B12's names and arguments, so code written against
`orchestra.orchestra_api` ports by changing its import. They read `ORCHESTRA_URL`,
`ORCHESTRA_PROJECT_API_KEY` and `ORCHESTRA_PROJECT_API_SECRET` from Django settings when Django is
configured, else from the environment.

Requests are signed with a draft-cavage HTTP signature covering `(request-target) host date digest`, and a
`Digest` of the body, so a signature cannot be replayed or moved onto another body.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from orchestra.api.signatures import SignatureError, sign_cavage
from orchestra.api.signatures import verify_payload as _verify_payload

API_PATH = "/orchestra/api/project/"
SDK_PATH = "/orchestra/api/sdk/"


class OrchestraAPIError(Exception):
    """The server refused a request; `status`, `code` and `message` come from its JSON error."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body


class OrchestraClient:
    def __init__(self, url: str, key_id: str, secret: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.key_id = key_id
        self.secret = secret
        self.timeout = timeout

    def request(self, method: str, endpoint: str, data: Any = None, params: dict[str, Any] | None = None) -> Any:
        """Send one signed request to `/orchestra/api/project/<endpoint>/` and return its JSON."""
        path = API_PATH + endpoint.strip("/") + "/"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            path += "?" + urlencode(query)
        return self._send(method, path, data, signed=True)

    def _send(self, method: str, path: str, data: Any, *, signed: bool = False, bearer: str = "") -> Any:
        body = b"" if data is None else json.dumps(data).encode()
        headers = {"Host": urlsplit(self.url).netloc, "Content-Type": "application/json", "Accept": "application/json"}
        if signed:
            headers.update(sign_cavage(method, path, headers, body, self.key_id, self.secret, now=time.time()))
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        request = urllib.request.Request(self.url + path, data=body or None, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"error": "http_error", "message": raw.decode(errors="replace")[:500]}
            raise OrchestraAPIError(
                exc.code, str(payload.get("error", "error")), str(payload.get("message", "")), payload
            ) from None

    # Pull-mode external steps: claim a queue's tasks, then report on each with its run's key ---------------

    def claim_tasks(
        self, queue: str, *, worker: str = "", max_tasks: int = 1, lease_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        """Claim up to `max_tasks` tasks of an external step's `queue`; each comes as a run with its input,
        its `api_key` and a lease to keep up with `heartbeat_run` until `complete_run` or `fail_run`."""
        body = {"queue": queue, "worker": worker, "max_tasks": max_tasks, "lease_seconds": lease_seconds}
        return list(self._send("POST", SDK_PATH + "runs/claim/", body, signed=True)["runs"])

    def heartbeat_run(self, run: dict[str, Any], lease_seconds: float | None = None) -> dict[str, Any]:
        return self._run_call(run, "heartbeat", {"lease_seconds": lease_seconds})

    def complete_run(self, run: dict[str, Any], output: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._run_call(run, "complete", {"output": output or {}})

    def fail_run(self, run: dict[str, Any], error: str, *, retry: bool = True) -> dict[str, Any]:
        return self._run_call(run, "fail", {"error": error, "retry": retry})

    def _run_call(self, run: dict[str, Any], action: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"{SDK_PATH}runs/{run['task_run_id']}/{action}/"
        return dict(self._send("POST", path, body, bearer=run["api_key"]))

    # The client API -----------------------------------------------------------------------------------

    def create_project(
        self,
        workflow_slug: str,
        workflow_version_slug: str,
        description: str = "",
        priority: int = 0,
        project_data: dict[str, Any] | None = None,
        task_class: str = "real",
    ) -> int:
        result = self.request(
            "POST",
            "create_project",
            {
                "workflow_slug": workflow_slug,
                "workflow_version_slug": workflow_version_slug,
                "description": description,
                "priority": priority,
                "project_data": project_data or {},
                "task_class": task_class,
            },
        )
        return int(result["project_id"])

    def create_projects(
        self,
        workflow_slug: str,
        workflow_version_slug: str,
        project_data: list[dict[str, Any]],
        description: str = "",
        priority: int = 0,
        task_class: str = "real",
    ) -> list[int]:
        """One project per data object, all or none."""
        result = self.request(
            "POST",
            "create_projects",
            {
                "workflow_slug": workflow_slug,
                "workflow_version_slug": workflow_version_slug,
                "description": description,
                "priority": priority,
                "project_data": project_data,
                "task_class": task_class,
            },
        )
        return [int(pk) for pk in result["project_ids"]]

    def project_information(self, project_id: int) -> dict[str, Any]:
        """One project, in the shape of B12's documentation."""
        return dict(self.request("POST", "project_information", {"project_id": project_id}))

    def projects_information(self, project_ids: list[int]) -> dict[str, Any]:
        """Several projects, keyed by id (as a string, as JSON has it)."""
        return dict(self.request("POST", "project_information", {"project_ids": project_ids}))

    def workflow_types(self) -> dict[str, Any]:
        return dict(self.request("GET", "workflow_types")["workflows"])

    def project_details_url(self, project_id: int) -> str:
        return str(self.request("POST", "project_details_url", {"project_id": project_id})["project_details_url"])

    def assign_worker_to_task(self, worker_id: int | str, task_id: int) -> dict[str, Any]:
        return dict(self.request("POST", "assign_worker_to_task", {"worker_id": worker_id, "task_id": task_id}))

    def projects(self, status: str | None = None, workflow: str | None = None, page: int = 1) -> dict[str, Any]:
        return dict(self.request("GET", "projects", params={"status": status, "workflow": workflow, "page": page}))

    def end_project(self, project_id: int) -> dict[str, Any]:
        return dict(self.request("POST", "end_project", {"project_id": project_id}))

    def retry_task(self, task_id: int) -> dict[str, Any]:
        return dict(self.request("POST", "retry_task", {"task_id": task_id}))


# B12's module-level functions ---------------------------------------------------------------------------


def _setting(name: str, default: str | None = None) -> str:
    try:
        from django.conf import settings

        if settings.configured and getattr(settings, name, None):
            return str(getattr(settings, name))
    except ImportError:  # pragma: no cover - Django is a dependency, but the client works without settings
        pass
    value = os.environ.get(name, default)
    if value is None:
        raise OrchestraAPIError(0, "not_configured", f"set {name} (Django setting or environment variable)")
    return value


def default_client() -> OrchestraClient:
    return OrchestraClient(
        _setting("ORCHESTRA_URL", "http://127.0.0.1:8000"),
        _setting("ORCHESTRA_PROJECT_API_KEY"),
        _setting("ORCHESTRA_PROJECT_API_SECRET"),
    )


def get_workflow_types() -> dict[str, Any]:
    return default_client().workflow_types()


def create_orchestra_project(
    client: Any,
    workflow_slug: str,
    workflow_version_slug: str,
    description: str,
    priority: int,
    project_data: dict[str, Any],
    task_class: str = "real",
) -> int:
    """B12's signature; its first argument (B12's internal client tag) is accepted and ignored."""
    return default_client().create_project(
        workflow_slug, workflow_version_slug, description, priority, project_data, task_class
    )


def get_project_information(project_ids: int | list[int]) -> dict[str, Any]:
    """One id: that project (B12's documented shape). A list: a mapping by id (B12's current shape)."""
    if isinstance(project_ids, list):
        return default_client().projects_information(project_ids)
    return default_client().project_information(project_ids)


def get_project_details_url(project_id: int) -> str:
    return default_client().project_details_url(project_id)


def assign_worker_to_task(worker_id: int | str, task_id: int) -> dict[str, Any]:
    return default_client().assign_worker_to_task(worker_id, task_id)


# Receiving external step triggers ------------------------------------------------------------------------


def verify_trigger(secret: str, body: bytes, signature: str, *, max_skew: float = 300.0) -> dict[str, Any]:
    """Check an external step trigger's `X-Orchestra-Signature` against its raw body and return the body.

    Raises `SignatureError` (with the reason) when the signature is missing, stale or does not match."""
    _verify_payload(secret, body, signature, now=time.time(), max_skew=max_skew)
    return dict(json.loads(body))


__all__ = [
    "OrchestraAPIError",
    "OrchestraClient",
    "SignatureError",
    "assign_worker_to_task",
    "create_orchestra_project",
    "get_project_details_url",
    "get_project_information",
    "get_workflow_types",
    "verify_trigger",
]
