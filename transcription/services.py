"""Writes for transcription sessions, segments and transcripts."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from accounts.services import quota_lock, stream_billed_add, usage_add
from transcription.models import (
    Segment,
    SessionSpeaker,
    SessionStatus,
    SessionTopic,
    Transcript,
    TranscriptionSession,
)
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
            options=_without_nul(options or {}),
            client_info=_without_nul(client_info or {}),
        )
        usage_add(user=user, sessions=1)
    return session


def _without_nul(value):
    """The JSON with NUL characters dropped from its strings: PostgreSQL's jsonb cannot hold
    U+0000, and a client's `tag=%00` must not stop its stream at admission."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


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
    sentiment: str = "",
    sentiment_score: float | None = None,
    end_reason: str = "",
    latency_ms: float | None = None,
    analysis: dict | None = None,
    wake_word: str = "",
) -> Segment:
    """Store one final segment (idempotent on (session, index)), with the session's enrichment
    so far (`analysis`, see session_analysis_store) in the same transaction."""
    with transaction.atomic():
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
                "sentiment": sentiment,
                "sentiment_score": sentiment_score,
                "end_reason": end_reason,
                "latency_ms": latency_ms,
                "wake_word": wake_word,
            },
        )
        if analysis:
            session_analysis_store(session=session, analysis=analysis)
    return segment


def session_analysis_store(*, session: TranscriptionSession, analysis: dict) -> None:
    """Store a session's enrichment snapshot (speech.enrich.session.SessionEnricher.snapshot()):

    `speakers` {label: {speaking_time_s, segments}}, `sentiment` {overall, by_sentence},
    `topics` [{topic, confidence, mentions}] and `filters`. Speakers keep the names their owner
    gave them; topics are replaced by the latest ones.
    """
    with transaction.atomic():
        kept = {key: analysis[key] for key in ("sentiment", "topics", "filters") if key in analysis}
        overall = (kept.get("sentiment") or {}).get("overall") or {}
        TranscriptionSession.objects.filter(pk=session.pk).update(
            analysis={**(session.analysis or {}), **kept}, sentiment=overall.get("label", "")
        )
        session.analysis = {**(session.analysis or {}), **kept}
        for label, stats in (analysis.get("speakers") or {}).items():
            SessionSpeaker.objects.update_or_create(
                session=session,
                label=label,
                defaults={
                    "speaking_time_s": round(float(stats.get("speaking_time_s", 0.0)), 3),
                    "segment_count": len(stats.get("segments") or ()),
                },
            )
        if "topics" in analysis:
            SessionTopic.objects.filter(session=session).delete()
            SessionTopic.objects.bulk_create(
                SessionTopic(
                    session=session,
                    topic=str(t["topic"])[:200],
                    confidence=float(t["confidence"]),
                    mentions=list(t.get("mentions") or []),
                )
                for t in {str(t["topic"])[:200]: t for t in analysis["topics"]}.values()
            )


def segments_speakers_set(*, session: TranscriptionSession, labels: dict[int, str]) -> None:
    """Relabel stored segments ({index: label}), e.g. after an upload's whole-file clustering;
    speakers no segment carries any more are removed."""
    with transaction.atomic():
        for index, label in labels.items():
            Segment.objects.filter(session=session, index=index).update(speaker=label)
        SessionSpeaker.objects.filter(session=session).exclude(label__in=set(labels.values())).delete()


def speaker_rename(*, session: TranscriptionSession, label: str, name: str) -> SessionSpeaker:
    """Name a speaker of a session (blank: back to `Speaker N`); exports use the name."""
    speaker, _ = SessionSpeaker.objects.get_or_create(session=session, label=label)
    speaker.name = name.strip()[:100]
    speaker.save(update_fields=["name"])
    return speaker


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


def stream_usage_add(*, session: TranscriptionSession, stream_id, seconds: float) -> None:
    """Bill a live stream's audio: the session, the monthly usage and the stream's reservation move
    together, under the user's quota lock, so a concurrent reservation never counts them twice."""
    if seconds <= 0:
        return
    with transaction.atomic():
        quota_lock(user_id=session.user_id)
        session_usage_add(session=session, seconds=seconds)
        if stream_id is not None:
            stream_billed_add(stream_id=stream_id, seconds=seconds)


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
