"""AssemblyAI's /v3/ws and /v3/token over the fake engine: every message checked by the SDK's models."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import numpy as np
import pytest
from assemblyai.streaming.v3 import models as aai
from channels.db import database_sync_to_async

from accounts.services import api_key_create, quota_set
from speech.options import SessionOptions
from speech.session import StreamingSession
from tests.transcription.streaming.protocols.wsclient import (
    chunks,
    communicator,
    expect_close,
    pcm16,
    sessions,
)
from transcription.compat.assemblyai.audio import MULAW_TO_PCM16
from transcription.compat.assemblyai.params import ParamError, parse_query
from transcription.compat.assemblyai.wire import unformatted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

SILENCE_1S = np.zeros(16000, dtype=np.float32)
CHUNK_50MS = 1600  # bytes of 16 kHz PCM16
PARSERS = {
    "Begin": aai.BeginEvent,
    "Turn": aai.TurnEvent,
    "Termination": aai.TerminationEvent,
    "Error": aai.ErrorEvent,
    "Warning": aai.WarningEvent,
}


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("aai-user", password="pw-aai-user-1")


@pytest.fixture
def key(user):
    return api_key_create(owner=user, scopes=["stream"])[1]


def parsed(message) -> object:
    """A server message through the SDK's own pydantic model for its type."""
    return PARSERS[message["type"]].model_validate(message)


def connect(key: str | None, **params):
    query = urlencode({"sample_rate": 16000, **params})
    headers = [(b"authorization", key.encode())] if key else []
    return communicator(f"/v3/ws?{query}", headers)


async def open_stream(key: str | None, **params):
    comm = connect(key, **params)
    connected, _ = await comm.connect()
    assert connected
    begin = json.loads((await comm.receive_output(20))["text"])
    assert isinstance(parsed(begin), aai.BeginEvent), begin
    return comm, begin


async def messages_until(comm, done, wait_s: float = 20.0) -> list[dict]:
    seen: list[dict] = []
    async with asyncio.timeout(wait_s):
        while True:
            output = await comm.receive_output(wait_s)
            assert output["type"] == "websocket.send", (output, seen)
            seen.append(json.loads(output["text"]))
            parsed(seen[-1])
            if done(seen[-1]):
                return seen


def speech(corpus) -> np.ndarray:
    return np.concatenate([SILENCE_1S, corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), SILENCE_1S])


async def send_audio(comm, data: bytes, size: int = CHUNK_50MS) -> None:
    for chunk in chunks(data, size):
        if len(chunk) == size:
            await comm.send_to(bytes_data=chunk)


def end_of_turn(message) -> bool:
    return message["type"] == "Turn" and message["end_of_turn"]


