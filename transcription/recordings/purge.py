"""Retention: stored audio older than STT_AUDIO_STORE["RETENTION_DAYS"] goes; sessions and their text stay."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from transcription.models import TranscriptionSession
from transcription.recordings.store import audio_remove

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    sessions: int
    bytes: int
    failed: int = 0


def audio_expired(*, older_than_days: int, now: dt.datetime | None = None):
    """Sessions keeping audio that ended (or, unfinished, started) more than `older_than_days` ago."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=older_than_days)
    return (
        TranscriptionSession.objects.exclude(Q(audio_file="") | Q(audio_file__isnull=True))
        .annotate(audio_age_from=Coalesce("ended_at", "started_at"))
        .filter(audio_age_from__lt=cutoff)
        .order_by("audio_age_from")
    )


def audio_purge(
    *, older_than_days: int, dry_run: bool = False, now: dt.datetime | None = None
) -> PurgeResult:
    """Remove the expired audio (or, with `dry_run`, only count it). 0 days keeps everything."""
    if older_than_days <= 0:
        return PurgeResult(0, 0)
    sessions = bytes_ = failed = 0
    for session in audio_expired(older_than_days=older_than_days, now=now).iterator():
        if not dry_run:
            try:
                audio_remove(session=session)
            except Exception:
                failed += 1
                log.exception("removing the audio of session %s failed", session.pk)
                continue
        sessions += 1
        bytes_ += session.audio_bytes
    return PurgeResult(sessions, bytes_, failed)
