"""Audit app: who changed keys, quotas and runtime settings, and which clients were locked out."""

from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit import receivers  # noqa: F401  (django-axes' lock-out signal)
