"""Transcription app: sessions, segments, transcripts and the streaming endpoints."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class TranscriptionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "transcription"

    def ready(self) -> None:
        from sttproject import daphne
        from transcription.streaming.protocols.api_v1 import provider_error
        from transcription.uploads import jobs  # noqa: F401 (stops a deleted upload's job)

        daphne.install()  # close codes, message limit, handshake refusals with a status
        # An unsupported provider stops start-up (every server and manage.py command), not the first client.
        error = provider_error(settings.STT_PROVIDER)
        if error is not None:
            raise ImproperlyConfigured(error)
        # So do wake-word settings the backend cannot run (a missing Porcupine, an unknown keyword).
        from transcription.wake import startup_error

        error = startup_error()
        if error is not None:
            raise ImproperlyConfigured(error)
