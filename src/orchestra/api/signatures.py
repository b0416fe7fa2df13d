"""Verifying signed client API requests: draft-cavage HTTP signatures and RFC 9421, HMAC-SHA256 only.

Pure Python and standard library only: the server verifies without Django, and without the client libraries
(`httpsig`, `http-message-signatures`), which are development dependencies that the tests sign with.
- draft-cavage, exactly as B12's client sends it through `httpsig` (`HTTPSignatureAuth(key_id, secret,
  algorithm='hmac-sha256')` with `X-Api-Key`): by default only `date` is signed. Unlike B12, the Date (or a
  signed `(created)`) must be within `max_skew` of the server's clock, and a signed `Digest` must match the body.
- RFC 9421 HTTP Message Signatures (`Signature-Input` / `Signature`), as `http-message-signatures` sends them:
  `created` is required and checked, and `content-digest` (RFC 9530) must be covered when there is a body. The
  signature base (RFC 9421 §2.5) is built here, over a small RFC 8941 structured-field parser, because the
  library is not a runtime dependency; the tests check it against the library's signer.

Every refusal is a `SignatureError` naming the header that failed and saying why. Replays are for the caller to
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
from datetime import UTC
from urllib.request import parse_http_list


class SignatureError(Exception):
    """A refused signature: `header` is the request header at fault, `reason` says why and how to fix it."""

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"{header}: {reason}")
        self.header = header
        self.reason = reason


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that signatures cover, independent of any web framework."""

    method: str
    path: str  # as sent (percent-encoded), without the query
    query: str  # raw, without "?"; "" if none
    authority: str  # the Host header
    scheme: str
    headers: Mapping[str, str]  # any case; looked up case-insensitively
    body: bytes


@dataclass(frozen=True)
class Verified:
    """A signature that verified. `body_covered` is False when the signature does not bind the body (B12's
    default draft-cavage signature covers only the Date), so the body could have been changed in transit."""

    key_id: str
    scheme: str  # "cavage" or "rfc9421"
    signature_id: str  # sha256 over key id and signature bytes: the caller's replay key
    expires_at: float  # unix time after which `verify` refuses this signature anyway: how long to remember it
    body_covered: bool


Lookup = Callable[[str], str | None]

_UNSIGNED = (
    "the request is not signed: send an HTTP signature (draft-cavage `Authorization: Signature …` with"
    " X-Api-Key, or RFC 9421 Signature-Input/Signature)"
)


def verify(request: SignedRequest, lookup_secret: Lookup, *, now: float, max_skew: float = 300.0) -> Verified:
    """Verify a draft-cavage (`Authorization: Signature …`) or RFC 9421 (`Signature-Input`/`Signature`) request.

    `lookup_secret(key_id)` gives the shared HMAC secret, or None for an unknown (or revoked) key. Raises
    `SignatureError` on any failure. Does not detect replays: see `Verified.signature_id`.
    """
    headers = {k.lower(): v for k, v in request.headers.items()}
    scheme, _, _ = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "signature":
        return _verify_cavage(request, headers, lookup_secret, now, max_skew)
    if "signature-input" in headers or "signature" in headers:
        return _verify_rfc9421(request, headers, lookup_secret, now, max_skew)
    raise SignatureError("Authorization", _UNSIGNED)


def _hmac(secret: str, message: str) -> bytes:
    # "replace": a non-ASCII header value then simply fails to match, instead of crashing the verifier.
    return hmac.new(secret.encode(), message.encode("utf-8", "replace"), hashlib.sha256).digest()


def _signature_id(key_id: str, signature: bytes) -> str:
    return hashlib.sha256(key_id.encode() + b"\x00" + signature).hexdigest()


def _fresh(what: str, header: str, signed_at: float, now: float, max_skew: float) -> None:
    """A signature time outside `max_skew` either way: too old to tell from a replay, or from a wrong clock."""
    offset = signed_at - now
    if abs(offset) > max_skew:
        when = "behind" if offset < 0 else "ahead of"
        raise SignatureError(
            header,
            f"{what} is {abs(offset):.0f} s {when} the server's clock; the limit is {max_skew:.0f} s:"
            " sign with the current time",
        )


