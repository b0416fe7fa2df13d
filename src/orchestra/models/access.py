"""Credentials for the HTTP API: client API keys, personal tokens, and signatures already seen."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    """A client (project) API key. Requests are signed with its secret (HMAC), so the server must be able
    to compute that secret: it is derived from `ORCHESTRA_API_SIGNING_KEY` and this row's `salt`, and the
    row keeps only a SHA-256 of it. A database dump alone yields no usable secret."""

    name = models.CharField(max_length=200, unique=True)
    key_id = models.CharField(max_length=64, unique=True)
    salt = models.CharField(max_length=64)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


class PersonalToken(models.Model):
    """A worker's token for the worker API (`Authorization: Token …`); only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orchestra_tokens")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=12, help_text="the token's first characters, to tell tokens apart")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user_id", "created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class SeenSignature(models.Model):
    """A signature accepted once; the same signature again is a replay. Rows past `expires_at` can go:
    by then the request's own Date is too old to be accepted anyway."""

    signature_id = models.CharField(max_length=64, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.signature_id
