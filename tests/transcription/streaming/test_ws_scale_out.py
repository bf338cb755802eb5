"""/ws/transcribe in scale-out mode without a live inference worker (fake engine, in-memory layer)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from accounts.services import api_key_create
from bench.packets import packets
from speech.inference.worker import InferenceWorker
from tests.transcription.streaming.test_ws_transcribe import (
    SILENCE_1S,
    connect,
    expect_close,
    open_session,
    receive_until,
)
from transcription.models import TranscriptionSession
from transcription.streaming.service import build_inference_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]


@pytest.fixture
def key(django_user_model):
    user = django_user_model.objects.create_user("scale-user", password="pw-scale-user-1")
    return api_key_create(owner=user, scopes=["stream"])[1]


@pytest.fixture
def channels_backend(settings, fake_inference):
    settings.STT_INFERENCE = {**fake_inference, "BACKEND": "channels", "WORKER_TIMEOUT_S": 0.5}
    return settings.STT_INFERENCE


async def test_with_no_live_worker_a_new_stream_is_refused_with_1013(channels_backend, key):
    comm = connect(key)
    connected, _ = await comm.connect()
    assert connected
    events = await expect_close(comm, 1013)
    assert [e["code"] for e in events if e["type"] == "error"] == ["no_inference_worker"]


async def test_a_running_stream_is_told_and_finalized_when_the_last_worker_stops(channels_backend, key):
    local = build_inference_service({**channels_backend, "BACKEND": "local"})
    worker = InferenceWorker(get_channel_layer(), local, heartbeat_s=0.1)
    serving = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)  # its first heartbeats are out
    comm, hello = await open_session(key)
    await comm.send_to(text_data=json.dumps({"type": "start"}))
    for packet in packets(SILENCE_1S, 16000, 40):
        await comm.send_to(bytes_data=packet)
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    await receive_until(comm, "pong")  # messages are handled in order: the audio is in
    await worker.stop()
    await serving
    events = await expect_close(comm, 1013)
    assert [e["code"] for e in events if e["type"] == "error"] == ["no_inference_worker"], events
    row = await database_sync_to_async(TranscriptionSession.objects.get)(pk=hello["sessionId"])
    assert row.end_reason == "no_inference_worker" and row.ended_at is not None
    assert row.audio_seconds == pytest.approx(1.0, abs=0.05)  # what was received is billed