_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def _check_body(header: str, digests: list[tuple[str, bytes]], body: bytes) -> None:
    """Every SHA-256/SHA-512 digest given must match; other algorithms are ignored, but one known is needed."""
    known = [(_DIGESTS[name], claimed) for name, claimed in digests if name in _DIGESTS]
    if not known:
        example = "Digest: SHA-256=<base64>" if header == "Digest" else "Content-Digest: sha-256=:<base64>:"
        raise SignatureError(header, f"no SHA-256 or SHA-512 digest of the body found; send `{example}`")
    for digest, claimed in known:
        if not hmac.compare_digest(claimed, digest(body).digest()):
            raise SignatureError(
                header, f"the body does not match the signed {header} (the body was changed after signing)"
            )


# draft-cavage ---------------------------------------------------------------------------------------------


def _cavage_params(authorization: str) -> dict[str, str]:
    """`Signature keyId="…",algorithm="…",…` as lower-cased names; quoted values may hold commas and escapes."""
    params: dict[str, str] = {}
    for item in parse_http_list(authorization.strip().partition(" ")[2]):
        name, sep, value = item.strip().partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if sep:
            params[name.strip().lower()] = value
    return params


def _parse_date(value: str) -> float:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise SignatureError("Date", f"{value!r} is not an HTTP date such as 'Tue, 24 Nov 2026 16:00:00 GMT'") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _cavage_time(params: dict[str, str], name: str) -> float:
    try:
        return float(params[name])
    except (KeyError, ValueError):
        raise SignatureError(
            "Authorization", f"({name}) is signed, so the {name} parameter must be a unix time in seconds"
        ) from None


def _verify_cavage(
    request: SignedRequest, headers: dict[str, str], lookup: Lookup, now: float, max_skew: float
) -> Verified:
    params = _cavage_params(headers["authorization"])
    key_id, signature_b64 = params.get("keyid", ""), params.get("signature", "")
    if not key_id or not signature_b64:
        raise SignatureError("Authorization", "the Signature must carry keyId and signature parameters")
    algorithm = params.get("algorithm", "hmac-sha256")
    if algorithm.lower() not in ("hmac-sha256", "hs2019"):  # hs2019: the algorithm is the key's, here HMAC-SHA256
        raise SignatureError("Authorization", f"algorithm {algorithm!r} is not supported; sign with hmac-sha256")
    api_key = headers.get("x-api-key")
    if api_key is not None and api_key != key_id:
        raise SignatureError("X-Api-Key", f"{api_key!r} is not the key that signed the request ({key_id!r})")
    signed = params.get("headers", "date").lower().split()
    if "date" not in signed and "(created)" not in signed:
        raise SignatureError(
            "Authorization",
            "the signature must cover the Date header (or (created)), so that it cannot be replayed later:"
            ' sign with headers="date …"',
        )

    lines, times = [], []
    for name in signed:
        if name == "(request-target)":
            target = request.path + (f"?{request.query}" if request.query else "")
            value = f"{request.method.lower()} {target}"  # as httpsig builds it from requests' path_url
        elif name in ("(created)", "(expires)"):
            value = params.get(name[1:-1], "")
            times.append((name, _cavage_time(params, name[1:-1])))
        elif name == "host":
            value = headers.get("host", request.authority)
        elif name not in headers:
            raise SignatureError(name.title(), "the header is signed but missing from the request")
        else:
            value = headers[name]
        lines.append(f"{name}: {value}")

    signed_at = []
    if "date" in signed:
        signed_at.append(_parse_date(headers["date"]))
        _fresh("Date", "Date", signed_at[-1], now, max_skew)
    expires_at = float("inf")
    for name, at in times:
        if name == "(created)":
            signed_at.append(at)
            _fresh("the created time", "Authorization", at, now, max_skew)
        elif at < now:
            raise SignatureError("Authorization", "the signature has expired (its expires parameter is in the past)")
        else:
            expires_at = at

    secret = lookup(key_id)
    if secret is None:
        raise SignatureError("Authorization", f"unknown key id {key_id!r} (or the key was revoked)")
    try:
        claimed = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        raise SignatureError("Authorization", "the signature is not valid base64") from None
    if not hmac.compare_digest(claimed, _hmac(secret, "\n".join(lines))):
        raise SignatureError(
            "Authorization",
            f"signature does not match: check the secret for key {key_id!r} and that the signed headers were not"
            " changed",
        )
    body_covered = "digest" in signed
    if body_covered:
        _check_body("Digest", _rfc3230_digests(headers["digest"]), request.body)
    return Verified(
        key_id, "cavage", _signature_id(key_id, claimed), min(min(signed_at) + max_skew, expires_at), body_covered
    )