async def test_turns_then_termination_each_parsed_by_the_sdk_and_stored(key, user, corpus):
    comm, begin = await open_stream(key, format_turns=True)
    assert begin["id"] and begin["expires_at"] > 0
    audio = pcm16(speech(corpus))
    await send_audio(comm, audio)
    await comm.send_to(text_data=json.dumps({"type": "Terminate"}))
    seen = await expect_close(comm, 1000)
    events = [parsed(m) for m in seen]
    turns = [e for e in events if isinstance(e, aai.TurnEvent)]
    partials = [t for t in turns if not t.end_of_turn]
    ends = [t for t in turns if t.end_of_turn]
    assert partials and ends, seen
    plain, formatted = [t for t in ends if not t.turn_is_formatted], [t for t in ends if t.turn_is_formatted]
    assert len(plain) == len(formatted) >= 1
    assert (
        [t.turn_order for t in plain]
        == [t.turn_order for t in formatted]
        == sorted({t.turn_order for t in ends})
    )
    first = plain[0]
    assert partials[0].turn_order == first.turn_order
    assert events.index(partials[0]) < events.index(first) < events.index(formatted[0])
    assert formatted[0].transcript.startswith("fake ") and first.transcript == unformatted(
        formatted[0].transcript
    )
    assert first.words and all(w.word_is_final and w.end >= w.start >= 0 for w in first.words)
    assert all(isinstance(w.start, int) for w in first.words)
    assert [w.start for w in first.words] == sorted(w.start for w in first.words)
    assert all(not w.word_is_final for w in partials[0].words[len(partials[0].transcript.split()) :])
    termination = events[-1]
    assert isinstance(termination, aai.TerminationEvent)
    assert termination.audio_duration_seconds == round(len(audio) // CHUNK_50MS * 0.05)
    [session] = await sessions(user=user)
    assert session.endpoint == "assemblyai_streaming" and session.status == "completed"
    assert session.sample_rate == 16000 and session.transcript.text.startswith("fake ")


async def test_without_format_turns_only_the_unformatted_end_of_turn_is_sent(key, corpus):
    comm, _ = await open_stream(key)
    await send_audio(comm, pcm16(speech(corpus)))
    await comm.send_to(text_data=json.dumps({"type": "Terminate"}))
    seen = await expect_close(comm, 1000)
    ends = [m for m in seen if m["type"] == "Turn" and m["end_of_turn"]]
    assert ends and not any(m["turn_is_formatted"] for m in ends)
    assert all(m["transcript"] == m["transcript"].lower() and "." not in m["transcript"] for m in ends)


def forced(message) -> bool:
    return end_of_turn(message) and message["end_of_turn_confidence"] == 1.0


async def test_force_endpoint_ends_the_turn_while_speech_goes_on(key, corpus):
    comm, _ = await open_stream(key)
    audio = pcm16(speech(corpus))
    cut = int(2.5 * 32000)  # 1 s of silence, 1.5 s of speech: mid-sentence
    await send_audio(comm, audio[:cut])
    await asyncio.sleep(0.3)  # no audio arrives meanwhile, so no silence can end the turn
    await comm.send_to(text_data=json.dumps({"type": "ForceEndpoint"}))
    seen = await messages_until(comm, forced)
    turn = parsed(seen[-1])
    assert turn.transcript and turn.words[-1].end <= 2500 + 50
    await send_audio(comm, audio[cut:])
    await comm.send_to(text_data=json.dumps({"type": "Terminate"}))
    rest = await expect_close(comm, 1000)
    later = [m for m in rest if end_of_turn(m)]
    assert later and later[0]["turn_order"] == turn.turn_order + 1, rest


async def test_update_configuration_sets_the_end_of_turn_options(key, monkeypatch):
    applied, done = [], asyncio.Event()
    original = StreamingSession.reconfigure

    def reconfigure(self, options):
        applied.append(options)
        done.set()
        original(self, options)

    monkeypatch.setattr(StreamingSession, "reconfigure", reconfigure)
    comm, _ = await open_stream(key)
    update = {
        "type": "UpdateConfiguration",
        "end_of_turn_confidence_threshold": 0.7,
        "min_turn_silence": 300,
        "max_turn_silence": 2000,
        "keyterms_prompt": ["Kubernetes"],
    }
    await comm.send_to(text_data=json.dumps(update))
    await comm.send_to(text_data=json.dumps({"type": "KeepAlive"}))
    await asyncio.wait_for(done.wait(), 5)
    options = applied[0]
    assert options.end_of_turn_threshold == 0.7 and options.end_of_turn_silence == pytest.approx(0.3)
    assert options.max_turn_silence == pytest.approx(2.0) and options.keyterms == ("Kubernetes",)
    await comm.send_to(text_data=json.dumps({"type": "UpdateConfiguration", "max_turn_silence": 99999}))
    [error] = await expect_close(comm, 3006)
    assert parsed(error).error_code == 3006 and "max_turn_silence" in error["error"]


def test_query_parameters_map_onto_session_options():
    query = {
        "sample_rate": "8000",
        "encoding": "pcm_mulaw",
        "format_turns": "True",
        "keyterms_prompt": json.dumps(["AssemblyAI", "Universal"]),
        "end_of_turn_confidence_threshold": "0.6",
        "min_end_of_turn_silence_when_confident": "250",
        "max_turn_silence": "1500",
        "speech_model": "universal-streaming-english",
        "language_detection": "true",
        "inactivity_timeout": "30",
    }
    params = parse_query(query, supported=["en"])
    assert params.sample_rate == 8000 and params.bytes_per_sample == 1 and params.format_turns
    options = params.options(SessionOptions())
    assert options.keyterms == ("AssemblyAI", "Universal") and options.end_of_turn_threshold == 0.6
    assert options.end_of_turn_silence == pytest.approx(0.25) and options.max_turn_silence == pytest.approx(
        1.5
    )
    assert options.idle_timeout_s == 30 and options.language == "en" and options.word_timestamps
    multilingual = parse_query({"sample_rate": "16000", "language_detection": "true"}, supported=["en", "fr"])
    assert dict(multilingual.changes)["language"] is None
    assert (
        dict(parse_query({"sample_rate": "16000", "language_code": "fr"}, supported=["en", "fr"]).changes)[
            "language"
        ]
        == "fr"
    )


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"sample_rate": ""}, "sample_rate is required"),
        ({"sample_rate": "fast"}, "sample_rate"),
        ({"sample_rate": "100"}, "sample_rate"),
        ({"encoding": "opus"}, "encoding"),
        ({"speech_model": "nova-3"}, "speech_model"),
        ({"speech_model": "universal-streaming-multilingual"}, "English-only"),
        ({"keyterms_prompt": "not json"}, "keyterms_prompt"),
        ({"keyterms_prompt": json.dumps(["x" * 80])}, "keyterms_prompt"),
        ({"end_of_turn_confidence_threshold": "2"}, "end_of_turn_confidence_threshold"),
        ({"max_turn_silence": "50"}, "max_turn_silence"),
        ({"format_turns": "maybe"}, "format_turns"),
        ({"language_code": "fr"}, "Unsupported language"),
        ({"speaker_labels": "True"}, "speaker_labels is not supported"),
        ({"inactivity_timeout": "1"}, "inactivity_timeout"),
    ],
)
async def test_bad_parameter_is_assemblyais_input_validation_error(key, user, params, says):
    comm = connect(key, **params)
    await comm.connect()
    [error] = await expect_close(comm, 3006)
    event = parsed(error)
    assert event.error_code == 3006 and says in event.error, error
    with pytest.raises(ParamError):
        parse_query({"sample_rate": "16000", **params}, supported=["en"])


