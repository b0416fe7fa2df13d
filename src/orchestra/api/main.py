"""The NinjaAPI instance: routers, the JSON error shape, trailing-slash-optional routes, and the URLs
`orchestra.urls` mounts (with JSON answers for a wrong method or an unknown path under the API).

Every error is `{"error": code, "message": "…"}` with a 4xx status; validation errors add `errors`, one
entry per bad field. Anything else escaping a view is a bug: it is logged and answered with a 500 in the
same shape, without details.
"""

from __future__ import annotations

import functools
import json
import logging
import typing
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, URLResolver, reverse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Router
from ninja.constants import NOT_SET
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from orchestra.api.schemas import Error
from orchestra.api.signatures import SignatureError
from orchestra.engine.errors import OrchestraError

log = logging.getLogger("orchestra.api")


class JSONParser(Parser):
    """B12's client sends raw JSON without a Content-Type; say exactly where a body fails to parse."""

    def parse_body(self, request: HttpRequest) -> Any:
        try:
            return json.loads(request.body)
        except UnicodeDecodeError:
            raise HttpError(400, "body: not UTF-8 text; send a JSON object encoded as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise HttpError(
                400, f"body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); send a JSON object"
            ) from None


api = NinjaAPI(
    title="Orchestra API",
    version="1",
    description=(
        "Orchestra's HTTP API. The client (project) API takes signed requests (draft-cavage HTTP signatures"
        " with `X-Api-Key`, as B12's `httpsig` client sends them, or RFC 9421); the worker interface takes a"
        ' session (with CSRF) or `Authorization: Token …`. Every error is JSON `{"error", "message"}`.'
    ),
    urls_namespace="orchestra:api",  # nested: orchestra.urls has app_name "orchestra"
    docs_url="/docs",
    openapi_url="/openapi.json",
    parser=JSONParser(),
)

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


# What each error status means here; `route` documents them on every operation.
ERROR_RESPONSES: dict[int, Any] = {
    400: Error,  # the body, a parameter or an argument is invalid (names the field)
    401: Error,  # no credentials, or they do not verify
    403: Error,  # authenticated, but not allowed (not a worker, not a project admin, CSRF)
    404: Error,  # something named in the request does not exist
    409: Error,  # the action does not fit the current state
}


def error(request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"error": code, "message": message, **extra}, status=status)


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc]
    # ninja prefixes the parameter source and the schema argument name: ("body", "payload", "priority").
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form", "file"):
        source, parts = parts[0], parts[1:]
        if source == "body":
            parts = parts[1:]  # ("body", "payload") alone: the body itself is missing or not an object
        if not parts:
            return source
    return ".".join(parts)


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    field = _field(error.get("loc", ()))
    # A validator's own message stands alone, without pydantic's "Value error, " before it.
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if field == "body":
        message = f"send a JSON object ({message})"
    return {"field": field, "message": message}


@api.exception_handler(NinjaValidationError)
def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [_field_error(e) for e in exc.errors]
    message = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "the request is invalid"
    field = {"field": errors[0]["field"]} if errors else {}
    return error(request, 400, "invalid", message, errors=errors, **field)


@api.exception_handler(OrchestraError)
def _orchestra(request: HttpRequest, exc: OrchestraError) -> HttpResponse:
    body = exc.as_dict()
    field = exc.fields.get("field")
    if field:
        body["field"] = field
    if "errors" in exc.fields:  # B12's assign_worker_to_task shape: {"success": false, "errors": {...}}
        body.update(success=False, errors=exc.fields["errors"])
    return api.create_response(request, body, status=exc.http_status)


@api.exception_handler(SignatureError)
def _signature(request: HttpRequest, exc: SignatureError) -> HttpResponse:
    return error(request, 401, "bad_signature", str(exc), header=exc.header)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    message = str(exc.message) if getattr(exc, "message", None) else "authentication required"
    return error(request, 401, "unauthorized", message)


@api.exception_handler(HttpError)
def _http(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, HttpError):  # ninja wraps our parser's precise message in a generic one
        exc = exc.__cause__
    return error(request, exc.status_code, _STATUS_CODES.get(exc.status_code, "error"), str(exc.message))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, "not_found", str(exc) or "not found")


@api.exception_handler(Exception)
def _bug(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error(request, 500, "server_error", "an unexpected error occurred; it was logged")


def route(router: Router, method: str, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view at `path/` (documented) and at `path` (B12's clients call both).

    Every operation documents the error shape for each status in `ERROR_RESPONSES`; `response` (a dict by
    status, or one schema for 200; by default the view's return type) adds to or overrides them.
    """
    response = kwargs.pop("response", NOT_SET)

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        documented = response
        if documented is NOT_SET:  # the view's return type is the 200 response
            documented = typing.get_type_hints(view).get("return", Any)
        if not isinstance(documented, dict):
            documented = {200: documented}
        kwargs["response"] = {**ERROR_RESPONSES, **documented}
        router.add_api_operation(path.rstrip("/") + "/", [method], view, **kwargs)
        router.add_api_operation(
            path.rstrip("/"), [method], view, **{**kwargs, "include_in_schema": False, "url_name": None}
        )
        return view

    return register


def _mount() -> None:
    from orchestra.api import events, holdingpen, interface, management, project, sdk

    api.add_router("/project/", project.router)
    api.add_router("/holdingpen/", holdingpen.router)
    interface.router.add_router("/project_management/", management.router)
    interface.router.add_router("/project_management/", events.router)
    api.add_router("/interface/", interface.router)
    api.add_router("/sdk/", sdk.router)


_mount()


def _json_not_allowed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """ninja answers a method its path does not take with a plain-text 405; here it is JSON like every error."""

    @functools.wraps(view)  # keeps csrf_exempt and the other flags Django reads off the view
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        allowed = response["Allow"]
        answer = error(request, 405, "method_not_allowed", f"{request.method} {request.path}: use {allowed}")
        answer["Allow"] = allowed
        return answer

    return wrapped


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """`api.urls` for `path("api/", …)`, with JSON 405s."""
    patterns, app_name, namespace = api.urls
    wrapped: list[URLPattern | URLResolver] = [
        URLPattern(p.pattern, _json_not_allowed(p.callback), p.default_args, p.name) if isinstance(p, URLPattern) else p
        for p in patterns
    ]
    return wrapped, app_name, namespace


@csrf_exempt  # a POST to a wrong path gets this answer, not the CSRF check's HTML page
def not_found(request: HttpRequest) -> HttpResponse:
    """Any other path under the API: a JSON 404 pointing at the documentation, not the site's HTML page."""
    docs = reverse("orchestra:api:openapi-view")
    return error(request, 404, "not_found", f"{request.method} {request.path}: no such endpoint (see {docs})")
