"""One row per security-relevant change or event; rows are written once and never edited."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Action(models.TextChoices):
    KEY_CREATED = "key_created", "API key created"
    KEY_UPDATED = "key_updated", "API key changed"
    KEY_REVOKED = "key_revoked", "API key revoked"
    QUOTA_CHANGED = "quota_changed", "Quota changed"
    RUNTIME_CONFIG_CHANGED = "runtime_config_changed", "Runtime settings changed"
    LOCKOUT = "lockout", "Locked out (login or API-key failures)"


class AuditEvent(models.Model):
    """What happened (`action`), when, by whom (`actor`; none: the shell, or an anonymous client),
    to what (`target`, readable), from which client address, with the particulars in `details`."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The actor's user name as it was, kept when the user is renamed or deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True, help_text="The client's address")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "-created_at"])]

    def __str__(self) -> str:
        who = self.actor_name or "-"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target} by {who}"
