"""The faster-whisper engine on real speech: batching is transparent, accuracy, long segments, the loop."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from speech.inference.jobs import TranscribeOptions, TranscriptionJob
from speech.inference.service import LocalInferenceService, ServiceLimits

pytestmark = pytest.mark.slow
GREEDY = TranscribeOptions(language="en", beam_size=1)


@pytest.fixture(scope="module")
def dev_audio(corpus):
    utterances = corpus.dev_utterances()
    return utterances, [corpus.read_mono_float(u.path) for u in utterances]


@pytest.fixture(scope="module")
def one_at_a_time(whisper_engine, dev_audio):
    _, audios = dev_audio
    return [whisper_engine.transcribe_batch([(audio, GREEDY)])[0] for audio in audios]


def test_a_greedy_batch_gives_the_same_text_as_one_job_at_a_time(whisper_engine, dev_audio, one_at_a_time):
    _, audios = dev_audio
    batched = whisper_engine.transcribe_batch([(audio, GREEDY) for audio in audios[:8]])
    assert [o.text for o in batched] == [o.text for o in one_at_a_time[:8]]
    assert all(o.text for o in batched)


def test_word_error_rate_on_the_dev_corpus_is_at_most_ten_percent(corpus, dev_audio, one_at_a_time):
    utterances, _ = dev_audio
    score = corpus.wer([u.reference for u in utterances], [o.text for o in one_at_a_time])
    print(f"dev WER {score:.4f} over {len(utterances)} utterances")
    assert score <= 0.10


def test_output_carries_words_confidence_and_language(whisper_engine, corpus):
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    (out,) = whisper_engine.transcribe_batch([(audio, TranscribeOptions(word_timestamps=True))])
    assert "ask not what your country can do for you" in out.text.lower()
    assert out.language == "en" and out.language_probability == 1.0
    assert out.words and all(w.start <= w.end for w in out.words)
    assert [w.word.strip() for w in out.words[:3]] == ["And", "so", "my"]
    assert 0.0 < out.no_speech_prob < 0.6 and out.avg_logprob > -0.5
    assert whisper_engine.supported_languages == ["en"] and not whisper_engine.is_multilingual


def test_silence_and_noise_give_no_text(whisper_engine):
    noise = (np.random.default_rng(3).standard_normal(32000) * 0.02).astype(np.float32)
    outputs = whisper_engine.transcribe_batch([(np.zeros(32000, np.float32), GREEDY), (noise, GREEDY)])
    assert [o.text for o in outputs] == ["", ""]
    assert all(o.suppressed for o in outputs)


def test_a_segment_longer_than_thirty_seconds_is_transcribed_whole(whisper_engine, corpus):
    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    gap = np.zeros(8000, np.float32)
    audio = np.concatenate([jfk, gap, jfk, gap, jfk])  # about 34 s
    (out,) = whisper_engine.transcribe_batch([(audio, GREEDY)])
    assert out.text.lower().count("ask not what your country") == 3


async def test_the_event_loop_keeps_ticking_while_a_lane_transcribes(whisper_engine, dev_audio):
    _, audios = dev_audio
    service = LocalInferenceService(lambda lane: whisper_engine, limits=ServiceLimits(max_batch_size=4))
    await service.start()
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    jobs = [TranscriptionJob(f"s{i}", "seg", 0, "final", audio, GREEDY) for i, audio in enumerate(audios[:6])]
    results = await asyncio.gather(*(service.transcribe(j) for j in jobs))
    stop.set()
    await tick
    await service.stop(close_engines=False)
    assert all(r.text for r in results)
    assert max(r.batch_size for r in results) > 1
    print(f"ticks {len(gaps)}, max gap {max(gaps) * 1000:.1f} ms")
    assert max(gaps) < 0.060  # 10 ms timer + 50 ms tolerance
