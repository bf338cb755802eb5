"""Deepgram's /v1/listen (fake engine): query parameters, live messages and closes, pre-recorded errors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import wave
from types import SimpleNamespace

import numpy as np
import pytest
from channels.db import database_sync_to_async

from accounts.services import api_key_create
from speech.options import SessionOptions
from tests.transcription.streaming.protocols.wsclient import chunks, communicator, pcm16, sessions
from transcription.compat.deepgram import live, wire
from transcription.compat.deepgram.params import (
    NO_SUCH_MODEL,
    DeepgramError,
    ListenParams,
    parse_params,
    query_pairs,
)
from transcription.compat.deepgram.wav import WavError, read_wav_header
from transcription.models import TranscriptionSession
from transcription.speech_models import model_label

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

RAW = "encoding=linear16&sample_rate=16000"
SILENCE = np.zeros(16000, dtype=np.float32)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("deepgram-user", password="pw-deepgram-user-1")


@pytest.fixture
def key(user):
    return api_key_create(owner=user, scopes=["stream", "history:write"])[1]


@pytest.fixture
def speech(corpus):
    return corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)


def connect(key: str | None, query: str = RAW, **kwargs):
    headers = [(b"authorization", f"Token {key}".encode())] if key else []
    return communicator(f"/v1/listen?{query}" if query else "/v1/listen", headers)


async def messages_until(comm, done, wait_s: float = 20.0) -> list:
    """Server messages (JSON) until `done(message)`; a close is returned as {"close": code, "reason"}."""
    seen: list = []
    async with asyncio.timeout(wait_s):
        while True:
            out = await comm.receive_output(wait_s)
            if out["type"] == "websocket.close":
                seen.append({"close": out.get("code"), "reason": out.get("reason", "")})
                return seen
            seen.append(json.loads(out["text"]))
            if done(seen[-1]):
                return seen


def closed(message: dict) -> bool:
    return "close" in message


async def send_audio(comm, audio: np.ndarray, size: int = 3200) -> bytes:
    data = pcm16(audio)
    for chunk in chunks(data, size):
        await comm.send_to(bytes_data=chunk)
    return data


def params(query: str) -> ListenParams:
    return parse_params(query_pairs(query), own_model="tiny.en")


# -- query parameters ------------------------------------------------------------------------------


def test_query_parameters_map_onto_the_session_options():
    p = params(
        "model=nova-3&encoding=linear16&sample_rate=8000&channels=2&language=en-US&interim_results=true"
        "&punctuate=true&endpointing=300&utterance_end_ms=1000&vad_events=true&keyterm=Kubernetes"
        "&keyterm=Ask%20not&keyterm=Kubernetes&diarize=true&tag=my-app"
    )
    assert (p.model, p.encoding, p.sample_rate, p.channels, p.language) == (
        "nova-3",
        "linear16",
        8000,
        2,
        "en",
    )
    assert p.interim_results and p.punctuated and p.vad_events and p.utterance_end_ms == 1000
    assert p.keyterms == ("Kubernetes", "Ask not") and p.enrich.speakers and p.extra == {"tag": "my-app"}
    base = SessionOptions(post_speech_silence_duration=0.55, end_of_turn_silence=0.45, max_segment_seconds=30)
    options = live.DeepgramLiveConsumer.session_options(SimpleNamespace(params=p), base)
    assert options.post_speech_silence_duration == pytest.approx(0.3) and options.end_of_turn_silence == 0
    assert options.interim_results and options.word_timestamps and options.keyterms == p.keyterms
    assert (
        options.language == "en" and options.idle_timeout_s == live.IDLE_TIMEOUT_S and options.enrich.speakers
    )
    off = live.DeepgramLiveConsumer.session_options(SimpleNamespace(params=params("endpointing=false")), base)
    assert off.post_speech_silence_duration == 30 and off.end_of_turn_silence == 0 and not off.interim_results
    # Deepgram's defaults: no interim results, no punctuation; our end-of-speech setting stays.
    default = live.DeepgramLiveConsumer.session_options(SimpleNamespace(params=params("")), base)
    assert not default.interim_results and default.post_speech_silence_duration == 0.55
    assert params("language=multi").language == "" and params("keywords=kafka:2").keyterms == ("kafka",)


@pytest.mark.parametrize(
    "query, fragment",
    [
        ("encoding=mulaw&sample_rate=8000", "encoding 'mulaw' is not supported"),
        ("encoding=pcm_s16le&sample_rate=8000", "is unknown"),
        ("encoding=linear16", "sample_rate is required"),
        ("encoding=linear16&sample_rate=fast", "sample_rate must be an integer"),
        ("encoding=linear16&sample_rate=16000&channels=9", "channels must be an integer"),
        ("model=whisper-huge-v9", "No such model/language/tier combination found."),
        ("interim_results=maybe", "interim_results must be true or false"),
        ("endpointing=-5", "endpointing must be an integer"),
        ("multichannel=true", "multichannel is not supported"),
        ("callback=https://example.com/hook", "callback is not supported"),
        ("redact=pci", "redact is not supported"),
        ("language=e1", "not a BCP-47 language tag"),
    ],
)
def test_parameters_deepgram_refuses_are_refused_with_its_error(query, fragment):
    with pytest.raises(DeepgramError) as caught:
        params(query)
    assert caught.value.err_code == "Bad Request" and caught.value.status == 400
    assert fragment in caught.value.err_msg


async def test_a_bad_parameter_gets_an_error_message_and_close_1008_and_stores_nothing(key, user):
    comm = connect(key, "encoding=opus&sample_rate=48000")
    await comm.connect()
    [error, close] = await messages_until(comm, closed)
    assert error["type"] == "Error" and "opus" in error["description"] and close["close"] == 1008
    assert await sessions(user=user) == []


async def test_a_language_the_model_cannot_produce_is_refused(key):
    comm = connect(key, f"{RAW}&language=fr")
    await comm.connect()
    [error, close] = await messages_until(comm, closed)
    assert NO_SUCH_MODEL in error["description"] and "'fr'" in error["description"]
    assert close["close"] == 1008


# -- live messages ---------------------------------------------------------------------------------


async def test_a_stream_gets_deepgram_results_speech_events_and_final_metadata(key, user, speech):
    query = f"{RAW}&model=nova-3&interim_results=true&punctuate=true&vad_events=true&utterance_end_ms=1000"
    comm = connect(key, query)
    assert (await comm.connect())[0]
    sent = await send_audio(comm, np.concatenate([SILENCE, speech, SILENCE, SILENCE, SILENCE]))
    await comm.send_to(text_data=json.dumps({"type": "CloseStream"}))
    seen = await messages_until(comm, closed)
    kinds = [m.get("type") for m in seen]
    assert kinds[0] == "SpeechStarted" and kinds[-2:] == ["Metadata", None], kinds
    started = seen[0]
    assert started["channel"] == [0, 1] and 0.5 < started["timestamp"] < 3.0
    results = [m for m in seen if m.get("type") == "Results"]
    interim = [r for r in results if not r["is_final"]]
    finals = [r for r in results if r["is_final"]]
    assert interim and all(
        not r["speech_final"] and r["channel"]["alternatives"][0]["transcript"] for r in interim
    )
    assert finals and kinds.count("SpeechStarted") == len(finals)
    for final in finals:
        assert final["speech_final"] and not final["from_finalize"] and final["channel_index"] == [0, 1]
        alternative = final["channel"]["alternatives"][0]
        assert alternative["transcript"].startswith("fake ") and 0 < alternative["confidence"] <= 1
        words = alternative["words"]
        assert [w["punctuated_word"] for w in words] == alternative["transcript"].split()
        assert [w["word"] for w in words] == alternative["transcript"].lower().split()
        assert (
            final["start"] <= words[0]["start"] < words[-1]["end"] <= final["start"] + final["duration"] + 1
        )
        assert set(final["metadata"]) == {"request_id", "model_info", "model_uuid"}
        assert final["metadata"]["model_info"]["name"] == model_label()
    # Each UtteranceEnd follows a final and names its last word's end; the last one ends the stream's speech.
    ends = [i for i, kind in enumerate(kinds) if kind == "UtteranceEnd"]
    assert ends and ends[-1] > kinds.index("Results") and ends[-1] < len(kinds) - 2
    for i in ends:
        before = [m for m in seen[:i] if m.get("type") == "Results" and m["is_final"]][-1]
        last_word = before["channel"]["alternatives"][0]["words"][-1]
        assert seen[i]["channel"] == [0, 1] and seen[i]["last_word_end"] == last_word["end"]
    metadata = seen[-2]
    assert metadata["sha256"] == hashlib.sha256(sent).hexdigest()
    assert metadata["duration"] == pytest.approx(len(sent) / 32000, abs=0.01) and metadata["channels"] == 1
    assert metadata["request_id"] == finals[0]["metadata"]["request_id"] and metadata["created"].endswith("Z")
    assert metadata["models"] == [finals[0]["metadata"]["model_uuid"]]
    assert set(metadata["model_info"]) == set(metadata["models"])
    assert seen[-1]["close"] == 1000
    [session] = await sessions(user=user)
    assert str(session.pk) == metadata["request_id"] and session.endpoint == "deepgram_listen"
    assert session.status == "completed" and session.transcript.text.startswith("fake ")


async def test_without_punctuate_the_transcript_is_bare_and_words_have_no_punctuated_form(key, speech):
    comm = connect(key)
    await comm.connect()
    await send_audio(comm, np.concatenate([SILENCE, speech, SILENCE, SILENCE]))
    [final] = await messages_until(comm, lambda m: m["type"] == "Results")
    alternative = final["channel"]["alternatives"][0]
    assert final["is_final"] and alternative["transcript"].startswith("fake ")
    assert [w["word"] for w in alternative["words"]] == alternative["transcript"].split()
    assert all("punctuated_word" not in w and "speaker" not in w for w in alternative["words"])
    await comm.disconnect()


async def test_finalize_answers_with_from_finalize_results_even_when_nothing_was_said(key, speech):
    comm = connect(key)
    await comm.connect()
    await comm.send_to(text_data='{"type": "Finalize"}')
    [empty] = await messages_until(comm, lambda m: m["type"] == "Results")
    assert (
        empty["from_finalize"]
        and empty["is_final"]
        and empty["channel"]["alternatives"][0]["transcript"] == ""
    )
    await send_audio(comm, np.concatenate([SILENCE, speech[: 16000 * 2]]))  # still speaking: no end yet
    await comm.send_to(text_data='{"type": "Finalize"}')
    *_, flushed = await messages_until(comm, lambda m: m["type"] == "Results" and m["from_finalize"])
    assert flushed["from_finalize"] and flushed["is_final"] and not flushed["speech_final"]
    assert flushed["channel"]["alternatives"][0]["transcript"].startswith("fake ")
    await comm.disconnect()


async def test_a_tag_with_a_nul_is_stored_without_it_and_the_stream_runs(key, user, speech):
    # PostgreSQL's jsonb cannot hold U+0000: found by bench.fuzz, it stopped the stream at admission.
    comm = connect(key, RAW + "&tag=my%00app")
    await comm.connect()
    await send_audio(comm, np.concatenate([SILENCE, speech[: 16000 * 2]]))
    await comm.send_to(text_data='{"type": "CloseStream"}')
    seen = await messages_until(comm, closed)
    assert [m.get("type") for m in seen] == ["Results", "Metadata", None] and seen[-1]["close"] == 1000
    [session] = await sessions(user=user)
    assert session.status == "completed" and session.client_info["tag"] == "myapp"


async def test_close_stream_transcribes_what_was_still_being_said_then_metadata_and_1000(key, user, speech):
    comm = connect(key)
    await comm.connect()
    await send_audio(comm, np.concatenate([SILENCE, speech[: 16000 * 2]]))  # mid-sentence
    await comm.send_to(text_data='{"type": "CloseStream"}')
    seen = await messages_until(comm, closed)
    assert [m.get("type") for m in seen] == ["Results", "Metadata", None] and seen[-1]["close"] == 1000
    assert seen[0]["is_final"] and not seen[0]["speech_final"] and not seen[0]["from_finalize"]
    assert seen[0]["channel"]["alternatives"][0]["transcript"].startswith("fake ")
    [session] = await sessions(user=user)
    assert session.status == "completed" and session.end_reason == "close_stream"


async def test_keepalive_keeps_an_idle_stream_open_and_silence_of_both_closes_1011_net_0001(
    key, monkeypatch, speech
):
    monkeypatch.setattr(live, "IDLE_TIMEOUT_S", 1.0)
    comm = connect(key)
    await comm.connect()
    await send_audio(comm, np.concatenate([SILENCE, speech[: 16000 * 2]]))
    for _ in range(6):  # 2.4 s: more than twice the timeout, kept open by KeepAlive alone
        await comm.send_to(text_data='{"type": "KeepAlive"}')
        assert await comm.receive_nothing(0.4)
    seen = await messages_until(comm, closed, wait_s=10)
    kinds = [m.get("type") for m in seen]
    assert kinds == ["Results", "Error", "Metadata", None], seen
    assert seen[0]["is_final"] and seen[0]["channel"]["alternatives"][0]["transcript"].startswith("fake ")
    assert seen[1]["variant"] == "NET-0001" and seen[-1]["close"] == 1011
    assert seen[-1]["reason"].startswith("NET-0001")


async def test_malformed_messages_get_a_schema_error_and_the_stream_goes_on(key):
    comm = connect(key)
    await comm.connect()
    for text in ("not json", '{"type": "Dance"}', "[1, 2]"):
        await comm.send_to(text_data=text)
        [error] = await messages_until(comm, lambda m: True)
        assert error["type"] == "Error" and error["variant"] == "SchemaError" and error["message"] == text
    await comm.send_to(text_data='{"type": "KeepAlive"}')
    assert await comm.receive_nothing(0.5)
    await comm.disconnect()


async def test_configure_changes_the_key_terms_and_refuses_bad_ones(key):
    comm = connect(key)
    await comm.connect()
    await comm.send_to(text_data=json.dumps({"type": "Configure", "keyterms": ["Kubernetes", "kafka"]}))
    [ok] = await messages_until(comm, lambda m: True)
    assert ok["type"] == "ConfigureSuccess" and ok["keyterms"] == ["Kubernetes", "kafka"] and ok["request_id"]
    await comm.send_to(text_data=json.dumps({"type": "Configure", "keyterms": ["x" * 500]}))
    [failure] = await messages_until(comm, lambda m: True)
    assert failure["type"] == "ConfigureFailure" and failure["code"] == "CONFIGURE_KEYTERM_LIMIT_EXCEEDED"
    await comm.disconnect()


def wav_bytes(audio: np.ndarray, rate: int, channels: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(pcm16_frames(audio), channels, axis=1).tobytes())
    return buffer.getvalue()


def pcm16_frames(audio: np.ndarray) -> np.ndarray:
    return np.frombuffer(pcm16(audio), dtype="<i2").reshape(-1, 1)


async def test_without_encoding_a_wav_stream_sets_rate_and_channels_and_anything_else_is_data_0000(
    key, user, speech
):
    import soxr

    audio = soxr.resample(np.concatenate([SILENCE, speech, SILENCE, SILENCE]), 16000, 8000).astype(np.float32)
    comm = connect(key, "")
    await comm.connect()
    for chunk in chunks(wav_bytes(audio, 8000, 2), 3001):  # the header is split across messages
        await comm.send_to(bytes_data=chunk)
    [final] = await messages_until(comm, lambda m: m["type"] == "Results")
    assert final["channel"]["alternatives"][0]["transcript"].startswith("fake ")
    await comm.disconnect()
    [session] = await sessions(user=user)
    assert (session.sample_rate, session.channels) == (8000, 2)
    comm = connect(key, "")
    await comm.connect()
    await comm.send_to(bytes_data=b"\x00\x01" * 800)
    [error, *_, close] = await messages_until(comm, closed)
    assert (
        error["variant"] == "DATA-0000" and close["close"] == 1008 and close["reason"].startswith("DATA-0000")
    )


def test_wav_headers_are_read_from_their_chunks():
    data = wav_bytes(np.zeros(100, np.float32), 22050, 1)
    header = read_wav_header(data)
    assert (header.sample_rate, header.channels, header.data_offset) == (22050, 1, 44)
    assert read_wav_header(data[:30]) is None
    float_fmt = data[:20] + struct.pack("<HHIIHH", 3, 1, 22050, 88200, 4, 32) + data[36:]
    with pytest.raises(WavError):
        read_wav_header(float_fmt)


# -- auth ------------------------------------------------------------------------------------------


async def test_a_bad_key_is_refused_with_an_error_and_4001_and_no_session(key, user):
    comm = connect(key + "x")
    await comm.connect()
    [error, close] = await messages_until(comm, closed)
    assert error["type"] == "Error" and error["variant"] == "invalid_key" and close["close"] == 4001
    assert await sessions(user=user) == []


async def test_a_raw_key_as_a_subprotocol_is_refused(key, user):
    from channels.testing import WebsocketCommunicator

    from sttproject.asgi import application

    comm = WebsocketCommunicator(application, f"/v1/listen?{RAW}", subprotocols=["token", key])
    connected, _ = await comm.connect()
    if connected:
        seen = await messages_until(comm, closed)
        assert seen[-1]["close"] == 4001
    assert await sessions(user=user) == []


async def test_a_key_without_the_stream_scope_is_refused_4003(user):
    _, secret = await database_sync_to_async(api_key_create)(owner=user, scopes=["history:write"])
    comm = connect(secret)
    await comm.connect()
    [error, close] = await messages_until(comm, closed)
    assert error["variant"] == "missing_scope" and close["close"] == 4003


# -- pre-recorded ----------------------------------------------------------------------------------


def post(client, key: str | None, body: bytes, query: str = "", content_type: str = "audio/wav"):
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
    return client.post(f"/v1/listen?{query}", data=body, content_type=content_type, **headers)


def assert_deepgram_error(response, status: int, err_code: str, fragment: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert set(body) == {"err_code", "err_msg", "request_id"} and body["err_code"] == err_code
    assert fragment in body["err_msg"] and response["dg-request-id"] == body["request_id"]
    return body


def test_prerecorded_refuses_missing_and_bad_keys_and_keys_that_cannot_store(client, user, key):
    assert_deepgram_error(post(client, None, b"RIFF"), 401, "INVALID_AUTH", "Invalid credentials")
    assert_deepgram_error(post(client, key + "x", b"RIFF"), 401, "INVALID_AUTH", "Invalid credentials")
    _, stream_only = api_key_create(owner=user, scopes=["stream"])
    assert_deepgram_error(
        post(client, stream_only, b"RIFF"), 403, "INSUFFICIENT_PERMISSIONS", "history:write"
    )


def test_prerecorded_refuses_a_url_body_since_no_remote_urls_are_fetched(client, key, user):
    body = json.dumps({"url": "https://example.com/a.wav"}).encode()
    assert_deepgram_error(post(client, key, body, content_type="application/json"), 400, "Bad Request", "URL")
    bad = post(client, key, b"{not json", content_type="application/json")
    assert_deepgram_error(bad, 400, "Bad Request", "could not process the JSON payload")
    assert not TranscriptionSession.objects.filter(user=user).exists()


def test_prerecorded_refuses_bad_parameters_bodies_that_are_not_audio_and_other_methods(client, key):
    assert_deepgram_error(post(client, key, b"RIFF", "model=nova-9"), 400, "Bad Request", "No such model")
    assert_deepgram_error(post(client, key, b"RIFF", "summarize=true"), 400, "Bad Request", "summarize")
    noise = post(client, key, b"this is no audio at all" * 100, "model=nova-3")
    assert_deepgram_error(noise, 400, "Bad Request", "corrupt or unsupported data")
    assert_deepgram_error(post(client, key, b""), 400, "Bad Request", "empty")
    get = client.get("/v1/listen", HTTP_AUTHORIZATION=f"Token {key}")
    assert_deepgram_error(get, 405, "METHOD_NOT_ALLOWED", "POST")


def test_prerecorded_response_has_deepgrams_shape_with_utterances_and_speakers():
    p = params("punctuate=true&utterances=true&diarize=true")
    segments = [
        {
            "text": " Hello there.",
            "start_s": 0.5,
            "end_s": 1.5,
            "confidence": 0.8,
            "speaker": "speaker_1",
            "words": [
                {"word": " Hello", "start": 0.6, "end": 0.9, "probability": 0.9},
                {"word": " there.", "start": 0.9, "end": 1.4, "probability": 0.7},
            ],
        },
        {
            "text": "Bye!",
            "start_s": 2.0,
            "end_s": 2.6,
            "confidence": 0.6,
            "speaker": "speaker_2",
            "words": [],
        },
    ]
    body = wire.prerecorded_response(
        request_id="r-1", sha256="ab", created="2024-01-01T00:00:00Z", duration_s=3.0, channels=1,
        model="tiny.en", segments=segments, params=p,
    )  # fmt: skip
    meta = body["metadata"]
    assert (
        meta["request_id"] == "r-1" and meta["duration"] == 3.0 and meta["models"] == list(meta["model_info"])
    )
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"] == "Hello there. Bye!" and alternative["confidence"] == pytest.approx(
        0.7
    )
    assert alternative["words"][1] == {
        "word": "there", "start": 0.9, "end": 1.4, "confidence": 0.7,
        "punctuated_word": "there.", "speaker": 0,
    }  # fmt: skip
    first, second = body["results"]["utterances"]
    assert (first["start"], first["end"], first["speaker"], first["transcript"]) == (
        0.5,
        1.5,
        0,
        "Hello there.",
    )
    assert second["speaker"] == 1 and second["words"] == [] and first["id"] != second["id"]