@pytest.mark.parametrize(("size", "shown"), [(320, "10.00 ms"), (48000, "1500.00 ms")])
async def test_chunk_outside_50_to_1000_ms_closes_3007_after_the_turns_so_far(key, user, corpus, size, shown):
    comm, _ = await open_stream(key)
    await send_audio(comm, pcm16(speech(corpus))[: 5 * 32000])
    await comm.send_to(bytes_data=b"\x00" * size)
    seen = await expect_close(comm, 3007)
    error = parsed(seen[-1])
    assert (
        error.error_code == 3007
        and error.error == f"Input duration violation: {shown}. Expected between 50 and 1000 ms"
    )
    assert any(m["type"] == "Turn" and m["end_of_turn"] for m in seen[:-1]), seen  # what was said is kept
    [session] = await sessions(user=user)
    assert session.status == "completed" and session.transcript.text.startswith("fake ")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "Invalid JSON"),
        ("[]", "Invalid Message"),
        ('{"type": "Finalize"}', "Invalid Message Type"),
    ],
)
async def test_bad_client_message_closes_3006(key, text, says):
    comm, _ = await open_stream(key)
    await comm.send_to(text_data=text)
    [error] = await expect_close(comm, 3006)
    assert parsed(error).error.startswith(says)


async def test_bad_key_is_refused_with_1008_and_no_credential_at_the_handshake(key):
    comm = connect("stt_nope_nope")
    await comm.connect()
    [error] = await expect_close(comm, 1008)
    event = parsed(error)
    assert event.error_code == 1008 and event.error.startswith("Unauthorized Connection:")
    connected, _ = await connect(None).connect()
    assert not connected  # neither a key nor a token (nor a browser's origin): refused before it opens


async def test_session_past_its_maximum_is_expired_with_3008(key, user, corpus):
    await database_sync_to_async(quota_set)(user=user, max_session_seconds=2)
    comm, _ = await open_stream(key)
    await send_audio(comm, pcm16(speech(corpus))[: 4 * 32000])
    seen = await expect_close(comm, 3008)
    assert parsed(seen[-1]).error == "Session Expired: Maximum session duration exceeded"


