"""Transcription app: sessions, segments, transcripts and the streaming endpoints."""

from __future__ import annotations

from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "transcription"

    def ready(self) -> None:
        from transcription import daphne_close_codes

        daphne_close_codes.install()
