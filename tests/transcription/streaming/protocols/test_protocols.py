"""Pure helpers of the compatibility protocols: headers, languages, options, formatting, clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from accounts.keys import key_from_headers
from transcription.streaming.protocols import api_v1, stt_v3
from transcription.streaming.protocols.common import ProtocolError, header, iso, parse_iso
from transcription.streaming.protocols.v1_stream import wire as v1_stream


def test_token_scheme_carries_a_key_for_seeds_003_clients():
    assert key_from_headers([("Authorization", "Token abc")]) == "abc"
    assert key_from_headers([("Authorization", "Basic abc")]) is None


def test_pcm_stream_carries_a_half_sample_to_the_next_message():
    stream = api_v1.PcmStream()
    assert stream.push(b"\x01\x02\x03") == b"\x01\x02" and stream.pending == 1
    assert stream.push(b"\x04") == b"\x03\x04" and stream.pending == 0
    assert stream.push(b"") == b""


def test_provider_must_be_supported():
    assert api_v1.provider_error("faster_whisper") is None
    error = api_v1.provider_error("deepgram")
    assert "STT_PROVIDER" in error and "faster_whisper" in error


def test_close_reason_fits_a_close_frame():
    assert len(api_v1.close_reason("x", "é" * 200).encode()) <= 123


@pytest.mark.parametrize(
    ("value", "codes", "language", "auto"),
    [
        (None, ("en-IN",), "en", False),
        ("", ("en-IN",), "en", False),
        ("HI-in", ("hi-IN",), "hi", False),
        ("en-hi-IN-latn", ("en-hi-IN-latn",), "hi", False),
        ("en-IN, hi-IN ,en-IN", ("en-IN", "hi-IN"), None, True),
        ("en-hi-in-cm,hi-IN", ("en-hi-in-cm", "hi-IN"), "hi", True),
    ],
)
def test_lang_code_header(value, codes, language, auto):
    selection = stt_v3.parse_lang_code(value)
    assert (
        selection.codes == codes and selection.session_language == language and selection.auto_detect is auto
    )


def test_detected_language_maps_back_to_the_requested_code():
    selection = stt_v3.parse_lang_code("ta-IN,en-IN")
    assert selection.code_for("en") == "en-IN" and selection.code_for("ta") == "ta-IN"
    assert selection.code_for("fr") == "fr"  # outside the list: reported as detected


def test_unknown_lang_code_and_unsupported_language_are_errors():
    with pytest.raises(ProtocolError) as info:
        stt_v3.parse_lang_code("en-US")
    assert info.value.code == "invalid_lang_code" and "en-IN" in info.value.message
    with pytest.raises(ProtocolError) as info:
        stt_v3.check_model_languages(stt_v3.parse_lang_code("en-IN,ta-IN"), ["en"])
    assert info.value.code == "unsupported_language" and "STT_MODEL" in info.value.message
    stt_v3.check_model_languages(stt_v3.parse_lang_code("en-IN,ta-IN"), ["en", "ta"])
    stt_v3.check_model_languages(stt_v3.parse_lang_code("ta-IN"), None)


@pytest.mark.parametrize(
    ("value", "rate"), [(None, 16000), (" 8000", 8000), ("44100", 44100), ("48000", 48000)]
)
def test_sample_rate_header(value, rate):
    assert stt_v3.parse_sample_rate(value) == rate


@pytest.mark.parametrize("value", ["22050", "16k", "-1", "16000.0"])
def test_unsupported_sample_rate(value):
    with pytest.raises(ProtocolError) as info:
        stt_v3.parse_sample_rate(value)
    assert info.value.code == "unsupported_sample_rate"


def test_frames_must_be_exactly_1024_bytes():
    stt_v3.check_frame(b"\x00" * 1024)
    for size in (0, 1023, 1025, 2048):
        with pytest.raises(ProtocolError):
            stt_v3.check_frame(b"\x00" * size)


def test_header_lookup_is_case_insensitive_and_ordered():
    scope = {"headers": [(b"Lang-Code", b"ta-IN"), (b"lang_code", b"hi-IN")]}
    assert header(scope, "lang_code", "lang-code") == "hi-IN"
    assert header(scope, "lang-code") == "ta-IN" and header(scope, "x") is None


def test_iso_times():
    moment = dt.datetime(2024, 3, 20, 10, 30, 35, 123456, tzinfo=dt.UTC)
    assert iso(moment) == "2024-03-20T10:30:35.123Z"
    assert parse_iso("2024-03-20T10:30:35.123Z", "t") == moment.replace(microsecond=123000)
    assert parse_iso("2024-03-20T10:30:35", "t").tzinfo is dt.UTC and parse_iso(None, "t") is None
    with pytest.raises(ProtocolError):
        parse_iso("tomorrow", "t")


def test_stream_ids_and_group_names():
    assert v1_stream.stream_ids({"client_id": "123", "session_id": "s-1"}) == ("123", "s-1")
    for params in ({"client_id": "1"}, {"client_id": "1", "session_id": "a b"}):
        with pytest.raises(ProtocolError):
            v1_stream.stream_ids(params)
    name = v1_stream.group_name(1, "123", "s-1")
    assert len(name) < 100 and name != v1_stream.group_name(2, "123", "s-1")
    assert name != v1_stream.group_name(1, "123", "s-2")


def test_start_options_from_the_documents_sections():
    base = v1_stream.StreamConfig()
    config = v1_stream.config_from_start(
        {
            "command": "start_stream",
            "config": {
                "core_settings": {"language": "en", "model": "base", "device": "cuda"},
                "audio_processing": {"sample_rate": 8000},
                "features": {"interim_results": False, "speaker_diarization": True},
                "formatting": {"ensure_sentence_ends_with_period": False, "print_transcription_time": True},
            },
        },
        base,
        languages=["en"],
    )
    assert config.enrich is not None and config.enrich.speakers and not config.enrich.sentiment
    assert replace(config, enrich=None) == v1_stream.StreamConfig(
        interim_results=False, uppercase_start=True, period_end=False, language="en", sample_rate=8000
    )
    assert v1_stream.config_from_start({"command": "start_stream"}, base, languages=["en"]) == base


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ({"features": []}, "invalid_option"),
        ({"features": {"interim_results": 1}}, "invalid_option"),
        ({"sample_rate": 4000}, "invalid_option"),
        ({"audio_processing": {"channels": 2}}, "invalid_option"),
        ({"core_settings": {"language": "hi"}}, "unsupported_language"),
    ],
)
def test_bad_start_options(command, code):
    with pytest.raises(ProtocolError) as info:
        v1_stream.config_from_start(command, v1_stream.StreamConfig(), languages=["en"])
    assert info.value.code == code


def test_formatting_options():
    on, off = v1_stream.StreamConfig(), v1_stream.StreamConfig(uppercase_start=False, period_end=False)
    assert v1_stream.format_text(" ask  not", on, final=True) == "Ask not."
    assert v1_stream.format_text("ask not", on, final=False) == "Ask not"
    assert v1_stream.format_text("is it?", on, final=True) == "Is it?"
    assert v1_stream.format_text("ask not", off, final=True) == "ask not"
    assert v1_stream.format_text("", on, final=True) == ""


def test_stream_clock_adds_paused_audio_back():
    origin = dt.datetime(2024, 3, 20, 10, 0, 0, tzinfo=dt.UTC)
    clock = v1_stream.StreamClock(origin, base_s=2.0)
    assert clock.at(3.0) == origin + dt.timedelta(seconds=1)
    clock.skip(5.0, 1.0)
    clock.skip(5.0, 2.0)  # one pause, many dropped chunks
    assert clock.at(4.0) == origin + dt.timedelta(seconds=2)
    assert clock.at(5.0, ending=True) == origin + dt.timedelta(seconds=3)  # a segment the pause closed
    assert clock.at(5.0) == origin + dt.timedelta(seconds=6)  # speech right after resuming
    assert clock.at(6.0) == origin + dt.timedelta(seconds=7)


def test_results_have_the_documents_fields():
    clock = v1_stream.StreamClock(dt.datetime(2024, 3, 20, 10, 30, 35, 123000, tzinfo=dt.UTC))
    partial = v1_stream.partial_result("Ask", confidence=0.8, clock=clock, start_s=0.0, current_s=10.0)
    assert (
        partial["type"] == "partial_result" and partial["data"]["audio_start"] == "2024-03-20T10:30:35.123Z"
    )
    assert (
        partial["data"]["audio_current"] == "2024-03-20T10:30:45.123Z"
        and partial["data"]["is_final"] is False
    )
    final = v1_stream.final_result("Ask.", confidence=0.9, clock=clock, start_s=0.0, end_s=10.5)
    assert final["data"]["audio"] == {
        "start": "2024-03-20T10:30:35.123Z",
        "end": "2024-03-20T10:30:45.623Z",
        "duration": 10.5,
    }
    assert {"text", "is_final", "confidence", "timestamp", "audio"} == set(final["data"])
