"""POST /v1/audio/transcriptions and GET /v1/models: formats, options and OpenAI's error envelope.

The view is async and waits for the upload job on its own loop, so these tests are async: the upload
runner is started on the test's loop (as Daphne starts it on the server's) with the fake engine, and
Django's AsyncClient calls the view on that same loop.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import srt
import webvtt
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.test import AsyncClient

from accounts.selectors import usage_for_month
from accounts.services import api_key_create, quota_set, usage_add
from tests.transcription.api.conftest import upload_dir  # noqa: F401 (fixture)
from tests.transcription.uploads.audio_files import ODD_WAVS, encode
from transcription.models import Endpoint, SessionStatus, TranscriptionSession
from transcription.ops import shutdown
from transcription.streaming.service import shutdown_service
from transcription.uploads.jobs import upload_jobs_finish, upload_runner_start

URL = "/v1/audio/transcriptions"
SILENCE = np.zeros(16000, np.float32)


@pytest.fixture
def jfk_wav(corpus) -> bytes:
    return encode(corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), 16000, "wav")


@pytest.fixture
async def runner(transactional_db, settings, upload_dir):  # noqa: F811
    """Fake-engine upload jobs on this test's loop; they end before the database is flushed."""
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine"}
    started = upload_runner_start()
    yield started
    await upload_jobs_finish(5)
    await shutdown_service()


def key_for(user, scopes=("history:write",)) -> str:
    return api_key_create(owner=user, scopes=list(scopes))[1]


@pytest.fixture
def key(alice, transactional_db) -> str:
    return key_for(alice)


def named(data: bytes, name: str = "speech.wav") -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


async def call(method: str, path: str, key: str | None = None, *, client=None, headers=None, **kwargs):
    """One request in a thread-sensitive context of its own, as Django's ASGI handler runs each one
    (else the view's sync middleware would hold the thread the upload job's database calls need)."""
    headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    async with ThreadSensitiveContext():
        return await getattr(client or AsyncClient(), method)(path, headers=headers, **kwargs)


async def transcribe(key: str | None, data: bytes | None, *, client=None, headers=None, **fields):
    body = {"model": "whisper-1", **fields}
    if data is not None:
        body["file"] = named(data)
    return await call("post", URL, key, client=client, headers=headers, data=body)


def assert_error(response, status: int, *, code, param=None, type="invalid_request_error") -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    error = body["error"]
    assert error["type"] == type and error["code"] == code and error["param"] == param, error
    assert error["message"]
    return error


async def only_session() -> TranscriptionSession:
    return await TranscriptionSession.objects.select_related("transcript").aget()


async def nothing_stored(upload_dir) -> bool:  # noqa: F811
    return not await TranscriptionSession.objects.aexists() and (
        not upload_dir.exists() or not any(upload_dir.iterdir())
    )


# -- formats -------------------------------------------------------------------------------------


async def test_json_answers_the_text_and_duration_usage_and_stores_the_session(runner, key, alice, jfk_wav):
    response = await transcribe(key, jfk_wav, temperature="0.2")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    session = await only_session()
    assert body == {"text": session.transcript.text, "usage": {"type": "duration", "seconds": 11}}
    assert body["text"].startswith("fake 11.")
    assert session.endpoint == Endpoint.OPENAI_TRANSCRIPTIONS and session.status == SessionStatus.COMPLETED
    assert session.user_id == alice.pk and session.api_key_id is not None
    assert session.options.get("word_timestamps") is False and session.language == "en"


async def test_text_is_the_transcript_as_plain_text(runner, key, jfk_wav):
    response = await transcribe(key, jfk_wav, response_format="text")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    session = await only_session()
    assert response.content.decode() == session.transcript.text + "\n"


async def test_srt_parses_back_into_the_stored_segments(runner, key, jfk_wav):
    response = await transcribe(key, jfk_wav, response_format="srt")
    assert response.status_code == 200, response.content
    cues = list(srt.parse(response.content.decode()))
    session = await only_session()
    segments = [s async for s in session.segments.order_by("index")]
    assert [c.content for c in cues] == [s.text for s in segments] and len(cues) == 1
    assert cues[0].start.total_seconds() == pytest.approx(segments[0].start_s, abs=0.001)
    assert cues[0].end.total_seconds() == pytest.approx(segments[0].end_s, abs=0.001)


