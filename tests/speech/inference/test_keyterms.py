"""Key terms: validated once, carried by every job, primed into Whisper alone and in a batch."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from speech.inference.fake import FakeEngine
from speech.inference.jobs import TranscribeOptions, TranscriptionJob
from speech.inference.service import LocalInferenceService, ServiceLimits
from speech.inference.wire import decode_job, encode_job
from speech.keyterms import KeytermError, clean_keyterms, hotwords

AUDIO = np.zeros(8000, dtype=np.float32)


def test_clean_keyterms_trims_dedupes_and_enforces_the_limits():
    assert clean_keyterms(None) == ()
    assert clean_keyterms(["  Gutenberg ", "gutenberg", "flour  fattened"]) == ("Gutenberg", "flour fattened")
    for bad, code in [("word", "invalid_keyterms"), ([1], "invalid_keyterms"), ([" "], "invalid_keyterms"),
                      (["x" * 51], "keyterm_too_long"), ([f"t{i}" for i in range(51)], "too_many_keyterms"),
                      ([("y" * 50) + str(i) for i in range(13)], "keyterm_too_long")]:  # fmt: skip
        with pytest.raises(KeytermError) as caught:
            clean_keyterms(bad)
        assert caught.value.code == code
    assert hotwords(()) is None and hotwords(("a", "b c")) == "a, b c"


def test_key_terms_survive_the_scale_out_wire():
    job = TranscriptionJob("s", "seg", 1, "final", AUDIO, TranscribeOptions(keyterms=("Gutenberg",)))
    again = decode_job(encode_job(job, job_id="j1", attempt=1, reply_channel="r"))
    assert again.options.keyterms == ("Gutenberg",)


@pytest.mark.parametrize("sessions", [1, 4])  # one job alone, then four sessions batched together
async def test_key_terms_reach_the_engine_alone_and_in_a_batch(sessions):
    engine = FakeEngine(delay_ms=30)
    limits = ServiceLimits(max_batch_size=8, max_batch_wait_ms=20)
    service = LocalInferenceService(lambda lane: engine, limits=limits)
    await service.start()
    try:
        jobs = [
            TranscriptionJob(f"s{i}", "seg", 1, "final", AUDIO, TranscribeOptions(keyterms=(f"term{i}",)))
            for i in range(sessions)
        ]
        await asyncio.gather(*(service.transcribe(job) for job in jobs))
    finally:
        await service.stop()
    assert sorted(o.keyterms for o in engine.seen) == sorted((f"term{i}",) for i in range(sessions))
    if sessions > 1:
        assert max(engine.batches) > 1  # they really went through the batched path


@pytest.mark.slow
def test_whisper_is_primed_with_the_key_terms_alone_and_in_a_batch(whisper_engine, corpus):
    """librispeech 0000: tiny.en hears "flower-fattened"; naming "flour" fixes it, batched or not."""
    m = corpus.manifest()
    stew = m["librispeech_1089-134686-0000.wav"]
    other = m["ljspeech_LJ001-0002.wav"]
    audio, other_audio = corpus.read_mono_float(stew.path), corpus.read_mono_float(other.path)
    plain = TranscribeOptions(language="en")
    primed = TranscribeOptions(language="en", keyterms=("flour-fattened",))
    tokenizer = whisper_engine._tokenizer("en", "transcribe")
    assert len(whisper_engine._prompt(tokenizer, primed)) > len(whisper_engine._prompt(tokenizer, plain))

    (before,) = whisper_engine.transcribe_batch([(audio, plain)])
    (alone,) = whisper_engine.transcribe_batch([(audio, primed)])
    batch = whisper_engine.transcribe_batch([(other_audio, plain), (audio, primed), (other_audio, primed)])
    assert "flower" in before.text.lower()
    for out in (alone, batch[1]):
        assert "flour" in out.text.lower() and corpus.wer([stew.reference], [out.text]) < corpus.wer(
            [stew.reference], [before.text]
        )
    # The key terms do not disturb an utterance that does not contain them.
    assert corpus.wer([other.reference], [batch[2].text]) <= corpus.wer([other.reference], [batch[0].text])
