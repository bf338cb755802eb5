"""Interim text on /ws/transcribe comes at the `realtimeIntervalMs` asked for, for a segment's whole life.

The client's option goes through the endpoint's own parsing (start and configure) into a session over
the real local inference service (fake engine, real VAD) fed jfk.wav as 40 ms packets on a simulated
clock. The fake engine answers "fake <seconds of audio>s", so each interim's text tells how much of its
segment it covered: the steps between them are the pace.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics

import numpy as np
import pytest

from speech import events
from speech.inference.fake import FakeEngine
from speech.inference.service import LocalInferenceService
from speech.options import SessionOptions
from speech.session import StreamingSession
from tests.speech.test_session import PACKET, Clock, RecordingSink
from transcription.streaming.protocols.ws_transcribe import configure, options_from_start

FRAME_S = 0.032  # the segmenter decides per 32 ms frame


@pytest.fixture
def speech(corpus) -> np.ndarray:
    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    return np.concatenate([np.zeros(8000, np.float32), jfk, np.zeros(16000, np.float32)])


async def run(audio: np.ndarray, options: SessionOptions) -> RecordingSink:
    service = LocalInferenceService(lambda lane: FakeEngine())
    await service.start()
    clock, sink = Clock(), RecordingSink()
    session = StreamingSession(
        session_id="abcdef12-0000", service=service, sink=sink, options=options, clock=clock
    )
    try:
        for start in range(0, len(audio), PACKET):
            clock.now += PACKET / 16000
            await session.feed_audio(audio[start : start + PACKET])
            await asyncio.sleep(0.01)  # the interim job (on the engine's thread) comes back, as in real time
        await session.stop()
    finally:
        await session.close()
        await service.stop()
    return sink


def covered(sink: RecordingSink) -> dict[str, list[float]]:
    """Per segment: the seconds of audio each of its interims covered, in order."""
    lengths: dict[str, list[float]] = {}
    for interim in sink.of(events.Interim):
        seconds = float(re.fullmatch(r"fake (\d+\.\d+)s", interim.text).group(1))
        lengths.setdefault(interim.segment_id, []).append(seconds)
    return lengths


def steps(sink: RecordingSink) -> list[float]:
    return [b - a for seq in covered(sink).values() for a, b in itertools.pairwise(seq)]


def start_options(interval_ms: int) -> SessionOptions:
    return options_from_start(
        {"type": "start", "realtimeIntervalMs": interval_ms}, SessionOptions(), languages=None
    )


@pytest.mark.parametrize("interval_ms", [200, 1500])
async def test_start_paces_interims_at_the_interval_asked_for(speech, interval_ms):
    options = start_options(interval_ms)
    assert options.realtime_interval_s == interval_ms / 1000
    found = steps(await run(speech, options))
    interval = interval_ms / 1000
    assert len(found) >= 3, found
    assert min(found) >= interval - FRAME_S, found
    assert statistics.median(found) == pytest.approx(interval, abs=2 * FRAME_S), found


async def test_interims_go_on_after_a_pause_that_started_an_early_final(speech):
    """jfk's last sentence pauses at "ask what you can do / for your country": the early final
    started there is dropped when speech resumes, and interim text must go on to the segment's end."""
    sink = await run(speech, start_options(200))
    finals = {f.segment_id: f for f in sink.of(events.Final)}
    longest = max(finals.values(), key=lambda f: f.timing.duration_s)
    assert longest.timing.duration_s > 5.0
    reached = covered(sink)[longest.segment_id][-1]
    assert reached >= longest.timing.duration_s - 1.0, (reached, longest.timing)


async def test_configure_changes_the_pace_mid_stream(speech):
    options, rejected = configure({"realtimeIntervalMs": 200}, start_options(1500), languages=None)
    assert (
        not rejected and options.realtime_interval_s == 0.2 and options.public()["realtimeIntervalMs"] == 200
    )
    found = steps(await run(speech, options))
    assert statistics.median(found) == pytest.approx(0.2, abs=2 * FRAME_S), found
