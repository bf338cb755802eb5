"""Resuming a dropped /ws/transcribe stream: token, acknowledgements, the window, refusals (fake engine)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import ActiveStream
from accounts.selectors import usage_for_month
from accounts.services import api_key_create
from bench.packets import packets
from sttproject.asgi import application
from transcription.models import Segment, TranscriptionSession
from transcription.streaming import resume

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

RATE = 16000
SILENCE_1S = np.zeros(RATE, dtype=np.float32)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("resume-user", password="pw-resume-1")


@pytest.fixture
def key(user):
    return api_key_create(owner=user, scopes=["stream"])[1]


@pytest.fixture
def jfk(corpus) -> np.ndarray:
    return corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)


@pytest.fixture(autouse=True)
async def no_parked_streams_left():
    """A test's parked streams are finished with it (their timers belong to its event loop)."""
    yield
    for stream in list(resume._streams.values()):
        if stream.consumer is None:
            await stream.shutdown()
    resume._streams.clear()
    resume._expired.clear()


def connect(key: str, query: str = "") -> WebsocketCommunicator:
    path = f"/ws/transcribe?{query}" if query else "/ws/transcribe"
    return WebsocketCommunicator(application, path, headers=[(b"x-api-key", key.encode())])


async def receive_until(comm, test, wait_s: float = 20.0) -> tuple[dict, list]:
    """Events up to the first for which `test(event)` is true (a type name tests the type)."""
    check = (lambda e: e["type"] == test) if isinstance(test, str) else test
    seen = []
    async with asyncio.timeout(wait_s):
        while True:
            event = json.loads(await comm.receive_from(wait_s))
            seen.append(event)
            if check(event):
                return event, seen


async def open_stream(key: str, query: str = "") -> tuple[WebsocketCommunicator, dict]:
    comm = connect(key, query)
    connected, _ = await comm.connect()
    assert connected
    hello, _ = await receive_until(comm, "hello")
    return comm, hello


async def send_audio(comm, audio: np.ndarray) -> None:
    for packet in packets(audio):
        await comm.send_to(bytes_data=packet)


async def start(comm, **options) -> None:
    await comm.send_to(text_data=json.dumps({"type": "start", "options": options}))
    await receive_until(comm, "status")


async def refused(comm) -> tuple[dict, int]:
    """The error a refused connection gets, and its close code."""
    connected, _ = await comm.connect()
    assert connected  # accepted, so that the client can be told why
    error = json.loads(await comm.receive_from(10))
    close = await comm.receive_output(10)
    assert close["type"] == "websocket.close"
    return error, close["code"]


async def stop_and_collect(comm) -> list[dict]:
    """Stop listening; every event up to the idle status that follows."""
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    _, seen = await receive_until(comm, lambda e: e["type"] == "status" and e["state"] == "idle")
    return seen


def session_row(session_id: str) -> TranscriptionSession:
    return TranscriptionSession.objects.select_related("transcript").get(pk=session_id)


async def stored_segments(session_id: str) -> list[Segment]:
    return await database_sync_to_async(
        lambda: list(Segment.objects.filter(session_id=session_id).order_by("index"))
    )()


async def test_hello_carries_a_resume_token_and_a_status_acknowledges_audio_each_second(key):
    comm, hello = await open_stream(key)
    assert hello["resume"]["windowS"] == 30 and len(hello["resume"]["token"]) >= 24
    assert hello["audioReceivedS"] == 0
    await send_audio(comm, np.zeros(RATE * 2, dtype=np.float32))
    status, seen = await receive_until(
        comm, lambda e: e["type"] == "status" and e.get("audioReceivedS", 0) >= 2.0, wait_s=30
    )
    assert status["audioReceivedS"] == pytest.approx(2.0, abs=0.001) and status["state"] == "listening"
    # The figures rise as audio arrives; none is more than was sent.
    figures = [e["audioReceivedS"] for e in seen if e["type"] == "status"]
    assert figures == sorted(figures) and max(figures) <= 2.0 + 1e-6
    await comm.disconnect(timeout=20)


