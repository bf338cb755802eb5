"""/v1/stream/control's commands and /v1/stream/audio's query string and chunks."""

from __future__ import annotations

from bench.fuzz.harness import Target, require
from bench.fuzz.targets.common import LANGUAGE_SETS, fields, hostile, json_tokens, jsons, text
from bench.fuzz.targets.ws_transcribe import OPTION_MODULES
from speech.audio import AudioPacketError, decode_pcm16
from speech.wake.options import WakeOptions
from transcription.streaming.protocols.common import ProtocolError, parse_iso, query_params
from transcription.streaming.protocols.v1_stream import wire
from transcription.streaming.protocols.v1_stream.control import V1StreamControlConsumer

BASE = wire.StreamConfig()


def _control(data: bytes) -> None:
    """parse_command, then start_stream's config (and its wake-word settings), audio_start and
    stop_stream's audio_end, as the control consumer reads them; ProtocolError is its answer."""
    command = wire.parse_command(text(data))
    require(command.get("command") in wire.COMMANDS, "unknown command let through")
    if command["command"] == "stop_stream":
        parse_iso(command.get("audio_end"), "audio_end")
    if command["command"] != "start_stream":
        return
    for languages in LANGUAGE_SETS:
        try:
            config = wire.config_from_start(command, BASE, languages=languages)
        except ProtocolError:
            continue
        require(8000 <= config.sample_rate <= 48000, f"sample rate {config.sample_rate}")
        config.public()
        V1StreamControlConsumer._wake(config, WakeOptions())
    wire.start_time(command)


CONTROL = Target(
    name="v1_stream_control",
    instrument=OPTION_MODULES,
    what="v1_stream.wire.parse_command, config_from_start, start_time, parse_iso; control._wake",
    run=_control,
    expected=(ProtocolError,),
    seeds=[
        *hostile('{"command": "start_stream", "config": ', "}"),
        *hostile('{"command": "stop_stream", "audio_end": ', "}"),
        *jsons(
            {"command": "start_stream", "audio_start": "2024-03-20T10:30:35.123Z"},
            {"command": "stop_stream", "audio_end": "2024-03-20T10:30:45.123Z"},
            {"command": "pause_stream"},
            {"command": "resume_stream"},
            {
                "command": "start_stream",
                "config": {
                    "core_settings": {
                        "language": "en",
                        "initial_prompt": None,
                        "keyterms": ["Scribe"],
                        "vocabulary": "",
                        "store_audio": True,
                    },
                    "audio_processing": {"channels": 1, "sample_rate": 16000},
                    "features": {
                        "interim_results": True,
                        "speaker_diarization": False,
                        "max_speakers": 2,
                        "sentiment_analysis": {
                            "enabled": True,
                            "granularity": "sentence",
                            "min_confidence": 0.6,
                        },
                        "topic_detection": {"enabled": False, "min_confidence": 0.6},
                        "profanity_filter": True,
                        "redact": ["email"],
                    },
                    "formatting": {
                        "ensure_sentence_starting_uppercase": True,
                        "ensure_sentence_ends_with_period": True,
                    },
                    "wake_word": {
                        "words": "jarvis",
                        "backend": "pvporcupine",
                        "sensitivity": 0.5,
                        "timeout": 5,
                    },
                },
            },
            {
                "command": "start_stream",
                "language": "de-DE",
                "sample_rate": 48000,
                "initial_prompt": "Names: Ada.",
            },
        ),
    ],
    dictionary=json_tokens(
        "command",
        *wire.COMMANDS,
        "audio_start",
        "audio_end",
        "config",
        "core_settings",
        "audio_processing",
        "features",
        "formatting",
        "wake_word",
        "sample_rate",
        "channels",
        "language",
        "keyterms",
        "sentiment_analysis",
        "topic_detection",
        "granularity",
        "enabled",
        "min_confidence",
        "redact",
        "2024-03-20T10:30:35",
    ),
)


def _audio(data: bytes) -> None:
    """Line 1: the query string (stream_ids); line 2: the stream's sample rate; the rest: one chunk,
    as the control socket decodes it (larger chunks are refused by the audio socket)."""
    query, rate, chunk = fields(data, 3)
    client_id, session_id = wire.stream_ids(query_params({"query_string": query}))
    require(wire._ID.match(client_id) and wire._ID.match(session_id), "bad stream id accepted")
    wire.group_name(1, client_id, session_id)
    if len(chunk) > wire.MAX_CHUNK_BYTES:
        return
    sample_rate = int(rate) if rate.isdigit() and 8000 <= int(rate) <= 48000 else 16000
    decode_pcm16(chunk, sample_rate=sample_rate, max_payload_bytes=wire.MAX_CHUNK_BYTES)


AUDIO = Target(
    name="v1_stream_audio",
    instrument=("transcription.streaming.protocols", "speech.audio"),
    what="v1_stream.wire.stream_ids(query_params), group_name; decode_pcm16 of a chunk",
    run=_audio,
    expected=(ProtocolError, AudioPacketError),
    seeds=[
        b"client_id=web-1&session_id=s.2024:01@x\n16000\n" + bytes(3200),
        b"session_id=a&client_id=b&client_id=c\n8000\n\x01\x02\x03",
        b"client_id=%20x%20&session_id=y\n\n",
    ],
    dictionary=(b"client_id=", b"session_id=", b"&", b"%", b"+"),
)
