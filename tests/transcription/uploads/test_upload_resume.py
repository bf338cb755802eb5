"""Uploads survive a stopped server: the next runner takes them up, resuming where they stopped."""

from __future__ import annotations

import asyncio
import subprocess

import numpy as np
import pytest

from tests.transcription.api.conftest import signed_in
from tests.transcription.uploads.audio_files import encode
from tests.transcription.uploads.test_transcriptions import upload
from tests.transcription.uploads.upload_runner import BackgroundRunner, drain
from transcription import services
from transcription.identity import HOST
from transcription.models import Segment, SessionStatus, TranscriptionSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(settings, upload_dir):
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine"}


def start_runner() -> BackgroundRunner:
    runner = BackgroundRunner()
    asyncio.run_coroutine_threadsafe(runner.runner.taken_up.wait(), runner.loop).result(20)
    drain()
    return runner


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_an_upload_accepted_while_no_runner_ran_is_transcribed_at_the_next_start(fake, alice, corpus):
    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    accepted = upload(signed_in(alice), encode(jfk, 16000, "flac")).json()
    assert TranscriptionSession.objects.get(pk=accepted["id"]).status == SessionStatus.PENDING
    runner = start_runner()
    try:
        session = TranscriptionSession.objects.get(pk=accepted["id"])
        assert session.status == SessionStatus.COMPLETED, session.error
        assert session.transcript.text.startswith("fake 11.")
    finally:
        runner.stop()


def left_by_a_dead_server(session_id) -> TranscriptionSession:
    """An upload as a server that died transcribing it leaves it: active, runner gone, one chunk stored."""
    TranscriptionSession.objects.filter(pk=session_id).update(
        status=SessionStatus.ACTIVE,
        client_info={"upload": {"runner": f"{HOST}:{dead_pid()}", "progress": 0.2}},
    )
    session = TranscriptionSession.objects.get(pk=session_id)
    services.segment_finalize(
        session=session, index=0, segment_id="kept-0", start_s=0.0, end_s=20.0, text="stored before the crash"
    )
    return session


def test_a_job_cut_short_by_a_dead_server_resumes_after_its_stored_chunks(fake, alice, corpus):
    long = corpus.read_mono_float(corpus.manifest()[corpus.LONG_FILE].path)
    audio = np.concatenate([long, long])
    accepted = upload(signed_in(alice), encode(audio, 16000, "flac")).json()
    session = left_by_a_dead_server(accepted["id"])
    runner = start_runner()
    try:
        session.refresh_from_db()
        assert session.status == SessionStatus.COMPLETED, session.error
        segments = list(Segment.objects.filter(session=session).order_by("index"))
        assert segments[0].text == "stored before the crash" and len(segments) >= 3
        assert [s.index for s in segments] == list(range(len(segments)))
        assert all(s.text.startswith("fake ") for s in segments[1:])
    finally:
        runner.stop()


def test_a_resumed_job_primes_its_chunks_with_the_key_terms_accepted_at_upload(
    settings, upload_dir, alice, corpus
):
    from vocabularies.models import Vocabulary

    def heard_with(audio, options) -> str:
        return "terms: " + (" | ".join(options.keyterms) or "none")

    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine",
                              "ENGINE_OPTIONS": {"text_fn": heard_with}}  # fmt: skip
    Vocabulary.objects.create(owner=alice, name="talk", terms=["Kubernetes"])
    long = corpus.read_mono_float(corpus.manifest()[corpus.LONG_FILE].path)
    response = upload(signed_in(alice), encode(np.concatenate([long, long]), 16000, "flac"),
                      vocabulary="talk", keyterms=["Istio"])  # fmt: skip
    accepted = response.json()
    assert accepted["keyterms"] == ["Kubernetes", "Istio"], accepted
    # The vocabulary changes after the upload was accepted: the upload keeps the terms it was accepted with.
    Vocabulary.objects.filter(owner=alice, name="talk").update(terms=["changed"])
    session = left_by_a_dead_server(accepted["id"])
    runner = start_runner()
    try:
        session.refresh_from_db()
        assert session.status == SessionStatus.COMPLETED, session.error
        segments = list(Segment.objects.filter(session=session).order_by("index"))
        assert segments[0].text == "stored before the crash" and len(segments) >= 3
        assert {s.text for s in segments[1:]} == {"terms: Kubernetes | Istio"}
    finally:
        runner.stop()


def test_a_pending_upload_whose_file_is_on_another_host_is_left_to_that_host(fake, alice, corpus):
    from transcription.uploads.services import upload_audio_files

    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    accepted = upload(signed_in(alice), encode(jfk, 16000, "flac")).json()
    for path in upload_audio_files(session_id=accepted["id"]):
        path.unlink()  # as on a web process that does not share STT_UPLOAD_DIR
    runner = start_runner()
    try:
        session = TranscriptionSession.objects.get(pk=accepted["id"])
        assert session.status == SessionStatus.PENDING and not session.error
    finally:
        runner.stop()


def test_two_runners_taking_up_the_same_upload_transcribe_it_once(fake, alice, corpus):
    from transcription.streaming.service import get_service, shutdown_service
    from transcription.uploads.jobs import _run

    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    accepted = upload(signed_in(alice), encode(jfk, 16000, "flac")).json()

    async def race() -> None:
        try:
            await asyncio.gather(_run(accepted["id"], get_service), _run(accepted["id"], get_service))
        finally:
            await shutdown_service()

    asyncio.run(race())
    session = TranscriptionSession.objects.get(pk=accepted["id"])
    assert session.status == SessionStatus.COMPLETED, session.error  # the loser touched neither file nor row
    assert Segment.objects.filter(session=session).count() == 1


def test_a_job_the_shutdown_grace_cuts_short_is_left_for_the_next_start(settings, upload_dir, alice, corpus):
    from transcription.streaming import registry
    from transcription.uploads.jobs import upload_jobs_finish
    from transcription.uploads.services import upload_audio_files

    fake = {"ENGINE": "speech.inference.fake.FakeEngine", "ENGINE_OPTIONS": {"delay_ms": 2000}}
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, **fake}
    runner = start_runner()
    long = corpus.read_mono_float(corpus.manifest()[corpus.LONG_FILE].path)
    accepted = upload(signed_in(alice), encode(long, 16000, "flac")).json()
    try:
        registry.set_draining()
        finished = asyncio.run_coroutine_threadsafe(upload_jobs_finish(0.5), runner.loop).result(30)
        assert finished == 1
    finally:
        registry._state["draining"] = False
        runner.stop()
    session = TranscriptionSession.objects.get(pk=accepted["id"])
    assert session.status == SessionStatus.ACTIVE and not session.error  # not failed, not refunded
    assert upload_audio_files(session_id=accepted["id"])  # its audio stays for the resume
