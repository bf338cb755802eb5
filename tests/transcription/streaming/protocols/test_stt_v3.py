"""/stt/v3/stream consumer (seeds/002): header configuration, 1024-byte frames, JSON messages."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import soxr
from channels.db import database_sync_to_async

from accounts.services import quota_set
from tests.transcription.streaming.protocols.wsclient import (
    communicator,
    expect_close,
    frames_1024,
    receive_json_until,
    sessions,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

SILENCE_1S = np.zeros(16000, dtype=np.float32)


def connect(key: str, **headers: str):
    hdrs = [(b"x-api-key-id", key.encode())]
    hdrs += [(name.encode(), value.encode()) for name, value in headers.items()]
    return communicator("/stt/v3/stream", hdrs)


async def open_stream(key: str, **headers: str):
    comm = connect(key, **headers)
    connected, _ = await comm.connect()
    assert connected
    message, _ = await receive_json_until(comm, "connected")
    return comm, message


def is_iso(value: str) -> bool:
    return value.endswith("Z") and dt.datetime.fromisoformat(value).tzinfo is not None


def speech(corpus, rate: int = 16000) -> np.ndarray:
    audio = np.concatenate(
        [SILENCE_1S, corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), SILENCE_1S]
    )
    return audio if rate == 16000 else soxr.resample(audio, 16000, rate)


async def test_connected_reports_the_active_configuration(key):
    comm, connected = await open_stream(key)
    assert is_iso(connected["timestamp"]) and connected["session_id"]
    config = connected["config"]
    assert config["lang_code"] == "en-IN" and config["sample_rate"] == 16000 and not config["auto_detect"]
    assert config["frame_bytes"] == 1024 and config["frame_samples"] == 512
    await comm.disconnect()


@pytest.mark.parametrize("rate", [16000, 8000, 48000])
async def test_frames_give_processing_then_transcript_stored_under_the_endpoint(key, user, corpus, rate):
    comm, connected = await open_stream(key, lang_code="en-IN", **{"x-sample-rate": str(rate)})
    assert connected["config"]["sample_rate"] == rate
    frames = frames_1024(speech(corpus, rate))
    for frame in frames:
        await comm.send_to(bytes_data=frame)
    transcript, seen = await receive_json_until(comm, "transcript")
    kinds = [m["type"] for m in seen]
    assert "processing" in kinds and kinds.index("processing") < kinds.index("transcript")
    assert all(is_iso(m["timestamp"]) for m in seen)
    processing = next(m for m in seen if m["type"] == "processing")
    assert processing["segment_id"] == transcript["segment_id"] and processing["end"] > processing["start"]
    assert transcript["text"].startswith("fake ") and transcript["lang_code"] == "en-IN"
    assert transcript["start"] < 1.3 and transcript["end"] > transcript["start"]
    assert transcript["duration"] == pytest.approx(transcript["end"] - transcript["start"], abs=0.002)
    await comm.disconnect()
    [session] = await sessions(user=user)
    assert session.endpoint == "stt_v3" and session.sample_rate == rate and session.status == "completed"
    assert session.client_info["langCode"] == "en-IN"
    assert session.audio_seconds == pytest.approx(len(frames) * 512 / rate, abs=0.01)
    assert session.transcript.text.startswith("fake ")


async def test_frame_of_another_size_gets_an_error_and_is_not_used(key, user):
    comm, _ = await open_stream(key)
    await comm.send_to(bytes_data=b"\x00" * 1000)
    error, _ = await receive_json_until(comm, "error")
    assert error["code"] == "invalid_frame_size" and "1024" in error["message"] and is_iso(error["timestamp"])
    await comm.send_to(bytes_data=b"\x00" * 1024)
    await comm.send_to(text_data='{"type": "end"}')
    error, _ = await receive_json_until(comm, "error")
    assert error["code"] == "unsupported_message"
    await comm.disconnect()
    [session] = await sessions(user=user)
    assert session.audio_seconds == pytest.approx(512 / 16000)  # only the good frame


async def test_a_flood_of_bad_frames_closes_1008(key):
    comm, _ = await open_stream(key)
    for _ in range(30):
        await comm.send_to(bytes_data=b"\x00" * 10)
    events = await expect_close(comm, 1008)
    assert events[-1]["code"] == "too_many_errors"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"lang_code": "xx-IN"}, "invalid_lang_code"),
        ({"lang_code": "en-IN,klingon"}, "invalid_lang_code"),
        ({"lang_code": "hi-IN"}, "unsupported_language"),
        ({"lang_code": "en-IN,hi-IN"}, "unsupported_language"),
        ({"x-sample-rate": "22050"}, "unsupported_sample_rate"),
        ({"x-sample-rate": "fast"}, "unsupported_sample_rate"),
    ],
)
async def test_bad_header_is_refused_at_connect_with_4400(key, user, headers, code):
    comm = connect(key, **headers)
    await comm.connect()
    [error] = await expect_close(comm, 4400)
    assert error["type"] == "error" and error["code"] == code and is_iso(error["timestamp"])
    if code == "unsupported_language":
        assert "STT_MODEL" in error["message"] and "hi-IN" in error["message"]
    assert await sessions(user=user) == []


async def test_bad_key_closes_4001_with_a_timestamped_error(key):
    comm = connect(key + "x")
    await comm.connect()
    [error] = await expect_close(comm, 4001)
    assert error["code"] == "invalid_key" and is_iso(error["timestamp"])


@pytest.mark.usefixtures("multilingual")
async def test_multilingual_model_takes_a_language_and_reports_it(key, user, corpus):
    comm, connected = await open_stream(key, lang_code="hi-in")
    assert connected["config"]["lang_code"] == "hi-IN"
    for frame in frames_1024(speech(corpus)):
        await comm.send_to(bytes_data=frame)
    transcript, _ = await receive_json_until(comm, "transcript")
    assert transcript["lang_code"] == "hi-IN"
    await comm.disconnect()
    [session] = await sessions(user=user)
    assert session.language == "hi"


@pytest.mark.usefixtures("multilingual")
async def test_a_list_of_codes_means_auto_detect_among_them(key, user, corpus):
    comm, connected = await open_stream(key, lang_code="ta-IN,en-IN,hi-IN")
    assert connected["config"]["auto_detect"] and connected["config"]["languages"] == [
        "ta-IN",
        "en-IN",
        "hi-IN",
    ]
    for frame in frames_1024(speech(corpus)):
        await comm.send_to(bytes_data=frame)
    transcript, _ = await receive_json_until(comm, "transcript")
    assert transcript["lang_code"] == "en-IN"  # the fake engine "detects" English
    await comm.disconnect()
    [session] = await sessions(user=user)
    assert session.language == "" and session.options["language"] is None


async def test_quota_running_out_mid_stream_sends_the_transcript_then_closes_4002(key, user, corpus):
    await database_sync_to_async(quota_set)(user=user, monthly_audio_seconds=6)
    comm, _ = await open_stream(key)
    for frame in frames_1024(speech(corpus)):
        await comm.send_to(bytes_data=frame)
    events = await expect_close(comm, 4002)
    kinds = [e["type"] for e in events]
    # What was spoken before the quota ran out is still transcribed and sent before the close.
    assert kinds.count("transcript") == kinds.count("processing") >= 1, kinds
    assert [e["code"] for e in events if e["type"] == "warning"] == ["quota_exhausted"]
    [session] = await sessions(user=user)
    assert session.audio_seconds == pytest.approx(6.0, abs=0.1)
