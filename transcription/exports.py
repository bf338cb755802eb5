"""Transcript exports: plain text, SubRip (srt), WebVTT (webvtt-py) and JSON with timings and words.

Segments with a speaker are attributed: `Speaker 1: ` before TXT and SRT lines, a WebVTT voice
tag (`<v Speaker 1>`), `speaker` / `speaker_name` in JSON. The names come from a label -> name
mapping (`speaker_names`), so a speaker its owner renamed is exported by its name.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import srt
import webvtt

from transcription.models import (
    Segment,
    SessionSpeaker,
    SessionTopic,
    TranscriptionSession,
    speaker_display_name,
)


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


def _speaker(segment: Segment, names: Mapping[str, str] | None) -> str:
    """What the segment's speaker is called in an export ("" when it has none)."""
    if not segment.speaker:
        return ""
    name = (names or {}).get(segment.speaker) or getattr(segment, "speaker_given_name", None)
    return _clean(name or "") or speaker_display_name(segment.speaker)


def _attributed(segment: Segment, text: str, names: Mapping[str, str] | None) -> str:
    speaker = _speaker(segment, names)
    return f"{speaker}: {text}" if speaker else text


def _timings(segment: Segment) -> tuple[float, float]:
    start = max(0.0, segment.start_s)
    return start, max(start, segment.end_s)


def export_filename(*, session: TranscriptionSession, fmt: str) -> str:
    """e.g. transcript-20240531-142501-1a2b3c4d.srt (start time in UTC)."""
    started = session.started_at.astimezone(dt.UTC)
    return f"transcript-{started:%Y%m%d-%H%M%S}-{str(session.pk)[:8]}.{FORMATS[fmt].extension}"


def export_txt(*, segments: Iterable[Segment], speaker_names: Mapping[str, str] | None = None) -> str:
    lines = [(s, _clean(s.text)) for s in segments]
    return "\n".join(_attributed(s, line, speaker_names) for s, line in lines if line) + "\n"


def export_srt(*, segments: Iterable[Segment], speaker_names: Mapping[str, str] | None = None) -> str:
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
                content=_attributed(segment, text, speaker_names),
            )
        )
    return srt.compose(subtitles)


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def export_vtt(*, segments: Iterable[Segment], speaker_names: Mapping[str, str] | None = None) -> str:
    captions = []
    for segment in segments:
        text = _clean(segment.text)
        if not text:
            continue
        start, end = _timings(segment)
        # WebVTT cue text is markup: &, < and > must be escaped (which also defuses "-->"); in a
        # voice tag's annotation too, where ">" would end the tag.
        cue = html.escape(text, quote=False)
        speaker = _speaker(segment, speaker_names)
        if speaker:
            cue = f"<v {html.escape(speaker, quote=False)}>{cue}"
        captions.append(webvtt.Caption(start=_vtt_time(start), end=_vtt_time(end), text=cue))
    return webvtt.WebVTT(captions=captions).content


def speaker_document(speaker: SessionSpeaker) -> dict[str, Any]:
    return {
        "label": speaker.label,
        "name": speaker.name,
        "display_name": speaker.display_name,
        "speaking_time_s": speaker.speaking_time_s,
        "segment_count": speaker.segment_count,
    }


def topic_document(topic: SessionTopic) -> dict[str, Any]:
    return {"topic": topic.topic, "confidence": topic.confidence, "mentions": list(topic.mentions or [])}


def export_json(
    *,
    session: TranscriptionSession,
    segments: Iterable[Segment],
    speakers: Sequence[SessionSpeaker] = (),
    topics: Sequence[SessionTopic] = (),
) -> str:
    """The session, its text and segments; with enrichment, also its speakers, topics and analysis
    (keys present only when there is something to say, so an unenriched export is as before)."""
    names = {speaker.label: speaker.display_name for speaker in speakers}
    items: list[dict[str, Any]] = []
    for segment in segments:
        start, end = _timings(segment)
        item: dict[str, Any] = {
            "index": segment.index,
            "start": round(start, 3),
            "end": round(end, 3),
            "text": _clean(segment.text),
            "confidence": segment.confidence,
            "language": segment.language,
            "speaker": segment.speaker,
        }
        if segment.speaker:
            item["speaker_name"] = _speaker(segment, names)
        if segment.sentiment:
            item["sentiment"] = segment.sentiment
            item["sentiment_score"] = segment.sentiment_score
        item["words"] = segment.words or []
        items.append(item)
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
    }
    if session.sentiment:
        document["session"]["sentiment"] = session.sentiment
    if speakers:
        document["speakers"] = [speaker_document(s) for s in speakers]
    if topics:
        document["topics"] = [topic_document(t) for t in topics]
    if session.analysis:
        document["analysis"] = session.analysis
    document["segments"] = items
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def export_render(
    *,
    session: TranscriptionSession,
    segments: Iterable[Segment],
    fmt: str,
    speakers: Sequence[SessionSpeaker] = (),
    topics: Sequence[SessionTopic] = (),
) -> str:
    """The session's transcript in `fmt` (a key of FORMATS).

    `speakers` name the segments' speaker labels (selectors.speaker_list: one query, not one per
    segment); a label without one is `Speaker N`. `topics` go into the JSON export.
    """
    segments = list(segments)
    names = {speaker.label: speaker.display_name for speaker in speakers}
    if fmt == "txt":
        return export_txt(segments=segments, speaker_names=names)
    if fmt == "srt":
        return export_srt(segments=segments, speaker_names=names)
    if fmt == "vtt":
        return export_vtt(segments=segments, speaker_names=names)
    if fmt == "json":
        return export_json(session=session, segments=segments, speakers=speakers, topics=topics)
    raise ValueError(f"unknown export format {fmt!r}")