async def test_a_dropped_stream_resumes_into_the_same_session_and_the_sentence_stays_whole(key, user, jfk):
    comm, hello = await open_stream(key)
    await start(comm, wordTimestamps=False)
    first_part = np.concatenate([SILENCE_1S, jfk, SILENCE_1S])
    await send_audio(comm, first_part)
    first_final, seen = await receive_until(comm, "final")
    await asyncio.sleep(0.5)
    second = np.concatenate([SILENCE_1S, jfk, SILENCE_1S])
    cut = RATE * 4  # mid-sentence: "... ask not what your country"
    await send_audio(comm, second[:cut])
    _, more = await receive_until(comm, lambda e: e["type"] == "status" and e["state"] == "recording")
    seen += more
    # The network drops: no close frame (1006). The stream waits; nothing is ended or released.
    await comm.disconnect(code=1006, timeout=20)
    session = await database_sync_to_async(session_row)(hello["sessionId"])
    assert session.ended_at is None and await database_sync_to_async(ActiveStream.objects.count)() == 1
    assert resume.parked_count() == 1

    token = hello["resume"]["token"]
    # The client says which final it has last: ones sent into the dead socket come again.
    last = max(e["segmentId"] for e in seen if e["type"] == "final")
    comm, again = await open_stream(key, f"resume={token}&lastSegment={last}")
    assert again["resumed"] is True and again["listening"] is True
    assert again["sessionId"] == hello["sessionId"] and again["resume"]["token"] == token
    received = again["audioReceivedS"]
    assert received == pytest.approx((len(first_part) + cut) / RATE, abs=0.001)
    # The client re-sends from the server's figure: nothing twice, nothing missing.
    offset = round(received * RATE) - len(first_part)
    await send_audio(comm, second[offset:])
    seen += await stop_and_collect(comm)
    await comm.disconnect(timeout=20)

    finals = [e for e in seen if e["type"] == "final"]
    numbers = [f["segmentId"] for f in finals]
    assert numbers == sorted(set(numbers)) and numbers[0] == first_final["segmentId"] == 1
    stored = await stored_segments(hello["sessionId"])
    assert [s.segment_id for s in stored] == [f["segmentKey"] for f in finals]
    # The sentence cut by the drop is one segment, from before the cut to after it.
    cut_s = (len(first_part) + cut) / RATE
    assert any(s.start_s < cut_s < s.end_s for s in stored), [(s.start_s, s.end_s) for s in stored]
    session = await database_sync_to_async(session_row)(hello["sessionId"])
    total_s = (len(first_part) + len(second)) / RATE
    assert session.status == "completed" and session.audio_seconds == pytest.approx(total_s, abs=0.01)
    usage = await database_sync_to_async(lambda: usage_for_month(user=user))()
    assert usage.audio_seconds_streamed == pytest.approx(total_s, abs=0.01)
    assert await database_sync_to_async(TranscriptionSession.objects.count)() == 1
    assert not await database_sync_to_async(ActiveStream.objects.exists)()


async def test_a_final_made_while_the_socket_was_gone_is_stored_and_delivered_once(key, jfk, settings):
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE_OPTIONS": {"delay_ms": 1500}}
    comm, hello = await open_stream(key)
    await start(comm, interimResults=False)
    await send_audio(comm, np.concatenate([SILENCE_1S, jfk[: RATE * 3], SILENCE_1S, SILENCE_1S]))
    # Dropped before the final (1.5 s of inference) is out.
    await comm.disconnect(code=1006, timeout=20)
    async with asyncio.timeout(10):
        while not await stored_segments(hello["sessionId"]):  # noqa: ASYNC110 (polls the database)
            await asyncio.sleep(0.1)
    [segment] = await stored_segments(hello["sessionId"])

    comm, _ = await open_stream(key, f"resume={hello['resume']['token']}")
    seen = await stop_and_collect(comm)
    await comm.disconnect(timeout=20)
    finals = [e for e in seen if e["type"] == "final"]
    assert [(f["segmentKey"], f["text"]) for f in finals] == [(segment.segment_id, segment.text)]
    # In order: the final comes before the status that says where the stream stands.
    kinds = [e["type"] for e in seen]
    assert kinds.index("final") < kinds.index("status")


