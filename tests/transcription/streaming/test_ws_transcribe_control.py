"""/ws/transcribe control commands: finalize, keepalive, configure, key terms, the idle timeout, turns."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from channels.db import database_sync_to_async

from accounts.services import api_key_create
from bench.packets import packets
from tests.transcription.streaming.test_ws_transcribe import (
    expect_close,
    open_session,
    receive_until,
    receive_until_status,
)
from transcription.streaming.service import current_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("control-user", password="pw-control-1")


@pytest.fixture
def key(user):
    return api_key_create(owner=user, scopes=["stream"])[1]


@pytest.fixture
def jfk(corpus) -> np.ndarray:
    return corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)


def engine_options():
    """The options of every item the fake engine transcribed so far."""
    service = current_service()
    return [options for lane in service.lanes.values() for options in lane.engine.seen]


async def send_audio(comm, audio: np.ndarray) -> None:
    for packet in packets(audio):
        await comm.send_to(bytes_data=packet)


async def command(comm, payload: dict) -> None:
    await comm.send_to(text_data=json.dumps(payload))


async def test_keepalive_is_answered_by_nothing(key):
    comm, _ = await open_session(key)
    await command(comm, {"type": "keepalive"})
    await command(comm, {"type": "ping", "id": 1})
    pong = json.loads(await comm.receive_from(5))
    assert pong["type"] == "pong" and pong["echo"] == 1  # nothing came before it
    await comm.disconnect()


async def test_finalize_mid_utterance_sends_the_final_so_far_and_the_stream_goes_on(key, jfk):
    comm, _ = await open_session(key)
    await command(comm, {"type": "start"})
    await receive_until(comm, "status")
    await send_audio(comm, jfk[: 16000 * 2])  # inside "And so my fellow Americans"
    started, _ = await receive_until(comm, "timeline")
    assert started["event"] == "recording_started" and started["segmentId"] == 1
    await command(comm, {"type": "finalize"})
    reply, _ = await receive_until(comm, "finalize")
    assert reply["segmentId"] == started["segmentId"]
    final, _ = await receive_until(comm, "final")
    assert final["segmentId"] == started["segmentId"] and final["endReason"] == "finalize"
    assert final["end"] == pytest.approx(2.0, abs=0.1)
    turn, _ = await receive_until(comm, "turn")
    assert (turn["event"], turn["reason"], turn["segmentId"]) == ("end", "finalize", final["segmentId"])
    # Nothing open now: finalize says so.
    await command(comm, {"type": "finalize"})
    empty, _ = await receive_until(comm, "finalize")
    assert empty["segmentId"] is None
    # The stream goes on: the rest of the speech opens a new segment with its own final.
    await send_audio(comm, np.concatenate([jfk[16000 * 2 :], np.zeros(32000, np.float32)]))
    await command(comm, {"type": "stop"})
    _, rest = await receive_until_status(comm, "idle")
    later = [e for e in rest if e["type"] == "final"]
    assert later and all(f["segmentId"] != final["segmentId"] and f["start"] >= final["end"] for f in later)
    await comm.disconnect()


async def test_configure_applies_the_valid_fields_and_rejects_each_bad_one(key, jfk):
    comm, _ = await open_session(key)
    await command(comm, {"type": "start"})
    await receive_until(comm, "status")
    await command(comm, {"type": "configure", "keyterms": ["Americans", "country"], "language": "en",
                         "endOfTurnSilence": 0.3, "maxTurnSilence": 9, "sileroSensitivity": 0.4,
                         "bogus": 1, "interimResults": False})  # fmt: skip
    configured, seen = await receive_until(comm, "configured")
    errors = {e["field"]: e["code"] for e in seen if e["type"] == "error"}
    assert errors == {"maxTurnSilence": "option_out_of_range", "sileroSensitivity": "not_configurable",
                      "bogus": "not_configurable"}  # fmt: skip
    assert {r["field"] for r in configured["rejected"]} == set(errors)
    settings = configured["settings"]
    assert settings["keyterms"] == ["Americans", "country"] and settings["endOfTurnSilence"] == 0.3
    assert settings["interimResults"] is False and settings["maxTurnSilence"] != 9
    # The key terms reach the engine with the stream's next jobs.
    await send_audio(comm, np.concatenate([jfk, np.zeros(16000, np.float32)]))
    await command(comm, {"type": "stop"})
    await receive_until_status(comm, "idle")
    assert any(o.keyterms == ("Americans", "country") for o in engine_options())
    await comm.disconnect()


@pytest.mark.parametrize(
    ("keyterms", "code"),
    [("one string", "invalid_keyterms"), (["x" * 51], "keyterm_too_long"),
     ([f"term{i}" for i in range(51)], "too_many_keyterms"), ([""], "invalid_keyterms")],
)  # fmt: skip
async def test_bad_key_terms_in_start_get_an_error_and_the_connection_goes_on(key, keyterms, code):
    comm, _ = await open_session(key)
    await command(comm, {"type": "start", "options": {"keyterms": keyterms}})
    error, _ = await receive_until(comm, "error")
    assert error["code"] == code
    await command(comm, {"type": "start", "options": {"keyterms": ["fine"]}})
    status, _ = await receive_until(comm, "status")
    assert status["state"] == "listening" and status["settings"]["keyterms"] == ["fine"]
    await comm.disconnect()


async def test_a_stream_starts_with_a_named_vocabulary_merged_with_inline_terms(user, key):
    from vocabularies.models import Vocabulary

    await database_sync_to_async(Vocabulary.objects.create)(owner=user, name="inaugural",
                                                            terms=["Americans", "Country"])  # fmt: skip
    comm, _ = await open_session(key)
    await command(comm, {"type": "start", "options": {"vocabulary": "nope"}})
    error, _ = await receive_until(comm, "error")
    assert error["code"] == "unknown_vocabulary"
    await command(comm, {"type": "start", "options": {"vocabulary": "inaugural", "keyterms": ["fellow"]}})
    status, _ = await receive_until(comm, "status")
    assert status["settings"]["keyterms"] == ["Americans", "Country", "fellow"]
    await command(comm, {"type": "configure", "vocabulary": "inaugural"})
    configured, _ = await receive_until(comm, "configured")
    assert configured["settings"]["keyterms"] == ["Americans", "Country"] and not configured["rejected"]
    await comm.disconnect()


async def test_an_idle_stream_is_finalized_then_closed_4408(key, jfk):
    from transcription import runtime_config

    await database_sync_to_async(runtime_config.apply)({"idle_timeout_s": 1.0})
    try:
        comm, _ = await open_session(key)
        await command(comm, {"type": "start"})
        await receive_until(comm, "status")
        await send_audio(comm, jfk[: 16000 * 2])  # speech still open when the audio stops
        events = await expect_close(comm, 4408)
    finally:
        await database_sync_to_async(runtime_config.apply)({"idle_timeout_s": 60.0})
    # Told why first, then what was said is finalized and sent, then the close.
    kinds = [e["type"] for e in events]
    assert "final" in kinds and kinds.index("warning") < kinds.index("final")
    assert next(e for e in events if e["type"] == "warning")["code"] == "idle_timeout"
    assert next(e for e in events if e["type"] == "final")["text"]


async def test_keepalive_holds_off_the_idle_timeout(key):
    from transcription import runtime_config

    await database_sync_to_async(runtime_config.apply)({"idle_timeout_s": 1.0})
    try:
        comm, _ = await open_session(key)
        for _ in range(6):  # 1.8 s, past the timeout, with a keepalive every 0.3 s
            await command(comm, {"type": "keepalive"})
            await asyncio.sleep(0.3)
        await command(comm, {"type": "ping", "id": 2})
        pong, _ = await receive_until(comm, "pong")
        assert pong["echo"] == 2
        events = await expect_close(comm, 4408)  # and without them it closes
    finally:
        await database_sync_to_async(runtime_config.apply)({"idle_timeout_s": 60.0})
    assert [e["code"] for e in events if e["type"] == "warning"] == ["idle_timeout"]
