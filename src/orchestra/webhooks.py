"""Signing and verifying Orchestra's webhook deliveries. Standard library only: receivers may copy it.

Each delivery carries

    X-Orchestra-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

computed over the exact bytes of the body. Receivers check the HMAC and that `t` is recent (which stops
replays of an old delivery); `X-Orchestra-Delivery` (a UUID, the same on every retry of a delivery) lets
them drop a delivery they already handled. During a secret rotation a header may carry several `v1=`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Orchestra-Signature"
EVENT_HEADER = "X-Orchestra-Event"
EVENT_ID_HEADER = "X-Orchestra-Event-Id"
DELIVERY_HEADER = "X-Orchestra-Delivery"


class SignatureError(ValueError):
    """The delivery is not signed by the secret, or the signature is too old."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-Orchestra-Signature value for `body` at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> None:
    """Raise SignatureError unless `header` signs `body` with `secret` within `tolerance` seconds."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("no t=<timestamp> in the signature header") from None
    if abs((time.time() if now is None else now) - t) > tolerance:
        raise SignatureError(f"the signature's timestamp {t} is more than {tolerance} s from now")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("no v1 signature matches the body and secret")


__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "SignatureError",
    "sign",
    "verify",
]
