"""/stt/v3/stream (seeds/002): header validation, 1024-byte frames and the JSON messages sent back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from transcription.protocols.common import iso, unique, utc_now
from transcription.protocols.reference import ProtocolError

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


def processing_message(segment_id: str, timing: dict[str, Any] | None) -> dict[str, Any]:
    timing = timing or {}
    return message(
        "processing",
        segment_id=segment_id,
        start=timing.get("start"),
        end=timing.get("end"),
        duration=timing.get("duration"),
    )


def transcript_message(final: dict[str, Any], selection: LangSelection) -> dict[str, Any]:
    """A `transcript` from the session's `final` event (times in seconds from the stream's start)."""
    return message(
        "transcript",
        segment_id=final["segmentId"],
        text=final["text"],
        lang_code=selection.code_for(final.get("language")),
        start=final["start"],
        end=final["end"],
        duration=final["duration"],
        confidence=final.get("confidence"),
    )
