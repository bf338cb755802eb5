"""/stt/v3/stream (seeds/002): header validation, 1024-byte frames and the JSON messages sent back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from speech.audio import AudioPacketError, decode_pcm16
from speech.events import Error, Final, Notice, SegmentTiming, SessionEvent, SpeechEnded, TranscriptionStarted
from transcription.models import Endpoint
from transcription.speech_models import model_label
from transcription.streaming.consumer import StreamingConsumer
from transcription.streaming.protocols.common import (
    ProtocolError,
    header,
    iso,
    model_languages,
    unique,
    utc_now,
)

FRAME_BYTES = 1024
FRAME_SAMPLES = FRAME_BYTES // 2
SAMPLE_RATES = (8000, 16000, 44100, 48000)
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_LANG_CODE = "en-IN"
# The document's codes (its spelling) -> Whisper's language. Both Hinglish variants are Hindi
# speech to Whisper: they need a multilingual model and come out in the script Whisper writes.
LANG_CODES: dict[str, str] = {
    "bn-IN": "bn",
    "en-IN": "en",
    "gu-IN": "gu",
    "hi-IN": "hi",
    "kn-IN": "kn",
    "ml-IN": "ml",
    "mr-IN": "mr",
    "pa-IN": "pa",
    "ta-IN": "ta",
    "te-IN": "te",
    "en-hi-IN-latn": "hi",
    "en-hi-in-cm": "hi",
}
_CANONICAL = {code.lower(): code for code in LANG_CODES}

CLOSE_BAD_REQUEST = 4400  # a header value this endpoint cannot serve (language, sample rate)

INVALID_LANG_CODE = "invalid_lang_code"
UNSUPPORTED_LANGUAGE = "unsupported_language"
UNSUPPORTED_SAMPLE_RATE = "unsupported_sample_rate"
INVALID_FRAME_SIZE = "invalid_frame_size"


@dataclass(frozen=True)
class LangSelection:
    """The `lang_code` header: one code, or a comma-separated list meaning auto-detect among them."""

    codes: tuple[str, ...]

    @property
    def auto_detect(self) -> bool:
        return len(self.codes) > 1

    @property
    def languages(self) -> tuple[str, ...]:
        return unique(LANG_CODES[code] for code in self.codes)

    @property
    def session_language(self) -> str | None:
        """Whisper's language option: fixed when the codes name one language, else detected."""
        languages = self.languages
        return languages[0] if len(languages) == 1 else None

    def code_for(self, language: str | None) -> str:
        """The requested code of a detected Whisper language (the bare language when none matches)."""
        for code in self.codes:
            if LANG_CODES[code] == language:
                return code
        return language or self.codes[0]

    @property
    def header(self) -> str:
        return ",".join(self.codes)


def parse_lang_code(value: str | None) -> LangSelection:
    if value is None or not value.strip():
        return LangSelection((DEFAULT_LANG_CODE,))
    codes = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        code = _CANONICAL.get(item.lower())
        if code is None:
            raise ProtocolError(
                INVALID_LANG_CODE,
                f"lang_code {item!r:.40} is not a supported language code; use one of "
                f"{', '.join(LANG_CODES)} or a comma-separated list of them for auto-detection.",
            )
        codes.append(code)
    if not codes:
        return LangSelection((DEFAULT_LANG_CODE,))
    return LangSelection(unique(codes))


def check_model_languages(selection: LangSelection, supported: list[str] | None) -> None:
    """Refuse codes the configured model cannot produce (the bundled tiny.en is English-only)."""
    if supported is None:
        return
    missing = [code for code in selection.codes if LANG_CODES[code] not in supported]
    if missing:
        raise ProtocolError(
            UNSUPPORTED_LANGUAGE,
            f"The configured model (setting STT_MODEL) cannot transcribe {', '.join(missing)}; "
            f"it supports {', '.join(code for code in LANG_CODES if LANG_CODES[code] in supported)}.",
        )


def parse_sample_rate(value: str | None) -> int:
    if value is None or not value.strip():
        return DEFAULT_SAMPLE_RATE
    try:
        rate = int(value.strip())
    except ValueError:
        rate = None
    if rate not in SAMPLE_RATES:
        raise ProtocolError(
            UNSUPPORTED_SAMPLE_RATE,
            f"x-sample-rate {value!r:.20} is not supported; use one of {', '.join(map(str, SAMPLE_RATES))}.",
        )
    return rate


def check_frame(data: bytes) -> None:
    if len(data) != FRAME_BYTES:
        raise ProtocolError(
            INVALID_FRAME_SIZE,
            f"Audio frames must be exactly {FRAME_BYTES} bytes ({FRAME_SAMPLES} PCM16 samples); "
            f"got {len(data)}. The frame was not used.",
        )


