"""End of turn in the session core: the verdict on a pause decides how soon the segment closes.

Controlled text (an inference client that answers at once with the text a test chooses) on
real speech through the real VAD, so every run closes at the same sample.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from speech import events
from speech.inference.jobs import TranscriptionResult
from speech.options import SessionOptions
from speech.session import StreamingSession

PACKET = 640


class InstantInference:
    """Answers every job at once with `text_fn(job)`; remembers the jobs."""

    def __init__(self, text_fn) -> None:
        self.text_fn = text_fn
        self.jobs = []

    async def transcribe(self, job, *, on_warning=None) -> TranscriptionResult:
        self.jobs.append(job)
        text = self.text_fn(job)
        return TranscriptionResult(
            session_id=job.session_id,
            segment_id=job.segment_id,
            sequence=job.sequence,
            kind=job.kind,
            text=text,
            words=[],
            confidence=0.9,
            no_speech_prob=0.0,
            avg_logprob=-0.1,
            language="en",
            language_probability=1.0,
        )

    def segment_finalized(self, session_id, segment_id) -> None:
        pass

    def session_closed(self, session_id) -> None:
        pass


class FixedTurnModel:
    def __init__(self, probability: float) -> None:
        self.p = probability
        self.calls = 0

    def probability(self, audio) -> float:
        self.calls += 1
        return self.p


class Sink:
    def __init__(self) -> None:
        self.events: list = []

    async def emit(self, event) -> None:
        self.events.append(event)

    async def store_final(self, segment) -> None:
        pass

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


async def stream(audio, text, *, model=None, options=None, actions=None) -> tuple[Sink, InstantInference]:
    """Feed `audio` packet by packet; `actions` maps a packet index to a coroutine function(session)."""
    sink, service = Sink(), InstantInference(text if callable(text) else lambda job: text)
    session = StreamingSession(
        session_id="turns000-0000",
        service=service,
        sink=sink,
        options=options or SessionOptions(interim_results=False),
        turn_model=model,
    )
    for n, start in enumerate(range(0, len(audio), PACKET)):
        if actions and n in actions:
            await actions[n](session)
        await session.feed_audio(audio[start : start + PACKET])
        for _ in range(5):  # the early job, the audio model's thread and the verdict
            await asyncio.sleep(0.001 if model is not None else 0)
    await session.close()
    return sink, service


@pytest.fixture
def sentence(corpus) -> np.ndarray:
    audio = corpus.read_mono_float(corpus.manifest()["ljspeech_LJ001-0002.wav"].path)
    return np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(16000 * 3, np.float32)])


def closed_at(sink: Sink) -> float:
    (ended,) = sink.of(events.SpeechEnded)
    return ended.timing.end_s


def turns(sink: Sink) -> list[tuple[str, str | None]]:
    return [(t.state, t.reason) for t in sink.of(events.Turn)]


async def test_a_segment_that_ends_a_sentence_closes_sooner_than_one_that_ends_mid_sentence(sentence):
    complete, _ = await stream(sentence, "In being comparatively modern.")
    incomplete, _ = await stream(sentence, "In being comparatively modern and")
    no_model, _ = await stream(sentence, "In being comparatively modern.", options=SessionOptions(
        interim_results=False, end_of_turn_silence=0.0))  # fmt: skip
    # The defaults: a short silence once complete, the ceiling when mid-sentence, the ordinary
    # post-speech silence when off.
    o = SessionOptions()
    assert o.end_of_turn_silence < o.post_speech_silence_duration < o.max_turn_silence
    gap = o.max_turn_silence - o.end_of_turn_silence
    assert closed_at(incomplete) - closed_at(complete) == pytest.approx(gap, abs=0.05)
    gap = o.post_speech_silence_duration - o.end_of_turn_silence
    assert closed_at(no_model) - closed_at(complete) == pytest.approx(gap, abs=0.05)
    assert turns(complete) == [("eager_end", "complete"), ("end", "complete")]
    assert turns(incomplete) == [("end", "incomplete")]
    assert turns(no_model) == [("end", "silence")]
    for sink in (complete, incomplete, no_model):
        (final,) = sink.of(events.Final)
        assert final.end_reason == "silence" and final.text.startswith("In being")


async def test_the_audio_model_demotes_a_complete_looking_text_to_the_ordinary_rule(sentence):
    sure_model, sure = FixedTurnModel(0.9), None
    sure, _ = await stream(sentence, "In being comparatively modern.", model=sure_model)
    doubtful, _ = await stream(sentence, "In being comparatively modern.", model=FixedTurnModel(0.1))
    assert sure_model.calls >= 1
    o = SessionOptions()
    gap = o.post_speech_silence_duration - o.end_of_turn_silence
    assert closed_at(doubtful) - closed_at(sure) == pytest.approx(gap, abs=0.05)
    assert turns(sure) == [("eager_end", "complete"), ("end", "complete")]
    assert turns(doubtful) == [("end", "unsure")]


async def test_speech_after_an_eager_end_resumes_the_turn_and_one_final_covers_both_parts(corpus):
    m = corpus.manifest()
    first = corpus.read_mono_float(m["ljspeech_LJ001-0002.wav"].path)
    second = corpus.read_mono_float(m["ljspeech_LJ001-0008.wav"].path)
    pause = np.zeros(int(16000 * 0.35), np.float32)  # longer than the early transcription's 0.15 s
    audio = np.concatenate([np.zeros(8000, np.float32), first, pause, second, np.zeros(32000, np.float32)])
    options = SessionOptions(interim_results=False, end_of_turn_silence=0.6, max_turn_silence=1.0)
    sink, _service = await stream(audio, "A finished sentence.", options=options)
    states = [state for state, _ in turns(sink)]
    assert states[:2] == ["eager_end", "resumed"] and states[-1] == "end"
    (final,) = sink.of(events.Final)  # the pause did not cut the turn
    assert final.timing.end_s > (8000 + len(first) + len(pause) + len(second)) / 16000


async def test_finalize_closes_the_open_segment_now_and_the_stream_goes_on(corpus):
    m = corpus.manifest()
    audio = corpus.read_mono_float(m["jfk.wav"].path)
    audio = np.concatenate([audio, np.zeros(32000, np.float32)])
    at_packet = int(2.0 * 16000 / PACKET)  # mid-utterance: "And so my fellow Americans"

    async def finalize(session):
        assert session.open_segment_id is not None
        await session.finalize()
        assert session.open_segment_id is None

    sink, _service = await stream(
        audio, lambda job: f"{len(job.audio) / 16000:.1f} seconds and", actions={at_packet: finalize}
    )
    finals = sink.of(events.Final)
    assert finals[0].end_reason == "finalize"
    assert finals[0].timing.end_s == pytest.approx(2.0, abs=0.05)
    assert len(finals) >= 2 and finals[1].timing.start_s >= finals[0].timing.end_s
    assert ("end", "finalize") in turns(sink)


async def test_reconfigure_changes_the_endpointing_and_the_key_terms_of_later_jobs(sentence):
    from dataclasses import replace

    base = SessionOptions(interim_results=False)

    async def configure(session):
        session.reconfigure(replace(base, end_of_turn_silence=0.0, keyterms=("modern",)))

    sink, service = await stream(sentence, "In being comparatively modern.", options=base,
                                 actions={2: configure})  # fmt: skip
    assert turns(sink) == [("end", "silence")]  # end of turn switched off: the fixed rule
    assert service.jobs and all(job.options.keyterms == ("modern",) for job in service.jobs)
