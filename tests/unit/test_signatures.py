"""`orchestra.api.signatures` against requests signed by the real client libraries, in memory.

B12's client signs with `httpsig` (draft-cavage); RFC 9421 clients are represented by `http-message-signatures`.
The verifier implements both itself (standard library only), so these tests are what ties it to the clients.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms
from httpsig.requests_auth import HTTPSignatureAuth
from httpsig.verify import HeaderVerifier

from orchestra.api import signatures
from orchestra.api.signatures import SignatureError, SignedRequest, Verified, sign_cavage, verify

NOW = float(int(time.time()))  # whole seconds, as HTTP dates have: offsets below are exact
SECRETS = {"key-1": "secret-1", "team,one": "secret-2"}
URL = "http://api.example:8000/orchestra/api/project/create_project/"
BODY = json.dumps({"workflow_slug": "simple", "workflow_version_slug": "v1"}).encode()
FULL = ["(request-target)", "host", "date", "digest"]


def lookup(key_id: str) -> str | None:
    return SECRETS.get(key_id)


def http_date(offset: float = 0) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


def digest_of(body: bytes, algorithm: str = "SHA-256") -> str:
    hashed = hashlib.new(algorithm.replace("-", "").lower(), body).digest()
    return f"{algorithm}=" + base64.b64encode(hashed).decode()


def as_signed(prepared: requests.PreparedRequest) -> SignedRequest:
    """What the server sees of a prepared request; header names keep the client's case."""
    parts = urlsplit(prepared.url or "")
    body = prepared.body or b""
    return SignedRequest(
        method=prepared.method or "GET",
        path=parts.path,
        query=parts.query,
        authority=parts.netloc,
        scheme=parts.scheme,
        headers=dict(prepared.headers),
        body=body.encode() if isinstance(body, str) else body,
    )


def header(request: SignedRequest, name: str) -> str:
    """httpsig writes `authorization` in lower case, http-message-signatures `Signature-Input` capitalised."""
    return next(v for k, v in request.headers.items() if k.lower() == name.lower())


def with_headers(request: SignedRequest, **changes: str | None) -> SignedRequest:
    """`request` with headers set (or removed, for None); names are given in Python form, X_Api_Key."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    for name, value in changes.items():
        headers.pop(name.replace("_", "-").lower(), None)
        if value is not None:
            headers[name.replace("_", "-")] = value
    return replace(request, headers=headers)


def cavage(
    *,
    date: str | None = None,
    key_id: str = "key-1",
    secret: str | None = None,
    signed: list[str] | None = None,
    algorithm: str = "hmac-sha256",
    url: str = URL,
    body: bytes = BODY,
    extra: dict[str, str] | None = None,
) -> SignedRequest:
    """A request signed by httpsig exactly as B12's client sends it; `signed` chooses the signed headers."""
    headers = {"Date": date or http_date(), "X-Api-Key": key_id, "Content-Type": "application/json", **(extra or {})}
    if signed and "digest" in signed:
        headers.setdefault("Digest", digest_of(body))
    auth = HTTPSignatureAuth(
        key_id=key_id, secret=secret or SECRETS.get(key_id, "?"), algorithm=algorithm, headers=signed
    )
    prepared = requests.Request("POST", url, data=body, headers=headers).prepare()
    return as_signed(auth(prepared))


def refused(request: SignedRequest, header: str, *words: str) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify(request, lookup, now=NOW)
    error = caught.value
    assert error.header == header, str(error)
    assert str(error) == f"{header}: {error.reason}"
    for word in words:
        assert word in error.reason, error.reason
    return error


# draft-cavage, as httpsig sends it ---------------------------------------------------------------------------


def test_b12s_default_signature_over_the_date_is_accepted_but_does_not_cover_the_body():
    request = cavage()
    assert 'headers="' not in header(request, "Authorization")  # httpsig's default: the Date only
    verified = verify(request, lookup, now=NOW)
    assert verified == Verified("key-1", "cavage", verified.signature_id, NOW + 300, body_covered=False)
    assert re.fullmatch(r"[0-9a-f]{64}", verified.signature_id)


