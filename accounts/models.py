"""Data model for API keys, per-user quotas, monthly usage and active streams."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    STREAM = "stream", "Stream audio"
    HISTORY_READ = "history:read", "Read history"
    HISTORY_WRITE = "history:write", "Write history (upload, delete)"


ALL_SCOPES = [choice.value for choice in Scope]


class ApiKey(models.Model):
    """A revocable credential. Only a hash of the secret is stored; the prefix is public."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name or 'unnamed'})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def is_active(self, now=None) -> bool:
        return not self.is_revoked and not self.is_expired(now)

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class Quota(models.Model):
    """Per-user limits; users without a row get settings.STT_DEFAULT_QUOTA."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    monthly_audio_seconds = models.PositiveIntegerField(help_text="Audio seconds per calendar month")
    max_concurrent_streams = models.PositiveIntegerField()
    max_session_seconds = models.PositiveIntegerField()
    max_upload_bytes = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Quota for {self.user}"


class Usage(models.Model):
    """Audio and sessions used by one user in one calendar month (UTC)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage")
    month = models.DateField(help_text="First day of the month")
    audio_seconds_streamed = models.FloatField(default=0.0)
    audio_seconds_uploaded = models.FloatField(default=0.0)
    sessions = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "usage"
        constraints = [models.UniqueConstraint(fields=["user", "month"], name="usage_unique_user_month")]
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.user} {self.month:%Y-%m}"

    @property
    def audio_seconds(self) -> float:
        return self.audio_seconds_streamed + self.audio_seconds_uploaded


class ActiveStream(models.Model):
    """A stream admitted and still alive; rows with an old heartbeat are stale and ignored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="active_streams"
    )
    endpoint = models.CharField(max_length=32)
    server = models.CharField(max_length=100, blank=True, help_text="host:pid of the Daphne process")
    speaking = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Audio seconds drawn from the monthly allowance so far, and those billed; the difference is
    # held for this stream, so concurrent streams cannot spend the same seconds twice.
    reserved_seconds = models.FloatField(default=0.0)
    billed_seconds = models.FloatField(default=0.0)

    class Meta:
        indexes = [models.Index(fields=["user", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.user} {self.endpoint} {self.id}"


class StreamToken(models.Model):
    """A short-lived, single-use credential for one stream, minted for a browser (accounts/tokens.py).

    The token itself is signed and names this row; only the row's `jti` is stored, never the token.
    Redeeming it sets `used_at` (once: a second use is refused), so a leaked token opens one stream
    at most, within its lifetime.
    """

    jti = models.CharField(max_length=32, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stream_tokens")
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="stream_tokens"
    )
    scope = models.CharField(max_length=32, default=Scope.STREAM)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    max_session_seconds = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} token {self.jti[:8]}"


class AccountSettings(models.Model):
    """A user's own defaults (None: the server's)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_settings"
    )
    store_audio = models.BooleanField(
        null=True,
        blank=True,
        help_text="Keep the audio of new sessions (empty: the server's STT_STORE_AUDIO)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "account settings"

    def __str__(self) -> str:
        return f"Settings of {self.user}"
