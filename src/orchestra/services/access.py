"""API credentials: client API keys (signed requests), personal tokens (worker API), seen signatures.

Secrets are shown once, when created, and never stored: an API key keeps a salt and the SHA-256 of its
secret, a token the SHA-256 of itself.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from orchestra import conf
from orchestra.engine.errors import Conflict, NotFound, ValidationError
from orchestra.models import ApiKey, PersonalToken, SeenSignature, Worker
from orchestra.services._base import ActorLike, db, quote, service
from orchestra.services._loading import fetch

TOKEN_PREFIX = "otk_"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _signing_key() -> bytes:
    key = conf.get("ORCHESTRA_API_SIGNING_KEY") or f"orchestra-api-keys:{settings.SECRET_KEY}"
    return str(key).encode()


def _derive_secret(key_id: str, salt: str) -> str:
    digest = hmac.new(_signing_key(), f"{key_id}:{salt}".encode(), hashlib.sha256).hexdigest()
    return f"oks_{digest}"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str


def apikey_create(*, name: str, actor: ActorLike = None) -> IssuedKey:
    """A new client API key; its secret is in the result and nowhere else."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("name: give the key a name (who or what uses it)", field="name")
    key_id = f"okey_{secrets.token_hex(8)}"
    salt = secrets.token_hex(16)
    secret = _derive_secret(key_id, salt)
    with service(actor) as tx:
        if ApiKey.objects.filter(name=name).exists():
            raise Conflict(f"name: an API key named {name!r} exists already; pick another name", field="name")
        key = ApiKey.objects.create(
            name=name, key_id=key_id, salt=salt, secret_hash=_sha256(secret), created_at=tx.now, created_by=tx.actor
        )
        tx.event("apikey_created", project_id=None, key_id=key_id, name=name)
    return IssuedKey(key, secret)


def apikey_revoke(*, key: str, actor: ActorLike = None) -> ApiKey:
    """Revoke a key by its id or its name; signed requests with it are refused from now on."""
    with service(actor) as tx:
        found = ApiKey.objects.filter(key_id=key).first() or ApiKey.objects.filter(name=key).first()
        if found is None:
            raise NotFound(f"no API key with id or name {key!r} (see `orchestra apikey list`)", key=key)
        if found.revoked_at is None:
            found.revoked_at = tx.now
            found.save(update_fields=["revoked_at"])
            tx.event("apikey_revoked", project_id=None, key_id=found.key_id, name=found.name)
    return found


def apikey_secret(key_id: str) -> str | None:
    """The HMAC secret for a key id, or None when unknown or revoked. Settings credentials first (B12)."""
    configured = conf.get("ORCHESTRA_PROJECT_API_CREDENTIALS") or {}
    if key_id in configured:
        return str(configured[key_id])
    table = quote(ApiKey._meta.db_table)
    found = fetch(
        f"SELECT salt, secret_hash FROM {table} WHERE key_id = %s AND revoked_at IS NULL", [key_id], (None, None)
    )
    if not found:
        return None
    salt, secret_hash = found[0]
    secret = _derive_secret(key_id, salt)
    # A mismatch means the signing key changed since the key was issued: the old secret is gone.
    return secret if hmac.compare_digest(_sha256(secret), secret_hash) else None


@functools.lru_cache(maxsize=8)
def _record_signature_sql(vendor: str, own_transaction: bool, table: str) -> str:
    if vendor == "postgresql" and own_transaction:
        # Its own transaction, committed without waiting for the WAL to reach the disk (set_config(..., true)
        # lasts until the end of this one statement's transaction): the flush was about a third of a signed
        # read's time. A crash could forget the last fraction of a second of signatures, so a request
        # replayed within those requests' five minutes after a crash could be accepted once more; the
        # requests themselves, and everything else, are committed durably as before. Inside a caller's
        # transaction the setting would cover the caller's writes too, so there the insert is the plain one.
        return (
            "WITH durability AS (SELECT set_config('synchronous_commit', 'off', true))"
            f" INSERT INTO {table} (signature_id, expires_at) SELECT CAST(%s AS varchar), CAST(%s AS timestamptz)"
            " FROM durability ON CONFLICT DO NOTHING"
        )
    return f"INSERT INTO {table} (signature_id, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING"