def test_signature_over_target_host_date_and_digest_covers_the_body():
    verified = verify(cavage(signed=FULL, url=URL + "?x=1&name=a%20b"), lookup, now=NOW)
    assert (verified.scheme, verified.body_covered) == ("cavage", True)


def test_max_skew_is_inclusive_and_configurable():
    assert verify(cavage(date=http_date(-300)), lookup, now=NOW).expires_at == NOW
    assert verify(cavage(date=http_date(+300)), lookup, now=NOW).key_id == "key-1"
    with pytest.raises(SignatureError, match="the limit is 10 s"):
        verify(cavage(date=http_date(-11)), lookup, now=NOW, max_skew=10)


@pytest.mark.parametrize(("offset", "word"), [(-301, "behind"), (+301, "ahead")])
def test_a_stale_or_future_date_is_refused_with_its_offset(offset, word):
    refused(cavage(date=http_date(offset)), "Date", "301 s", word, "300 s", "current time")


def test_an_unparsable_date_is_refused():
    refused(cavage(date="yesterday"), "Date", "'yesterday'", "HTTP date")


def test_a_signed_date_missing_from_the_request_is_refused():
    refused(with_headers(cavage(), Date=None), "Date", "missing")


def test_a_signed_header_missing_from_the_request_is_named():
    request = cavage(signed=["date", "x-custom"], extra={"X-Custom": "1"})
    refused(with_headers(request, X_Custom=None), "X-Custom", "missing")


def test_a_signature_that_does_not_cover_the_date_is_refused():
    refused(cavage(signed=["(request-target)", "host"]), "Authorization", "Date", "replayed")


def test_a_wrong_secret_is_refused():
    refused(cavage(secret="not-the-secret"), "Authorization", "does not match", "'key-1'")


def test_an_unknown_key_is_refused():
    refused(cavage(key_id="nobody", secret="s"), "Authorization", "unknown key id 'nobody'")


def test_an_api_key_header_other_than_the_signing_key_is_refused():
    refused(with_headers(cavage(), X_Api_Key="team,one"), "X-Api-Key", "'team,one'", "'key-1'")


def test_the_api_key_header_is_optional():
    assert verify(with_headers(cavage(), X_Api_Key=None), lookup, now=NOW).key_id == "key-1"


def test_quoted_parameters_may_hold_commas():
    assert verify(cavage(key_id="team,one"), lookup, now=NOW).key_id == "team,one"


def test_algorithms_other_than_hmac_sha256_are_refused():
    refused(cavage(algorithm="hmac-sha512"), "Authorization", "'hmac-sha512'", "hmac-sha256")


def test_hs2019_is_taken_as_hmac_sha256():
    request = cavage()
    hs2019 = header(request, "Authorization").replace('algorithm="hmac-sha256"', 'algorithm="hs2019"')
    assert verify(with_headers(request, Authorization=hs2019), lookup, now=NOW).scheme == "cavage"


@pytest.mark.parametrize("drop", ["keyId", "signature"])
def test_key_id_and_signature_are_required(drop):
    request = cavage()
    without = re.sub(rf'{drop}="[^"]*",?', "", header(request, "Authorization"))
    refused(with_headers(request, Authorization=without), "Authorization", "keyId and signature")


def test_a_body_changed_under_a_signed_digest_is_refused():
    request = cavage(signed=FULL)
    refused(replace(request, body=BODY.replace(b"simple", b"other!")), "Digest", "body", "changed after signing")


def test_a_changed_signed_header_is_refused():
    request = cavage(signed=[*FULL, "content-type"])
    refused(with_headers(request, Content_Type="text/plain"), "Authorization", "does not match", "headers")
    refused(replace(request, path="/orchestra/api/project/end_project/"), "Authorization", "does not match")
    refused(replace(request, query="x=2"), "Authorization", "does not match")


