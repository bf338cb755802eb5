"""SpeechChunker: recordings cut into speech chunks of at most 30 s, at pauses."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from speech.chunking import SAMPLE_RATE, SpeechChunker, chunk_stream
from speech.vad import FRAME_SAMPLES, VadFrame


class LoudnessDetector:
    """A stand-in VAD: a 32 ms frame is speech when it is loud."""

    def __init__(self) -> None:
        self.pending = np.zeros(0, dtype=np.float32)
        self.position = 0

    def process(self, audio: np.ndarray) -> list[VadFrame]:
        audio = np.concatenate([self.pending, audio])
        frames = []
        while len(audio) >= FRAME_SAMPLES:
            frame, audio = audio[:FRAME_SAMPLES], audio[FRAME_SAMPLES:]
            peak = float(np.max(np.abs(frame)))
            frames.append(VadFrame(self.position, 0.0, peak > 0.1, peak > 0.1, peak))
            self.position += FRAME_SAMPLES
        self.pending = audio
        return frames


def speech(seconds: float, level: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(int(seconds * 1000))
    return (rng.uniform(-level, level, int(seconds * SAMPLE_RATE))).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def chunks_of(audio: np.ndarray, block_s: float = 1.0, **options):
    chunker = SpeechChunker(detector=LoudnessDetector(), **options)
    step = int(block_s * SAMPLE_RATE)
    return list(chunk_stream((audio[i : i + step] for i in range(0, len(audio), step)), chunker))


def test_continuous_speech_is_cut_into_pieces_of_at_most_30_s_covering_everything():
    audio = speech(75)
    chunks = chunks_of(audio)
    assert [c.index for c in chunks] == [0, 1, 2]
    assert all(c.duration_s <= 30.0 for c in chunks)
    assert chunks[0].start_s == 0 and chunks[-1].end_s == pytest.approx(75, abs=0.001)
    for before, after in itertools.pairwise(chunks):
        assert after.start_s == pytest.approx(before.end_s)
    assert np.array_equal(np.concatenate([c.audio for c in chunks]), audio)


def test_cuts_fall_in_the_pause_nearest_the_limit_and_silence_is_trimmed():
    audio = np.concatenate(
        [silence(5), speech(10), silence(2), speech(14), silence(1.5), speech(10), silence(6)]
    )
    chunks = chunks_of(audio, pad_s=0.25)
    # Speech at 5-15, 17-31, 32.5-42.5: the first 30 s window (from 5 s) ends at 35 s, so the cut
    # falls in the pause at 31-32.5 (the longest one in the last 8 s of the window).
    assert len(chunks) == 2
    assert chunks[0].start_s == pytest.approx(4.75, abs=0.04) and 31.0 <= chunks[0].end_s <= 32.5
    assert 31.0 <= chunks[1].start_s <= 32.5 and chunks[1].end_s == pytest.approx(42.75, abs=0.04)
    assert all(c.duration_s <= 30.0 for c in chunks)


def test_silent_audio_gives_no_chunks():
    assert chunks_of(np.concatenate([silence(70), speech(0.01, level=0.05)])) == []


def test_chunks_do_not_depend_on_how_the_audio_is_fed():
    audio = np.concatenate([speech(20), silence(1), speech(25), silence(3), speech(7)])
    whole = chunks_of(audio, block_s=100)
    pieces = chunks_of(audio, block_s=0.37)
    assert [(c.start_s, len(c.audio)) for c in whole] == [(c.start_s, len(c.audio)) for c in pieces]


def test_max_length_must_fit_whisper():
    with pytest.raises(ValueError, match="max_s"):
        SpeechChunker(max_s=45, detector=LoudnessDetector())


def test_real_voice_activity_detection_on_recorded_speech(corpus):
    long = corpus.read_mono_float(corpus.manifest()[corpus.LONG_FILE].path)
    audio = np.concatenate([silence(3), long, silence(10)])
    chunks = list(chunk_stream([audio], SpeechChunker()))
    assert len(chunks) >= 3 and all(c.duration_s <= 30.0 for c in chunks)
    assert chunks[0].start_s >= 2.0 and chunks[-1].end_s <= 3 + len(long) / SAMPLE_RATE + 1.0
