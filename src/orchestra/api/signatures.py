"""Verifying signed client API requests: draft-cavage HTTP signatures and RFC 9421, HMAC-SHA256 only.

Pure Python (no Django), so it can be tested against the real client libraries in memory:
- draft-cavage, exactly as B12's client sends it through `httpsig` (`HTTPSignatureAuth(key_id, secret,
  algorithm='hmac-sha256')` with `X-Api-Key`): by default only `date` is signed. Unlike B12, the Date must
  be within `max_skew` of the server's clock, and a signed `Digest` must match the body.
- RFC 9421 HTTP Message Signatures (`Signature-Input` / `Signature`), as `http-message-signatures` sends
  them: `created` is required and checked, and `content-digest` (RFC 9530) must be covered when there is
  a body.

Every refusal is a `SignatureError` naming the header that failed and why. Replays are for the caller to
refuse: `Verified.signature_id` identifies the signature and `expires_at` says how long to remember it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.request import parse_http_list


class SignatureError(Exception):
    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"{header}: {reason}")
        self.header = header
        self.reason = reason


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    query: str
    authority: str
    scheme: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Verified:
    key_id: str
    scheme: str  # "cavage" or "rfc9421"
    signature_id: str
    expires_at: float
    body_covered: bool


Lookup = Callable[[str], "str | None"]

_UNSIGNED = (
    "the request is not signed: send an HTTP signature (draft-cavage `Authorization: Signature …` with"
    " X-Api-Key, or RFC 9421 Signature-Input/Signature)"
)


def verify(request: SignedRequest, lookup_secret: Lookup, *, now: float, max_skew: float = 300.0) -> Verified:
    headers = {k.lower(): v for k, v in request.headers.items()}
    authorization = headers.get("authorization", "")
    if authorization[:10].lower() == "signature ":
        return _verify_cavage(request, headers, lookup_secret, now, max_skew)
    if "signature-input" in headers or "signature" in headers:
        return _verify_rfc9421(request, headers, lookup_secret, now, max_skew)
    raise SignatureError("Authorization", _UNSIGNED)


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _signature_id(key_id: str, signature: bytes) -> str:
    return hashlib.sha256(key_id.encode() + b"\x00" + signature).hexdigest()


_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def _body_matches(algorithm: str, encoded: str, body: bytes) -> bool | None:
    """None for an algorithm we do not know."""
    digest = _DIGESTS.get(algorithm.lower())
    if digest is None:
        return None
    try:
        claimed = base64.b64decode(encoded, validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(claimed, digest(body).digest())


# draft-cavage ---------------------------------------------------------------------------------------------


def _cavage_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in parse_http_list(value.split(" ", 1)[1] if " " in value else ""):
        key, sep, val = item.strip().partition("=")
        if sep:
            params[key.strip().lower()] = val.strip()[1:-1] if val.strip().startswith('"') else val.strip()
    return params


def _verify_cavage(
    request: SignedRequest, headers: dict[str, str], lookup: Lookup, now: float, max_skew: float
) -> Verified:
    params = _cavage_params(headers["authorization"])
    key_id, signature_b64 = params.get("keyid", ""), params.get("signature", "")
    if not key_id or not signature_b64:
        raise SignatureError("Authorization", "the Signature must carry keyId and signature parameters")
    if params.get("algorithm", "hmac-sha256").lower() not in ("hmac-sha256", "hs2019"):
        raise SignatureError(
            "Authorization", f"algorithm {params['algorithm']!r} is not supported; sign with hmac-sha256"
        )
    api_key = headers.get("x-api-key")
    if api_key is not None and api_key != key_id:
        raise SignatureError("X-Api-Key", f"{api_key!r} is not the key that signed the request ({key_id!r})")
    signed = params.get("headers", "date").lower().split()
    if "date" not in signed:
        raise SignatureError(
            "Authorization", "the signature must cover the Date header, so it cannot be replayed later"
        )
    lines = []
    for name in signed:
        if name == "(request-target)":
            target = request.path + (f"?{request.query}" if request.query else "")
            lines.append(f"(request-target): {request.method.lower()} {target}")
        elif name == "host" and "host" not in headers:
            lines.append(f"host: {request.authority}")
        elif name not in headers:
            raise SignatureError(name.title(), "the header is signed but missing from the request")
        else:
            lines.append(f"{name}: {headers[name]}")
    date = _parse_date(headers["date"])
    _fresh("Date", date, now, max_skew)
    secret = lookup(key_id)
    if secret is None:
        raise SignatureError("Authorization", f"unknown key id {key_id!r} (or the key was revoked)")
    try:
        claimed = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        raise SignatureError("Authorization", "the signature is not valid base64") from None
    if not hmac.compare_digest(claimed, _hmac(secret, "\n".join(lines).encode())):
        raise SignatureError(
            "Authorization",
            f"signature does not match: check the secret for key {key_id!r} and that the signed headers were not"
            " changed",
        )
    body_covered = False
    if "digest" in signed:
        body_covered = _check_digest(headers["digest"], request.body)
    return Verified(key_id, "cavage", _signature_id(key_id, claimed), date + max_skew, body_covered)


def _check_digest(value: str, body: bytes) -> bool:
    for item in value.split(","):
        algorithm, sep, encoded = item.strip().partition("=")
        if not sep:
            continue
        matches = _body_matches(algorithm, encoded.strip(), body)
        if matches is False:
            raise SignatureError(
                "Digest", "the body does not match the signed Digest (the body was changed after signing)"
            )
        if matches:
            return True
    raise SignatureError("Digest", "no SHA-256 or SHA-512 digest found; send `Digest: SHA-256=<base64>`")


def _parse_date(value: str) -> float:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        raise SignatureError("Date", f"{value!r} is not an HTTP date such as 'Tue, 24 Nov 2026 16:00:00 GMT'") from None


def _fresh(header: str, signed_at: float, now: float, max_skew: float) -> None:
    offset = signed_at - now
    if abs(offset) > max_skew:
        when = "behind" if offset < 0 else "ahead of"
        raise SignatureError(
            header,
            f"the signature time is {abs(offset):.0f} s {when} the server's clock; the limit is {max_skew:.0f} s:"
            " sign with the current time",
        )


# RFC 9421 -------------------------------------------------------------------------------------------------

_INPUT = re.compile(
    r'^\s*([A-Za-z*][\w*.-]*)\s*=\s*(\((?:\s*"[^"]*"\s*)*\)((?:;[\w*.-]+=(?:"(?:[^"\\]|\\.)*"|-?\d+))*))\s*$'
)
_PARAM = re.compile(r';([\w*.-]+)=("(?:[^"\\]|\\.)*"|-?\d+)')


def _split_members(value: str) -> list[str]:
    """Top-level dictionary members of a structured field (commas outside quotes and parentheses)."""
    members, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            members.append(value[start:i])
            start = i + 1
    members.append(value[start:])
    return [m.strip() for m in members if m.strip()]


def _component(name: str, request: SignedRequest, headers: dict[str, str]) -> str:
    if name == "@method":
        return request.method.upper()
    if name == "@authority":
        return request.authority.lower()
    if name == "@scheme":
        return request.scheme.lower()
    if name == "@path":
        return request.path
    if name == "@query":
        return f"?{request.query}"
    if name == "@request-target":
        return request.path + (f"?{request.query}" if request.query else "")
    if name == "@target-uri":
        return f"{request.scheme}://{request.authority}{request.path}" + (f"?{request.query}" if request.query else "")
    if name.startswith("@"):
        raise SignatureError("Signature-Input", f"covered component {name!r} is not supported")
    if name not in headers:
        raise SignatureError(name.title(), "the header is covered by the signature but missing from the request")
    return headers[name].strip()


def _verify_rfc9421(
    request: SignedRequest, headers: dict[str, str], lookup: Lookup, now: float, max_skew: float
) -> Verified:
    if "signature-input" not in headers or "signature" not in headers:
        missing = "Signature-Input" if "signature-input" not in headers else "Signature"
        raise SignatureError(missing, "RFC 9421 needs both Signature-Input and Signature headers")
    inputs = {}
    for member in _split_members(headers["signature-input"]):
        match = _INPUT.match(member)
        if not match:
            raise SignatureError("Signature-Input", f'cannot parse {member!r} (expected label=("@method" …);params)')
        inputs[match.group(1)] = (match.group(2), match.group(3))
    signatures = {}
    for member in _split_members(headers["signature"]):
        label, sep, value = member.partition("=")
        if sep and value.strip().startswith(":") and value.strip().endswith(":"):
            signatures[label.strip()] = value.strip()[1:-1]
    label = "sig1" if "sig1" in inputs else next(iter(inputs), "")
    if not label or label not in signatures:
        raise SignatureError("Signature", f"no signature labelled {label or 'sig1'!r} matching Signature-Input")
    params_text, param_list = inputs[label]
    covered = re.findall(r'"([^"]*)"', params_text.split(")")[0])
    params = {k: v.strip('"') for k, v in _PARAM.findall(param_list)}
    key_id = params.get("keyid", "")
    if not key_id:
        raise SignatureError("Signature-Input", "the keyid parameter is required")
    if params.get("alg", "hmac-sha256").lower() != "hmac-sha256":
        raise SignatureError("Signature-Input", f"alg {params['alg']!r} is not supported; sign with hmac-sha256")
    if "created" not in params:
        raise SignatureError(
            "Signature-Input", "the created parameter is required, so the signature cannot be replayed later"
        )
    created = float(params["created"])
    _fresh("Signature-Input", created, now, max_skew)
    if "expires" in params and float(params["expires"]) < now:
        raise SignatureError("Signature-Input", "the signature has expired (its expires parameter is in the past)")
    lowered = [c.lower() for c in covered]
    if request.body and "content-digest" not in lowered:
        raise SignatureError("Signature-Input", "content-digest must be covered when the request has a body")
    base = "\n".join(f'"{c}": {_component(c, request, headers)}' for c in lowered)
    base += f'\n"@signature-params": {params_text}'
    secret = lookup(key_id)
    if secret is None:
        raise SignatureError("Signature-Input", f"unknown key id {key_id!r} (or the key was revoked)")
    try:
        claimed = base64.b64decode(signatures[label], validate=True)
    except ValueError:
        raise SignatureError("Signature", "the signature is not valid base64") from None
    if not hmac.compare_digest(claimed, _hmac(secret, base.encode())):
        raise SignatureError(
            "Signature",
            f"signature does not match: check the secret for key {key_id!r} and that covered components were not"
            " changed",
        )
    body_covered = False
    if "content-digest" in lowered:
        body_covered = _check_content_digest(headers["content-digest"], request.body)
    return Verified(key_id, "rfc9421", _signature_id(key_id, claimed), created + max_skew, body_covered)


def _check_content_digest(value: str, body: bytes) -> bool:
    for member in _split_members(value):
        algorithm, sep, encoded = member.partition("=")
        encoded = encoded.strip()
        if not sep or not (encoded.startswith(":") and encoded.endswith(":")):
            continue
        matches = _body_matches(algorithm.strip(), encoded[1:-1], body)
        if matches is False:
            raise SignatureError(
                "Content-Digest", "the body does not match Content-Digest (the body was changed after signing)"
            )
        if matches:
            return True
    raise SignatureError(
        "Content-Digest", "no sha-256 or sha-512 digest found; send `Content-Digest: sha-256=:<base64>:`"
    )


# Signing (Orchestra's own Python client) ------------------------------------------------------------------


def sign_cavage(
    method: str, path_with_query: str, headers: Mapping[str, str], body: bytes, key_id: str, secret: str, *, now: float
) -> dict[str, str]:
    """Headers that sign a request over `(request-target) host date digest x-request-id`, so the signature
    binds the method, URL, time and body, and a fresh request id makes each request's signature unique
    (two identical calls in the same second are not mistaken for a replay). `headers` must hold Host."""
    host = next((v for k, v in headers.items() if k.lower() == "host"), None)
    if not host:
        raise ValueError("sign_cavage needs the Host header")
    date = email.utils.formatdate(now, usegmt=True)
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    request_id = uuid.uuid4().hex
    message = "\n".join(
        [
            f"(request-target): {method.lower()} {path_with_query}",
            f"host: {host}",
            f"date: {date}",
            f"digest: {digest}",
            f"x-request-id: {request_id}",
        ]
    )
    signature = base64.b64encode(_hmac(secret, message.encode())).decode()
    return {
        "Date": date,
        "Digest": digest,
        "X-Api-Key": key_id,
        "X-Request-Id": request_id,
        "Authorization": (
            f'Signature keyId="{key_id}",algorithm="hmac-sha256",'
            f'headers="(request-target) host date digest x-request-id",signature="{signature}"'
        ),
    }