async def test_vtt_parses_back_into_the_stored_segments(runner, key, jfk_wav):
    response = await transcribe(key, jfk_wav, response_format="vtt")
    assert response.status_code == 200, response.content
    text = response.content.decode()
    assert text.startswith("WEBVTT")
    captions = webvtt.from_string(text).captions
    session = await only_session()
    segments = [s async for s in session.segments.order_by("index")]
    assert [c.text for c in captions] == [s.text for s in segments] and len(captions) == 1
    assert captions[0].start_in_seconds == pytest.approx(segments[0].start_s, abs=0.001)
    assert captions[0].end_in_seconds == pytest.approx(segments[0].end_s, abs=0.001)


async def test_verbose_json_has_openai_segment_fields_and_words_when_asked(runner, key, jfk_wav):
    response = await transcribe(
        key, jfk_wav, response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    session = await only_session()
    assert session.options["word_timestamps"] is True
    assert body["task"] == "transcribe" and body["language"] == "english"
    assert body["duration"] == pytest.approx(11.0, abs=0.1) and body["text"] == session.transcript.text
    assert body["usage"] == {"type": "duration", "seconds": 11}
    (segment,) = body["segments"]
    assert set(segment) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
        "compression_ratio", "no_speech_prob",
    }  # fmt: skip
    assert (
        segment["id"] == 0 and segment["text"].strip() == body["text"] and segment["end"] > segment["start"]
    )
    assert segment["seek"] == round(segment["start"] * 100) and segment["temperature"] == 0.0
    assert segment["avg_logprob"] <= 0.0 and segment["compression_ratio"] > 0
    words = body["words"]
    assert [w["word"] for w in words] == body["text"].split()
    assert all(set(w) == {"word", "start", "end"} and w["end"] >= w["start"] >= 0 for w in words)


async def test_verbose_json_without_granularities_has_segments_and_no_words(runner, key, jfk_wav):
    body = (await transcribe(key, jfk_wav, response_format="verbose_json")).json()
    assert len(body["segments"]) == 1 and "words" not in body
    assert (await only_session()).options["word_timestamps"] is False


async def test_word_granularity_alone_gives_words_without_segments(runner, key, jfk_wav):
    body = (
        await transcribe(
            key, jfk_wav, response_format="verbose_json", **{"timestamp_granularities[]": "word"}
        )
    ).json()
    assert "segments" not in body and [w["word"] for w in body["words"]] == body["text"].split()


async def test_words_are_only_computed_for_verbose_json(runner, key, jfk_wav):
    response = await transcribe(key, jfk_wav, **{"timestamp_granularities[]": "word"})
    assert response.status_code == 200 and set(response.json()) == {"text", "usage"}
    assert (await only_session()).options["word_timestamps"] is False


async def test_the_prompt_is_whispers_initial_prompt(runner, key, jfk_wav):
    response = await transcribe(key, jfk_wav, prompt="  President Kennedy.  ")
    assert response.status_code == 200, response.content
    assert (await only_session()).options["prompt"] == "President Kennedy."


async def test_keywords_become_key_terms(runner, key, jfk_wav):
    response = await transcribe(
        key, jfk_wav, model="gpt-transcribe", **{"keywords[]": ["Kennedy", "Americans"]}
    )
    assert response.status_code == 200, response.content
    assert (await only_session()).options["keyterms"] == ["Kennedy", "Americans"]


async def test_stream_true_answers_openais_server_sent_events(runner, key, jfk_wav):
    response = await transcribe(key, jfk_wav, model="gpt-4o-transcribe", stream="true")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    events = [
        json.loads(line[6:]) for line in response.content.decode().split("\n\n") if line.startswith("data: ")
    ]
    session = await only_session()
    assert [e["type"] for e in events] == ["transcript.text.delta", "transcript.text.done"]
    assert events[0]["delta"] == session.transcript.text == events[1]["text"]


