"""AssemblyAI's /v3/ws connection parameters (the query string) and UpdateConfiguration, as our options.

Values arrive as query strings (the SDK writes booleans as `True`/`False` and lists as JSON) or, in
UpdateConfiguration, as JSON values; both go through the same readers. A bad value is AssemblyAI's
input validation error (3006); a feature AssemblyAI has and this server lacks is refused the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from speech.keyterms import KeytermError, clean_keyterms
from speech.options import SessionOptions

ENCODINGS = ("pcm_s16le", "pcm_mulaw")
# Every streaming model AssemblyAI names (its SDK's SpeechModel), all served by the configured Whisper
# model; the one that is multilingual and nothing else needs a multilingual model here.
SPEECH_MODELS = (
    "universal-streaming-english",
    "universal-streaming-multilingual",
    "u3-rt-pro",
    "u3-rt-pro-beta-1",
    "u3-pro",
    "whisper-rt",
    "universal-3-5-pro",
    "universal-3-6",
    "universal-3-6-pro",
)
MULTILINGUAL_ONLY = ("universal-streaming-multilingual",)
DEFAULT_SPEECH_MODEL = "universal-streaming-english"
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 48000
INACTIVITY_TIMEOUT_S = (5, 3600)  # AssemblyAI's bounds for `inactivity_timeout`
# AssemblyAI parameters for features this server does not have: refused when turned on.
UNSUPPORTED = (
    "speaker_labels",
    "max_speakers",
    "speaker_labels_revision_interval_ms",
    "redact_pii",
    "redact_pii_policies",
    "redact_pii_sub",
    "filter_profanity",
    "vad_threshold",
    "prompt",
    "agent_context",
    "interruption_delay",
    "turn_left_pad_ms",
    "session_heartbeat",
    "acknowledge_silence",
    "domain",
    "webhook_url",
    "webhook_auth_header_name",
    "webhook_auth_header_value",
    "llm_gateway",
    "voice_focus",
    "voice_focus_threshold",
    "noise_suppression_model",
    "noise_suppression_threshold",
    "continuous_partials",
    "customer_support_audio_capture",
    "include_partial_turns",
    "mode",
)
# End-of-turn parameters -> (SessionOptions field, low, high, scale to the field's unit).
TURN_PARAMS: dict[str, tuple[str, float, float, float]] = {
    "end_of_turn_confidence_threshold": ("end_of_turn_threshold", 0.0, 1.0, 1.0),
    "min_turn_silence": ("end_of_turn_silence", 0, 3000, 0.001),
    "min_end_of_turn_silence_when_confident": ("end_of_turn_silence", 0, 3000, 0.001),
    "max_turn_silence": ("max_turn_silence", 100, 5000, 0.001),
}
# What UpdateConfiguration may carry (the rest of RealTimeSessionParameters is in UNSUPPORTED).
UPDATABLE = (*TURN_PARAMS, "keyterms_prompt", "format_turns", "language_codes")


class ParamError(ValueError):
    """A parameter AssemblyAI would refuse: its input validation error (close code 3006)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class StreamParams:
    """One /v3/ws connection's parameters, read and checked."""

    sample_rate: int
    encoding: str = "pcm_s16le"
    format_turns: bool = False
    speech_model: str = DEFAULT_SPEECH_MODEL
    language_detection: bool = False
    languages: tuple[str, ...] = ()  # language_code / language_codes, as given
    changes: tuple[tuple[str, Any], ...] = ()  # SessionOptions fields they set

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.encoding == "pcm_mulaw" else 2

    def options(self, base: SessionOptions) -> SessionOptions:
        # Word timings always: every Turn carries its words; interims: the partial Turns.
        options = replace(base, **dict(self.changes), word_timestamps=True, interim_results=True)
        return replace(options, max_turn_silence=max(options.max_turn_silence, options.end_of_turn_silence))


def boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0"):
        return False
    raise ParamError(f"Invalid value for {name}: {str(value)[:40]!r}; expected true or false.")


