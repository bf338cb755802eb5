"""The reference streaming protocol (/ws/transcribe): command parsing and start options."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from speech.session import SessionOptions

COMMANDS = ("start", "stop", "clear", "ping", "metrics")

# Client option name -> (SessionOptions field, type, min, max). Bounds are the server's limits.
START_OPTIONS: dict[str, tuple[str, type, float | None, float | None]] = {
    "language": ("language", str, None, None),
    "interimResults": ("interim_results", bool, None, None),
    "wordTimestamps": ("word_timestamps", bool, None, None),
    "realtimeIntervalMs": ("realtime_interval_s", int, 200, 5000),
    "webrtcSensitivity": ("webrtc_sensitivity", int, 0, 3),
    "sileroSensitivity": ("silero_sensitivity", float, 0.05, 0.95),
    "preRecordingBufferDuration": ("pre_recording_buffer_duration", float, 0.0, 2.0),
    "postSpeechSilenceDuration": ("post_speech_silence_duration", float, 0.2, 3.0),
    "minLengthOfRecording": ("min_length_of_recording", float, 0.0, 5.0),
    "minGapBetweenRecordings": ("min_gap_between_recordings", float, 0.0, 5.0),
    "earlyTranscriptionOnSilence": ("early_transcription_on_silence", float, 0.0, 2.0),
    "maxSegmentSeconds": ("max_segment_seconds", float, 6.0, 30.0),
}


class ProtocolError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse_command(text: str) -> dict[str, Any]:
    try:
        command = json.loads(text)
    except ValueError:
        raise ProtocolError("invalid_json", 'Commands must be JSON objects like {"type": "start"}.') from None
    if not isinstance(command, dict):
        raise ProtocolError("invalid_command", 'A command must be a JSON object with a "type".')
    kind = command.get("type")
    if kind not in COMMANDS:
        raise ProtocolError(
            "unknown_command", f"Unknown command {kind!r}; expected one of {', '.join(COMMANDS)}."
        )
    return command


def check_language(language: str, languages: list[str] | None) -> str:
    """`language` if the configured model can produce it (None `languages`: any); ProtocolError if not."""
    if languages is not None and language not in languages:
        raise ProtocolError(
            "unsupported_language",
            f"Language {language!r:.20} is not supported by the configured model (setting STT_MODEL); "
            f"supported: {', '.join(languages[:20])}.",
        )
    return language


def options_from_start(
    command: dict[str, Any], base: SessionOptions, *, languages: list[str] | None
) -> SessionOptions:
    """Apply a start command's options (top level or under "options") within server limits."""
    raw = command.get("options", command)
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_options", '"options" must be a JSON object.')
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "type" or name not in START_OPTIONS:
            continue
        field, kind, low, high = START_OPTIONS[name]
        if kind is bool:
            if not isinstance(value, bool):
                raise ProtocolError("invalid_option", f"{name} must be true or false.")
        elif kind is str:
            if value is not None and not isinstance(value, str):
                raise ProtocolError("invalid_option", f"{name} must be a string.")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ProtocolError("invalid_option", f"{name} must be a number.")
            if not low <= value <= high:
                raise ProtocolError("option_out_of_range", f"{name} must be between {low} and {high}.")
        if name == "realtimeIntervalMs":
            value = value / 1000.0
        if name == "language":
            value = (value or "").strip() or None
            if value is not None:
                check_language(value, languages)
        changes[field] = kind(value) if kind in (int, float) else value
    return replace(base, **changes)
