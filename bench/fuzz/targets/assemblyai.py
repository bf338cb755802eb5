"""AssemblyAI's /v3/ws: the connection's query string and the client's JSON messages."""

from __future__ import annotations

from bench.fuzz.harness import Target, require
from bench.fuzz.targets.common import LANGUAGE_SETS, drive, hostile, json_tokens, jsons, text
from bench.fuzz.targets.stubs import consumer
from speech.options import SessionOptions
from transcription.compat.assemblyai import params as aai
from transcription.compat.assemblyai import wire
from transcription.compat.assemblyai.live import AssemblyAIConsumer
from transcription.streaming.protocols.common import query_params


def _query(data: bytes) -> None:
    """parse_query(query_params(...)) against each model's languages, and the options it makes."""
    query = query_params({"query_string": data})
    for languages in LANGUAGE_SETS:
        try:
            params = aai.parse_query(query, supported=languages)
        except aai.ParamError:
            continue
        require(aai.MIN_SAMPLE_RATE <= params.sample_rate <= aai.MAX_SAMPLE_RATE, "sample rate")
        options = params.options(SessionOptions())
        require(options.max_turn_silence >= options.end_of_turn_silence, "turn silences out of order")


QUERY = Target(
    name="assemblyai_query",
    instrument=(
        "transcription.compat.assemblyai",
        "speech.keyterms",
        "transcription.streaming.protocols.common",
    ),
    what="compat.assemblyai.params.parse_query(query_params), StreamParams.options",
    run=_query,
    expected=(aai.ParamError,),
    seeds=[
        b"sample_rate=16000&encoding=pcm_s16le&format_turns=True",
        b"sample_rate=8000&encoding=pcm_mulaw&speech_model=universal-streaming-multilingual&language_detection=true",
        b"sample_rate=48000&end_of_turn_confidence_threshold=0.7&min_end_of_turn_silence_when_confident=160"
        b"&max_turn_silence=2400&inactivity_timeout=30",
        b"sample_rate=16000&keyterms_prompt=%5B%22Scribe%22%2C%22Ada%22%5D&language_codes=%5B%22en%22%5D",
        b"sample_rate=16000&language_code=en&speaker_labels=false&token=abc",
        *hostile("sample_rate=16000&keyterms_prompt="),
    ],
    dictionary=(
        *tuple(
            f"{name}=".encode()
            for name in (
                "sample_rate",
                "encoding",
                "format_turns",
                "speech_model",
                "model",
                "language_detection",
                "inactivity_timeout",
                "keyterms_prompt",
                "language_codes",
                "language_code",
                *aai.TURN_PARAMS,
                *aai.UNSUPPORTED,
            )
        ),
        b"&",
        b"True",
        b"False",
        b"pcm_mulaw",
        b"%5B",
        b"%22",
        b"%5D",
        b"%2C",
    ),
)


def _message(data: bytes) -> None:
    """Text messages (one per line) to an admitted stream: Terminate, ForceEndpoint, KeepAlive,
    UpdateConfiguration; a bad one is AssemblyAI's Error and close. The consumer catches nothing here."""
    live = consumer(
        AssemblyAIConsumer,
        params=aai.StreamParams(sample_rate=16000),
        encoder=wire.TurnEncoder(format_turns=False, language_detection=False),
    )
    for line in text(data).split("\n")[:16]:
        drive(live.on_message(line))


MESSAGE = Target(
    name="assemblyai_message",
    instrument=("transcription.compat.assemblyai", "speech.keyterms"),
    what="compat.assemblyai.live.on_message, update_configuration (params.parse_update)",
    run=_message,
    expected=(),
    seeds=[
        *hostile('{"type": "UpdateConfiguration", "keyterms_prompt": ', "}"),
        *hostile('{"type": "UpdateConfiguration", "language_codes": "', '"'),
        *jsons(
            {"type": "KeepAlive"},
            {"type": "ForceEndpoint"},
            {"type": "Terminate"},
            {
                "type": "UpdateConfiguration",
                "end_of_turn_confidence_threshold": 0.5,
                "min_turn_silence": 300,
                "max_turn_silence": 1200,
                "format_turns": True,
            },
            {"type": "UpdateConfiguration", "keyterms_prompt": ["Scribe"], "language_codes": ["en"]},
        ),
    ],
    dictionary=json_tokens(
        "type",
        *("Terminate", "ForceEndpoint", "KeepAlive", "UpdateConfiguration"),
        *aai.UPDATABLE,
        *aai.UNSUPPORTED[:8],
    ),
)