def message(kind: str, now: dt.datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A server message: every one has `type` and an ISO-8601 `timestamp`."""
    return {"type": kind, "timestamp": iso(now or utc_now()), **fields}


def connected_message(
    *, session_id: str, selection: LangSelection, sample_rate: int, model: str
) -> dict[str, Any]:
    return message(
        "connected",
        session_id=session_id,
        config={
            "lang_code": selection.header,
            "languages": list(selection.codes),
            "auto_detect": selection.auto_detect,
            "sample_rate": sample_rate,
            "encoding": "pcm_s16le",
            "channels": 1,
            "frame_bytes": FRAME_BYTES,
            "frame_samples": FRAME_SAMPLES,
            "frame_ms": round(FRAME_SAMPLES * 1000 / sample_rate, 3),
            "model": model,
        },
    )


def processing_message(segment_id: str, timing: SegmentTiming | None) -> dict[str, Any]:
    return message(
        "processing",
        segment_id=segment_id,
        start=None if timing is None else round(timing.start_s, 3),
        end=None if timing is None or timing.end_s is None else round(timing.end_s, 3),
        duration=None if timing is None else round(timing.duration_s, 3),
    )


def transcript_message(final: Final, selection: LangSelection) -> dict[str, Any]:
    """A `transcript` from the session's final (times in seconds from the stream's start)."""
    timing = final.timing
    return message(
        "transcript",
        segment_id=final.segment_id,
        text=final.text,
        lang_code=selection.code_for(final.language),
        start=round(timing.start_s, 3),
        end=round(timing.end_s or timing.start_s, 3),
        duration=round(timing.duration_s, 3),
        confidence=None if final.confidence is None else round(final.confidence, 4),
    )


class SttV3Consumer(StreamingConsumer):
    """/stt/v3/stream: header configuration, 1024-byte frames, `processing` and `transcript` messages."""

    endpoint = Endpoint.STT_V3

    async def on_admitted(self) -> None:
        self._timings: dict[str, SegmentTiming] = {}
        try:
            self.selection = parse_lang_code(header(self.scope, "lang_code", "lang-code"))
            self.sample_rate = parse_sample_rate(header(self.scope, "x-sample-rate"))
            service = await self.started_service()
            if service is None:
                return
            check_model_languages(self.selection, model_languages(service))
        except ProtocolError as exc:
            await self.close_for(exc.code, exc.message, CLOSE_BAD_REQUEST)
            return
        lease = self.lease
        lease.base_options = replace(
            lease.base_options, language=self.selection.session_language, interim_results=False
        )
        await super().on_admitted()
        await lease.record_format(self.sample_rate)
        if await self.start_or_close():
            await self.send_json(
                connected_message(
                    session_id=str(lease.db_session.pk),
                    selection=self.selection,
                    sample_rate=self.sample_rate,
                    model=model_label(),
                )
            )

    def client_info(self) -> dict[str, Any]:
        return {**super().client_info(), "langCode": self.selection.header, "sampleRate": self.sample_rate}

    async def send_json(self, payload: dict[str, Any]) -> None:
        if "timestamp" not in payload:
            payload = message(payload["type"], **{k: v for k, v in payload.items() if k != "type"})
        await super().send_json(payload)

    async def deliver(self, event: SessionEvent) -> None:
        if isinstance(event, SpeechEnded):
            self._timings[event.segment_id] = event.timing
        elif isinstance(event, TranscriptionStarted):
            await self.send_json(processing_message(event.segment_id, self._timings.get(event.segment_id)))
        elif isinstance(event, Final):
            self._timings.pop(event.segment_id, None)
            await self.send_json(transcript_message(event, self.selection))
        elif isinstance(event, Notice | Error):
            kind = "warning" if isinstance(event, Notice) else "error"
            fields = {"code": event.code, "message": event.message}
            await self.send_json(
                {"type": kind, **fields, **({"where": event.where} if kind == "error" else {})}
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.lease.finishing or self.session is None:
            return
        try:
            if bytes_data is None:
                raise ProtocolError(
                    "unsupported_message",
                    "Send audio as binary frames; this endpoint takes no text messages.",
                )
            check_frame(bytes_data)
            packet = decode_pcm16(bytes_data, sample_rate=self.sample_rate)
        except (ProtocolError, AudioPacketError) as exc:
            await self.bad_message(exc.code, exc.message, where="audio")
            return
        self.lease.errors.reset()
        await self.feed_limited(packet)