@pytest.mark.parametrize("model", ["gpt-4o-mini-transcribe", "bundled:tiny.en", "tiny.en"])
async def test_openai_names_and_our_model_labels_are_accepted(runner, key, jfk_wav, model):
    response = await transcribe(key, jfk_wav, model=model)
    assert response.status_code == 200, response.content


# -- errors --------------------------------------------------------------------------------------


async def test_an_unknown_model_is_model_not_found(runner, key, jfk_wav, upload_dir):  # noqa: F811
    error = assert_error(
        await transcribe(key, jfk_wav, model="whisper-9"), 404, code="model_not_found", param="model"
    )
    assert "whisper-9" in error["message"] and await nothing_stored(upload_dir)


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("fr", "unsupported_language"),
        ("english", "invalid_language_format"),
        ("en-US", "invalid_language_format"),
    ],
)
async def test_a_language_the_model_cannot_produce_is_refused(
    runner,
    key,
    jfk_wav,
    upload_dir,  # noqa: F811
    language,
    code,
):
    response = await transcribe(key, jfk_wav, language=language)
    assert_error(response, 400, code=code, param="language")
    assert await nothing_stored(upload_dir)


async def test_english_is_accepted_as_the_language(runner, key, jfk_wav):
    assert (await transcribe(key, jfk_wav, language="EN")).status_code == 200
    assert (await only_session()).options["language"] == "en"


async def test_missing_file_and_missing_model_name_the_parameter(runner, key, jfk_wav):
    assert_error(await transcribe(key, None), 400, code="missing_required_parameter", param="file")
    assert_error(
        await transcribe(key, jfk_wav, model=""), 400, code="missing_required_parameter", param="model"
    )


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "1.5"}, "temperature"),
        ({"temperature": "warm"}, "temperature"),
        ({"response_format": "xml"}, "response_format"),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"timestamp_granularities[]": "sentence"}, "timestamp_granularities"),
        ({"stream": "true", "response_format": "srt"}, "stream"),
        ({"include[]": "logprobs"}, "include"),
    ],
)
async def test_bad_options_are_400_naming_the_field(runner, key, jfk_wav, upload_dir, fields, param):  # noqa: F811
    response = await transcribe(key, jfk_wav, **fields)
    assert response.status_code == 400 and response.json()["error"]["param"] == param, response.content
    assert await nothing_stored(upload_dir)


async def test_a_missing_or_bad_key_is_invalid_api_key(runner, jfk_wav, upload_dir):  # noqa: F811
    assert_error(await transcribe(None, jfk_wav), 401, code="invalid_api_key")
    error = assert_error(await transcribe("stt_nope_x", jfk_wav), 401, code="invalid_api_key")
    assert error["message"].startswith("Incorrect API key provided")
    assert await nothing_stored(upload_dir)


async def test_a_key_without_history_write_lacks_the_permission(runner, alice, jfk_wav, upload_dir):  # noqa: F811
    key = await sync_to_async(key_for)(alice, ["stream", "history:read"])
    error = assert_error(await transcribe(key, jfk_wav), 401, code="insufficient_permissions")
    assert "history:write" in error["message"] and await nothing_stored(upload_dir)


async def test_a_file_that_is_not_audio_is_invalid_file_format(runner, key, upload_dir):  # noqa: F811
    response = await transcribe(key, b"this is not audio at all" * 100)
    assert_error(response, 400, code="invalid_file_format", param="file")
    assert await nothing_stored(upload_dir)


@pytest.mark.parametrize("name", list(ODD_WAVS))
async def test_channels_and_sample_rates_out_of_bounds_are_400_and_bill_nothing(
    runner,
    alice,
    key,
    upload_dir,  # noqa: F811
    name,
):
    error = assert_error(await transcribe(key, ODD_WAVS[name]), 400, code="unsupported_audio", param="file")
    assert "channel" in error["message"] or "sample rate" in error["message"]
    assert await nothing_stored(upload_dir)
    assert (await sync_to_async(usage_for_month)(user=alice)).audio_seconds_uploaded == 0


