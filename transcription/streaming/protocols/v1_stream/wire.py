"""/v1/stream/control + /v1/stream/audio (seeds/003): commands, stream options, clock and results."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

from speech.enrich.options import EnrichOptions
from speech.events import Enrichment, Error, Final, Interim, Notice, SessionEvent, SpeechStarted
from speech.keyterms import KeytermError, clean_keyterms
from speech.wake.options import WakeOptions
from transcription.enrichment import EnrichmentError, enrich_defaults, enrich_from_client
from transcription.streaming.protocols.common import (
    ProtocolError,
    check_language,
    iso,
    loads_command,
    parse_iso,
    query_params,
    utc_now,
)

COMMANDS = ("start_stream", "stop_stream", "pause_stream", "resume_stream")

# Close codes of the two sockets (besides the shared 4001/4002/4003/4029/1013/1008/1009).
CLOSE_BAD_REQUEST = 4400  # client_id or session_id missing or malformed
CLOSE_NO_CONTROL = 4404  # audio socket without a control socket for the same ids
CLOSE_AUDIO_TAKEN = 4409  # that control socket already has an audio socket

# "max_chunk_size_bytes: 8192 (need to verify)": chunks up to 8 KiB are what the document
# promises; larger ones up to 64 KiB (2 s of 16 kHz audio) are accepted too.
MAX_CHUNK_BYTES = 64 * 1024
# core_settings.initial_prompt: Whisper keeps the last 223 tokens of a prompt; this is well above that.
MAX_INITIAL_PROMPT_CHARS = 1000
_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


@dataclass(frozen=True)
class StreamConfig:
    """The document's configuration options this server honours (others are accepted and ignored)."""

    interim_results: bool = True
    uppercase_start: bool = True
    period_end: bool = True
    language: str | None = None  # None: the server default
    sample_rate: int = 16000
    initial_prompt: str | None = None  # core_settings.initial_prompt: Whisper's initial prompt
    keyterms: tuple[str, ...] = ()  # core_settings.keyterms as sent (validated), before the vocabulary's
    vocabulary: str | None = None  # core_settings.vocabulary: the name of one of the user's vocabularies
    enrich: EnrichOptions | None = None  # features: diarization, sentiment, topics, filters (None: defaults)
    sentiment_granularity: str = "sentence"  # features.sentiment_analysis.granularity
    # wake_word: the client's settings (the reference's names), read over the server's by the
    # consumer; `wake` is what the stream runs with once it has started.
    wake_settings: dict[str, Any] = field(default_factory=dict)
    wake: WakeOptions | None = None
    store_audio: bool | None = None  # store_audio (or core_settings.store_audio); None: the defaults

    @property
    def wake_on(self) -> bool:
        return self.wake is not None and self.wake.enabled

    def public(self, keyterms: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The options in force; `keyterms` are the merged ones (the vocabulary's first) when known."""
        return {
            "core_settings": {
                "language": self.language,
                "initial_prompt": self.initial_prompt,
                "keyterms": list(self.keyterms if keyterms is None else keyterms),
                "vocabulary": self.vocabulary,
            },
            "audio_processing": {"sample_rate": self.sample_rate, "channels": 1},
            "features": {"interim_results": self.interim_results, **_features_public(self)},
            "formatting": {
                "ensure_sentence_starting_uppercase": self.uppercase_start,
                "ensure_sentence_ends_with_period": self.period_end,
            },
            "wake_word": (self.wake or WakeOptions()).public(),
        }


def _features_public(config: StreamConfig) -> dict[str, Any]:
    e = config.enrich or EnrichOptions()
    return {
        "speaker_diarization": e.speakers,
        "max_speakers": e.max_speakers,
        "sentiment_analysis": {
            "enabled": e.sentiment,
            "granularity": config.sentiment_granularity,
            "min_confidence": e.sentiment_min_confidence,
        },
        "topic_detection": {"enabled": e.topics, "min_confidence": e.topics_min_confidence},
        "profanity_filter": e.profanity_filter,
        "redact": sorted(e.redact),
    }


GRANULARITIES = ("sentence", "segment")


def _enrichment(features: dict[str, Any], base: StreamConfig) -> tuple[EnrichOptions | None, str]:
    """The document's `features` (plus our `profanity_filter`, `redact`, `max_speakers`) as options."""
    raw: dict[str, Any] = {}
    granularity = base.sentiment_granularity
    for name in ("speaker_diarization", "max_speakers", "profanity_filter", "redact"):
        if name in features:
            raw[name] = features[name]
    for section, prefix in (("sentiment_analysis", "sentiment"), ("topic_detection", "topics")):
        if section not in features:
            continue
        value = features[section]
        if isinstance(value, bool):
            value = {"enabled": value}
        if not isinstance(value, dict):
            raise ProtocolError("invalid_option", f"{section} must be a JSON object or true/false.")
        if "enabled" in value:
            raw[prefix] = value["enabled"]
        if "min_confidence" in value:
            raw[f"{prefix}_min_confidence"] = value["min_confidence"]
        if section == "sentiment_analysis" and "granularity" in value:
            granularity = value["granularity"]
            if granularity not in GRANULARITIES:
                raise ProtocolError(
                    "invalid_option",
                    f"sentiment_analysis.granularity must be one of {', '.join(GRANULARITIES)}.",
                )
    if not raw:  # as at the stream's previous start (None: the server's defaults)
        return base.enrich, granularity
    try:
        return enrich_from_client(raw, base.enrich or enrich_defaults()), granularity
    except EnrichmentError as exc:
        raise ProtocolError(exc.code, exc.message) from None


def stream_ids(params: dict[str, str]) -> tuple[str, str]:
    """`client_id` and `session_id` from the query string; both sockets name the same pair."""
    ids = []
    for name in ("client_id", "session_id"):
        value = (params.get(name) or "").strip()
        if not value:
            raise ProtocolError(
                "missing_stream_ids", "Connect with ?client_id=...&session_id=... (the same on both sockets)."
            )
        if not _ID.match(value):
            raise ProtocolError(
                "invalid_stream_ids", f"{name} must be 1-128 characters of letters, digits and ._:@-"
            )
        ids.append(value)
    return ids[0], ids[1]


def group_name(user_pk: Any, client_id: str, session_id: str) -> str:
    """The channel-layer group where a user's control socket waits for its audio socket."""
    digest = hashlib.sha256(f"{user_pk}\x00{client_id}\x00{session_id}".encode()).hexdigest()
    return f"v1stream.{digest[:48]}"


def parse_command(text: str) -> dict[str, Any]:
    command = loads_command(text, hint='Commands are JSON objects like {"command": "start_stream"}.')
    if not isinstance(command, dict):
        raise ProtocolError("invalid_command", 'A command must be a JSON object with a "command".')
    name = command.get("command")
    if name not in COMMANDS:
        raise ProtocolError(
            "unknown_command", f"Unknown command {name!r:.40}; expected one of {', '.join(COMMANDS)}."
        )
    return command


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ProtocolError("invalid_option", f"{name} must be a JSON object.")
    return value


def _flag(section: dict[str, Any], name: str, default: bool) -> bool:
    value = section.get(name, default)
    if not isinstance(value, bool):
        raise ProtocolError("invalid_option", f"{name} must be true or false.")
    return value


def _initial_prompt(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError("invalid_option", "initial_prompt must be a string or null.")
    value = value.strip()
    if len(value) > MAX_INITIAL_PROMPT_CHARS:
        raise ProtocolError(
            "invalid_option", f"initial_prompt is at most {MAX_INITIAL_PROMPT_CHARS} characters."
        )
    return value or None


def _keyterms(value: Any) -> tuple[str, ...]:
    try:
        return clean_keyterms(value)
    except KeytermError as exc:
        raise ProtocolError(exc.code, exc.message) from None


# start_stream's `wake_word` section: the reference's names, or these short ones.
_WAKE_ALIASES = {
    "backend": "wakeword_backend",
    "words": "wake_words",
    "sensitivity": "wake_words_sensitivity",
    "timeout": "wake_word_timeout",
    "followup_window": "wake_word_followup_window",
    "activation_delay": "wake_word_activation_delay",
}


def _wake_settings(raw: dict[str, Any], base: StreamConfig) -> dict[str, Any]:
    section = raw.get("wake_word")
    if section is None:
        return base.wake_settings
    if not isinstance(section, dict):
        raise ProtocolError("invalid_option", "wake_word must be a JSON object (wake_words, ...).")
    unknown = [k for k in section if k not in _WAKE_ALIASES and k not in _WAKE_ALIASES.values()]
    if unknown:
        raise ProtocolError("invalid_option", f"wake_word has no setting {', '.join(map(repr, unknown))}.")
    return {_WAKE_ALIASES.get(k, k): v for k, v in section.items()}


def _vocabulary(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProtocolError("unknown_vocabulary", "vocabulary must be the name of one of your vocabularies.")
    return value.strip() or None


def config_from_start(
    command: dict[str, Any], base: StreamConfig, *, languages: list[str] | None
) -> StreamConfig:
    """Options of a start_stream command: the document's sections, at the top level or under "config".

    Absent options keep their value of the stream's previous start. The vocabulary's terms are looked
    up by the consumer (a database read): `keyterms` here are the inline ones, validated.
    """
    raw = command.get("config", command)
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_option", "config must be a JSON object.")
    core, audio = _section(raw, "core_settings"), _section(raw, "audio_processing")
    features, formatting = _section(raw, "features"), _section(raw, "formatting")
    language = core.get("language", raw.get("language", base.language))
    if language is not None:
        if not isinstance(language, str) or not language.strip():
            raise ProtocolError("invalid_option", "language must be a language code like 'en'.")
        language = language.strip().split("-")[0].lower()
        check_language(language, languages)
    rate = audio.get("sample_rate", raw.get("sample_rate", base.sample_rate))
    if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 48000:
        raise ProtocolError("invalid_option", "sample_rate must be an integer in 8000..48000.")
    channels = audio.get("channels", raw.get("channels", 1))
    if channels != 1:
        raise ProtocolError("invalid_option", "channels must be 1 (mono PCM16).")
    enrich, granularity = _enrichment(features, base)
    return replace(
        base,
        initial_prompt=_initial_prompt(
            core.get("initial_prompt", raw.get("initial_prompt", base.initial_prompt))
        ),
        keyterms=_keyterms(core.get("keyterms", raw.get("keyterms", base.keyterms))),
        vocabulary=_vocabulary(core.get("vocabulary", raw.get("vocabulary", base.vocabulary))),
        interim_results=_flag(features, "interim_results", base.interim_results),
        uppercase_start=_flag(formatting, "ensure_sentence_starting_uppercase", base.uppercase_start),
        period_end=_flag(formatting, "ensure_sentence_ends_with_period", base.period_end),
        language=language,
        sample_rate=rate,
        enrich=enrich,
        sentiment_granularity=granularity,
        wake_settings=_wake_settings(raw, base),
        store_audio=_store_audio(core.get("store_audio", raw.get("store_audio", base.store_audio))),
    )


def _store_audio(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ProtocolError("invalid_option", "store_audio must be true or false.")
    return value


def format_text(text: str, config: StreamConfig, *, final: bool) -> str:
    """The document's formatting options, as RealtimeSTT applies them (the period on finals only)."""
    text = " ".join(text.split())
    if text and config.uppercase_start:
        text = text[0].upper() + text[1:]
    if final and text and config.period_end and text[-1].isalnum():
        text += "."
    return text


@dataclass
class StreamClock:
    """Maps offsets in the transcribed audio to wall-clock times from the stream's `audio_start`.

    Audio sent while paused is dropped before transcription, so each pause's length is added
    back to every later offset.
    """

    origin: dt.datetime
    base_s: float = 0.0  # transcribed seconds before this stream started (an earlier start/stop)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (offset, seconds dropped there)

    def skip(self, offset_s: float, seconds: float) -> None:
        if self.gaps and abs(self.gaps[-1][0] - offset_s) < 1e-9:
            self.gaps[-1] = (offset_s, self.gaps[-1][1] + seconds)
        else:
            self.gaps.append((offset_s, seconds))

    def at(self, offset_s: float, *, ending: bool = False) -> dt.datetime:
        """The wall time of `offset_s`; an `ending` offset at a pause lies before that pause's gap."""
        if ending:
            dropped = sum(seconds for at, seconds in self.gaps if at < offset_s - 1e-9)
        else:
            dropped = sum(seconds for at, seconds in self.gaps if at <= offset_s + 1e-9)
        return self.origin + dt.timedelta(seconds=max(0.0, offset_s - self.base_s) + dropped)


def envelope(kind: str, data: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """`{"type": ..., "data": {..., "timestamp": ...}}`, the shape of the document's messages."""
    return {"type": kind, "data": {**data, "timestamp": iso(now or utc_now())}}


def partial_result(
    text: str,
    *,
    confidence: float | None,
    clock: StreamClock,
    start_s: float,
    current_s: float,
    speaker: str | None = None,
    wake: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return envelope(
        "partial_result",
        {
            "text": text,
            "confidence": confidence,
            "is_final": False,
            "audio_start": iso(clock.at(start_s)),
            "audio_current": iso(clock.at(current_s, ending=True)),
            **({"speaker": speaker} if speaker else {}),
            **(wake or {}),
        },
    )


def final_result(
    text: str,
    *,
    confidence: float | None,
    clock: StreamClock,
    start_s: float,
    end_s: float,
    speaker: str | None = None,
    enrichment: Enrichment | None = None,
    granularity: str = "sentence",
    wake: dict[str, Any] | None = None,
) -> dict[str, Any]:
    start, end = clock.at(start_s), clock.at(end_s, ending=True)
    data: dict[str, Any] = {
        "text": text,
        "is_final": True,
        "confidence": confidence,
        "audio": {
            "start": iso(start),
            "end": iso(end),
            "duration": round((end - start).total_seconds(), 3),
        },
    }
    if enrichment is not None:
        data.update(_enrichment_fields(text, speaker, enrichment, granularity))
    data.update(wake or {})
    return envelope("final_result", data)


def _enrichment_fields(text: str, speaker: str | None, e: Enrichment, granularity: str) -> dict[str, Any]:
    """The document's `speaker`, `speakers`, `analysis` and `filters`, for the stages that are on."""
    fields: dict[str, Any] = {}
    if e.speakers is not None:
        fields["speaker"] = speaker
        fields["speakers"] = {
            "count": len(e.speakers),
            "details": [
                {"id": s["id"], "speaking_time": s["speaking_time"], "segments": s["segments"]}
                for s in e.speakers
            ],
        }
    analysis: dict[str, Any] = {}
    if e.session_sentiment is not None or e.sentiment is not None:
        if granularity == "segment":
            by_sentence = [{"text": text, "sentiment": e.sentiment["label"], "score": e.sentiment["score"]}]
        else:
            by_sentence = list(e.sentences or [])
        analysis["sentiment"] = {
            "overall": e.session_sentiment,
            "by_sentence": by_sentence if e.sentiment else [],
        }
    if e.topics is not None:
        analysis["topics"] = e.topics
    if analysis:
        fields["analysis"] = analysis
    if e.profanity is not None or e.redacted is not None:
        filters: dict[str, Any] = {}
        if e.profanity is not None:
            filters["profanity"] = {"detected": bool(e.profanity), "filtered_words": e.profanity}
        if e.redacted is not None:
            filters["redaction"] = {"detected": bool(e.redacted), "counts": e.redacted}
        fields["filters"] = filters
    return fields


def start_time(command: dict[str, Any]) -> dt.datetime:
    return parse_iso(command.get("audio_start"), "audio_start") or utc_now()


def enveloped(payload: dict[str, Any]) -> dict[str, Any]:
    """Every message in the document's envelope: {"type", "data": {..., "timestamp"}}."""
    if "data" in payload:
        return payload
    return envelope(payload["type"], {k: v for k, v in payload.items() if k != "type"})


async def parse_ids(consumer: Any) -> bool:
    """Set the socket's stream ids and group from its query string; close it (4400) when they are bad."""
    try:
        consumer.stream_client_id, consumer.stream_session_id = stream_ids(query_params(consumer.scope))
    except ProtocolError as exc:
        await consumer.close_for(exc.code, exc.message, CLOSE_BAD_REQUEST)
        return False
    user = consumer.scope["user"].pk
    consumer.group = group_name(user, consumer.stream_client_id, consumer.stream_session_id)
    return True


def status_message(state: str, client_id: str, session_id: str, server_session_id: str, **extra) -> dict:
    return envelope(
        "status",
        {
            "state": state,
            "client_id": client_id,
            "session_id": session_id,
            "server_session_id": server_session_id,
            **extra,
        },
    )


class ResultEncoder:
    """A stream's session events as the document's `partial_result` / `final_result` (and errors)."""

    def __init__(self) -> None:
        self._segment_starts: dict[str, float] = {}

    def encode(
        self, event: SessionEvent, config: StreamConfig, clock: StreamClock | None, position_s: float
    ) -> dict[str, Any] | None:
        if isinstance(event, SpeechStarted):
            self._segment_starts[event.segment_id] = round(event.timing.start_s, 3)
        elif isinstance(event, Interim):
            if not config.interim_results or clock is None:
                return None
            return partial_result(
                format_text(event.text, config, final=False),
                confidence=round(event.confidence, 4),
                clock=clock,
                start_s=self._segment_starts.get(event.segment_id, position_s),
                current_s=position_s,
                speaker=event.speaker,
                wake=_wake_field(config, event.wake_word),
            )
        elif isinstance(event, Final):
            self._segment_starts.pop(event.segment_id, None)
            return final_result(
                format_text(event.text, config, final=True),
                confidence=None if event.confidence is None else round(event.confidence, 4),
                clock=clock,
                start_s=round(event.timing.start_s, 3),
                end_s=round(event.timing.end_s, 3),
                speaker=event.speaker,
                enrichment=event.enrichment,
                granularity=config.sentiment_granularity,
                wake=_wake_field(config, event.wake_word),
            )
        elif isinstance(event, Notice | Error):
            kind = "warning" if isinstance(event, Notice) else "error"
            return {"type": kind, "code": event.code, "message": event.message}
        return None


def _wake_field(config: StreamConfig, word: str | None) -> dict[str, Any]:
    """`wake_word_detected`: the word that opened the segment (null in a follow-up), in wake mode."""
    return {"wake_word_detected": word} if config.wake_on else {}
