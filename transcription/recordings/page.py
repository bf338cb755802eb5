"""What the session page's player needs: the audio's URL and each segment's word timings in session time."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from transcription.models import FILE_ENDPOINTS, TranscriptionSession


def _word_offset(session: TranscriptionSession, segment) -> float:
    # Uploads store words in recording time already; a live segment's words count from its own start.
    return 0.0 if session.endpoint in FILE_ENDPOINTS else float(segment.start_s)


def word_timings(session: TranscriptionSession, segments) -> list[dict[str, Any]]:
    """[{index, start, end, words: [{w, s, e}]}] for the segments with word timestamps (seconds)."""
    out = []
    for seg in segments:
        offset = _word_offset(session, seg)
        words = []
        for w in seg.words or ():
            try:
                start, end = float(w["start"]) + offset, float(w["end"]) + offset
            except (KeyError, TypeError, ValueError):
                continue
            words.append({"w": str(w.get("word", "")).strip(), "s": round(start, 3), "e": round(end, 3)})
        if words:
            out.append({"index": seg.index, "start": seg.start_s, "end": seg.end_s, "words": words})
    return out


def player_context(*, session: TranscriptionSession, segments) -> dict[str, Any] | None:
    """None when the session kept no audio (the partial then shows nothing)."""
    if not session.audio_file:
        return None
    return {
        "audio_url": reverse("api-session-audio", args=[session.pk]),
        "audio_format": session.audio_format,
        "audio_bytes": session.audio_bytes,
        "words": word_timings(session, segments),
    }