async def test_a_file_past_the_quota_limit_is_413_and_nothing_is_kept(
    runner,
    alice,
    key,
    jfk_wav,
    upload_dir,  # noqa: F811
):
    await sync_to_async(quota_set)(user=alice, max_upload_bytes=100_000)
    # Past the limit by less than the multipart slack: the upload guard stops reading it.
    assert len(jfk_wav) > 100_000 + 64 * 1024
    near = jfk_wav[:150_000]
    assert_error(await transcribe(key, near), 413, code="file_too_large", param="file")
    # Declared far past it: refused on Content-Length, before the form is read.
    assert_error(await transcribe(key, jfk_wav), 413, code="file_too_large", param="file")
    assert await nothing_stored(upload_dir)


async def test_a_used_up_quota_is_429_insufficient_quota(runner, alice, key, jfk_wav, upload_dir):  # noqa: F811
    await sync_to_async(quota_set)(user=alice, monthly_audio_seconds=60)
    await sync_to_async(usage_add)(user=alice, streamed_seconds=60)
    assert_error(await transcribe(key, jfk_wav), 429, code="insufficient_quota", type="insufficient_quota")
    assert await nothing_stored(upload_dir)


async def test_a_stopping_server_is_503_with_retry_after(runner, key, jfk_wav, monkeypatch):
    monkeypatch.setitem(shutdown._state, "draining", True)
    response = await transcribe(key, jfk_wav)
    assert_error(response, 503, code="server_shutting_down", type="server_error")
    assert int(response["Retry-After"]) > 0


async def test_where_no_job_can_run_a_valid_file_is_503_and_nothing_is_stored_or_billed(
    key,
    alice,
    jfk_wav,
    upload_dir,  # noqa: F811
    settings,
):
    # No upload runner on this loop (not the server): the SDK would retry, so nothing may be kept.
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine"}
    response = await transcribe(key, jfk_wav)
    assert_error(response, 503, code="service_unavailable", type="server_error")
    assert await nothing_stored(upload_dir)
    assert (await sync_to_async(usage_for_month)(user=alice)).audio_seconds_uploaded == 0


async def test_a_failed_job_is_a_500_server_error(runner, key, alice, jfk_wav, settings):
    settings.STT_INFERENCE = {
        **settings.STT_INFERENCE,
        "ENGINE_OPTIONS": {"fail_fn": lambda audio, opts: True},
    }
    error = assert_error(await transcribe(key, jfk_wav), 500, code="server_error", type="server_error")
    session = await only_session()
    assert session.status == SessionStatus.FAILED and "engine_error" in error["message"]
    assert (await sync_to_async(usage_for_month)(user=alice)).audio_seconds_uploaded == 0


async def test_a_file_without_speech_is_an_empty_transcript(runner, key):
    response = await transcribe(key, encode(SILENCE, 16000, "wav"), response_format="verbose_json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"] == "" and body["segments"] == []


async def test_other_methods_get_the_envelope(runner, key):
    response = await call("get", URL, key)
    assert_error(response, 405, code=None)


# -- browser sessions ----------------------------------------------------------------------------


async def test_a_signed_in_browser_may_post_with_its_csrf_token(runner, alice, jfk_wav):
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(alice)
    assert_error(await transcribe(None, jfk_wav, client=client), 403, code="csrf_failed")
    page = await call("get", "/", client=client)  # any page sets the CSRF cookie
    token = client.cookies.get("csrftoken")
    assert page.status_code in (200, 302) and token is not None
    response = await transcribe(None, jfk_wav, client=client, headers={"X-CSRFToken": token.value})
    assert response.status_code == 200, response.content
    session = await only_session()
    assert session.user_id == alice.pk and session.api_key_id is None


# -- models --------------------------------------------------------------------------------------


async def test_models_lists_the_accepted_names_for_any_key(runner, alice):
    key = await sync_to_async(key_for)(alice, ["stream"])
    response = await call("get", "/v1/models", key)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "tiny.en"} <= set(ids)
    assert all(
        set(m) == {"id", "object", "created", "owned_by"} and m["object"] == "model" for m in body["data"]
    )
    one = await call("get", "/v1/models/whisper-1", key)
    assert one.status_code == 200 and one.json()["id"] == "whisper-1"
    missing = await call("get", "/v1/models/davinci", key)
    assert_error(missing, 404, code="model_not_found", param="model")
    assert_error(await call("get", "/v1/models"), 401, code="invalid_api_key")