def signature_first_use(signature_id: str, expires_at: datetime) -> bool:
    """Record a signature; False if it was recorded before (a replay). Expired rows are swept now and then."""
    conn = db()
    table = quote(SeenSignature._meta.db_table)
    expires = SeenSignature._meta.get_field("expires_at").get_db_prep_value(expires_at, conn)
    with conn.cursor() as cursor:  # one statement, committed on its own: a refused request keeps no lock
        cursor.execute(
            _record_signature_sql(conn.vendor, conn.get_autocommit() and not conn.in_atomic_block, table),
            [signature_id, expires],
        )
        first = cursor.rowcount == 1
        if first and secrets.randbelow(200) == 0:
            now = SeenSignature._meta.get_field("expires_at").get_db_prep_value(timezone.now(), conn)
            cursor.execute(f"DELETE FROM {table} WHERE expires_at < %s", [now])
    return first


def token_create(*, user: AbstractBaseUser | str, name: str = "", actor: ActorLike = None) -> tuple[PersonalToken, str]:
    """A personal API token for a user; the raw token is returned once."""
    if isinstance(user, str):
        try:
            user = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise NotFound(f"no user named {user!r}", username=user) from None
    raw = TOKEN_PREFIX + secrets.token_urlsafe(30)
    with service(actor if actor is not None else user) as tx:
        token = PersonalToken.objects.create(
            user=user,
            name=(name or "").strip() or f"token {timezone.localtime(tx.now):%Y-%m-%d %H:%M}",
            prefix=raw[:12],
            token_hash=_sha256(raw),
            created_at=tx.now,
        )
        tx.event("token_created", project_id=None, user=user.get_username(), token=token.prefix)
    return token, raw


def token_revoke(*, token_id: int, user: AbstractBaseUser | None = None, actor: ActorLike = None) -> PersonalToken:
    """Revoke a token; given `user`, only that user's own token."""
    with service(actor if actor is not None else user) as tx:
        tokens = PersonalToken.objects.select_related("user").filter(pk=token_id)
        if user is not None:
            tokens = tokens.filter(user=user)
        token = tokens.first()
        if token is None:
            raise NotFound(f"token {token_id} does not exist", token_id=token_id)
        if token.revoked_at is None:
            token.revoked_at = tx.now
            token.save(update_fields=["revoked_at"])
            tx.event("token_revoked", project_id=None, user=token.user.get_username(), token=token.prefix)
    return token


@functools.lru_cache(maxsize=8)
def _token_sql(vendor: str) -> tuple[str, tuple[Any, ...], tuple[str, ...], tuple[str, ...]]:
    user = get_user_model()
    user_fields = list(user._meta.concrete_fields)
    worker_fields = list(Worker._meta.concrete_fields)  # Model.from_db wants them in the model's order
    columns = [f"u.{quote(f.column)}" for f in user_fields] + [f"w.{quote(f.column)}" for f in worker_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(PersonalToken._meta.db_table)} k"
        f" JOIN {quote(user._meta.db_table)} u ON u.{quote(user._meta.pk.column)} = k.user_id"  # type: ignore[union-attr]
        f" LEFT JOIN {quote(Worker._meta.db_table)} w ON w.user_id = k.user_id"
        f" WHERE k.token_hash = %s AND k.revoked_at IS NULL AND u.{quote(user._meta.get_field('is_active').column)}"
        " = %s"
    )
    return (
        sql,
        (*user_fields, *worker_fields),
        tuple(f.attname for f in user_fields),
        tuple(f.attname for f in worker_fields),
    )


def token_caller(raw: str) -> tuple[AbstractBaseUser, Worker | None] | None:
    """The active user a raw token belongs to and their worker (None if they are not one), or None.

    One prepared statement: this runs on every request of the worker API."""
    conn = db()
    sql, types, user_names, worker_names = _token_sql(conn.vendor)
    found = fetch(sql, [_sha256(raw), True], types)
    if not found:
        return None
    values = found[0]
    user = get_user_model().from_db(conn.alias, user_names, values[: len(user_names)])
    worker_values = values[len(user_names) :]
    if worker_values[0] is None:
        return user, None
    worker = Worker.from_db(conn.alias, worker_names, worker_values)
    worker.user = user
    return user, worker


def signature_expiry(expires_at: float) -> datetime:
    return datetime.fromtimestamp(expires_at, tz=UTC) + timedelta(seconds=1)