def test_sha_512_digests_are_checked_and_unknown_ones_are_not_enough():
    sha512 = cavage(signed=["date", "digest"], extra={"Digest": digest_of(BODY, "SHA-512")})
    assert verify(sha512, lookup, now=NOW).body_covered is True
    refused(replace(sha512, body=b"{}"), "Digest", "changed")
    mixed = cavage(signed=["date", "digest"], extra={"Digest": f"UNIXsum=30637, {digest_of(BODY)}"})
    assert verify(mixed, lookup, now=NOW).body_covered is True
    md5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
    refused(cavage(signed=["date", "digest"], extra={"Digest": f"MD5={md5}"}), "Digest", "SHA-256")


def test_an_unsigned_request_is_refused():
    refused(as_signed(requests.Request("POST", URL, data=BODY).prepare()), "Authorization", "not signed", "9421")


def test_a_signed_created_time_may_stand_in_for_the_date():
    """draft-cavage-12 `(created)`, which httpsig 1.3 cannot send: the signing string is built by hand."""
    created = int(NOW) - 10
    message = f"(request-target): post /x\n(created): {created}"
    signature = base64.b64encode(hmac.new(b"secret-1", message.encode(), hashlib.sha256).digest()).decode()
    params = f'keyId="key-1",algorithm="hs2019",created={created},headers="(request-target) (created)"'
    authorization = f'Signature {params},signature="{signature}"'
    request = SignedRequest("POST", "/x", "", "h", "http", {"Authorization": authorization}, b"")
    assert verify(request, lookup, now=NOW).expires_at == created + 300
    with pytest.raises(SignatureError, match="created time is 10 s behind"):
        verify(request, lookup, now=NOW, max_skew=5)


def test_signature_ids_tell_signatures_apart():
    first = verify(cavage(), lookup, now=NOW)
    assert verify(cavage(), lookup, now=NOW).signature_id == first.signature_id  # same Date: same signature
    assert verify(cavage(date=http_date(-1)), lookup, now=NOW).signature_id != first.signature_id
    assert verify(cavage(signed=FULL), lookup, now=NOW).signature_id != first.signature_id


# RFC 9421, as http-message-signatures sends it ------------------------------------------------------------


class Keys(HTTPSignatureKeyResolver):
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets

    def resolve_public_key(self, key_id: str) -> bytes | None:
        secret = self.secrets.get(key_id)
        return None if secret is None else secret.encode()

    def resolve_private_key(self, key_id: str) -> bytes:
        return self.secrets[key_id].encode()


def rfc9421(
    *,
    url: str = URL,
    method: str = "POST",
    body: bytes = BODY,
    key_id: str = "key-1",
    secret: str | None = None,
    created: float = NOW,
    expires: float | None = None,
    digest: bool = True,
    components: tuple[str, ...] = ("@method", "@authority", "@target-uri", "content-type"),
    label: str | None = None,
    **options: object,
) -> requests.PreparedRequest:
    """A request signed by http-message-signatures' HTTPMessageSigner with HMAC-SHA256."""
    prepared = requests.Request(method, url, data=body, headers={"Content-Type": "application/json"}).prepare()
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256, key_resolver=Keys({key_id: secret or SECRETS.get(key_id, "?")})
    )
    signer.sign(
        prepared,
        key_id=key_id,
        label=label,
        created=dt.datetime.fromtimestamp(created, tz=dt.UTC),
        expires=None if expires is None else dt.datetime.fromtimestamp(expires, tz=dt.UTC),
        covered_component_ids=components,
        body=body if digest else None,  # with the body, the library adds Content-Digest and covers it
        **options,
    )
    return prepared


def test_rfc9421_with_content_digest_is_accepted():
    prepared = rfc9421()
    assert prepared.headers["Content-Digest"].startswith("sha-256=:")
    verified = verify(as_signed(prepared), lookup, now=NOW)
    assert verified == Verified("key-1", "rfc9421", verified.signature_id, NOW + 300, body_covered=True)


