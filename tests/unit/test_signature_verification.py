"""`orchestra.api.signatures` in memory, against requests signed by the real client libraries.

Each refusal names the header that failed; the integration tests send the same kinds of requests over HTTP.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import time
from urllib.parse import urlsplit

import pytest
import requests
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from httpsig.requests_auth import HTTPSignatureAuth
from httpsig.verify import HeaderVerifier

from orchestra.api.signatures import SignatureError, SignedRequest, sign_cavage, verify

NOW = time.time()
SECRETS = {"key-1": "secret-1"}
URL = "http://api.example:8000/orchestra/api/project/create_project/?x=1"
BODY = json.dumps({"workflow_slug": "simple"}).encode()
DIGEST = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()


def lookup(key_id: str) -> str | None:
    return SECRETS.get(key_id)


def as_signed(prepared: requests.PreparedRequest) -> SignedRequest:
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    return SignedRequest(
        method=prepared.method or "GET",
        path=parts.path,
        query=parts.query,
        authority=parts.netloc,
        scheme=parts.scheme,
        headers={k.lower(): v for k, v in prepared.headers.items()},
        body=body.encode() if isinstance(body, str) else body,
    )


def cavage(
    *,
    offset: float = 0,
    secret: str = "secret-1",
    key_id: str = "key-1",
    extra: dict[str, str] | None = None,
    signed: list[str] | None = None,
) -> SignedRequest:
    """A request signed by httpsig as B12's client signs it; `signed` lists the headers to sign."""
    headers = {"Date": email.utils.formatdate(NOW + offset, usegmt=True), "X-Api-Key": key_id, **(extra or {})}
    auth = HTTPSignatureAuth(key_id=key_id, secret=secret, algorithm="hmac-sha256", headers=signed)
    return as_signed(requests.Request("POST", URL, data=BODY, headers=headers, auth=auth).prepare())


def refused(request: SignedRequest, header: str, *words: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(request, lookup, now=NOW)
    assert caught.value.header == header, str(caught.value)
    for word in words:
        assert word in caught.value.reason


def test_b12_default_signature_over_the_date_is_accepted():
    verified = verify(cavage(), lookup, now=NOW)
    assert (verified.key_id, verified.scheme, verified.body_covered) == ("key-1", "cavage", False)
    assert verified.expires_at == pytest.approx(NOW + 300, abs=1)


def test_signature_over_target_host_date_and_digest_covers_the_body():
    signed = cavage(extra={"Digest": DIGEST}, signed=["(request-target)", "host", "date", "digest"])
    assert verify(signed, lookup, now=NOW).body_covered is True


def test_each_bad_cavage_request_names_its_header():
    refused(cavage(offset=-301), "Date", "behind", "300")
    refused(cavage(offset=+301), "Date", "ahead")
    refused(cavage(secret="wrong"), "Authorization", "does not match")
    SECRETS["other"] = "s"
    try:
        mismatched = cavage()
        refused(
            SignedRequest(**{**mismatched.__dict__, "headers": {**mismatched.headers, "x-api-key": "other"}}),
            "X-Api-Key",
        )
    finally:
        del SECRETS["other"]
    refused(cavage(key_id="nobody"), "Authorization", "unknown key id")
    unparsable = cavage()
    refused(
        SignedRequest(**{**unparsable.__dict__, "headers": {**unparsable.headers, "date": "yesterday"}}),
        "Date",
        "HTTP date",
    )
    tampered = cavage()
    later = email.utils.formatdate(NOW + 5, usegmt=True)
    refused(SignedRequest(**{**tampered.__dict__, "headers": {**tampered.headers, "date": later}}), "Authorization")
    unsupported = cavage()
    header = unsupported.headers["authorization"].replace("hmac-sha256", "rsa-sha256")
    refused(
        SignedRequest(**{**unsupported.__dict__, "headers": {**unsupported.headers, "authorization": header}}),
        "Authorization",
        "hmac-sha256",
    )
    no_date = cavage(extra={"X-Thing": "1"}, signed=["x-thing"])
    refused(no_date, "Authorization", "Date")
    refused(as_signed(requests.Request("POST", URL, data=BODY).prepare()), "Authorization", "not signed")


def test_a_body_changed_under_a_signed_digest_is_refused():
    signed = cavage(extra={"Digest": DIGEST}, signed=["(request-target)", "host", "date", "digest"])
    refused(SignedRequest(**{**signed.__dict__, "body": BODY + b" "}), "Digest", "changed")


def test_signature_ids_tell_signatures_apart():
    first = verify(cavage(), lookup, now=NOW)
    assert verify(cavage(), lookup, now=NOW).signature_id == first.signature_id  # same Date, same signature
    assert verify(cavage(offset=1), lookup, now=NOW).signature_id != first.signature_id


class Keys(HTTPSignatureKeyResolver):
    def resolve_public_key(self, key_id: str) -> bytes:
        return SECRETS[key_id].encode()

    def resolve_private_key(self, key_id: str) -> bytes:
        return SECRETS.get(key_id, "unknown").encode()


def rfc9421(*, body: bytes = BODY, key_id: str = "key-1", created: float = NOW, digest: bool = True) -> SignedRequest:
    import datetime as dt

    prepared = requests.Request("POST", URL, data=body, headers={"Content-Type": "application/json"}).prepare()
    signer = HTTPMessageSigner(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=Keys())
    signer.sign(
        prepared,
        key_id=key_id,
        created=dt.datetime.fromtimestamp(created, tz=dt.UTC),
        covered_component_ids=("@method", "@authority", "@target-uri", "content-type"),
        body=body if digest else None,
    )
    return as_signed(prepared)


def test_rfc9421_signatures_are_verified():
    verified = verify(rfc9421(), lookup, now=NOW)
    assert (verified.scheme, verified.body_covered) == ("rfc9421", True)
    refused(rfc9421(created=NOW - 400), "Signature-Input", "behind")
    refused(rfc9421(digest=False), "Signature-Input", "content-digest")
    refused(rfc9421(key_id="nobody"), "Signature-Input", "unknown key id")
    tampered = rfc9421()
    refused(SignedRequest(**{**tampered.__dict__, "body": b"{}"}), "Content-Digest", "changed")
    moved = rfc9421()
    refused(SignedRequest(**{**moved.__dict__, "path": "/orchestra/api/project/end_project/"}), "Signature")


def test_orchestras_own_signatures_verify_here_and_with_httpsig():
    path = "/orchestra/api/project/create_project/?x=1"
    headers = {"Host": "api.example:8000"}
    added = sign_cavage("POST", path, headers, BODY, "key-1", "secret-1", now=NOW)
    request = SignedRequest("POST", path.split("?")[0], "x=1", "api.example:8000", "http", {**headers, **added}, BODY)
    assert verify(request, lookup, now=NOW).body_covered is True
    verifier = HeaderVerifier(
        headers={**headers, **added}, secret="secret-1", method="POST", path=path, host="api.example:8000"
    )
    assert verifier.verify() is True
    again = sign_cavage("POST", path, headers, BODY, "key-1", "secret-1", now=NOW)
    assert again["Authorization"] != added["Authorization"]  # a fresh request id each time
