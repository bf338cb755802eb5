"""Corrections by a session's owner: a segment's text and speaker, the originals kept (writes)."""

from __future__ import annotations

import re
import unicodedata

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Sum
from django.utils import timezone

from transcription.models import FILE_ENDPOINTS, Segment, SessionSpeaker, SessionStatus, TranscriptionSession
from transcription.selectors import session_is_live
from transcription.services import transcript_assemble

# A segment is a sentence or a few: a correction longer than this is not one.
MAX_TEXT_CHARS = 5000
# What a speaker label may hold: it is also a path segment (/speakers/{label}) and an HTML attribute.
LABEL_PATTERN = r"^[A-Za-z0-9_-]{0,64}$"
_LABEL = re.compile(LABEL_PATTERN)
_SPACES = re.compile(r"\s+")


class CorrectionError(Exception):
    """A refused correction: a stable `code`, a readable `message`, and the HTTP status it maps to."""

    def __init__(self, code: str, message: str, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


def clean_text(raw: str) -> str:
    """One line of text: control characters and runs of white space become single spaces, lone
    surrogates the replacement character (neither can be stored as text everywhere)."""
    chars = []
    for char in raw:
        category = unicodedata.category(char)
        if category == "Cs":
            chars.append("\ufffd")
        elif category == "Cc":
            chars.append(" ")
        else:
            chars.append(char)
    return _SPACES.sub(" ", "".join(chars)).strip()


def edit_refusal(session: TranscriptionSession) -> CorrectionError | None:
    """Why the session's segments cannot be corrected now (None: they can)."""
    if session_is_live(session=session):
        return CorrectionError(
            "session_live", "The session is still streaming; stop it before editing its text.", 409
        )
    if session.endpoint in FILE_ENDPOINTS and session.status in (SessionStatus.PENDING, SessionStatus.ACTIVE):
        # Its job still writes segments and relabels speakers: an edit now would be overwritten.
        return CorrectionError(
            "session_processing", "The recording is still being transcribed; edit it once it is done.", 409
        )
    return None


def _speaker_moved(*, session: TranscriptionSession, segment: Segment, old: str, new: str) -> None:
    """Keep the speakers' `segment_count` and `speaking_time_s` right after `segment` (already saved
    with `new`) left `old`. A stored speaker is adjusted by the segment's length (its own figures
    may count voiced time only); a label without a stored speaker gets one counted from its segments;
    a speaker no segment carries any more is removed (as after a relabelling)."""
    seconds = segment.duration_s
    if old:
        speaker = SessionSpeaker.objects.select_for_update().filter(session=session, label=old).first()
        if speaker is not None:
            if not session.segments.filter(speaker=old).exists():
                speaker.delete()
            else:
                speaker.segment_count = max(0, speaker.segment_count - 1)
                speaker.speaking_time_s = round(max(0.0, speaker.speaking_time_s - seconds), 3)
                speaker.save(update_fields=["segment_count", "speaking_time_s"])
    if new:
        speaker = SessionSpeaker.objects.select_for_update().filter(session=session, label=new).first()
        if speaker is not None:
            speaker.segment_count += 1
            speaker.speaking_time_s = round(speaker.speaking_time_s + seconds, 3)
            speaker.save(update_fields=["segment_count", "speaking_time_s"])
        else:
            carried = session.segments.filter(speaker=new).aggregate(
                count=Count("pk"), seconds=Sum(F("end_s") - F("start_s"))
            )
            SessionSpeaker.objects.create(
                session=session,
                label=new,
                segment_count=carried["count"],
                speaking_time_s=round(max(0.0, carried["seconds"] or 0.0), 3),
            )


def segment_edit(
    *,
    session: TranscriptionSession,
    index: int,
    text: str | None = None,
    speaker: str | None = None,
) -> Segment:
    """Correct a segment's text and/or speaker (None: leave it), and rebuild the session's transcript.

    The first edit keeps the transcribed text and speaker in `original_text` / `original_speaker`;
    every edit that changes something sets `edited_at`. Text is cleaned to one line (`clean_text`)
    and may be empty (the segment then says nothing in the transcript and the exports, its timings
    and original kept). `speaker` is a label of the session or a new one (`LABEL_PATTERN`), or ""
    for none. The words and their timings stay those recognised.

    Raises CorrectionError: `nothing_to_change`, `text_too_long`, `invalid_speaker` (400),
    `segment_not_found` (404), `session_live` / `session_processing` (409).
    """
    if text is None and speaker is None:
        raise CorrectionError("nothing_to_change", "Send `text`, `speaker` or both.")
    if text is not None:
        text = clean_text(text)
        if len(text) > MAX_TEXT_CHARS:
            raise CorrectionError(
                "text_too_long", f"A segment's text is at most {MAX_TEXT_CHARS} characters.", field="text"
            )
    if speaker is not None:
        speaker = speaker.strip()
        if not _LABEL.fullmatch(speaker):
            raise CorrectionError(
                "invalid_speaker",
                "A speaker label is up to 64 letters, digits, `_` or `-` (e.g. `speaker_2`); empty for none.",
                field="speaker",
            )
    refusal = edit_refusal(session)
    if refusal is not None:
        raise refusal
    with transaction.atomic():
        # The session's row first: two edits of one session (which may both create a new speaker
        # label, or rebuild the transcript) take turns.
        TranscriptionSession.objects.select_for_update().filter(pk=session.pk).first()
        segment = Segment.objects.select_for_update().filter(session=session, index=index).first()
        if segment is None:
            raise CorrectionError("segment_not_found", "No such segment in this session.", 404)
        new_text = segment.text if text is None else text
        new_speaker = segment.speaker if speaker is None else speaker
        if new_text == segment.text and new_speaker == segment.speaker:
            return segment
        if segment.edited_at is None:
            segment.original_text = segment.text
            segment.original_speaker = segment.speaker
        old_text, old_speaker = segment.text, segment.speaker
        segment.text = new_text
        segment.speaker = new_speaker
        segment.edited_at = timezone.now()
        segment.save(update_fields=["text", "speaker", "original_text", "original_speaker", "edited_at"])
        if new_speaker != old_speaker:
            _speaker_moved(session=session, segment=segment, old=old_speaker, new=new_speaker)
        if new_text != old_text:
            transcript_assemble(session=session)
    return segment


def sessions_with_edited(sessions: QuerySet[TranscriptionSession]) -> QuerySet[TranscriptionSession]:
    """Sessions annotated with `edited`: whether any of their segments was corrected (one query)."""
    edited = Segment.objects.filter(session=OuterRef("pk"), edited_at__isnull=False)
    return sessions.annotate(edited=Exists(edited))


def session_edited(session: TranscriptionSession) -> bool:
    """Whether a session has a corrected segment (its `edited` annotation when it has one)."""
    annotated = getattr(session, "edited", None)
    if annotated is not None:
        return bool(annotated)
    return session.segments.filter(edited_at__isnull=False).exists()