def _rfc3230_digests(value: str) -> list[tuple[str, bytes]]:
    """`Digest: SHA-256=<base64>, SHA-512=<base64>` (RFC 3230; algorithm names are case-insensitive). Only the
    algorithms we check are decoded: others may use other encodings (e.g. UNIXsum)."""
    digests = []
    for item in value.split(","):
        name, _, encoded = item.strip().partition("=")
        if name.strip().lower() in _DIGESTS:
            try:
                digests.append((name.strip().lower(), base64.b64decode(encoded.strip(), validate=True)))
            except ValueError:
                raise SignatureError("Digest", f"{item.strip()!r} is not <algorithm>=<base64>") from None
    return digests


# RFC 8941 structured fields (the subset RFC 9421 and RFC 9530 use) ------------------------------------------


class _Token(str):
    """A structured-field token, serialized bare, unlike a string."""


_Bare = bool | int | float | str | bytes  # str includes _Token


@dataclass(frozen=True)
class _Item:
    value: _Bare
    params: dict[str, _Bare]


@dataclass(frozen=True)
class _InnerList:
    items: list[_Item]
    params: dict[str, _Bare]


_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_NUMBER = re.compile(r"-?(?:\d{1,12}\.\d{1,3}|\d{1,15})(?![\d.])")
_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")


class _Parser:
    """RFC 8941 §4.2: a Dictionary of Items and Inner Lists, with parameters. ValueError on malformed input."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text.strip(" "), 0

    def _peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def _match(self, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        found = pattern.match(self.text, self.pos)
        if not found:
            raise ValueError(f"expected {what} at character {self.pos}")
        self.pos = found.end()
        return found

    def _skip(self, chars: str) -> None:
        while self._peek() and self._peek() in chars:
            self.pos += 1

    def dictionary(self) -> dict[str, _Item | _InnerList]:
        members: dict[str, _Item | _InnerList] = {}
        while self.pos < len(self.text):
            key = self._match(_KEY, "a key").group()
            if self._peek() == "=":
                self.pos += 1
                members[key] = self._inner_list() if self._peek() == "(" else self._item()
            else:
                members[key] = _Item(True, self._params())
            self._skip(" \t")
            if self.pos == len(self.text):
                break
            if self._peek() != ",":
                raise ValueError(f"expected ',' at character {self.pos}")
            self.pos += 1
            self._skip(" \t")
            if self.pos == len(self.text):
                raise ValueError("trailing comma")
        return members

    def _inner_list(self) -> _InnerList:
        self.pos += 1  # "("
        items: list[_Item] = []
        while True:
            self._skip(" ")
            if self._peek() == ")":
                self.pos += 1
                return _InnerList(items, self._params())
            items.append(self._item())
            if self._peek() not in (" ", ")"):
                raise ValueError(f"expected ' ' or ')' at character {self.pos}")

    def _item(self) -> _Item:
        return _Item(self._bare(), self._params())

    def _params(self) -> dict[str, _Bare]:
        params: dict[str, _Bare] = {}
        while self._peek() == ";":
            self.pos += 1
            self._skip(" ")
            key = self._match(_KEY, "a parameter name").group()
            value: _Bare = True
            if self._peek() == "=":
                self.pos += 1
                value = self._bare()
            params[key] = value
        return params

    def _bare(self) -> _Bare:
        first = self._peek()
        if first == "-" or first.isdigit():
            number = self._match(_NUMBER, "a number").group()
            return float(number) if "." in number else int(number)
        if first == '"':
            return re.sub(r"\\(.)", r"\1", self._match(_STRING, "a string").group(1))
        if first == ":":
            encoded = self._match(_BYTES, "a byte sequence").group(1)
            return base64.b64decode(encoded, validate=True)
        if first == "?":
            return self._match(re.compile(r"\?([01])"), "a boolean").group(1) == "1"
        return _Token(self._match(_TOKEN, "a value").group())


def _serialize_bare(value: _Bare) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    if isinstance(value, _Token):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serialize_params(params: dict[str, _Bare]) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_serialize_bare(v)}" for k, v in params.items())


def _serialize_inner_list(inner: _InnerList) -> str:
    items = " ".join(_serialize_bare(i.value) + _serialize_params(i.params) for i in inner.items)
    return f"({items}){_serialize_params(inner.params)}"


def _dictionary(header: str, value: str) -> dict[str, _Item | _InnerList]:
    try:
        return _Parser(value).dictionary()
    except ValueError as exc:
        raise SignatureError(header, f"is not a valid structured-field dictionary (RFC 8941): {exc}") from None


# RFC 9421 -------------------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _authority(request: SignedRequest) -> str:
    """RFC 9421 §2.2.3: the lower-cased host, without the scheme's default port (as the library derives it)."""
    authority = request.authority.lower()
    host, sep, port = authority.rpartition(":")
    if sep and port.lstrip("0") == _DEFAULT_PORTS.get(request.scheme.lower()):
        return host
    return authority


