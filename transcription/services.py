"""Writes for transcription sessions, segments and transcripts."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from accounts.services import usage_add
from transcription.models import Segment, SessionStatus, Transcript, TranscriptionSession
from transcription.selectors import session_is_live

log = logging.getLogger(__name__)

# Sent after a deletion commits (`session_id`): the uploads package stops its job and removes the audio.
session_deleted = Signal()


def session_start(
    *,
    user,
    endpoint: str,
    api_key=None,
    sample_rate: int | None = None,
    language: str = "",
    models_used: dict | None = None,
    options: dict | None = None,
    client_info: dict | None = None,
    status: str = SessionStatus.ACTIVE,
) -> TranscriptionSession:
    with transaction.atomic():
        session = TranscriptionSession.objects.create(
            user=user,
            api_key=api_key,
            endpoint=endpoint,
            status=status,
            sample_rate=sample_rate,
            language=language,
            models_used=models_used or {},
            options=options or {},
            client_info=client_info or {},
        )
        usage_add(user=user, sessions=1)
    return session


def segment_finalize(
    *,
    session: TranscriptionSession,
    index: int,
    segment_id: str,
    start_s: float,
    end_s: float,
    text: str,
    confidence: float | None = None,
    language: str = "",
    words: list | None = None,
    speaker: str = "",
    end_reason: str = "",
    latency_ms: float | None = None,
) -> Segment:
    """Store one final segment (idempotent on (session, index))."""
    segment, _ = Segment.objects.update_or_create(
        session=session,
        index=index,
        defaults={
            "segment_id": segment_id,
            "start_s": start_s,
            "end_s": end_s,
            "text": text,
            "confidence": confidence,
            "language": language,
            "words": words or [],
            "speaker": speaker,
            "end_reason": end_reason,
            "latency_ms": latency_ms,
        },
    )
    return segment


def transcript_assemble(*, session: TranscriptionSession) -> Transcript:
    texts = [
        t.strip() for t in session.segments.order_by("index").values_list("text", flat=True) if t.strip()
    ]
    full = " ".join(texts)
    transcript, _ = Transcript.objects.update_or_create(
        session=session, defaults={"text": full, "word_count": len(full.split())}
    )
    return transcript


def session_end(
    *,
    session: TranscriptionSession,
    end_reason: str,
    status: str = SessionStatus.COMPLETED,
    error: str = "",
) -> TranscriptionSession:
    """Close the session and assemble its transcript (safe to call more than once)."""
    with transaction.atomic():
        transcript_assemble(session=session)
        session.status = status
        session.end_reason = end_reason
        session.error = error
        session.ended_at = session.ended_at or timezone.now()
        session.save(update_fields=["status", "end_reason", "error", "ended_at"])
    return session


def session_usage_add(*, session: TranscriptionSession, seconds: float) -> None:
    """Count received audio on the session and the user's monthly usage (atomic)."""
    if seconds <= 0:
        return
    with transaction.atomic():
        TranscriptionSession.objects.filter(pk=session.pk).update(audio_seconds=F("audio_seconds") + seconds)
        usage_add(user=session.user, streamed_seconds=seconds)


class SessionActive(Exception):
    """The session is a stream that may still be receiving audio: it cannot be deleted yet."""

    def __init__(self, message: str = "The session is still streaming; stop it first.") -> None:
        super().__init__(message)
        self.message = message


def session_delete(*, session: TranscriptionSession) -> None:
    """Delete a session with its segments, transcript and stored audio; stops its upload job.

    Raises SessionActive for a stream that is still live. An upload being transcribed is not: its
    job is cancelled.
    """
    if session_is_live(session=session):
        raise SessionActive()
    session_id = session.pk
    with transaction.atomic():
        session.delete()

        transaction.on_commit(
            lambda: session_deleted.send(sender=TranscriptionSession, session_id=session_id)
        )
