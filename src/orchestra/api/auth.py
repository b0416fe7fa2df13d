"""Who is calling: a signed client (project API) or a worker (session with CSRF, or a personal token)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.encoding import escape_uri_path
from ninja.errors import AuthenticationError, HttpError
from ninja.security.base import AuthBase

from orchestra import conf
from orchestra.api.signatures import SignatureError, SignedRequest, verify
from orchestra.models import Worker
from orchestra.services.access import signature_expiry, signature_first_use, token_caller
from orchestra.services.workers import is_project_admin


@dataclass(frozen=True)
class Client:
    """A caller of the client API, identified by the key that signed its request."""

    key_id: str
    scheme: str

    def __str__(self) -> str:
        return f"api:{self.key_id}"


def _signed_request(request: HttpRequest) -> SignedRequest:
    return SignedRequest(
        method=request.method or "GET",
        # Django decodes the path; signatures cover it as sent (percent-encoded).
        path=escape_uri_path(request.path),
        query=request.META.get("QUERY_STRING", ""),
        authority=request.get_host(),
        scheme=request.scheme or "http",
        headers={k: v for k, v in request.headers.items()},
        body=request.body,
    )


def _verify_client(request: HttpRequest, *, once: bool) -> Client:
    from orchestra.services.access import apikey_secret

    verified = verify(
        _signed_request(request),
        apikey_secret,
        now=time.time(),
        max_skew=float(conf.get("ORCHESTRA_SIGNATURE_MAX_SKEW_SECONDS")),
    )
    if once:
        # B12's client signs only the Date (one-second resolution), so two different requests in the same
        # second can carry the same signature: the replay key is the signature with what it was sent with.
        content = hashlib.sha256(f"{request.method} {request.get_full_path()}\n".encode() + request.body).hexdigest()
        replay_key = hashlib.sha256(f"{verified.signature_id}:{content}".encode()).hexdigest()
        if not signature_first_use(replay_key, signature_expiry(verified.expires_at)):
            header = "Authorization" if verified.scheme == "cavage" else "Signature"
            raise SignatureError(header, "this signed request was sent before (a replay): sign each request anew")
    return Client(verified.key_id, verified.scheme)


class ClientSignature(AuthBase):
    """The client API's HTTP signature, declared in the OpenAPI document as the `Signature` HTTP scheme.

    `once=True` (changes) accepts each signed request once, a second time is a replay; `once=False` (reads)
    verifies the signature and its freshness only, since repeating a read changes nothing.
    """

    openapi_type = "http"
    openapi_scheme = "signature"
    openapi_description = (
        "An HMAC-SHA256 HTTP signature with your API key's secret (create one with `orchestra apikey create`):"
        ' draft-cavage, `Authorization: Signature keyId=…,algorithm="hmac-sha256",headers=…,signature=…` with'
        " `X-Api-Key` and a `Date` within the allowed clock skew, as B12's `httpsig` client sends it; or RFC 9421"
        " `Signature-Input`/`Signature` with `created` (and `content-digest` when there is a body). A signed"
        " `Digest` must match the body. Changes refuse a signed request sent twice (a replay): sign each anew."
    )

    def __init__(self, *, once: bool) -> None:
        self.once = once
        super().__init__()

    def __call__(self, request: HttpRequest) -> Client:
        return _verify_client(request, once=self.once)


client_signature = ClientSignature(once=True)
client_signature_read = ClientSignature(once=False)


@dataclass(frozen=True)
class WorkerCaller:
    user: AbstractBaseUser
    worker: Worker | None
    by_token: bool

    @property
    def is_project_admin(self) -> bool:
        return is_project_admin(self.user)


def _csrf_failure(request: HttpRequest) -> str | None:
    middleware = CsrfViewMiddleware(lambda r: None)  # type: ignore[arg-type, return-value]
    middleware.process_request(request)
    response = middleware.process_view(request, lambda r: None, (), {})  # type: ignore[arg-type, return-value]
    if response is None:
        return None
    return getattr(response, "reason_phrase", "") or "CSRF check failed"


def _worker_of(user: AbstractBaseUser) -> Worker | None:
    return Worker.objects.filter(user=user).select_related("user").first()


def _require_admin(who: WorkerCaller, admin: bool) -> WorkerCaller:
    if admin and not who.is_project_admin:
        raise HttpError(403, f"user {who.user.get_username()!r} is not a project admin")
    return who


class WorkerToken(AuthBase):
    """`Authorization: Token <personal token>`. Without an Authorization header it steps aside for the session."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = "Authorization"
    openapi_description = "`Token <your personal token>` (create one with `orchestra token create`)"

    def __init__(self, *, admin: bool = False) -> None:
        self.admin = admin
        super().__init__()

    def __call__(self, request: HttpRequest) -> WorkerCaller | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "token" or not raw.strip():
            raise AuthenticationError(
                401, "Authorization: expected 'Token <your personal token>' (create one with `orchestra token create`)"
            )
        found = token_caller(raw.strip())
        if found is None:
            raise AuthenticationError(401, "Authorization: the token is unknown or revoked")
        user, worker = found
        return _require_admin(WorkerCaller(user, worker, by_token=True), self.admin)


class WorkerSession(AuthBase):
    """The signed-in session (the worker's browser); writes also need the CSRF token."""

    openapi_type = "apiKey"
    openapi_in = "cookie"
    openapi_description = "the session of a signed-in worker; writes also need the `X-CSRFToken` header"

    def __init__(self, *, admin: bool = False) -> None:
        self.admin = admin
        self.openapi_name = settings.SESSION_COOKIE_NAME
        super().__init__()

    def __call__(self, request: HttpRequest) -> WorkerCaller:
        user: Any = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            raise AuthenticationError(
                401, "not signed in: log in (session) or send 'Authorization: Token <your personal token>'"
            )
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            failure = _csrf_failure(request)
            if failure:
                raise HttpError(
                    403, f"CSRF check failed ({failure}): send the X-CSRFToken header with the csrftoken cookie"
                )
        return _require_admin(WorkerCaller(user, _worker_of(user), by_token=False), self.admin)


# A personal token if the request sends `Authorization`, else the session: ninja tries them in this order, and
# the OpenAPI document lists them as alternatives.
worker_auth = [WorkerToken(), WorkerSession()]
# The same, for project admins only (anyone else gets 403).
admin_auth = [WorkerToken(admin=True), WorkerSession(admin=True)]