async def test_a_final_sent_into_the_dropped_socket_is_sent_again_only_if_the_client_missed_it(key, jfk):
    comm, hello = await open_stream(key)
    token = hello["resume"]["token"]
    await start(comm, interimResults=False)
    await send_audio(comm, np.concatenate([SILENCE_1S, jfk[: RATE * 3], SILENCE_1S, SILENCE_1S]))
    final, _ = await receive_until(comm, "final")
    await comm.disconnect(code=1006, timeout=20)
    # This client says it has no final yet: it gets the one it missed.
    comm, _ = await open_stream(key, f"resume={token}&lastSegment=0")
    again, _ = await receive_until(comm, "final", wait_s=5)
    assert (again["segmentKey"], again["text"]) == (final["segmentKey"], final["text"])
    await comm.disconnect(code=1006, timeout=20)
    # This one has it: nothing is sent twice.
    comm, _ = await open_stream(key, f"resume={token}&lastSegment={final['segmentId']}")
    seen = await stop_and_collect(comm)
    assert not [e for e in seen if e["type"] == "final"]
    await comm.disconnect(timeout=20)


async def test_a_stream_not_resumed_within_the_window_is_finished_billed_and_released(
    key, user, jfk, settings
):
    settings.STT_STREAM = {**settings.STT_STREAM, "RESUME_WINDOW_S": 1.0}
    comm, hello = await open_stream(key)
    assert hello["resume"]["windowS"] == 1.0
    audio = np.concatenate([SILENCE_1S, jfk[: RATE * 4]])  # mid-sentence
    await send_audio(comm, audio)
    await receive_until(comm, lambda e: e["type"] == "status" and e["state"] == "recording")
    await comm.disconnect(code=1006, timeout=20)
    assert await database_sync_to_async(ActiveStream.objects.count)() == 1
    async with asyncio.timeout(10):
        while (await database_sync_to_async(session_row)(hello["sessionId"])).ended_at is None:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    session = await database_sync_to_async(session_row)(hello["sessionId"])
    assert session.end_reason == "closed_1006" and session.status == "completed"
    assert session.audio_seconds == pytest.approx(len(audio) / RATE, abs=0.01)
    usage = await database_sync_to_async(lambda: usage_for_month(user=user))()
    assert usage.audio_seconds_streamed == pytest.approx(len(audio) / RATE, abs=0.01)
    # The open segment was finalized and stored; the stream's place is free again.
    stored = await stored_segments(hello["sessionId"])
    assert stored and session.transcript.text == " ".join(s.text for s in stored)
    assert not await database_sync_to_async(ActiveStream.objects.exists)()
    # Too late: refused with its own code, and nothing new is started.
    error, code = await refused(connect(key, f"resume={hello['resume']['token']}"))
    assert (error["code"], error["where"], code) == ("resume_expired", "connect", 4410)
    assert await database_sync_to_async(TranscriptionSession.objects.count)() == 1


@pytest.mark.parametrize("ending", ["stop then drop", "close 1000", "close 1001"])
async def test_stop_or_a_goodbye_ends_the_stream_at_once(key, jfk, ending):
    comm, hello = await open_stream(key)
    await send_audio(comm, np.concatenate([SILENCE_1S, jfk[: RATE * 3]]))
    await receive_until(comm, lambda e: e["type"] == "status" and e["state"] == "recording")
    if ending == "stop then drop":
        await stop_and_collect(comm)
        await comm.disconnect(code=1006, timeout=20)
    else:
        await comm.disconnect(code=int(ending.split()[1]), timeout=20)
    # disconnect() returns once the consumer is done: the stream is already over.
    session = await database_sync_to_async(session_row)(hello["sessionId"])
    assert session.ended_at is not None and resume.parked_count() == 0
    assert not await database_sync_to_async(ActiveStream.objects.exists)()
    error, code = await refused(connect(key, f"resume={hello['resume']['token']}"))
    assert (error["code"], code) == ("resume_not_found", 4404)


@pytest.fixture
def other_key(django_user_model):
    other = django_user_model.objects.create_user("resume-other", password="pw-resume-2")
    return api_key_create(owner=other, scopes=["stream"])[1]


