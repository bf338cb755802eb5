"""/ws/transcribe's JSON commands (ours and the reference server's dialect of them)."""

from __future__ import annotations

from bench.fuzz.harness import Target, require
from bench.fuzz.targets.common import LANGUAGE_SETS, hostile, json_tokens, jsons, text
from speech.keyterms import KeytermError
from speech.options import SessionOptions
from transcription.streaming.protocols.common import ProtocolError
from transcription.streaming.protocols.ws_transcribe import (
    COMMANDS as COMMAND_TYPES,
)
from transcription.streaming.protocols.ws_transcribe import (
    START_OPTIONS,
    WAKE_START_OPTIONS,
    command_options,
    configure,
    last_segment,
    options_from_start,
    parse_command,
    store_audio_option,
)

BASE = SessionOptions()
# Where a command's options are read: the protocol, key terms, enrichment and wake-word options.
OPTION_MODULES = (
    "transcription.streaming.protocols",
    "transcription.enrichment",
    "transcription.wake",
    "speech.keyterms",
    "speech.options",
    "speech.enrich.options",
    "speech.wake",
)
# What TranscribeConsumer.receive answers with an `error` (anything else escapes the handler).
EXPECTED = (ProtocolError, KeytermError)


def _command(data: bytes) -> None:
    """The consumer's path: parse_command, then a start's or a configure's options, against the
    model's languages (English-only, any, multilingual)."""
    command = parse_command(text(data))
    require(command.get("type") in COMMAND_TYPES, "parse_command let through an unknown type")
    if command["type"] not in ("start", "configure"):
        return
    raw = command_options(command)
    for languages in LANGUAGE_SETS:
        if command["type"] == "start":
            try:
                options = options_from_start(raw, BASE, languages=languages)
            except EXPECTED:
                continue
            require(isinstance(options, SessionOptions), "options_from_start returned no SessionOptions")
            store_audio_option(raw)
        else:
            options, rejected = configure(raw, BASE, languages=languages)
            require(all(set(r) == {"field", "code", "message"} for r in rejected), "malformed rejection")


def _reference(data: bytes) -> None:
    """The reference dialect: the same commands (with its snake_case wake-word names) and the
    resume query's lastSegment."""
    last = last_segment(text(data[:16]))
    require(last is None or 0 <= last < 10**9, f"lastSegment {last}")
    _command(data)


_TOKENS = json_tokens("type", "options", *COMMAND_TYPES, *START_OPTIONS, "storeAudio", "vocabulary", "id")
_SEEDS = jsons(
    {"type": "start"},
    {"type": "start", "options": {"language": "en", "interimResults": True, "realtimeIntervalMs": 750}},
    {"type": "start", "language": "de", "wordTimestamps": True, "keyterms": ["Scribe", "Channels"]},
    {
        "type": "start",
        "options": {
            "webrtcSensitivity": 3,
            "sileroSensitivity": 0.4,
            "preRecordingBufferDuration": 0.5,
            "postSpeechSilenceDuration": 0.6,
            "minLengthOfRecording": 0.3,
            "minGapBetweenRecordings": 0.2,
            "earlyTranscriptionOnSilence": 0.2,
            "maxSegmentSeconds": 20,
            "endOfTurnSilence": 0.8,
            "maxTurnSilence": 2.0,
            "endOfTurnThreshold": 0.5,
            "firstInterimMs": 300,
            "storeAudio": False,
        },
    },
    {"type": "start", "options": {"enrichment": {"sentiment": True, "topics": True, "speakers": True}}},
    {"type": "configure", "keyterms": ["Django"], "language": "en", "endOfTurnSilence": 1.0},
    {"type": "configure", "options": {"maxSegmentSeconds": 10, "interimResults": False}},
    {"type": "ping", "id": 42},
    {"type": "stop"},
    {"type": "clear"},
    {"type": "metrics"},
    {"type": "finalize"},
    {"type": "keepalive"},
)

COMMANDS = Target(
    name="ws_transcribe",
    instrument=OPTION_MODULES,
    what="ws_transcribe.parse_command, command_options, options_from_start, store_audio_option, configure",
    run=_command,
    expected=EXPECTED,
    seeds=[
        *_SEEDS,
        *hostile('{"type": "start", "options": ', "}"),
        *hostile('{"type": "configure", "keyterms": ', "}"),
    ],
    dictionary=_TOKENS,
)

REFERENCE = Target(
    name="reference_dialect",
    instrument=OPTION_MODULES,
    what="ws_transcribe commands with the reference's wake-word names (wake_from_client), last_segment",
    run=_reference,
    expected=EXPECTED,
    seeds=[
        *hostile('{"type": "start", "wake_words": ', "}"),
        *jsons(
            {
                "type": "start",
                "wake_words": "jarvis",
                "wakeword_backend": "pvporcupine",
                "wake_words_sensitivity": 0.6,
                "wake_word_timeout": 5,
                "wake_word_activation_delay": 0,
            },
            {
                "type": "start",
                "options": {
                    "wakewordBackend": "transcript",
                    "wakeWords": "hey scribe",
                    "wakeWordTimeout": 5.0,
                    "wakeWordFollowupWindow": 2.0,
                },
            },
            {"type": "start", "options": {"wake_words": "computer,alexa", "wake_word_buffer_duration": 0.1}},
            {"type": "configure", "wake_words": "jarvis"},
        ),
        b"12",
        b"999999999",
    ],
    dictionary=_TOKENS + json_tokens(*WAKE_START_OPTIONS, "pvporcupine", "openwakeword", "transcript"),
)
