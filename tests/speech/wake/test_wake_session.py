"""Wake-word mode in the session core: real Porcupine on espeak-ng speech and a dev-corpus sentence,
the fake engine for the text (the real model runs in tests/transcription/streaming/test_wake_live.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import wake as wake_audio
from speech import events
from speech.options import SessionOptions
from speech.wake.options import WakeOptions
from tests.speech.test_session import RecordingSink, run_session_with


def porcupine(**kw) -> SessionOptions:
    return SessionOptions(wake=WakeOptions("pvporcupine", ("jarvis",), sensitivity=0.7, **kw))


def kinds(sink: RecordingSink) -> list[str]:
    out = []
    for tag, item in sink.log:
        if isinstance(item, events.WakeWord):
            out.append(f"wake:{item.state}")
        elif tag == "event" and isinstance(item, events.SpeechStarted | events.Final):
            out.append(type(item).__name__)
    return out


async def test_the_sentence_after_the_wake_word_is_transcribed_and_stored_with_it(wake_sentence):
    sentence = wake_sentence
    sink = RecordingSink()
    audio = wake_audio.wake_then("jarvis", sentence, wake_audio.silence(1.5))
    await run_session_with(audio, sink, porcupine())
    assert kinds(sink) == [
        "wake:wait_started", "wake:detected", "wake:wait_ended", "SpeechStarted",
        "wake:wait_started", "Final",
    ]  # fmt: skip
    detected = sink.of(events.WakeWord)[1]
    started = sink.of(events.SpeechStarted)[0]
    # Detected at the end of the word, and the segment starts no earlier (the word is not in it).
    wake_end = 0.7 + len(wake_audio.espeak("jarvis")) / 16000
    assert wake_end - 0.5 < detected.position_s <= wake_end + 0.1 and detected.word == "jarvis"
    assert started.wake_word == "jarvis" and started.timing.start_s >= detected.position_s
    assert started.first_voiced_s == pytest.approx(wake_end + 0.3, abs=0.15)  # where the sentence begins
    (final,) = sink.of(events.Final)
    stored = [item for tag, item in sink.log if tag == "stored"]
    assert final.wake_word == "jarvis" and [s.wake_word for s in stored] == ["jarvis"]
    assert final.timing.index == 0 and final.segment_id.endswith("-0")


async def test_the_same_sentence_without_the_wake_word_gives_nothing(wake_sentence):
    sentence = wake_sentence
    sink = RecordingSink()
    session = await run_session_with(
        wake_audio.wake_then(None, sentence, wake_audio.silence(1.5)), sink, porcupine()
    )
    assert kinds(sink) == ["wake:wait_started"]
    assert not [tag for tag, _ in sink.log if tag == "stored"] and session.segments_final == 0
    assert session.counters["realtime_sent"] == 0  # nothing was transcribed


async def test_a_second_sentence_in_the_follow_up_window_needs_no_wake_word(wake_sentence):
    sentence = wake_sentence
    audio = wake_audio.wake_then(
        "jarvis", sentence, wake_audio.silence(1.2), sentence, wake_audio.silence(1.5)
    )
    sink = RecordingSink()
    await run_session_with(audio, sink, porcupine(followup_s=3.0))
    finals = sink.of(events.Final)
    assert [f.wake_word for f in finals] == ["jarvis", None] and [f.timing.index for f in finals] == [0, 1]
    assert "wake:followup_started" in kinds(sink)
    # After the window (and with none), the second sentence is not transcribed.
    for followup, pause in ((0.0, 1.2), (1.0, 2.5)):
        sink = RecordingSink()
        audio = wake_audio.wake_then(
            "jarvis", sentence, wake_audio.silence(pause), sentence, wake_audio.silence(1.5)
        )
        await run_session_with(audio, sink, porcupine(followup_s=followup))
        assert [f.wake_word for f in sink.of(events.Final)] == ["jarvis"], (followup, kinds(sink))
        if followup:
            assert "wake:followup_timeout" in kinds(sink)


async def test_no_speech_within_the_timeout_after_the_wake_word_returns_to_waiting(wake_sentence):
    sentence = wake_sentence
    sink = RecordingSink()
    audio = wake_audio.wake_then("jarvis", wake_audio.silence(2.0), sentence, wake_audio.silence(1.5))
    await run_session_with(audio, sink, porcupine(timeout_s=1.0))
    assert kinds(sink) == ["wake:wait_started", "wake:detected", "wake:timeout", "wake:wait_started"]
    assert not sink.of(events.Final)


async def test_the_transcript_backend_shows_only_segments_that_hold_the_phrase(wake_sentence):
    sentence = wake_sentence
    """Two utterances; the fake engine "hears" the phrase in the longer one only."""
    short = wake_audio.espeak("good morning")
    audio = np.concatenate(
        [wake_audio.silence(0.5), short, wake_audio.silence(1.5), sentence, wake_audio.silence(1.5)]
    )
    limit = (len(short) + 16000) / 16000

    def text(audio: np.ndarray, options) -> str:
        return "Okay, hey there, what is the time?" if len(audio) / 16000 > limit else "Good morning."

    sink = RecordingSink()
    options = SessionOptions(wake=WakeOptions("transcript", ("hey there",)))
    session = await run_session_with(audio, sink, options, text_fn=text)
    finals = sink.of(events.Final)
    assert [(f.text, f.wake_word, f.timing.index) for f in finals] == [("What is the time?", "hey there", 0)]
    assert session.counters["wake_probes_dropped"] == 1
    assert all(i.text.startswith("What") for i in sink.of(events.Interim))
    assert kinds(sink) == [
        "wake:wait_started", "wake:detected", "wake:wait_ended", "SpeechStarted",
        "wake:wait_started", "Final",
    ]  # fmt: skip