def number(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ParamError(f"Invalid value for {name}: {value[:40]!r}; expected a number.") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ParamError(f"Invalid value for {name}: expected a number.")
    if integer and not float(value).is_integer():
        raise ParamError(f"Invalid value for {name}: {value!r}; expected an integer.")
    if not low <= value <= high:
        raise ParamError(f"Invalid value for {name}: {value!r}; expected between {low:g} and {high:g}.")
    return value


def json_list(name: str, value: Any) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ParamError(f"Invalid value for {name}: expected a JSON array of strings.") from None
    if not isinstance(value, list):
        raise ParamError(f"Invalid value for {name}: expected a JSON array of strings.")
    return value


def keyterms(value: Any) -> tuple[str, ...]:
    try:
        return clean_keyterms(json_list("keyterms_prompt", value))
    except KeytermError as exc:
        raise ParamError(f"Invalid value for keyterms_prompt: {exc.message}") from None


def refuse_unsupported(raw: dict[str, Any]) -> None:
    for name in UNSUPPORTED:
        value = raw.get(name)
        if value is None or value is False or (isinstance(value, str) and value.lower() in ("false", "")):
            continue
        raise ParamError(f"{name} is not supported by this server.")


def check_languages(codes: list, supported: list[str] | None) -> tuple[str, ...]:
    if not codes or not all(isinstance(code, str) and code.strip() for code in codes):
        raise ParamError('Invalid value for language_codes: expected language codes like ["en"].')
    codes = [code.strip().lower() for code in codes]
    missing = [code for code in codes if supported is not None and code not in supported]
    if missing:
        raise ParamError(
            f"Unsupported language {', '.join(missing)[:40]!r} for the configured model; "
            f"supported: {', '.join((supported or [])[:20])}."
        )
    return tuple(dict.fromkeys(codes))


def session_changes(raw: dict[str, Any], *, supported: list[str] | None) -> dict[str, Any]:
    """SessionOptions fields set by the end-of-turn parameters, keyterms_prompt and the languages."""
    changes: dict[str, Any] = {}
    for name, (field, low, high, scale) in TURN_PARAMS.items():
        if raw.get(name) is not None:
            integer = scale != 1.0  # AssemblyAI's silences are whole milliseconds
            changes[field] = number(name, raw[name], low, high, integer=integer) * scale
    if raw.get("keyterms_prompt") is not None:
        changes["keyterms"] = keyterms(raw["keyterms_prompt"])
    languages = language_list(raw, supported=supported)
    if languages:
        changes["language"] = languages[0] if len(languages) == 1 else None
    return changes


def language_list(raw: dict[str, Any], *, supported: list[str] | None) -> tuple[str, ...]:
    if raw.get("language_codes") is not None:
        return check_languages(json_list("language_codes", raw["language_codes"]), supported)
    if raw.get("language_code") is not None:
        return check_languages([raw["language_code"]], supported)
    return ()


def parse_query(query: dict[str, str], *, supported: list[str] | None) -> StreamParams:
    """The connection's parameters, or ParamError. `supported`: the model's languages (None: any)."""
    refuse_unsupported(query)
    if not query.get("sample_rate"):
        raise ParamError("sample_rate is required: the audio's sample rate, e.g. sample_rate=16000.")
    rate = int(number("sample_rate", query["sample_rate"], MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, integer=True))
    encoding = query.get("encoding") or "pcm_s16le"
    if encoding not in ENCODINGS:
        raise ParamError(f"Invalid encoding {encoding[:20]!r}; this server takes {' or '.join(ENCODINGS)}.")
    model = query.get("speech_model") or query.get("model") or DEFAULT_SPEECH_MODEL
    if model not in SPEECH_MODELS:
        raise ParamError(f"Invalid speech_model {model[:40]!r}; expected one of {', '.join(SPEECH_MODELS)}.")
    english_only = supported is not None and set(supported) <= {"en"}
    if english_only and model in MULTILINGUAL_ONLY:
        raise ParamError(f"speech_model {model!r} needs a multilingual model; this server's is English-only.")
    detect = (
        boolean("language_detection", query["language_detection"]) if "language_detection" in query else False
    )
    changes = session_changes(query, supported=supported)
    if detect and "language" not in changes:
        changes["language"] = None if not english_only else "en"
    if query.get("inactivity_timeout") is not None:
        changes["idle_timeout_s"] = float(
            number("inactivity_timeout", query["inactivity_timeout"], *INACTIVITY_TIMEOUT_S)
        )
    return StreamParams(
        sample_rate=rate,
        encoding=encoding,
        format_turns=boolean("format_turns", query["format_turns"]) if "format_turns" in query else False,
        speech_model=model,
        language_detection=detect,
        languages=language_list(query, supported=supported),
        changes=tuple(changes.items()),
    )


def parse_update(message: dict[str, Any], current: SessionOptions, *, supported: list[str] | None):
    """(the options now in force, format_turns or None when not given) for an UpdateConfiguration."""
    raw = {name: value for name, value in message.items() if name != "type" and value is not None}
    refuse_unsupported(raw)
    unknown = [name for name in raw if name not in UPDATABLE]
    if unknown:
        raise ParamError(f"Invalid Message: {unknown[0][:40]!r} cannot be updated during a session.")
    options = replace(current, **session_changes(raw, supported=supported))
    options = replace(options, max_turn_silence=max(options.max_turn_silence, options.end_of_turn_silence))
    format_turns = boolean("format_turns", raw["format_turns"]) if "format_turns" in raw else None
    return options, format_turns
