"""Who is calling: a signed client (project API) or a worker (session with CSRF, or a personal token)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.encoding import escape_uri_path
from ninja.errors import AuthenticationError, HttpError

from orchestra import conf
from orchestra.api.signatures import SignatureError, SignedRequest, verify
from orchestra.models import Worker
from orchestra.services.access import signature_expiry, signature_first_use, token_user
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


def client_signature(request: HttpRequest) -> Client:
    """Changes: verify the HTTP signature, and accept each signed request once (a second time is a replay)."""
    return _verify_client(request, once=True)


def client_signature_read(request: HttpRequest) -> Client:
    """Reads: verify the HTTP signature and its freshness; repeating a read changes nothing, so it is allowed."""
    return _verify_client(request, once=False)


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


def worker_auth(request: HttpRequest) -> WorkerCaller:
    """`Authorization: Token …` (a personal token), else the session; session writes need the CSRF token."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "token" or not raw.strip():
            raise AuthenticationError(
                401, "Authorization: expected 'Token <your personal token>' (create one with `orchestra token create`)"
            )
        user = token_user(raw.strip())
        if user is None:
            raise AuthenticationError(401, "Authorization: the token is unknown or revoked")
        return WorkerCaller(user, _worker_of(user), by_token=True)
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
    return WorkerCaller(user, _worker_of(user), by_token=False)
