"""/stt/v3/stream: the lang_code and x-sample-rate headers, then one audio frame."""

from __future__ import annotations

from bench.fuzz.harness import Target, require
from bench.fuzz.targets.common import LANGUAGE_SETS, fields
from speech.audio import AudioPacketError, decode_pcm16
from transcription.streaming.protocols.common import ProtocolError, header
from transcription.streaming.protocols.stt_v3 import (
    FRAME_BYTES,
    LANG_CODES,
    SAMPLE_RATES,
    check_frame,
    check_model_languages,
    parse_lang_code,
    parse_sample_rate,
)


def _stt_v3(data: bytes) -> None:
    """Line 1: lang_code, line 2: x-sample-rate (header values, latin-1), the rest: one frame.
    The consumer closes with 4400 on a header's ProtocolError and answers a frame's with an error."""
    lang, rate, frame = fields(data, 3)
    scope = {"headers": [(b"lang_code", lang), (b"x-sample-rate", rate)]}
    selection = parse_lang_code(header(scope, "lang_code", "lang-code"))
    require(selection.codes and all(code in LANG_CODES for code in selection.codes), "unknown code kept")
    require(
        selection.code_for(selection.session_language) in (*selection.codes, selection.session_language),
        "code_for",
    )
    sample_rate = parse_sample_rate(header(scope, "x-sample-rate"))
    require(sample_rate in SAMPLE_RATES, f"sample rate {sample_rate}")
    for languages in LANGUAGE_SETS:
        try:
            check_model_languages(selection, languages)
        except ProtocolError:
            pass
    check_frame(frame)
    packet = decode_pcm16(frame, sample_rate=sample_rate)
    require(packet.frames == FRAME_BYTES // 2, "frame samples")


STT_V3 = Target(
    name="stt_v3",
    instrument=("transcription.streaming.protocols", "accounts.keys", "speech.audio"),
    what="stt_v3.parse_lang_code, parse_sample_rate, check_model_languages, check_frame + decode_pcm16",
    run=_stt_v3,
    expected=(ProtocolError, AudioPacketError),
    seeds=[
        b"en-IN\n16000\n" + bytes(FRAME_BYTES),
        b"hi-IN,en-IN\n8000\n" + b"\x01\x02" * 512,
        b"en-hi-in-cm\n48000\n",
        b"\n\n" + bytes(FRAME_BYTES),
        b"ta-IN, te-IN ,\n44100\n" + bytes(1023),
    ],
    dictionary=(*tuple(code.encode() for code in LANG_CODES), b",", b"16000", b"44100"),
)
