"""POST /api/v1/transcriptions/: validation, background transcription (fake engine), status, cleanup."""

from __future__ import annotations

import io
import itertools
import struct
import threading
import time

import numpy as np
import pytest
from django.core.files import uploadhandler
from rest_framework.test import APIClient

from accounts.selectors import usage_for_month
from accounts.services import quota_set, usage_add
from tests.transcription.api.conftest import signed_in, with_key
from tests.transcription.uploads.audio_files import FORMATS, ODD_WAVS, encode, pcm_wav
from tests.transcription.uploads.upload_runner import drain
from transcription.models import Endpoint, TranscriptionSession
from transcription.ops import shutdown
from transcription.uploads import accept
from transcription.uploads import api as transcriptions
from transcription.uploads.jobs import upload_runner

pytestmark = pytest.mark.usefixtures("fake_engine")

TONE = (0.3 * np.sin(np.arange(3 * 16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)


def named(data: bytes, name: str) -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def upload(client, data: bytes, name: str = "recording.flac", **fields):
    return client.post("/api/v1/transcriptions/", {"file": named(data, name), **fields}, format="multipart")


def wait_done(client, url: str, timeout_s: float = 30.0) -> dict:
    """The transcription once its background job has ended.

    Waits on the job rather than polling: the in-memory SQLite test database is shared between
    threads with table locks, so reading while the job writes could fail (a file database, as in
    production, waits instead).
    """
    drain(timeout_s=timeout_s)
    return client.get(url).json()


def assert_nothing_stored(upload_dir, user) -> None:
    assert not TranscriptionSession.objects.exists()
    assert not upload_dir.exists() or not any(upload_dir.iterdir())
    assert usage_for_month(user=user).audio_seconds_uploaded == 0


@pytest.fixture
def jfk(corpus):
    return corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_upload_is_accepted_then_transcribed_in_the_background(alice, jfk, upload_dir, fmt):
    client = with_key(alice, ["history:read", "history:write"])
    response = upload(client, encode(jfk, 16000, fmt), f"jfk.{fmt}")
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert response["Location"] == accepted["url"] and accepted["url"].endswith(
        f"/transcriptions/{accepted['id']}/"
    )
    assert accepted["status"] == "pending" and accepted["progress"] == 0 and accepted["transcript"] is None
    done = wait_done(client, accepted["url"])
    assert done["status"] == "completed" and done["progress"] == 1.0, done
    assert done["transcript"].startswith("fake 11.") and done["duration_s"] == pytest.approx(11.0, abs=0.1)
    assert len(done["segments"]) == 1 and done["segments"][0]["end_s"] <= 11.1
    session = TranscriptionSession.objects.get(pk=accepted["id"])
    assert session.endpoint == Endpoint.UPLOAD and session.api_key is not None and session.language == "en"
    assert usage_for_month(user=alice).audio_seconds_uploaded == pytest.approx(11.0, abs=0.1)
    assert not any(upload_dir.iterdir())  # the original is not kept by default
    detail = client.get(done["session_url"]).json()
    assert detail["upload"]["filename"] == f"jfk.{fmt}" and detail["transcript"] == done["transcript"]


def test_long_recording_is_cut_at_pauses_into_chunks_of_at_most_30_s(alice, corpus):
    long = corpus.read_mono_float(corpus.manifest()[corpus.LONG_FILE].path)
    audio = np.concatenate([long, np.zeros(16000 * 20, np.float32), long[: 16000 * 6]])
    client = signed_in(alice)
    accepted = upload(client, encode(audio, 16000, "flac"), word_timestamps="true").json()
    done = wait_done(client, accepted["url"])
    assert done["status"] == "completed", done
    segments = done["segments"]
    assert len(segments) >= 4
    assert all(0 < s["end_s"] - s["start_s"] <= 30.0 for s in segments)
    assert all(a["end_s"] <= b["start_s"] for a, b in itertools.pairwise(segments))
    # The 20 s of silence is skipped, not transcribed.
    assert not any(s["start_s"] < 80 < s["end_s"] for s in segments)
    assert segments[-1]["end_s"] == pytest.approx(len(audio) / 16000, abs=0.5)
    # Word times are offsets in the whole recording.
    assert all(w["start"] >= s["start_s"] for s in segments for w in s["words"]) and segments[2]["words"]


def test_recording_without_speech_completes_with_an_empty_transcript(alice):
    client = signed_in(alice)
    accepted = upload(client, encode(TONE, 16000, "wav"), "tone.wav").json()
    done = wait_done(client, accepted["url"])
    assert done["status"] == "completed" and done["transcript"] == "" and done["segments"] == []


def test_kept_audio_stays_until_the_session_is_deleted(alice, jfk, settings, upload_dir):
    settings.STT_UPLOAD = {**settings.STT_UPLOAD, "KEEP_AUDIO": True}
    client = signed_in(alice)
    accepted = upload(client, encode(jfk, 16000, "ogg"), "note.ogg").json()
    assert wait_done(client, accepted["url"])["status"] == "completed"
    assert [p.name for p in upload_dir.iterdir()] == [f"{accepted['id']}.ogg"]
    assert client.delete(f"/api/v1/sessions/{accepted['id']}/").status_code == 204
    assert not any(upload_dir.iterdir())


def test_engine_failure_marks_the_upload_failed_and_gives_the_seconds_back(alice, jfk, settings):
    settings.STT_INFERENCE = {
        **settings.STT_INFERENCE,
        "ENGINE_OPTIONS": {"fail_fn": lambda audio, opts: True},
    }
    client = signed_in(alice)
    accepted = upload(client, encode(jfk, 16000, "wav"), "jfk.wav").json()
    done = wait_done(client, accepted["url"])
    assert (
        done["status"] == "failed" and done["error"].startswith("engine_error") and done["transcript"] is None
    )
    assert usage_for_month(user=alice).audio_seconds_uploaded == 0
    assert TranscriptionSession.objects.get(pk=accepted["id"]).end_reason == "transcription_failed"


def test_deleting_an_upload_while_it_is_transcribed_stops_the_job(alice, corpus, settings, upload_dir):
    in_engine, release = threading.Event(), threading.Event()

    def held_text(audio, options) -> str:
        in_engine.set()
        release.wait(20)
        return "never stored"

    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE_OPTIONS": {"text_fn": held_text}}
    long = corpus.read_mono_float(corpus.manifest()[corpus.LONG_FILE].path)
    client = signed_in(alice)
    try:
        accepted = upload(client, encode(long, 16000, "flac")).json()
        assert in_engine.wait(20)
        assert upload_runner().running() == [accepted["id"]]
        assert client.delete(f"/api/v1/sessions/{accepted['id']}/").status_code == 204
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while upload_runner().running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upload_runner().running() == []
    assert not TranscriptionSession.objects.exists() and not any(upload_dir.iterdir())


def test_a_streamed_session_is_not_a_transcription(alice, make_session):
    streamed = make_session(alice, ["hello"])
    assert signed_in(alice).get(f"/api/v1/transcriptions/{streamed.pk}/").status_code == 404


# -- bad input: each answers 400 or 413 with a code, and nothing is stored ------------------------


def _wav_header_only() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + b"\0" * 4
    )


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"", "empty.wav", "empty_file"),
        (b"hello, this is not audio at all\n" * 50, "notes.mp3", "not_audio"),
        (b"RIFF\x00\x10\x00\x00WAVEjunkjunkjunk" + bytes(range(256)) * 8, "broken.wav", "not_audio"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 500, "picture.wav", "not_audio"),
        (_wav_header_only(), "silent.wav", "empty_audio"),
    ],
)
def test_bad_files_answer_400_and_store_nothing(alice, upload_dir, data, name, code):
    response = upload(signed_in(alice), data, name)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code and "file" in body["fields"] and body["detail"].startswith("file: ")
    assert_nothing_stored(upload_dir, alice)


