"""Transcript exports: plain text, SubRip (srt), WebVTT (webvtt-py) and JSON with timings and words."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import srt
import webvtt

from transcription.models import Segment, TranscriptionSession


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    extension: str


FORMATS: dict[str, ExportFormat] = {
    "txt": ExportFormat("text/plain; charset=utf-8", "txt"),
    "srt": ExportFormat("application/x-subrip; charset=utf-8", "srt"),
    "vtt": ExportFormat("text/vtt; charset=utf-8", "vtt"),
    "json": ExportFormat("application/json", "json"),
}

_SPACES = re.compile(r"\s+")


def _clean(text: str) -> str:
    # A blank line ends a subtitle cue: cue text is one line of single spaces.
    return _SPACES.sub(" ", text).strip()


def _timings(segment: Segment) -> tuple[float, float]:
    start = max(0.0, segment.start_s)
    return start, max(start, segment.end_s)


def export_filename(*, session: TranscriptionSession, fmt: str) -> str:
    """e.g. transcript-20240531-142501-1a2b3c4d.srt (start time in UTC)."""
    started = session.started_at.astimezone(dt.UTC)
    return f"transcript-{started:%Y%m%d-%H%M%S}-{str(session.pk)[:8]}.{FORMATS[fmt].extension}"


def export_txt(*, segments: Iterable[Segment]) -> str:
    lines = [_clean(s.text) for s in segments]
    return "\n".join(line for line in lines if line) + "\n"


def export_srt(*, segments: Iterable[Segment]) -> str:
    subtitles = []
    for segment in segments:
        text = _clean(segment.text)
        if not text:
            continue
        start, end = _timings(segment)
        subtitles.append(
            srt.Subtitle(
                index=len(subtitles) + 1,
                start=dt.timedelta(seconds=start),
                end=dt.timedelta(seconds=end),
                content=text,
            )
        )
    return srt.compose(subtitles)


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def export_vtt(*, segments: Iterable[Segment]) -> str:
    captions = []
    for segment in segments:
        text = _clean(segment.text)
        if not text:
            continue
        start, end = _timings(segment)
        # WebVTT cue text is markup: &, < and > must be escaped (which also defuses "-->").
        captions.append(
            webvtt.Caption(start=_vtt_time(start), end=_vtt_time(end), text=html.escape(text, quote=False))
        )
    return webvtt.WebVTT(captions=captions).content


def export_json(*, session: TranscriptionSession, segments: Iterable[Segment]) -> str:
    items: list[dict[str, Any]] = []
    for segment in segments:
        start, end = _timings(segment)
        items.append(
            {
                "index": segment.index,
                "start": round(start, 3),
                "end": round(end, 3),
                "text": _clean(segment.text),
                "confidence": segment.confidence,
                "language": segment.language,
                "speaker": segment.speaker,
                "words": segment.words or [],
            }
        )
    transcript = getattr(session, "transcript", None)
    document = {
        "session": {
            "id": str(session.pk),
            "endpoint": session.endpoint,
            "status": session.status,
            "language": session.language,
            "started_at": session.started_at.isoformat(),
            "ended_at": session.ended_at.isoformat() if session.ended_at else None,
            "audio_seconds": session.audio_seconds,
        },
        "text": transcript.text
        if transcript is not None
        else " ".join(i["text"] for i in items if i["text"]),
        "segments": items,
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def export_render(*, session: TranscriptionSession, segments: Iterable[Segment], fmt: str) -> str:
    """The session's transcript in `fmt` (a key of FORMATS)."""
    segments = list(segments)
    if fmt == "txt":
        return export_txt(segments=segments)
    if fmt == "srt":
        return export_srt(segments=segments)
    if fmt == "vtt":
        return export_vtt(segments=segments)
    if fmt == "json":
        return export_json(session=session, segments=segments)
    raise ValueError(f"unknown export format {fmt!r}")
