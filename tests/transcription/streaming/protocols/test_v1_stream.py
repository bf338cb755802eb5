"""/v1/stream/control + /v1/stream/audio consumers (seeds/003): pairing, commands, results, errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import numpy as np
import pytest
from channels.db import database_sync_to_async

from accounts.services import api_key_create, quota_set
from tests.transcription.streaming.protocols.wsclient import (
    chunks,
    communicator,
    expect_close,
    pcm16,
    receive_json_until,
    sessions,
)
from transcription.streaming.protocols.v1_stream import audio as v1_audio
from transcription.streaming.service import current_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

SILENCE_1S = np.zeros(16000, dtype=np.float32)
IDS = "client_id=123&session_id=abc"


def socket(kind: str, key: str, query: str = IDS, scheme: str = "Bearer"):
    return communicator(f"/v1/stream/{kind}?{query}", [(b"authorization", f"{scheme} {key}".encode())])


async def open_pair(key: str, scheme: str = "Bearer"):
    control = socket("control", key, scheme=scheme)
    assert (await control.connect())[0]
    status, _ = await receive_json_until(control, "status")
    assert status["data"]["state"] == "connected"
    audio = socket("audio", key, scheme=scheme)
    assert (await audio.connect())[0]
    assert await audio.receive_nothing(0.3)  # paired: no error, no close
    return control, audio


async def command(comm, name: str, **fields) -> None:
    await comm.send_to(text_data=json.dumps({"command": name, **fields}))


async def send_audio(audio_comm, audio: np.ndarray) -> None:
    for chunk in chunks(pcm16(audio), 1024):
        await audio_comm.send_to(bytes_data=chunk)


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def jfk(corpus) -> np.ndarray:
    return np.concatenate([SILENCE_1S, corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), SILENCE_1S])


async def test_stream_gives_partial_then_formatted_final_results_stored_under_the_endpoint(key, user, corpus):
    control, audio = await open_pair(key, scheme="Token")
    origin = "2024-03-20T10:30:35.123Z"
    await command(control, "start_stream", audio_start=origin)
    status, _ = await receive_json_until(control, "status")
    assert status["data"]["state"] == "streaming" and status["data"]["audio_start"] == origin
    await send_audio(audio, jfk(corpus))
    final, seen = await receive_json_until(control, "final_result")
    partials = [m for m in seen if m["type"] == "partial_result"]
    assert partials, seen
    partial = partials[0]["data"]
    assert (
        partial["is_final"] is False
        and partial["text"].startswith("Fake ")
        and 0 < partial["confidence"] <= 1
    )
    assert at(origin) <= at(partial["audio_start"]) < at(partial["audio_current"]) <= at(partial["timestamp"])
    data = final["data"]
    # ensure_sentence_starting_uppercase and ensure_sentence_ends_with_period are on by default.
    assert data["is_final"] is True and data["text"].startswith("Fake ") and data["text"].endswith("s.")
    assert data["confidence"] is not None and at(data["timestamp"]).tzinfo is not None
    start, end = at(data["audio"]["start"]), at(data["audio"]["end"])
    assert at(origin) < start < at(origin) + dt.timedelta(seconds=1.3) and end > start
    assert data["audio"]["duration"] == pytest.approx((end - start).total_seconds(), abs=0.002)
    for absent in ("speaker", "speakers", "analysis", "filters"):
        assert absent not in data
    await command(control, "stop_stream", audio_end="2024-03-20T10:30:48.123Z")
    stopped, _ = await receive_json_until(control, "status")
    assert stopped["data"]["state"] == "stopped"
    await audio.disconnect()
    await control.disconnect()
    [session] = await sessions(user=user)
    assert session.endpoint == "v1_stream" and session.status == "completed"
    assert session.client_info["clientId"] == "123" and session.client_info["sessionId"] == "abc"
    assert session.transcript.text.startswith("fake ")
    assert session.audio_seconds == pytest.approx(len(jfk(corpus)) / 16000, abs=0.07)


async def test_formatting_and_interim_results_options_are_honoured(key, corpus):
    control, audio = await open_pair(key)
    options = {
        "features": {"interim_results": False},
        "formatting": {
            "ensure_sentence_starting_uppercase": False,
            "ensure_sentence_ends_with_period": False,
        },
    }
    await command(control, "start_stream", config=options)
    await receive_json_until(control, "status")
    await send_audio(audio, jfk(corpus))
    final, seen = await receive_json_until(control, "final_result")
    assert not [m for m in seen if m["type"] == "partial_result"]
    assert final["data"]["text"].startswith("fake ") and not final["data"]["text"].endswith(".")
    await control.disconnect()
    await audio.disconnect()


async def test_audio_sent_while_paused_is_neither_transcribed_nor_billed(key, user, corpus):
    control, audio = await open_pair(key)
    await command(control, "start_stream", audio_start="2024-03-20T10:00:00Z")
    await receive_json_until(control, "status")
    await send_audio(audio, SILENCE_1S)
    await command(control, "pause_stream")
    paused, _ = await receive_json_until(control, "status")
    assert paused["data"]["state"] == "paused"
    await send_audio(audio, jfk(corpus))  # ~13 s of speech while paused
    # Pause (like stop) waits for the audio already sent: the answer means all of it was dropped.
    await command(control, "pause_stream")
    error, _ = await receive_json_until(control, "error")
    assert error["data"]["code"] == "already_paused"
    await command(control, "resume_stream")
    _, seen = await receive_json_until(control, "status")
    assert not [m for m in seen if m["type"].endswith("_result")]
    await send_audio(audio, jfk(corpus))
    final, _ = await receive_json_until(control, "final_result")
    # The paused 13 s still count on the stream's clock: this speech started ~15 s in.
    start = at(final["data"]["audio"]["start"]) - at("2024-03-20T10:00:00Z")
    assert 14.0 < start.total_seconds() < 15.5
    await command(control, "stop_stream")
    await receive_json_until(control, "status")
    await control.disconnect()
    await audio.disconnect()
    [session] = await sessions(user=user)
    assert session.audio_seconds == pytest.approx(1.0 + len(jfk(corpus)) / 16000, abs=0.07)


@pytest.mark.parametrize(
    ("commands", "code"),
    [
        ([("stop_stream", {})], "not_started"),
        ([("pause_stream", {})], "not_started"),
        ([("resume_stream", {})], "not_started"),
        ([("start_stream", {}), ("start_stream", {})], "already_started"),
        ([("start_stream", {}), ("resume_stream", {})], "not_paused"),
        ([("start_stream", {}), ("pause_stream", {}), ("pause_stream", {})], "already_paused"),
        ([("start_stream", {"audio_start": "yesterday"})], "invalid_timestamp"),
        ([("start_stream", {"audio_start": "0001-01-01T00:00:00+05:00"})], "invalid_timestamp"),
        ([("start_stream", {"audio_start": "9999-12-31T23:59:59Z"})], "invalid_timestamp"),
        ([("start_stream", {"formatting": {"ensure_sentence_ends_with_period": "yes"}})], "invalid_option"),
        ([("start_stream", {"core_settings": {"language": "hi"}})], "unsupported_language"),
        ([("start_stream", {"core_settings": {"initial_prompt": ["a list"]}})], "invalid_option"),
        ([("start_stream", {"core_settings": {"initial_prompt": "p" * 1001}})], "invalid_option"),
        ([("dance", {})], "unknown_command"),
    ],
)
async def test_commands_out_of_order_or_malformed_get_an_error_and_the_socket_goes_on(key, commands, code):
    control = socket("control", key)
    await control.connect()
    await receive_json_until(control, "status")
    for name, fields in commands:
        await command(control, name, **fields)
    error, _ = await receive_json_until(control, "error")
    assert (
        error["data"]["code"] == code and error["data"]["where"] == "command" and error["data"]["timestamp"]
    )
    if code == "unsupported_language":
        assert "STT_MODEL" in error["data"]["message"]
    await control.send_to(text_data="not json")
    error, _ = await receive_json_until(control, "error")
    assert error["data"]["code"] == "invalid_json"
    await control.disconnect()


def engine_options():
    """The options of every item the fake engine transcribed so far (the process-wide service)."""
    return [options for lane in current_service().lanes.values() for options in lane.engine.seen]


async def test_key_terms_and_initial_prompt_of_core_settings_reach_the_engine(key, corpus):
    control, audio = await open_pair(key)
    core = {"keyterms": ["Americans", " fellow   citizens "], "initial_prompt": "  An inaugural address. "}
    await command(control, "start_stream", config={"core_settings": core})
    status, _ = await receive_json_until(control, "status")
    shown = status["data"]["config"]["core_settings"]
    assert shown["keyterms"] == ["Americans", "fellow citizens"] and shown["vocabulary"] is None
    assert shown["initial_prompt"] == "An inaugural address."
    await send_audio(audio, jfk(corpus))
    await receive_json_until(control, "final_result")
    seen = engine_options()
    assert seen and all(o.keyterms == ("Americans", "fellow citizens") for o in seen)
    assert all(o.initial_prompt == "An inaugural address." for o in seen)
    # A later start without them keeps them (like every option); new ones replace them.
    await command(control, "stop_stream")
    await receive_json_until(control, "status")
    await command(control, "start_stream", core_settings={"keyterms": ["country"], "initial_prompt": None})
    restarted, _ = await receive_json_until(control, "status")
    shown = restarted["data"]["config"]["core_settings"]
    assert shown["keyterms"] == ["country"] and shown["initial_prompt"] is None
    before = len(engine_options())
    await send_audio(audio, jfk(corpus))
    await receive_json_until(control, "final_result")
    later = engine_options()[before:]
    assert later and all(o.keyterms == ("country",) and o.initial_prompt is None for o in later)
    await control.disconnect()
    await audio.disconnect()


@pytest.mark.parametrize(
    ("keyterms", "code"),
    [("one string", "invalid_keyterms"), (["x" * 51], "keyterm_too_long"),
     ([f"term{i}" for i in range(51)], "too_many_keyterms"), ([""], "invalid_keyterms"),
     ([7], "invalid_keyterms")],
)  # fmt: skip
async def test_bad_key_terms_get_an_error_and_the_stream_can_still_start(key, keyterms, code):
    control = socket("control", key)
    await control.connect()
    await receive_json_until(control, "status")
    await command(control, "start_stream", config={"core_settings": {"keyterms": keyterms}})
    error, _ = await receive_json_until(control, "error")
    assert error["data"]["code"] == code and error["data"]["where"] == "command" and error["data"]["message"]
    await command(control, "start_stream", config={"core_settings": {"keyterms": ["fine"]}})
    status, _ = await receive_json_until(control, "status")
    assert status["data"]["state"] == "streaming"
    assert status["data"]["config"]["core_settings"]["keyterms"] == ["fine"]
    await control.disconnect()


async def test_a_named_vocabulary_is_merged_before_the_inline_key_terms(key, user, corpus):
    from vocabularies.models import Vocabulary

    await database_sync_to_async(Vocabulary.objects.create)(owner=user, name="inaugural",
                                                            terms=["Americans", "Country"])  # fmt: skip
    control, audio = await open_pair(key)
    await command(control, "start_stream", core_settings={"vocabulary": "nope"})
    error, _ = await receive_json_until(control, "error")
    assert error["data"]["code"] == "unknown_vocabulary" and error["data"]["where"] == "command"
    core = {"vocabulary": "inaugural", "keyterms": ["fellow", "country"]}
    await command(control, "start_stream", config={"core_settings": core})
    status, _ = await receive_json_until(control, "status")
    shown = status["data"]["config"]["core_settings"]
    assert shown["vocabulary"] == "inaugural" and shown["keyterms"] == ["Americans", "Country", "fellow"]
    await send_audio(audio, jfk(corpus))
    await receive_json_until(control, "final_result")
    assert {o.keyterms for o in engine_options()} == {("Americans", "Country", "fellow")}
    await control.disconnect()
    await audio.disconnect()


async def test_a_vocabulary_that_overflows_the_merged_list_is_refused(key, user):
    from vocabularies.models import Vocabulary

    await database_sync_to_async(Vocabulary.objects.create)(owner=user, name="big",
                                                            terms=[f"v{i}" for i in range(45)])  # fmt: skip
    control = socket("control", key)
    await control.connect()
    await receive_json_until(control, "status")
    core = {"vocabulary": "big", "keyterms": [f"k{i}" for i in range(6)]}
    await command(control, "start_stream", core_settings=core)
    error, _ = await receive_json_until(control, "error")
    assert error["data"]["code"] == "too_many_keyterms"
    await control.disconnect()


async def test_audio_before_start_stream_is_dropped_with_one_error(key, user):
    control, audio = await open_pair(key)
    await send_audio(audio, SILENCE_1S)
    error, _ = await receive_json_until(control, "error")
    assert error["data"]["code"] == "not_started" and error["data"]["where"] == "audio"
    assert await control.receive_nothing(0.5)  # one error, not one per chunk
    await control.disconnect()
    await audio.disconnect()
    [session] = await sessions(user=user)
    assert session.audio_seconds == 0


async def test_audio_socket_without_a_control_socket_closes_4404(key, monkeypatch):
    monkeypatch.setattr(v1_audio, "PAIR_TIMEOUT_S", 0.3)
    audio = socket("audio", key)
    await audio.connect()
    [error] = await expect_close(audio, 4404)
    assert error["type"] == "error" and error["data"]["code"] == "no_control_socket"


async def test_an_audio_socket_opened_before_its_control_socket_is_admitted_still_pairs(key):
    # The control socket joins its group only once admitted, which on another process can come
    # after the audio socket's first hello (deploy/: behind nginx they often are on two processes).
    audio = socket("audio", key)
    await audio.connect()
    await asyncio.sleep(0.5)  # the first hellos go unanswered
    control = socket("control", key)
    await control.connect()
    await receive_json_until(control, "status")
    await send_audio(audio, SILENCE_1S)
    error, _ = await receive_json_until(control, "error")  # the audio reached the control socket
    assert error["data"]["code"] == "not_started" and error["data"]["where"] == "audio"
    await control.disconnect()
    await audio.disconnect()


async def test_audio_socket_of_another_user_does_not_reach_the_control_socket(
    key, django_user_model, monkeypatch
):
    monkeypatch.setattr(v1_audio, "PAIR_TIMEOUT_S", 0.3)
    other = await database_sync_to_async(django_user_model.objects.create_user)("other")
    _, other_key = await database_sync_to_async(api_key_create)(owner=other, scopes=["stream"])
    control = socket("control", key)
    await control.connect()
    audio = socket("audio", other_key)
    await audio.connect()
    await expect_close(audio, 4404)
    await control.disconnect()


async def test_second_audio_socket_closes_4409(key):
    control, audio = await open_pair(key)
    second = socket("audio", key)
    await second.connect()
    [error] = await expect_close(second, 4409)
    assert error["data"]["code"] == "audio_already_connected"
    await control.disconnect()
    await audio.disconnect()


async def test_closing_the_control_socket_closes_the_audio_socket(key):
    control, audio = await open_pair(key)
    await control.disconnect()
    await expect_close(audio, 1000)


@pytest.mark.parametrize("kind", ["control", "audio"])
async def test_bad_token_closes_4001(key, kind):
    comm = socket(kind, key + "x")
    await comm.connect()
    [error] = await expect_close(comm, 4001)
    assert error["data"]["code"] == "invalid_key"


@pytest.mark.parametrize(
    ("kind", "query"), [("control", "client_id=1"), ("audio", "session_id=1"), ("control", "")]
)
async def test_missing_ids_close_4400(key, kind, query):
    comm = socket(kind, key, query=query)
    await comm.connect()
    [error] = await expect_close(comm, 4400)
    assert error["data"]["code"] == "missing_stream_ids"


async def test_malformed_audio_gets_an_error(key):
    control, audio = await open_pair(key)
    await command(control, "start_stream")
    await receive_json_until(control, "status")
    await audio.send_to(bytes_data=b"\x00" * 1023)
    error, _ = await receive_json_until(control, "error")
    assert error["data"]["code"] == "odd_byte_count" and error["data"]["where"] == "audio"
    await audio.send_to(text_data="hello")
    error, _ = await receive_json_until(audio, "error")
    assert error["data"]["code"] == "unexpected_text"
    await audio.send_to(bytes_data=b"\x00" * (v1_audio.proto.MAX_CHUNK_BYTES + 2))
    error, _ = await receive_json_until(audio, "error")
    assert error["data"]["code"] == "chunk_too_large"
    await control.disconnect()
    await audio.disconnect()


async def test_control_and_audio_sockets_count_as_one_stream(key, user):
    await database_sync_to_async(quota_set)(user=user, max_concurrent_streams=1)
    control, audio = await open_pair(key)
    other = socket("control", key, query="client_id=2&session_id=2")
    await other.connect()
    [error] = await expect_close(other, 4029)
    assert error["data"]["code"] == "too_many_streams"
    await control.disconnect()
    await audio.disconnect()


async def test_a_failing_audio_socket_closes_1011_and_frees_its_control_socket_for_another(key, monkeypatch):
    control, audio = await open_pair(key)

    async def broken(self, text_data=None, bytes_data=None):
        raise ConnectionError("redis went away")

    with monkeypatch.context() as patched:
        patched.setattr(v1_audio.V1StreamAudioConsumer, "receive", broken)
        await audio.send_to(bytes_data=b"\x00\x00" * 512)
        await expect_close(audio, 1011)
    # The control socket was told: a new audio socket pairs instead of being refused with 4409.
    again = socket("audio", key)
    assert (await again.connect())[0]
    assert await again.receive_nothing(0.5)
    await again.disconnect()
    await control.disconnect()