async def test_inactivity_timeout_closes_4031_after_the_last_turn(key, corpus):
    comm, _ = await open_stream(key, inactivity_timeout=5)
    await send_audio(comm, pcm16(speech(corpus))[: 4 * 32000])
    seen = await expect_close(comm, 4031, wait_s=15)
    assert parsed(seen[-1]).error == "Session idle for too long"
    assert any(m["type"] == "Turn" and m["end_of_turn"] for m in seen[:-1])


async def test_mulaw_audio_is_decoded_and_transcribed(key, corpus):
    table = MULAW_TO_PCM16.astype(np.int32)
    # G.711's fixed points: 0xFF and 0x7F are zero, 0x80 and 0x00 the loudest levels.
    assert (table[0xFF], table[0x7F], table[0x80], table[0x00]) == (0, 0, 32124, -32124)
    assert len(set(table.tolist())) == 255 and np.all(np.diff(table[0x80:0xFF][::-1]) > 0)
    # Encode: each sample's nearest mu-law level (the inverse of the table).
    order = np.argsort(table)
    levels = table[order]
    audio = (speech(corpus) * 32767).astype(np.int32)
    position = np.clip(np.searchsorted(levels, audio), 1, 255)
    below = np.abs(levels[position - 1] - audio) <= np.abs(levels[position] - audio)
    ulaw = order[np.where(below, position - 1, position)].astype(np.uint8).tobytes()
    comm, _ = await open_stream(key, encoding="pcm_mulaw")
    await send_audio(comm, ulaw, size=800)  # 50 ms of 1-byte samples
    await comm.send_to(text_data=json.dumps({"type": "Terminate"}))
    seen = await expect_close(comm, 1000)
    ends = [m for m in seen if m["type"] == "Turn" and m["end_of_turn"]]
    assert ends and ends[0]["transcript"].startswith("fake")


# -- /v3/token ---------------------------------------------------------------------------------


def test_token_endpoint_mints_a_token_for_a_key(client, key):
    response = client.get("/v3/token", {"expires_in_seconds": 60}, HTTP_AUTHORIZATION=key)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_in_seconds"} and body["expires_in_seconds"] == 60 and body["token"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"expires_in_seconds": 0},
        {"expires_in_seconds": 601},
        {"expires_in_seconds": "soon"},
        {"expires_in_seconds": 60, "max_session_duration_seconds": 59},
        {"expires_in_seconds": 60, "max_session_duration_seconds": 10801},
    ],
)
def test_token_endpoint_bounds_are_assemblyais(client, key, query):
    response = client.get("/v3/token", query, HTTP_AUTHORIZATION=key)
    assert response.status_code == 400 and set(response.json()) == {"error"}


def test_token_endpoint_refuses_a_bad_key_a_key_without_stream_and_no_credentials(client, user):
    no_stream = api_key_create(owner=user, scopes=["history:read"])[1]
    for headers in ({"HTTP_AUTHORIZATION": "stt_nope_nope"}, {"HTTP_AUTHORIZATION": no_stream}, {}):
        response = client.get("/v3/token", {"expires_in_seconds": 60}, **headers)
        assert response.status_code == 401 and "error" in response.json(), headers


def test_token_endpoint_serves_a_signed_in_browser(client, user):
    client.force_login(user)
    response = client.get("/v3/token", {"expires_in_seconds": 30})
    assert response.status_code == 200 and response.json()["expires_in_seconds"] == 30


async def test_minted_token_opens_one_stream_under_the_keys_user(key, user, corpus):
    from django.test import AsyncClient

    response = await AsyncClient().get(
        "/v3/token",
        {"expires_in_seconds": 60, "max_session_duration_seconds": 60},
        headers={"authorization": key},
    )
    token = response.json()["token"]
    comm, begin = await open_stream(None, token=token)
    # The token's max_session_duration_seconds bounds the session: Begin says when it expires.
    assert 55 <= begin["expires_at"] - time.time() <= 61
    await send_audio(comm, pcm16(speech(corpus)))
    await comm.send_to(text_data=json.dumps({"type": "Terminate"}))
    seen = await expect_close(comm, 1000)
    assert any(end_of_turn(m) for m in seen)
    [session] = await sessions(user=user)
    assert session.endpoint == "assemblyai_streaming" and session.api_key_id is not None
    again = connect(None, token=token)
    await again.connect()
    [error] = await expect_close(again, 1008)
    assert parsed(error).error_code == 1008
