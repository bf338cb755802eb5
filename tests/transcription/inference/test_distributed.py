"""Distributed inference over a real Redis channel layer with `manage.py inference_worker` processes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter

import numpy as np
import pytest

from transcription.inference.jobs import InferenceRejected, TranscribeOptions, TranscriptionJob
from transcription.inference.remote import ChannelLayerInferenceService
from transcription.inference.service import ServiceLimits

pytestmark = pytest.mark.redis
FAKE = {"STT_ENGINE": "transcription.inference.fake.FakeEngine"}


def client(layer, **kw) -> ChannelLayerInferenceService:
    kw.setdefault("limits", ServiceLimits(max_final_queue_depth_per_session=8, max_global_queue_depth=200))
    return ChannelLayerInferenceService(layer, **kw)


def final_job(session: str, i: int, seconds: float = 0.5) -> TranscriptionJob:
    return TranscriptionJob(
        session, f"{session}-seg{i}", i, "final", np.zeros(int(16000 * seconds), np.float32)
    )


async def transcribe_all(service, jobs):
    return await asyncio.gather(*(service.transcribe(j) for j in jobs))


async def test_two_workers_share_the_load_and_complete_every_job(redis_layer, start_worker):
    env = {**FAKE, "STT_FAKE_ENGINE_DELAY_MS": "50", "STT_MAX_BATCH_SIZE": "2"}
    workers = [start_worker(env=env), start_worker(env=env)]
    for w in workers:
        await asyncio.to_thread(w.wait_ready)
    service = client(redis_layer, job_deadline_s=20)
    await service.start()
    jobs = [final_job(f"s{s}", i) for s in range(4) for i in range(10)]
    results = await transcribe_all(service, jobs)
    await service.stop()
    assert [r.segment_id for r in results] == [j.segment_id for j in jobs]
    assert all(r.text == "fake 0.50s" for r in results)
    by_worker = Counter(r.worker for r in results)
    assert len(by_worker) == 2, by_worker


@pytest.mark.timeout(90)  # intermittently hangs under pytest after the kill (see the report); never 10 min
async def test_when_a_worker_is_killed_mid_run_every_job_completes_on_the_other(redis_layer, start_worker):
    env = {**FAKE, "STT_FAKE_ENGINE_DELAY_MS": "100", "STT_MAX_BATCH_SIZE": "2"}
    victim, survivor = start_worker(env=env), start_worker(env=env)
    for w in (victim, survivor):
        await asyncio.to_thread(w.wait_ready)
    service = client(redis_layer, job_deadline_s=2.0, job_max_attempts=4)
    await service.start()
    jobs = [final_job(f"s{s}", i) for s in range(4) for i in range(8)]
    run = asyncio.create_task(transcribe_all(service, jobs))
    await asyncio.sleep(0.6)  # both workers hold jobs now
    os.kill(victim.proc.pid, signal.SIGKILL)
    results = await asyncio.wait_for(run, 60)
    metrics = service.metrics()
    await service.stop()
    assert len(results) == len(jobs) and all(r.text for r in results)
    assert victim.proc.wait(5) == -signal.SIGKILL
    survivor_name = f"{os.uname().nodename}:{survivor.proc.pid}"
    assert metrics["retried"] >= 1  # the victim's jobs were resent
    assert Counter(r.worker for r in results)[survivor_name] > len(jobs) / 2


@pytest.mark.slow
async def test_a_worker_with_the_real_model_transcribes_speech(redis_layer, start_worker, corpus):
    worker = start_worker("--lanes", "final,realtime", "--batch-size", "4", env={"STT_CPU_THREADS": "2"})
    await asyncio.to_thread(worker.wait_ready, 90)
    service = client(redis_layer, job_deadline_s=60)
    await service.start()
    names = ["jfk.wav", "ljspeech_LJ001-0001.wav", "librispeech_1089-134686-0000.wav"]
    utterances = [corpus.manifest()[n] for n in names]
    jobs = [
        TranscriptionJob(
            f"s{i}", "seg", 0, "final", corpus.read_mono_float(u.path), TranscribeOptions(language="en")
        )
        for i, u in enumerate(utterances)
    ]
    results = await transcribe_all(service, jobs)
    await service.stop()
    assert corpus.wer([u.reference for u in utterances], [r.text for r in results]) <= 0.10
    assert all(r.confidence > 0.5 and r.language == "en" for r in results)


async def test_audio_over_the_message_limit_is_refused(redis_layer):
    service = client(redis_layer, max_message_bytes=16000 * 2 * 10)
    await service.start()
    with pytest.raises(InferenceRejected) as info:
        await service.transcribe(final_job("s", 0, seconds=11))
    await service.stop()
    assert info.value.code == "too_large"
