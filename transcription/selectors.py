"""Reads for transcription sessions, segments and transcripts."""

from __future__ import annotations

from django.db.models import QuerySet

from transcription.models import Segment, TranscriptionSession


def session_list(*, user) -> QuerySet[TranscriptionSession]:
    return TranscriptionSession.objects.filter(user=user).select_related("transcript").order_by("-started_at")


def session_get(*, user, session_id) -> TranscriptionSession | None:
    return session_list(user=user).filter(pk=session_id).first()


def segment_list(*, session: TranscriptionSession) -> QuerySet[Segment]:
    return session.segments.order_by("index")
