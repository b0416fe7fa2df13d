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

from orchestra.api.signatures import sign_cavage

API_PATH = "/orchestra/api/project/"


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
        body = b"" if data is None else json.dumps(data).encode()
        headers = {"Host": urlsplit(self.url).netloc, "Content-Type": "application/json", "Accept": "application/json"}
        headers.update(sign_cavage(method, path, headers, body, self.key_id, self.secret, now=time.time()))
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
