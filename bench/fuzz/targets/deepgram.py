"""Deepgram's live /v1/listen: the query string, the audio (a WAV stream or linear16), the messages."""

from __future__ import annotations

import hashlib

from bench.fuzz.harness import Target, require
from bench.fuzz.targets.common import LANGUAGE_SETS, drive, hostile, json_tokens, jsons, text
from bench.fuzz.targets.stubs import consumer
from speech.options import SessionOptions
from transcription.compat.deepgram import params as dg
from transcription.compat.deepgram.live import DeepgramLiveConsumer
from transcription.compat.deepgram.wav import WavHeader

OWN_MODEL = "tiny.en"


def _consumer(params: dg.ListenParams | None = None, fmt: WavHeader | None = None) -> DeepgramLiveConsumer:
    return consumer(
        DeepgramLiveConsumer,
        request_id="fuzz",
        created="2024-01-01T00:00:00.000000Z",
        _sha=hashlib.sha256(),
        _carry=b"",
        _header=b"",
        _format=fmt,
        _starts={},
        _pending_end=None,
        _ended=False,
        model=OWN_MODEL,
        params=params or dg.ListenParams(),
    )


def _query(data: bytes) -> None:
    """parse_params(query_pairs(...)) as the live socket (and the pre-recorded POST) read it, the
    language check against each model, and the session options it makes."""
    params = dg.parse_params(dg.query_pairs(data), own_model=OWN_MODEL)
    for languages in LANGUAGE_SETS:
        try:
            dg.check_language(params, languages)
        except dg.DeepgramError:
            pass
    options = _consumer(params).session_options(SessionOptions())
    require(options.post_speech_silence_duration > 0, "no end of speech")


QUERY = Target(
    name="deepgram_query",
    instrument=(
        "transcription.compat.deepgram",
        "speech.keyterms",
        "speech.enrich.options",
        "transcription.enrichment",
    ),
    what="compat.deepgram.params.parse_params(query_pairs), check_language; live session_options",
    run=_query,
    expected=(dg.DeepgramError,),
    seeds=[
        b"model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true",
        b"language=en-US&punctuate=true&smart_format=true&endpointing=300&utterance_end_ms=1000",
        b"vad_events=true&diarize=true&keyterm=Scribe&keyterm=Django%20Channels&keywords=ada:2",
        b"language=multi&endpointing=false&utterances=true&utt_split=0.8&tag=a&profanity_filter=true",
        b"redact=false&numerals=false&summarize=false&mip_opt_out=true",
        b"",
    ],
    dictionary=(
        *tuple(
            f"{name}=".encode()
            for name in (
                "model",
                "encoding",
                "sample_rate",
                "channels",
                "language",
                "interim_results",
                "punctuate",
                "smart_format",
                "endpointing",
                "utterance_end_ms",
                "vad_events",
                "diarize",
                "utterances",
                "utt_split",
                "keyterm",
                "keywords",
                "redact",
                "profanity_filter",
                *dg.LACKING_FLAGS,
                *dg.LACKING_VALUES,
                *dg.IGNORED,
            )
        ),
        b"&",
        b"true",
        b"false",
        b"linear16",
        b"nova-3",
        b"multi",
    ),
)


def _wav(head: int, rate: int, channels: int, extra: bytes = b"", data: bytes = b"") -> bytes:
    fmt = (1).to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
    fmt += (
        (rate * channels * 2).to_bytes(4, "little")
        + (channels * 2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
    )
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + extra
    body += b"data" + len(data).to_bytes(4, "little") + data
    return b"RIFF" + (len(body) if head else 0xFFFFFFFF).to_bytes(4, "little") + body


def _audio(data: bytes) -> None:
    """The live socket's audio messages (cut at `||`); byte 0 odd: encoding=linear16 at a known
    format, even: a WAV stream whose header sets it. Every failure is a DATA-0000 close."""
    if not data:
        return
    fmt = WavHeader(16000 if data[0] & 2 else 48000, 1 + (data[0] >> 2) % 8) if data[0] & 1 else None
    live = _consumer(fmt=fmt)
    for message in data[1:].split(b"||"):
        if live._ended:
            break
        drive(live._audio(message))


WAV = Target(
    name="deepgram_wav",
    instrument=("transcription.compat.deepgram", "speech.audio"),
    what="compat.deepgram.live._audio: read_wav_header across messages, frame carry, decode_pcm16",
    run=_audio,
    expected=(),
    seeds=[
        b"\x00" + _wav(1, 16000, 1, data=bytes(640)),
        b"\x00" + _wav(0, 48000, 2, extra=b"LIST\x04\x00\x00\x00INFO"),
        b"\x00" + _wav(1, 8000, 1)[:20] + b"||" + _wav(1, 8000, 1)[20:] + b"\x01\x00",
        b"\x01" + bytes(321) + b"||" + bytes(3),
        b"\x1f" + bytes(96),
    ],
    dictionary=(b"RIFF", b"WAVE", b"fmt ", b"data", b"LIST", b"\x10\x00\x00\x00", b"\xfe\xff", b"||"),
)


def _message(data: bytes) -> None:
    """Text messages (one per line): KeepAlive, Finalize, CloseStream, Configure; anything else is a
    SchemaError reply, and too many in a row close the stream. The consumer catches nothing here."""
    live = _consumer()
    for line in text(data).split("\n")[:16]:
        if live._ended:
            break
        drive(live._message(line))


MESSAGE = Target(
    name="deepgram_message",
    instrument=("transcription.compat.deepgram", "speech.keyterms", "transcription.streaming.lifecycle"),
    what="compat.deepgram.live._message, _configure, _finalize (replies included)",
    run=_message,
    expected=(),
    seeds=[
        *hostile('{"type": "Configure", "keyterms": ', "}"),
        *jsons(
            {"type": "KeepAlive"},
            {"type": "Finalize"},
            {"type": "CloseStream"},
            {"type": "Configure", "keyterms": ["Scribe", "Ada Lovelace"]},
            {"type": "Configure", "features": {"smart_format": True}},
            "KeepAlive",
        ),
        b'{"type": "KeepAlive"}\n{"type": "Finalize"}\n{"type": "CloseStream"}',
    ],
    dictionary=json_tokens(
        "type", "KeepAlive", "Finalize", "CloseStream", "Configure", "keyterms", "features"
    ),
)
