"""Response bodies of POST /v1/audio/transcriptions, per `response_format`, from a finished session.

`json` -> {"text", "usage"}; `text` -> the transcript as plain text; `srt` / `vtt` -> subtitles (the
history exports' renderers); `verbose_json` -> task, language, duration, text, segments (and words
when asked); `stream` -> OpenAI's server-sent events (one delta per segment, then done).

What the segments of `verbose_json` hold that we do not record: `tokens` is empty (token ids are not
stored), `no_speech_prob` is 0.0 (segments the model judged silent are dropped, not stored), and
`avg_logprob` is recovered from the stored confidence (exp of the average log-probability).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence

from django.http import HttpResponse, JsonResponse

from transcription.compat.openai.form import TranscriptionForm
from transcription.compat.openai.languages import language_name
from transcription.exports import export_srt, export_vtt
from transcription.models import Segment, TranscriptionSession

PLAIN = "text/plain; charset=utf-8"


def transcript_text(session: TranscriptionSession, segments: Sequence[Segment]) -> str:
    transcript = getattr(session, "transcript", None)
    if transcript is not None:
        return transcript.text.strip()
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def usage(session: TranscriptionSession) -> dict:
    """Billed as whisper-1 is: by the input's duration, in whole seconds (rounded up)."""
    return {"type": "duration", "seconds": math.ceil(round(session.audio_seconds, 3))}


def compression_ratio(text: str) -> float:
    """Whisper's measure: the text's UTF-8 length over its zlib-compressed length."""
    raw = text.encode("utf-8")
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def avg_logprob(confidence: float | None) -> float:
    if confidence is None or confidence <= 0.0:
        return 0.0
    return round(math.log(min(confidence, 1.0)), 4)


def segment_object(position: int, segment: Segment) -> dict:
    text = segment.text.strip()
    return {
        "id": position,
        "seek": round(max(0.0, segment.start_s) * 100),  # Whisper counts 10 ms frames
        "start": round(max(0.0, segment.start_s), 3),
        "end": round(max(segment.start_s, segment.end_s), 3),
        "text": f" {text}",
        "tokens": [],
        "temperature": 0.0,  # greedy/beam decoding without temperature fallback
        "avg_logprob": avg_logprob(segment.confidence),
        "compression_ratio": compression_ratio(text),
        "no_speech_prob": 0.0,
    }


def word_objects(segments: Sequence[Segment]) -> list[dict]:
    return [
        {"word": str(w.get("word", "")).strip(), "start": float(w["start"]), "end": float(w["end"])}
        for segment in segments
        for w in segment.words or []
        if str(w.get("word", "")).strip()
    ]


def verbose_json(session: TranscriptionSession, segments: Sequence[Segment], form: TranscriptionForm) -> dict:
    language = session.language or next((s.language for s in segments if s.language), "")
    body: dict = {
        "task": "transcribe",
        "language": language_name(language),
        "duration": round(session.audio_seconds, 3),
        "text": transcript_text(session, segments),
    }
    if form.segments:
        body["segments"] = [segment_object(i, s) for i, s in enumerate(s for s in segments if s.text.strip())]
    if form.words:
        body["words"] = word_objects(segments)
    body["usage"] = usage(session)
    return body


def sse_events(session: TranscriptionSession, segments: Sequence[Segment]) -> str:
    """`transcript.text.delta` per segment, then `transcript.text.done` (the file is already done)."""
    texts = [s.text.strip() for s in segments if s.text.strip()]
    events = [
        {"type": "transcript.text.delta", "delta": text if i == 0 else f" {text}"}
        for i, text in enumerate(texts)
    ]
    events.append({"type": "transcript.text.done", "text": transcript_text(session, segments)})
    return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)


def render(
    session: TranscriptionSession, segments: Sequence[Segment], form: TranscriptionForm
) -> HttpResponse:
    if form.stream:
        response = HttpResponse(
            sse_events(session, segments), content_type="text/event-stream; charset=utf-8"
        )
        response["Cache-Control"] = "no-cache"
        return response
    fmt = form.response_format
    if fmt == "json":
        return JsonResponse({"text": transcript_text(session, segments), "usage": usage(session)})
    if fmt == "verbose_json":
        return JsonResponse(verbose_json(session, segments, form))
    if fmt == "text":
        return HttpResponse(transcript_text(session, segments) + "\n", content_type=PLAIN)
    if fmt == "srt":
        return HttpResponse(export_srt(segments=segments), content_type=PLAIN)
    if fmt == "vtt":
        return HttpResponse(export_vtt(segments=segments), content_type=PLAIN)
    raise ValueError(f"unknown response_format {fmt!r}")