async def test_another_users_token_or_an_unknown_one_starts_nothing_and_says_not_found(key, other_key, jfk):
    comm, hello = await open_stream(key)
    token = hello["resume"]["token"]
    await send_audio(comm, jfk[: RATE * 2])
    await comm.disconnect(code=1006, timeout=20)
    for who, query in ((other_key, f"resume={token}"), (key, "resume=not-a-token")):
        error, code = await refused(connect(who, query))
        assert (error["code"], error["where"], code) == ("resume_not_found", "connect", 4404)
    assert await database_sync_to_async(TranscriptionSession.objects.count)() == 1
    assert await database_sync_to_async(ActiveStream.objects.count)() == 1
    # Without valid credentials a token is worth nothing either.
    error, code = await refused(connect("not-a-key", f"resume={token}"))
    assert code == 4001 and error["where"] == "connect"
    # The owner still resumes it.
    comm, again = await open_stream(key, f"resume={token}")
    assert again["resumed"] and again["sessionId"] == hello["sessionId"]
    await comm.disconnect(timeout=20)


async def test_a_resume_takes_over_from_a_connection_whose_drop_the_server_has_not_seen(key, jfk):
    stale, hello = await open_stream(key)
    await send_audio(stale, jfk[: RATE * 2])
    await receive_until(stale, lambda e: e["type"] == "status" and e.get("audioReceivedS", 0) >= 2.0)
    comm, again = await open_stream(key, f"resume={hello['resume']['token']}")
    assert again["sessionId"] == hello["sessionId"] and again["audioReceivedS"] == pytest.approx(2.0)
    close = None
    async with asyncio.timeout(5):
        while close is None:
            message = await stale.receive_output(5)
            close = message if message["type"] == "websocket.close" else None
    assert close["code"] == 4409
    await stale.disconnect(code=1006, timeout=20)  # the old socket's end changes nothing now
    await send_audio(comm, jfk[RATE * 2 : RATE * 3])
    status, _ = await receive_until(
        comm, lambda e: e["type"] == "status" and e.get("audioReceivedS", 0) >= 3.0
    )
    assert status["sessionId"] == hello["sessionId"]
    await comm.disconnect(timeout=20)
    session = await database_sync_to_async(session_row)(hello["sessionId"])
    assert session.audio_seconds == pytest.approx(3.0, abs=0.01)


async def test_with_a_window_of_zero_there_is_no_token_and_a_drop_ends_the_stream(key, jfk, settings):
    settings.STT_STREAM = {**settings.STT_STREAM, "RESUME_WINDOW_S": 0}
    comm, hello = await open_stream(key)
    assert "resume" not in hello
    await send_audio(comm, jfk[: RATE * 2])
    await comm.disconnect(code=1006, timeout=20)
    session = await database_sync_to_async(session_row)(hello["sessionId"])
    assert session.ended_at is not None and session.end_reason == "closed_1006"
    assert not await database_sync_to_async(ActiveStream.objects.exists)()


def test_last_segment_is_read_only_as_a_plain_number():
    from transcription.streaming.protocols.ws_transcribe import last_segment

    assert last_segment("12") == 12 and last_segment("0") == 0
    # isdigit() would let these through to int(), which raises (the parked stream would be lost).
    for raw in ("", "²", "١٢", "-1", "1.5", "9" * 5000):
        assert last_segment(raw) is None, raw


async def test_a_temporary_token_resumes_once_and_is_then_used(key, user, jfk):
    from accounts.tokens import stream_token_mint

    comm, hello = await open_stream(key)
    resume_token = hello["resume"]["token"]
    await send_audio(comm, jfk[: RATE * 2])
    await comm.disconnect(code=1006, timeout=20)
    token = (await database_sync_to_async(stream_token_mint)(user=user)).token
    browser = WebsocketCommunicator(application, f"/ws/transcribe?resume={resume_token}&token={token}")
    connected, _ = await browser.connect()
    assert connected
    again, _ = await receive_until(browser, "hello")
    assert again["resumed"] and again["sessionId"] == hello["sessionId"]
    await browser.disconnect(code=1006, timeout=20)
    # The same token again: refused as used, and the parked stream is still there for a good one.
    path = f"/ws/transcribe?resume={resume_token}&token={token}"
    error, code = await refused(WebsocketCommunicator(application, path))
    assert (error["code"], error["where"], code) == ("token_used", "connect", 4001)
    comm, last = await open_stream(key, f"resume={resume_token}")
    assert last["resumed"] and last["sessionId"] == hello["sessionId"]
    await comm.disconnect(timeout=20)
