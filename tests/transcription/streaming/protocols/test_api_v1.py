"""/api/v1/ws consumer (seeds/001): raw PCM16 in, plain-text finals out, errors as close codes."""

from __future__ import annotations

import numpy as np
import pytest
from channels.db import database_sync_to_async

from accounts.services import api_key_create
from tests.transcription.streaming.protocols.wsclient import (
    chunks,
    communicator,
    expect_close,
    pcm16,
    sessions,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

SILENCE_1S = np.zeros(16000, dtype=np.float32)


def connect(key: str | None):
    return communicator("/api/v1/ws", [(b"x-api-key", key.encode())] if key else [])


async def test_raw_pcm_in_any_chunking_gives_plain_text_finals_stored_under_the_endpoint(key, user, corpus):
    comm = connect(key)
    connected, _ = await comm.connect()
    assert connected
    speech = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    data = pcm16(np.concatenate([SILENCE_1S, speech, SILENCE_1S, SILENCE_1S]))
    for chunk in chunks(data, 3001):  # odd sizes: a sample may straddle two messages
        await comm.send_to(bytes_data=chunk)
    first = await comm.receive_output(20)
    assert first["type"] == "websocket.send" and first["text"].startswith("fake ")
    await comm.disconnect()
    [session] = await sessions(user=user)
    assert session.endpoint == "api_v1_ws" and session.sample_rate == 16000 and session.channels == 1
    assert session.status == "completed" and session.transcript.text.startswith("fake ")
    assert session.audio_seconds == pytest.approx(len(data) / 32000, abs=0.01)


async def test_silence_sends_nothing(key):
    comm = connect(key)
    await comm.connect()
    for chunk in chunks(pcm16(np.zeros(16000 * 4, dtype=np.float32)), 4096):
        await comm.send_to(bytes_data=chunk)
    assert await comm.receive_nothing(1.5)
    await comm.disconnect()


async def test_bad_key_closes_4001_without_a_text_message(key):
    comm = connect(key + "x")
    await comm.connect()
    message = await comm.receive_output(10)
    # A text message would read as a transcript: the error is the close code (and reason) only.
    assert message["type"] == "websocket.close" and message["code"] == 4001
    assert message["reason"].startswith("invalid_key")


async def test_key_without_stream_scope_closes_4003(user):
    _, secret = await database_sync_to_async(api_key_create)(owner=user, scopes=["history:read"])
    comm = connect(secret)
    await comm.connect()
    assert await expect_close(comm, 4003) == []


async def test_text_message_closes_1003(key, user):
    comm = connect(key)
    await comm.connect()
    await comm.send_to(text_data="hello")
    assert await expect_close(comm, 1003) == []
    [session] = await sessions(user=user)
    assert session.end_reason == "binary_only"


async def test_oversized_message_closes_1009(key, settings):
    settings.STT_STREAM = {**settings.STT_STREAM, "MAX_PACKET_BYTES": 4096}
    comm = connect(key)
    await comm.connect()
    await comm.send_to(bytes_data=b"\x00" * 8192)
    await expect_close(comm, 1009)