def _component(name: str, request: SignedRequest, headers: dict[str, str]) -> str:
    """The value of one covered component (RFC 9421 §2.1, §2.2), as `http-message-signatures` derives it."""
    query = f"?{request.query}" if request.query else ""
    path = request.path or "/"
    derived = {
        "@method": lambda: request.method,
        "@authority": lambda: _authority(request),
        "@scheme": lambda: request.scheme.lower(),
        "@path": lambda: path,
        "@query": lambda: f"?{request.query}",
        "@request-target": lambda: path + query,
        "@target-uri": lambda: f"{request.scheme.lower()}://{request.authority}{path}{query}",
    }
    if name in derived:
        return derived[name]()
    if name.startswith("@"):
        raise SignatureError(
            "Signature-Input", f"covered component {name!r} is not supported; supported: {', '.join(derived)}"
        )
    if name not in headers:
        raise SignatureError(name.title(), "the header is covered by the signature but missing from the request")
    return headers[name].strip()


def _covered(sig_input: _InnerList) -> list[str]:
    names: list[str] = []
    for item in sig_input.items:
        name = item.value
        if not isinstance(name, str) or isinstance(name, _Token):
            raise SignatureError("Signature-Input", f"covered components must be quoted strings, not {name!r}")
        if item.params:
            raise SignatureError(
                "Signature-Input",
                f"component parameters ({_serialize_params(item.params)} on {name!r}) are not supported:"
                " cover whole fields",
            )
        if name != name.lower() or name in names:
            raise SignatureError("Signature-Input", f"covered component {name!r} is not lower-case or is repeated")
        names.append(name)
    return names


