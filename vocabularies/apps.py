"""Vocabularies app: named lists of key terms per user."""

from __future__ import annotations

from django.apps import AppConfig


class VocabulariesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "vocabularies"
    verbose_name = "Key-term vocabularies"