@pytest.mark.parametrize(
    ("url", "components"),
    [
        (URL, ("@method", "@authority", "@target-uri")),
        (URL + "?x=1&name=a%20b", ("@method", "@authority", "@target-uri", "content-type")),
        (URL + "?x=1", ("@method", "@scheme", "@path", "@query", "@request-target", "content-length")),
        ("https://API.example:443/orchestra/api/", ("@authority", "@scheme", "@path", "@target-uri")),
        ("http://127.0.0.1:8000/orchestra/api/project/", ("@authority", "@query", "@request-target")),
    ],
)
def test_rfc9421_derived_components_match_the_library(url, components):
    prepared = rfc9421(url=url, components=components)
    assert verify(as_signed(prepared), lookup, now=NOW).body_covered is True
    assert HTTPMessageVerifier(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=Keys(SECRETS)).verify(
        prepared, max_age=None
    )  # the test's request is one the library itself accepts


def test_rfc9421_signature_parameters_are_reserialized_as_signed():
    """nonce, tag (with quotes and backslashes), expires and no alg: the @signature-params line must match."""
    prepared = rfc9421(expires=NOW + 60, nonce="n-1", tag='orchestra "x" \\ y', include_alg=False)
    assert verify(as_signed(prepared), lookup, now=NOW).expires_at == NOW + 60
    # Extra spaces inside the inner list are valid structured-field syntax and sign the same base.
    spaced = prepared.headers["Signature-Input"].replace('" "', '"   "').replace("(", "(  ")
    assert verify(with_headers(as_signed(prepared), Signature_Input=spaced), lookup, now=NOW).key_id == "key-1"


def test_rfc9421_without_a_body_needs_no_digest():
    prepared = rfc9421(method="GET", body=b"", digest=False, components=("@method", "@target-uri"))
    assert verify(as_signed(prepared), lookup, now=NOW).body_covered is False


def test_rfc9421_sig1_is_chosen_among_several_signatures():
    """Labels are not signed, so one is chosen by name: `sig1`, else the first (here `other`, which fails)."""
    prepared = rfc9421(label="other", secret="not-the-secret")
    refused(as_signed(prepared), "Signature", "does not match")
    signer = HTTPMessageSigner(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=Keys(SECRETS))
    signer.sign(
        prepared,
        key_id="key-1",
        label="sig1",
        created=dt.datetime.fromtimestamp(NOW, tz=dt.UTC),
        covered_component_ids=("@method", "@target-uri", "content-digest"),
        use_existing_digest=True,
        append_if_signature_exists=True,
    )
    assert prepared.headers["Signature-Input"].startswith("other=")
    assert verify(as_signed(prepared), lookup, now=NOW).key_id == "key-1"


@pytest.mark.parametrize(("offset", "word"), [(-301, "behind"), (+301, "ahead")])
def test_rfc9421_created_too_old_or_too_new_is_refused(offset, word):
    refused(as_signed(rfc9421(created=NOW + offset)), "Signature-Input", "created", "301 s", word)


def test_rfc9421_expired_signature_is_refused():
    refused(as_signed(rfc9421(created=NOW - 10, expires=NOW - 1)), "Signature-Input", "expired")


def test_rfc9421_body_changed_after_signing_is_refused_on_content_digest():
    request = as_signed(rfc9421())
    refused(replace(request, body=BODY.replace(b"simple", b"other!")), "Content-Digest", "changed after signing")


def test_rfc9421_body_must_be_covered_by_content_digest():
    refused(as_signed(rfc9421(digest=False)), "Signature-Input", "content-digest must be covered")


def test_rfc9421_wrong_key_is_refused_on_signature():
    refused(as_signed(rfc9421(secret="not-the-secret")), "Signature", "does not match", "'key-1'")