@pytest.mark.parametrize("name", list(ODD_WAVS))
def test_channels_and_sample_rates_out_of_bounds_answer_400_and_bill_nothing(alice, upload_dir, name):
    response = upload(signed_in(alice), ODD_WAVS[name], f"{name}.wav")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "unsupported_audio" and "file" in body["fields"], body
    assert_nothing_stored(upload_dir, alice)


def test_the_channel_and_sample_rate_bounds_are_settings(alice, upload_dir, settings):
    settings.STT_UPLOAD = {**settings.STT_UPLOAD, "MAX_CHANNELS": 1, "MIN_SAMPLE_RATE": 16000}
    client = signed_in(alice)
    stereo = upload(client, pcm_wav(2, 16000, 16000), "stereo.wav")
    assert stereo.status_code == 400 and "at most 1 channel" in stereo.json()["detail"]
    phone = upload(client, pcm_wav(1, 8000, 8000), "phone.wav")
    assert phone.status_code == 400 and "16000" in phone.json()["detail"]
    assert_nothing_stored(upload_dir, alice)
    assert upload(client, pcm_wav(1, 16000, 16000), "mono.wav").status_code == 202


def test_a_missing_file_or_a_bad_language_answers_400(alice, upload_dir):
    client = signed_in(alice)
    missing = client.post("/api/v1/transcriptions/", {"language": "en"}, format="multipart")
    assert missing.status_code == 400 and missing.json()["code"] == "required"
    wav = encode(TONE, 16000, "wav")
    french = upload(client, wav, language="fr")
    assert french.status_code == 400 and french.json()["code"] == "unsupported_language"
    odd = upload(client, wav, language="e n!")
    assert odd.status_code == 400 and odd.json()["fields"]["language"]
    assert_nothing_stored(upload_dir, alice)


def test_a_multilingual_model_takes_whisper_languages_only(alice, upload_dir, settings, monkeypatch):
    monkeypatch.setattr("transcription.streaming.service._service", None)
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "MODEL": "small"}
    client = signed_in(alice)
    unknown = upload(client, encode(TONE, 16000, "wav"), language="xx")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unsupported_language"
    assert_nothing_stored(upload_dir, alice)
    assert upload(client, encode(TONE, 16000, "wav"), language="de-AT").status_code == 202


