"""/ws/transcribe consumer: commands, events, errors and close codes (fake engine, real VAD)."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import ActiveStream
from accounts.selectors import usage_for_month
from accounts.services import api_key_create, quota_set, stream_admission_create, usage_add
from bench.packets import encode_packet, packets
from sttproject.asgi import application
from transcription.models import Segment, TranscriptionSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

SILENCE_1S = np.zeros(16000, dtype=np.float32)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ws-user", password="pw-ws-user-1")


@pytest.fixture
def key(user):
    return api_key_create(owner=user, scopes=["stream"])[1]


def connect(key: str | None = None, headers: list | None = None) -> WebsocketCommunicator:
    hdrs = list(headers or [])
    if key:
        hdrs.append((b"x-api-key", key.encode()))
    return WebsocketCommunicator(application, "/ws/transcribe", headers=hdrs)


async def receive_until(comm: WebsocketCommunicator, kind: str, wait_s: float = 20.0) -> tuple[dict, list]:
    seen = []
    async with asyncio.timeout(wait_s):
        while True:
            event = json.loads(await comm.receive_from(wait_s))
            seen.append(event)
            if event["type"] == kind:
                return event, seen


async def open_session(key: str) -> tuple[WebsocketCommunicator, dict]:
    comm = connect(key)
    connected, _ = await comm.connect()
    assert connected
    hello, _ = await receive_until(comm, "hello")
    await receive_until(comm, "ready")
    return comm, hello


async def expect_close(comm: WebsocketCommunicator, code: int) -> list:
    events = []
    async with asyncio.timeout(10):
        while True:
            message = await comm.receive_output(10)
            if message["type"] == "websocket.close":
                assert message.get("code") == code, (message, events)
                return events
            events.append(json.loads(message["text"]))


async def test_hello_ready_ping_and_metrics(key):
    comm, hello = await open_session(key)
    assert hello["sessionId"] and hello["clientId"]
    assert hello["limits"]["max_concurrent_streams"] >= 1 and "postSpeechSilenceDuration" in hello["settings"]
    await comm.send_to(text_data=json.dumps({"type": "ping", "id": 7}))
    pong, _ = await receive_until(comm, "pong")
    assert pong["echo"] == 7 and pong["serverTime"] > 0
    await comm.send_to(text_data=json.dumps({"type": "metrics"}))
    metrics, _ = await receive_until(comm, "metrics")
    assert metrics["sessionId"] == hello["sessionId"]
    assert await database_sync_to_async(TranscriptionSession.objects.filter(pk=hello["sessionId"]).exists)()
    await comm.disconnect()


async def test_speech_gives_realtime_then_final_stored_before_it_is_sent(key, corpus):
    comm, hello = await open_session(key)
    await comm.send_to(text_data=json.dumps({"type": "start", "options": {"wordTimestamps": True}}))
    await receive_until(comm, "status")
    audio = np.concatenate(
        [SILENCE_1S, corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), SILENCE_1S]
    )
    for packet in packets(audio):
        await comm.send_to(bytes_data=packet)
    final, seen = await receive_until(comm, "final")
    # The segment row was committed before the event left the server.
    stored = await database_sync_to_async(
        lambda: list(Segment.objects.filter(session_id=hello["sessionId"]))
    )()
    assert final["segmentKey"] in [s.segment_id for s in stored] and isinstance(final["segmentId"], int)
    assert final["text"].startswith("fake ") and final["sessionId"] == hello["sessionId"] and final["words"]
    assert final["end"] > final["start"] and final["duration"] > 0.5
    kinds = [e["type"] for e in seen]
    assert "realtime" in kinds and kinds.index("realtime") < kinds.index("final")
    realtime = next(e for e in seen if e["type"] == "realtime")
    assert realtime["segmentId"] == final["segmentId"] and realtime["sequence"] >= 1
    assert {"text", "stableText", "unstableText"} <= realtime.keys()
    timeline = [e["event"] for e in seen if e["type"] == "timeline" and e["event"] != "realtime_transcript"]
    assert timeline[:3] == ["recording_started", "recording_ended", "transcription_started"]
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    _, rest = await receive_until_status(comm, "idle")
    finals = [final] + [e for e in rest if e["type"] == "final"]
    await comm.disconnect()
    stored = await database_sync_to_async(
        lambda: list(Segment.objects.filter(session_id=hello["sessionId"]))
    )()
    assert [(s.segment_id, s.text) for s in stored] == [(f["segmentKey"], f["text"]) for f in finals]
    # Segments cover the speech: from before 1.3 s (speech starts ~1.3 s in) to near its end.
    assert finals[0]["start"] < 1.3 and finals[-1]["end"] > 10.5
    session = await database_sync_to_async(
        lambda: TranscriptionSession.objects.select_related("transcript").get(pk=hello["sessionId"])
    )()
    assert session.status == "completed" and session.transcript.text == " ".join(f["text"] for f in finals)
    assert session.audio_seconds == pytest.approx(len(audio) / 16000, abs=0.05)
    usage = await database_sync_to_async(lambda: usage_for_month(user=session.user))()
    assert usage.audio_seconds_streamed == pytest.approx(len(audio) / 16000, abs=0.05)
    assert not await database_sync_to_async(ActiveStream.objects.exists)()


async def test_silence_gives_no_segment(key):
    comm, _ = await open_session(key)
    for packet in packets(np.zeros(16000 * 5, dtype=np.float32)):
        await comm.send_to(bytes_data=packet)
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    _, seen = await receive_until(comm, "status")
    _, seen2 = await receive_until(comm, "status")
    assert not [e for e in seen + seen2 if e["type"] in ("final", "realtime")]
    await comm.disconnect()


async def test_two_clients_receive_only_their_own_transcripts(django_user_model, corpus):
    users = [await database_sync_to_async(django_user_model.objects.create_user)(f"iso{i}") for i in range(2)]
    keys = [(await database_sync_to_async(api_key_create)(owner=u, scopes=["stream"]))[1] for u in users]
    sessions = [await open_session(k) for k in keys]
    clips = [corpus.manifest()["jfk.wav"].path, corpus.manifest()["ljspeech_LJ001-0004.wav"].path]
    for (comm, _), clip in zip(sessions, clips, strict=True):
        audio = np.concatenate([corpus.read_mono_float(clip), SILENCE_1S])
        for packet in packets(audio):
            await comm.send_to(bytes_data=packet)
    finals = []
    for comm, hello in sessions:
        final, seen = await receive_until(comm, "final")
        assert all(e.get("sessionId") == hello["sessionId"] for e in seen)
        finals.append(final)
        await comm.disconnect()
    assert finals[0]["text"] != finals[1]["text"]  # the fake text carries each clip's own length


@pytest.mark.parametrize(
    ("packet", "code"),
    [
        (b"\x01\x00", "packet_too_short"),
        (b"\xff\x00\x00\x00{}", "metadata_length_out_of_range"),
        (encode_packet(np.zeros((10, 1), np.int16), 16000)[:-2], "frame_count_mismatch"),
        (encode_packet(np.zeros((10, 1), np.int16), 4000), "invalid_sample_rate"),
    ],
)
async def test_malformed_packet_gets_error_and_connection_goes_on(key, packet, code):
    comm, _ = await open_session(key)
    await comm.send_to(bytes_data=packet)
    error, _ = await receive_until(comm, "error")
    assert error["code"] == code and error["where"] == "audio" and error["message"]
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    await receive_until(comm, "pong")
    await comm.disconnect()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_command"),
        ('{"type": "dance"}', "unknown_command"),
        ('{"type": "start", "options": {"postSpeechSilenceDuration": 99}}', "option_out_of_range"),
        ('{"type": "start", "options": {"interimResults": "yes"}}', "invalid_option"),
        ('{"type": "start", "options": {"language": "xx"}}', "unsupported_language"),
        ('{"type": "start", "options": {"wakeWords": "abracadabra"}}', "wake_word_unavailable"),
        (
            '{"type": "start", "options": {"wakeWords": "jarvis", "wakeWordTimeout": 0}}',
            "option_out_of_range",
        ),
        ('{"type": "start", "options": {"wakewordBackend": "snowboy"}}', "invalid_option"),
    ],
)
async def test_bad_command_gets_error_and_connection_goes_on(key, text, code):
    comm, _ = await open_session(key)
    await comm.send_to(text_data=text)
    error, _ = await receive_until(comm, "error")
    assert error["code"] == code and error["where"] == "command"
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    await receive_until(comm, "pong")
    await comm.disconnect()


async def test_start_options_apply(key):
    comm, _ = await open_session(key)
    await comm.send_to(
        text_data=json.dumps(
            {"type": "start", "options": {"interimResults": False, "postSpeechSilenceDuration": 0.8}}
        )
    )
    status, _ = await receive_until(comm, "status")
    assert (
        status["settings"]["interimResults"] is False
        and status["settings"]["postSpeechSilenceDuration"] == 0.8
    )
    await comm.disconnect()


async def test_clear_acknowledges(key):
    comm, _ = await open_session(key)
    await comm.send_to(text_data=json.dumps({"type": "clear"}))
    await receive_until(comm, "clear")
    await comm.disconnect()


async def test_garbage_flood_is_closed_with_1008(key):
    comm, _ = await open_session(key)
    for _ in range(30):
        await comm.send_to(bytes_data=b"\x00")
    events = await expect_close(comm, 1008)
    assert any(e.get("code") == "too_many_errors" for e in events)


async def test_oversized_message_is_closed_with_1009(key, settings):
    settings.STT_STREAM = {**settings.STT_STREAM, "MAX_PACKET_BYTES": 4096}
    comm, _ = await open_session(key)
    await comm.send_to(bytes_data=encode_packet(np.zeros((4000, 1), np.int16), 16000))
    await expect_close(comm, 1009)


async def test_no_credentials_closes_4001():
    comm = connect(headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")])
    connected, _ = await comm.connect()
    assert connected
    events = await expect_close(comm, 4001)
    assert events[0]["type"] == "error" and events[0]["code"] == "not_authenticated"


async def test_bad_key_closes_4001(key):
    comm = connect(key + "x")
    await comm.connect()
    events = await expect_close(comm, 4001)
    assert events[0]["code"] == "invalid_key"


async def test_key_without_stream_scope_closes_4003(user):
    _, secret = await database_sync_to_async(api_key_create)(owner=user, scopes=["history:read"])
    comm = connect(secret)
    await comm.connect()
    events = await expect_close(comm, 4003)
    assert events[0]["code"] == "missing_scope"


async def test_too_many_streams_closes_4029(user, key):
    await database_sync_to_async(quota_set)(user=user, max_concurrent_streams=1)
    first, _ = await open_session(key)
    second = connect(key)
    await second.connect()
    await expect_close(second, 4029)
    await first.disconnect()


async def test_a_stream_opened_as_the_last_one_closes_waits_for_its_place(user, key, settings):
    # bench.soak: a client at its limit that closed a stream and opened the next at once was refused
    # 4029 while the closed one was still being released.
    settings.STT_STREAM = {**settings.STT_STREAM, "ADMISSION_GRACE_S": 5.0}
    await database_sync_to_async(quota_set)(user=user, max_concurrent_streams=1)
    first, _ = await open_session(key)
    second = connect(key)
    started = time.monotonic()
    asyncio.get_running_loop().call_later(0.5, lambda: asyncio.ensure_future(first.disconnect()))
    connected, _ = await second.connect(timeout=10)
    hello, _ = await receive_until(second, "hello")
    assert connected and hello["limits"]["max_concurrent_streams"] == 1
    assert 0.4 < time.monotonic() - started < 5.0
    await second.disconnect()


async def test_exhausted_quota_closes_4002(user, key):
    await database_sync_to_async(quota_set)(user=user, monthly_audio_seconds=10)
    await database_sync_to_async(usage_add)(user=user, streamed_seconds=10)
    comm = connect(key)
    await comm.connect()
    events = await expect_close(comm, 4002)
    assert events[0]["code"] == "quota_exhausted"


async def test_quota_running_out_mid_stream_finalizes_then_closes_4002(user, key, corpus):
    await database_sync_to_async(quota_set)(user=user, monthly_audio_seconds=6)
    comm, hello = await open_session(key)
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    for packet in packets(audio):
        await comm.send_to(bytes_data=packet)
    events = await expect_close(comm, 4002)
    kinds = [e["type"] for e in events]
    assert "final" in kinds and kinds.index("final") < kinds.index("warning")
    warning = events[kinds.index("warning")]
    assert warning["code"] == "quota_exhausted"
    finals = [e for e in events if e["type"] == "final"]
    stored = await database_sync_to_async(
        lambda: list(Segment.objects.filter(session_id=hello["sessionId"]))
    )()
    assert [s.segment_id for s in stored] == [f["segmentKey"] for f in finals]
    assert finals[-1]["end"] <= 6.1  # nothing past the quota was transcribed


async def test_server_at_capacity_closes_1013(django_user_model, key):
    from transcription import runtime_config

    other = await database_sync_to_async(django_user_model.objects.create_user)("someone")
    await database_sync_to_async(stream_admission_create)(user=other, endpoint="ws_transcribe")
    await database_sync_to_async(runtime_config.apply)({"max_sessions": 1})
    comm = connect(key)
    await comm.connect()
    events = await expect_close(comm, 1013)
    assert events[0]["code"] == "server_at_capacity"


async def test_browser_from_foreign_origin_is_refused(key):
    comm = WebsocketCommunicator(application, "/ws/transcribe", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await comm.connect()
    assert not connected


async def test_browser_from_another_port_of_an_allowed_host_is_refused(client, user):
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"origin", b"http://127.0.0.1:9999"), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie)]
    comm = WebsocketCommunicator(application, "/ws/transcribe", headers=headers)
    connected, _ = await comm.connect()
    assert not connected


async def test_connection_with_neither_origin_nor_key_is_refused():
    comm = WebsocketCommunicator(application, "/ws/transcribe")
    connected, _ = await comm.connect()
    assert not connected


async def test_api_client_without_origin_is_let_in(key):
    comm, hello = await open_session(key)
    assert hello["type"] == "hello"
    await comm.disconnect()


async def test_logged_in_browser_from_allowed_origin(client, user):
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(
        application,
        "/ws/transcribe",
        headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie)],
    )
    connected, _ = await comm.connect()
    assert connected
    hello, _ = await receive_until(comm, "hello")
    assert hello["sessionId"]
    await comm.disconnect()


async def test_speaker_over_capacity_is_warned_and_still_gets_its_final_without_interims(
    django_user_model, key, corpus
):
    from transcription import runtime_config

    await database_sync_to_async(runtime_config.apply)({"max_active_speakers": 1})
    other = await database_sync_to_async(django_user_model.objects.create_user)("speaker")
    speaking = await database_sync_to_async(stream_admission_create)(user=other, endpoint="ws_transcribe")
    await database_sync_to_async(ActiveStream.objects.filter(pk=speaking.pk).update)(speaking=True)
    comm, _ = await open_session(key)
    audio = np.concatenate([corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), SILENCE_1S])
    head, tail = audio[: 16000 * 4], audio[16000 * 4 :]
    for packet in packets(head):
        await comm.send_to(bytes_data=packet)
    warning, seen = await receive_until(comm, "warning")
    assert warning["code"] == "speaker_capacity"
    await asyncio.sleep(1.0)  # time enough for interim work, had the segment been given any
    for packet in packets(tail):
        await comm.send_to(bytes_data=packet)
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    _, rest = await receive_until_status(comm, "idle")
    finals = [e for e in rest if e["type"] == "final"]
    assert warning["segmentId"] == finals[0]["segmentId"] and finals[0]["text"].startswith("fake ")
    assert {e["code"] for e in seen + rest if e["type"] == "warning"} == {"speaker_capacity"}
    assert not [e for e in seen + rest if e["type"] == "realtime"]
    # Once the other speaker falls silent, the next segment gets its place and interim text.
    await database_sync_to_async(ActiveStream.objects.filter(pk=speaking.pk).update)(speaking=False)
    for packet in packets(head):
        await comm.send_to(bytes_data=packet)
    _, seen = await receive_until(comm, "realtime")
    for packet in packets(tail):
        await comm.send_to(bytes_data=packet)
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    _, rest = await receive_until_status(comm, "idle")
    assert "warning" not in [e["type"] for e in seen + rest] and "final" in [e["type"] for e in rest]
    await comm.disconnect()


async def receive_until_status(comm: WebsocketCommunicator, state: str) -> tuple[dict, list]:
    seen = []
    while True:
        event, more = await receive_until(comm, "status")
        seen += more
        if event["state"] == state:
            return event, seen


async def test_speaking_place_is_held_during_speech_and_given_back_after(key, corpus):
    comm, _ = await open_session(key)
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    for packet in packets(audio[: 16000 * 4]):
        await comm.send_to(bytes_data=packet)
    await receive_until(comm, "timeline")  # recording_started
    assert await database_sync_to_async(ActiveStream.objects.filter(speaking=True).count)() == 1
    for packet in packets(np.concatenate([audio[16000 * 4 :], SILENCE_1S])):
        await comm.send_to(bytes_data=packet)
    await receive_until(comm, "final")
    assert await database_sync_to_async(ActiveStream.objects.filter(speaking=True).count)() == 0
    await comm.disconnect()


async def test_server_shutdown_finalizes_open_segment_then_closes_1012(key, corpus):
    from transcription.ops import shutdown

    comm, hello = await open_session(key)
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    for packet in packets(audio[: 16000 * 8]):  # mid-sentence: the segment is still open
        await comm.send_to(bytes_data=packet)
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    _, before = await receive_until(comm, "pong")  # every packet before it has been taken in
    opened = [e["event"] for e in before if e["type"] == "timeline" and e["event"] != "realtime_transcript"]
    assert opened[-1] == "recording_started"
    try:
        assert await shutdown.drain(10) == 1
        events = await expect_close(comm, 1012)
        # New connections are refused while the server drains.
        late = connect(key)
        await late.connect()
        refused = await expect_close(late, 1012)
        assert refused[0]["code"] == "server_shutting_down"
    finally:
        shutdown._state["draining"] = False
    # The client hears at once why the stream is ending, then gets the rest of its speech.
    assert events[0]["type"] == "warning" and events[0]["code"] == "server_shutdown"
    finals = [e for e in before + events if e["type"] == "final"]
    assert "final" in [e["type"] for e in events] and finals[-1]["end"] >= 7.5
    session = await database_sync_to_async(TranscriptionSession.objects.select_related("transcript").get)(
        pk=hello["sessionId"]
    )
    segments = await database_sync_to_async(lambda: list(session.segments.all()))()
    assert [s.text for s in segments] == [f["text"] for f in finals]
    assert session.transcript.text == " ".join(f["text"] for f in finals)
    assert session.end_reason == "server_shutdown" and session.status == "completed"
    assert session.audio_seconds == pytest.approx(8.0, abs=0.1)
    assert not await database_sync_to_async(ActiveStream.objects.exists)()


async def test_audio_much_faster_than_real_time_is_closed_with_1008(key):
    comm, hello = await open_session(key)
    # 30 s of lead are allowed (a client catching up after a stall); 40 s at once is a flood.
    for packet in packets(np.zeros(16000 * 40, dtype=np.float32), 16000, 1000):
        await comm.send_to(bytes_data=packet)
    events = await expect_close(comm, 1008)
    assert events[-1]["type"] == "error" and events[-1]["code"] == "too_fast"
    session = await database_sync_to_async(TranscriptionSession.objects.get)(pk=hello["sessionId"])
    assert session.end_reason == "too_fast" and 29 < session.audio_seconds < 32  # what was taken in is billed


async def test_session_reaching_its_maximum_length_is_finalized_then_closed_1000(user, key, corpus):
    await database_sync_to_async(quota_set)(user=user, max_session_seconds=8)
    comm, hello = await open_session(key)
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    for packet in packets(audio):
        await comm.send_to(bytes_data=packet)
    events = await expect_close(comm, 1000)
    warnings = [e for e in events if e["type"] == "warning"]
    assert [w["code"] for w in warnings] == ["max_session_length"]
    finals = [e for e in events if e["type"] == "final"]
    assert finals and finals[-1]["end"] <= 8.1 and finals[-1]["end"] > 6.0
    stored = Segment.objects.filter(session_id=hello["sessionId"]).values_list("segment_id", flat=True)
    assert await database_sync_to_async(list)(stored) == [f["segmentKey"] for f in finals]


async def test_an_unexpected_failure_in_a_handler_is_an_error_event_and_the_stream_goes_on(key, monkeypatch):
    from transcription.streaming.protocols.ws_transcribe import TranscribeConsumer

    async def broken(self, text):
        raise RuntimeError("boom")

    comm, hello = await open_session(key)
    monkeypatch.setattr(TranscribeConsumer, "_on_command", broken)
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    error, _ = await receive_until(comm, "error")
    assert error["code"] == "internal_error" and "boom" not in error["message"]
    monkeypatch.undo()
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    await receive_until(comm, "pong")
    await comm.disconnect()
    session = await database_sync_to_async(TranscriptionSession.objects.get)(pk=hello["sessionId"])
    assert session.status == "completed" and not await database_sync_to_async(ActiveStream.objects.exists)()


async def test_a_failure_while_connecting_closes_1011_and_keeps_no_stream_place(key, monkeypatch):
    from transcription.streaming.protocols.ws_transcribe import TranscribeConsumer

    async def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(TranscribeConsumer, "on_admitted", broken)
    comm = connect(key)
    await comm.connect()
    await expect_close(comm, 1011)
    assert not await database_sync_to_async(ActiveStream.objects.exists)()


async def test_a_final_that_cannot_be_stored_is_reported_and_the_session_still_ends(key, corpus, monkeypatch):
    from transcription import services

    def failing(**fields):
        raise RuntimeError("database is down")

    comm, hello = await open_session(key)
    monkeypatch.setattr(services, "segment_finalize", failing)
    audio = np.concatenate([corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), SILENCE_1S])
    for packet in packets(audio):
        await comm.send_to(bytes_data=packet)
    error, seen = await receive_until(comm, "error")
    assert error["code"] == "storage_failed" and error["segmentId"]
    assert "final" not in [e["type"] for e in seen]  # never shown unless stored
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    await receive_until_status(comm, "idle")
    await comm.disconnect()
    session = await database_sync_to_async(TranscriptionSession.objects.get)(pk=hello["sessionId"])
    assert session.status == "completed" and session.audio_seconds > 11
    assert not await database_sync_to_async(ActiveStream.objects.exists)()


async def test_wake_word_start_options_apply_and_the_status_says_it_waits(key):
    comm, _ = await open_session(key)
    options = {"wakeWords": "Jarvis", "wakeWordFollowupWindow": 4, "wakeWordsSensitivity": 0.7}
    await comm.send_to(text_data=json.dumps({"type": "start", "options": options}))
    status, _ = await receive_until(comm, "status")
    wake = status["settings"]["wakeWord"]
    assert wake["wakeword_backend"] == "pvporcupine" and wake["wake_words"] == "jarvis"
    assert wake["wake_word_followup_window"] == 4.0 and wake["wake_word_enabled"] is True
    assert status["state"] == "wakeword_wait" and status["wakeWordEnabled"] is True
    assert status["wakeWord"] == {"enabled": True, "backend": "pvporcupine", "wakeWords": "jarvis",
                                  "state": "wakeword_wait"}  # fmt: skip
    await comm.disconnect()


async def test_empty_wake_words_turn_the_servers_wake_word_mode_off_for_one_session(key, settings):
    settings.STT_WAKE = {**settings.STT_WAKE, "wake_words": "jarvis"}
    comm, hello = await open_session(key)
    assert hello["settings"]["wake_word_enabled"] is True and hello["settings"]["wake_words"] == "jarvis"
    await comm.send_to(text_data=json.dumps({"type": "start", "options": {"wakeWords": ""}}))
    status, _ = await receive_until(comm, "status")
    assert status["settings"]["wakeWord"]["wake_word_enabled"] is False and status["state"] == "listening"
    await comm.disconnect()