def test_rfc9421_changed_component_is_refused_on_signature():
    request = as_signed(rfc9421())
    refused(replace(request, path="/orchestra/api/project/end_project/"), "Signature", "does not match")
    refused(with_headers(request, Content_Type="text/plain"), "Signature", "does not match")


def test_rfc9421_unknown_keyid_is_refused():
    refused(as_signed(rfc9421(key_id="nobody")), "Signature-Input", "unknown key id 'nobody'")


@pytest.mark.parametrize(
    ("pattern", "replacement", "words"),
    [
        (r';keyid="[^"]*"', "", ["keyid", "required"]),
        (r";created=\d+", "", ["created", "required"]),
        (r'alg="hmac-sha256"', 'alg="ed25519"', ["'ed25519'", "hmac-sha256"]),
        (r'"content-type"', '"content-type";sf', ["not supported"]),
        (r'"@method"', '"@status"', ["'@status'", "not supported"]),
        (r"=\(", "=(oops", ["structured-field"]),
    ],
)
def test_rfc9421_malformed_signature_input_is_refused(pattern, replacement, words):
    request = as_signed(rfc9421())
    changed = re.sub(pattern, replacement, header(request, "Signature-Input"))
    refused(with_headers(request, Signature_Input=changed), "Signature-Input", *words)


def test_rfc9421_needs_both_headers():
    request = as_signed(rfc9421())
    refused(with_headers(request, Signature_Input=None), "Signature-Input", "both")
    refused(with_headers(request, Signature="other=:AAAA:"), "Signature", "no signature labelled 'pyhms'")


def test_rfc9421_signature_ids_tell_signatures_apart():
    first = verify(as_signed(rfc9421()), lookup, now=NOW).signature_id
    assert verify(as_signed(rfc9421()), lookup, now=NOW).signature_id == first
    assert verify(as_signed(rfc9421(created=NOW - 1)), lookup, now=NOW).signature_id != first


# Orchestra's own signatures -------------------------------------------------------------------------------


def test_sign_cavage_verifies_here_and_with_httpsig():
    path = "/orchestra/api/project/create_project/?x=1"
    headers = {"Host": "api.example:8000", "Content-Type": "application/json"}
    added = sign_cavage("POST", path, headers, BODY, "key-1", "secret-1", now=NOW)
    assert added["Date"] == http_date() and added["Digest"] == digest_of(BODY) and added["X-Api-Key"] == "key-1"
    request = SignedRequest("POST", path.split("?")[0], "x=1", "api.example:8000", "http", {**headers, **added}, BODY)
    verified = verify(request, lookup, now=NOW)
    assert (verified.key_id, verified.scheme, verified.body_covered) == ("key-1", "cavage", True)
    httpsig = HeaderVerifier(
        headers={**headers, **added}, secret="secret-1", method="POST", path=path, required_headers=FULL
    )
    assert httpsig.verify() is True
    refused(replace(request, body=b"{}"), "Digest", "changed")


def test_sign_cavage_makes_each_signature_unique():
    """Two identical calls in the same second must not look like a replay of each other."""
    headers = {"host": "h"}
    first = sign_cavage("POST", "/x/", headers, b"", "key-1", "secret-1", now=NOW)
    second = sign_cavage("POST", "/x/", headers, b"", "key-1", "secret-1", now=NOW)
    assert first["X-Request-Id"] != second["X-Request-Id"]
    ids = {
        verify(SignedRequest("POST", "/x/", "", "h", "http", {**headers, **h}, b""), lookup, now=NOW).signature_id
        for h in (first, second)
    }
    assert len(ids) == 2


def test_sign_cavage_needs_the_host():
    with pytest.raises(ValueError, match="Host"):
        sign_cavage("POST", "/x/", {}, b"", "key-1", "secret-1", now=NOW)


def test_the_verifier_needs_only_the_standard_library():
    """The server verifies without Django and without the client libraries, which are development dependencies."""
    tree = ast.parse(Path(signatures.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__"} <= sys.stdlib_module_names