def _int_param(params: dict[str, _Bare], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SignatureError("Signature-Input", f"the {name} parameter must be an integer unix time")
    return value


def _verify_rfc9421(
    request: SignedRequest, headers: dict[str, str], lookup: Lookup, now: float, max_skew: float
) -> Verified:
    """One signature is verified: the one labelled `sig1` if there is one, else the first in Signature-Input."""
    for header in ("Signature-Input", "Signature"):
        if header.lower() not in headers:
            raise SignatureError(header, "RFC 9421 needs both Signature-Input and Signature headers")
    inputs = _dictionary("Signature-Input", headers["signature-input"])
    signatures = _dictionary("Signature", headers["signature"])
    label = "sig1" if "sig1" in inputs else next(iter(inputs), "")
    sig_input = inputs.get(label)
    if not isinstance(sig_input, _InnerList):
        raise SignatureError("Signature-Input", 'expected label=("@method" …);created=…;keyid="…"')
    signature = signatures.get(label)
    if not isinstance(signature, _Item) or not isinstance(signature.value, bytes):
        raise SignatureError("Signature", f"no signature labelled {label!r} (as in Signature-Input) of the form :…:")

    params = sig_input.params
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("Signature-Input", 'the keyid parameter is required (keyid="<your key id>")')
    alg = params.get("alg", "hmac-sha256")
    if alg != "hmac-sha256":
        raise SignatureError("Signature-Input", f"alg {alg!r} is not supported; sign with hmac-sha256")
    created = _int_param(params, "created")
    if created is None:
        raise SignatureError(
            "Signature-Input", "the created parameter is required, so that the signature cannot be replayed later"
        )
    _fresh("created", "Signature-Input", created, now, max_skew)
    expires = _int_param(params, "expires")
    if expires is not None and expires < now:
        raise SignatureError("Signature-Input", "the signature has expired (its expires parameter is in the past)")
    covered = _covered(sig_input)
    if request.body and "content-digest" not in covered:
        raise SignatureError("Signature-Input", "content-digest must be covered when the request has a body")

    lines = [f'"{name}": {_component(name, request, headers)}' for name in covered]
    lines.append(f'"@signature-params": {_serialize_inner_list(sig_input)}')
    secret = lookup(key_id)
    if secret is None:
        raise SignatureError("Signature-Input", f"unknown key id {key_id!r} (or the key was revoked)")
    if not hmac.compare_digest(signature.value, _hmac(secret, "\n".join(lines))):
        raise SignatureError(
            "Signature",
            f"signature does not match: check the secret for key {key_id!r} and that the covered components were"
            " not changed",
        )
    body_covered = "content-digest" in covered
    if body_covered:
        _check_body("Content-Digest", _content_digests(headers["content-digest"]), request.body)
    expires_at = min(created + max_skew, float("inf") if expires is None else expires)
    return Verified(key_id, "rfc9421", _signature_id(key_id, signature.value), expires_at, body_covered)


def _content_digests(value: str) -> list[tuple[str, bytes]]:
    """`Content-Digest: sha-256=:<base64>:` (RFC 9530), a dictionary of byte sequences."""
    digests = []
    for name, member in _dictionary("Content-Digest", value).items():
        if not isinstance(member, _Item) or not isinstance(member.value, bytes):
            raise SignatureError("Content-Digest", f"{name} must be a byte sequence such as sha-256=:<base64>:")
        digests.append((name, member.value))
    return digests


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
    signature = base64.b64encode(_hmac(secret, message)).decode()
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


# --- Orchestra's own signed callbacks (external step triggers) -----------------------------------------

PAYLOAD_SIGNATURE_HEADER = "X-Orchestra-Signature"


def sign_payload(secret: str, body: bytes, *, timestamp: int) -> str:
    """The `X-Orchestra-Signature` value for a trigger body: `t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>." + body>`, as Stripe-style webhooks sign, so receivers can use the snippet they already know."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_payload(secret: str, body: bytes, header: str, *, now: float, max_skew: float = 300.0) -> None:
    """Check an `X-Orchestra-Signature` header (receivers of external step triggers call this).

    Raises `SignatureError` when the header is missing or malformed, too old (replay), or does not match."""
    name = PAYLOAD_SIGNATURE_HEADER
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        raise SignatureError(name, "expected 't=<unix time>,v1=<hex hmac>'")
    timestamp = int(parts["t"])
    _fresh("t", name, timestamp, now, max_skew)
    expected = sign_payload(secret, body, timestamp=timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, parts["v1"]):
        raise SignatureError(name, "the signature does not match the body; check the shared secret")