def test_json_instead_of_a_file_answers_415(alice, upload_dir):
    response = signed_in(alice).post("/api/v1/transcriptions/", {"file": "abc"}, format="json")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert_nothing_stored(upload_dir, alice)


def test_a_file_over_the_size_quota_answers_413(alice, upload_dir):
    quota_set(user=alice, max_upload_bytes=50_000)
    client = signed_in(alice)
    just_over = encode(TONE, 16000, "wav")  # 96 kB: the form is read, then the file refused
    far_over = encode(np.tile(TONE, 3), 16000, "wav")  # 288 kB: refused from Content-Length alone
    for data in (just_over, far_over):
        response = upload(client, data, "big.wav")
        assert response.status_code == 413 and response.json()["code"] == "file_too_large"
        assert "50000 bytes" in response.json()["detail"]
    assert_nothing_stored(upload_dir, alice)


@pytest.fixture
def stored_bytes(monkeypatch) -> list[int]:
    """Bytes of uploaded files that reached Django's own upload handlers (memory or temporary file)."""
    seen: list[int] = []
    for handler in (uploadhandler.MemoryFileUploadHandler, uploadhandler.TemporaryFileUploadHandler):
        original = handler.receive_data_chunk

        def counting(self, raw_data, start, original=original):
            seen.append(len(raw_data))
            return original(self, raw_data, start)

        monkeypatch.setattr(handler, "receive_data_chunk", counting)
    return seen


def _session_with_csrf(user) -> APIClient:
    # The CSRF check of a browser session reads the form while it authenticates, before the view runs.
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies["csrftoken"] = "c" * 32
    client.defaults["HTTP_X_CSRFTOKEN"] = "c" * 32
    return client


@pytest.mark.parametrize(
    "make_client",
    [_session_with_csrf, lambda u: with_key(u, ["history:write"])],
    ids=["browser-session", "api-key"],
)
def test_reading_an_upload_stops_at_the_size_quota_whatever_content_length_says(
    alice, upload_dir, monkeypatch, stored_bytes, make_client
):
    quota_set(user=alice, max_upload_bytes=50_000)
    monkeypatch.setattr(transcriptions, "_MULTIPART_SLACK", 10**9)  # as if Content-Length were absent
    far_over = encode(np.tile(TONE, 3), 16000, "wav")  # 288 kB
    response = upload(make_client(alice), far_over, "big.wav")
    assert response.status_code == 413 and response.json()["code"] == "file_too_large", response.content
    assert "50000 bytes" in response.json()["detail"]
    assert sum(stored_bytes) <= 50_000, "the file was read past the limit"
    assert_nothing_stored(upload_dir, alice)


def test_uploads_are_refused_with_503_while_the_server_shuts_down(alice, upload_dir, monkeypatch):
    monkeypatch.setitem(shutdown._state, "draining", True)
    response = upload(signed_in(alice), encode(TONE, 16000, "wav"))
    assert response.status_code == 503 and response.json()["code"] == "server_shutting_down"
    assert int(response["Retry-After"]) > 0
    assert_nothing_stored(upload_dir, alice)


def test_an_upload_still_being_checked_when_shutdown_starts_is_refused(alice, upload_dir, monkeypatch):
    probe = accept.probe

    def probe_then_drain(source, **options):
        audio = probe(source, **options)
        monkeypatch.setitem(shutdown._state, "draining", True)
        return audio

    monkeypatch.setattr(accept, "probe", probe_then_drain)
    response = upload(signed_in(alice), encode(TONE, 16000, "wav"))
    assert response.status_code == 503 and response.json()["code"] == "server_shutting_down"
    assert_nothing_stored(upload_dir, alice)


def test_a_recording_over_the_session_length_answers_413(alice, upload_dir):
    quota_set(user=alice, max_session_seconds=2)
    response = upload(signed_in(alice), encode(TONE, 16000, "mp3"), "long.mp3")
    assert response.status_code == 413 and response.json()["code"] == "audio_too_long"
    assert "limit is 2 s" in response.json()["detail"]
    assert_nothing_stored(upload_dir, alice)


def test_a_recording_over_the_remaining_monthly_quota_answers_413(alice, upload_dir):
    quota_set(user=alice, monthly_audio_seconds=60)
    usage_add(user=alice, streamed_seconds=58)
    client = signed_in(alice)
    response = upload(client, encode(TONE, 16000, "flac"))
    assert response.status_code == 413 and response.json()["code"] == "quota_exceeded"
    assert "only 2 s" in response.json()["detail"]
    usage_add(user=alice, streamed_seconds=2)
    exhausted = upload(client, encode(TONE, 16000, "flac"))
    assert exhausted.status_code == 413 and exhausted.json()["code"] == "quota_exceeded"
    assert_nothing_stored(upload_dir, alice)
