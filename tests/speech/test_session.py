"""The streaming session core on its own: the fake engine, a sink that records, no database, no Django."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from speech import events
from speech.inference.fake import FakeEngine
from speech.inference.service import LocalInferenceService
from speech.options import SessionOptions
from speech.session import StreamingSession

PACKET = 640  # 40 ms at 16 kHz


class RecordingSink:
    """Keeps every event and stored final, in one log, in the order they happened."""

    def __init__(self, *, fail_storage: bool = False) -> None:
        self.log: list[tuple[str, object]] = []
        self.fail_storage = fail_storage

    async def emit(self, event: events.SessionEvent) -> None:
        self.log.append(("event", event))

    async def store_final(self, segment) -> None:
        if self.fail_storage:
            raise OSError("disk full")
        self.log.append(("stored", segment))

    def of(self, kind: type) -> list:
        return [item for tag, item in self.log if tag == "event" and isinstance(item, kind)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def run_session(audio: np.ndarray, sink: RecordingSink, **engine_options) -> StreamingSession:
    return await run_session_with(audio, sink, SessionOptions(), **engine_options)


async def run_session_with(
    audio: np.ndarray, sink: RecordingSink, options: SessionOptions, **engine_options
) -> StreamingSession:
    """`audio` through a session with `options`, paced as 40 ms packets, then stopped and closed."""
    service = LocalInferenceService(lambda lane: FakeEngine(**engine_options))
    await service.start()
    clock = Clock()
    session = StreamingSession(
        session_id="abcdef12-0000", service=service, sink=sink, options=options, clock=clock
    )
    try:
        for start in range(0, len(audio), PACKET):
            clock.now += PACKET / 16000
            await session.feed_audio(audio[start : start + PACKET])
            await asyncio.sleep(0)  # let interim jobs come back, as between real packets
        await session.stop()
    finally:
        await session.close()
        await service.stop()
    return session


@pytest.fixture
def speech(corpus) -> np.ndarray:
    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    return np.concatenate([np.zeros(8000, np.float32), jfk, np.zeros(16000, np.float32)])


async def test_a_spoken_segment_gives_its_events_in_order_and_the_final_is_stored_before_it_is_sent(speech):
    sink = RecordingSink()
    session = await run_session(speech, sink)
    kinds = [type(item).__name__ for tag, item in sink.log if tag == "event"]
    assert kinds[0] == "SpeechStarted" and "Interim" in kinds
    assert kinds.index("SpeechEnded") < kinds.index("TranscriptionStarted") < kinds.index("Final")
    finals = sink.of(events.Final)
    assert len(finals) == session.segments_final >= 1
    stored_at = [i for i, (tag, _) in enumerate(sink.log) if tag == "stored"]
    sent_at = [i for i, (tag, item) in enumerate(sink.log) if isinstance(item, events.Final)]
    assert len(stored_at) == len(sent_at) and all(s < f for s, f in zip(stored_at, sent_at, strict=True))
    first = finals[0]
    assert first.text.startswith("fake ") and first.segment_id.startswith("abcdef12-")
    assert first.timing.end_s > first.timing.start_s >= 0.0 and first.words is None
    started = sink.of(events.SpeechStarted)[0]
    assert started.segment_id == first.segment_id and started.timing.end_s is None
    interim = sink.of(events.Interim)[0]
    assert interim.segment_id in {f.segment_id for f in finals} and interim.text.startswith("fake ")


async def test_a_final_that_cannot_be_stored_is_reported_and_never_sent(speech):
    sink = RecordingSink(fail_storage=True)
    await run_session(speech, sink)
    assert not sink.of(events.Final)
    errors = sink.of(events.Error)
    assert errors and all(e.code == "storage_failed" and e.where == "storage" for e in errors)


async def test_a_failed_transcription_is_an_error_event_naming_its_segment(speech):
    sink = RecordingSink()
    await run_session(speech, sink, fail_fn=lambda audio, options: True)
    errors = sink.of(events.Error)
    assert errors and errors[0].where == "inference" and errors[0].segment_id
    assert not sink.of(events.Final) or all(not f.text for f in sink.of(events.Final))
