"""Segmentation of real recordings: one segment per utterance, no clipped words, cuts in pauses."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech.segmenter import (
    EarlyTranscription,
    EarlyTranscriptionCancelled,
    SegmentAudio,
    SegmentClosed,
    Segmenter,
    SegmenterConfig,
    SpeechStarted,
)
from speech.vad import FRAME_SAMPLES

RATE = 16000
GAP_S = 1.0
DEFAULT = SegmenterConfig()


@dataclass(frozen=True)
class Truth:
    """Where a recording has speech, found offline and independently of the segmenter."""

    regions: tuple[tuple[int, int], ...]  # Silero offline (package code, raw level, no padding)
    loud: tuple[int, ...]  # starts of 10 ms frames within 25 dB of the loudest: surely speech


@cache
def _offline_model():
    import warnings

    from silero_vad import load_silero_vad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the package's own importlib.resources use
        return load_silero_vad(onnx=True)


@cache
def truth(path) -> Truth:
    import torch
    from silero_vad import get_speech_timestamps

    from bench.corpus import read_mono_float

    x = read_mono_float(path)
    stamps = get_speech_timestamps(torch.from_numpy(x), _offline_model(), sampling_rate=RATE, speech_pad_ms=0)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    loud = np.flatnonzero(rms_db >= rms_db.max() - 25.0) * 160
    return Truth(tuple((s["start"], s["end"]) for s in stamps), tuple(int(i) for i in loud))


def quantize(x: np.ndarray) -> np.ndarray:
    # What a client actually sends: PCM16.
    return (np.clip(np.round(x * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)


def at_level(x: np.ndarray, level: str) -> np.ndarray:
    if level == "quiet":
        return quantize(x * 10 ** (-40 / 20))
    if level == "full_scale":
        return quantize(x * (10 ** (-0.1 / 20) / np.abs(x).max()))
    return x


def run(segmenter: Segmenter, x: np.ndarray, sizes: list[int]) -> list:
    events, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        events += segmenter.feed(x[i : i + n])
        i, k = i + n, k + 1
    return events + segmenter.stop()


def closed(events: list) -> list[SegmentClosed]:
    return [e for e in events if isinstance(e, SegmentClosed)]


def concat_with_gaps(utterances, level: str = "original") -> tuple[np.ndarray, list[int]]:
    """1 s of silence, then each utterance followed by 1 s of silence; returns audio and offsets."""
    from bench.corpus import read_mono_float

    gap = np.zeros(int(GAP_S * RATE), dtype=np.float32)
    parts, offsets, pos = [gap], [], len(gap)
    for u in utterances:
        x = at_level(read_mono_float(u.path), level)
        parts += [x, gap]
        offsets.append(pos)
        pos += len(x) + len(gap)
    return np.concatenate(parts), offsets


def covered(sample: int, segments: list[SegmentClosed]) -> bool:
    return any(s.start_s * RATE <= sample < s.end_s * RATE for s in segments)


def assert_speech_inside_segments(t: Truth, offset: int, segments: list[SegmentClosed]) -> None:
    for a, b in t.regions:
        inside = [s for s in segments if s.start_s * RATE <= offset + a and offset + b <= s.end_s * RATE]
        assert inside, (
            f"speech {(offset + a) / RATE:.2f}-{(offset + b) / RATE:.2f}s is not inside one segment"
        )
    missed = [i for i in t.loud if not covered(offset + i, segments)]
    assert not missed, f"loud speech outside segments at {[(offset + i) / RATE for i in missed[:5]]}"


@pytest.mark.parametrize("level", ["original", "quiet", "full_scale"])
def test_each_dev_utterance_gives_its_segment_with_pre_roll_and_no_clipped_words(corpus, level):
    utterances = corpus.dev_utterances()
    x, offsets = concat_with_gaps(utterances, level)
    segments = closed(run(Segmenter(DEFAULT), x, [1600]))
    pre_roll, post = DEFAULT.pre_recording_buffer_duration, DEFAULT.post_speech_silence_duration

    claimed = 0
    for u, offset in zip(utterances, offsets, strict=True):
        t = truth(u.path)
        span = (offset / RATE, (offset + round(u.duration_s * RATE)) / RATE)
        slack = 0.3  # attribution only: the 32 ms grid and Silero's hysteresis straddle the edges
        mine = [
            s for s in segments if span[0] - slack <= s.first_voiced_s and s.last_voiced_s <= span[1] + slack
        ]
        claimed += len(mine)
        assert mine, f"{u.name}: no segment"
        first_voiced, last_voiced = (offset + t.regions[0][0]) / RATE, (offset + t.regions[-1][1]) / RATE
        assert mine[0].start_s <= first_voiced - pre_roll, f"{u.name}: pre-roll cut short"
        assert mine[-1].end_s >= last_voiced + 0.25, f"{u.name}: last word clipped"
        assert_speech_inside_segments(t, offset, mine)
        # A pause longer than the post-speech silence is a legitimate end of an utterance (JFK
        # pauses ~1 s after "fellow Americans"): any other utterance must be exactly one segment.
        long_pauses = [
            b[0] - a[1] for a, b in itertools.pairwise(t.regions) if b[0] - a[1] >= (post - 0.1) * RATE
        ]
        if not long_pauses:
            assert len(mine) == 1, f"{u.name}: {len(mine)} segments"
        else:
            assert len(mine) <= 1 + len(long_pauses), f"{u.name}: {len(mine)} segments"
    assert claimed == len(segments), "a segment opened outside any utterance (silence or merged speech)"
    assert all(s.end_reason == "silence" for s in segments)


def _sentence_pauses(corpus) -> list[tuple[int, int]]:
    """The pauses between sentences of the long file, as offline non-speech stretches."""
    names = [f"ljspeech_LJ001-{i:04d}.wav" for i in range(1, 11)]
    joins, pos = [], 0
    for name in names[:-1]:
        pos += round(corpus.manifest()[name].duration_s * RATE)
        joins.append(pos + int(0.2 * RATE))  # the middle of the inserted 0.4 s pause
        pos += int(0.4 * RATE)
    regions = truth(corpus.corpus_dir() / corpus.LONG_FILE).regions
    gaps = [(a[1], b[0]) for a, b in itertools.pairwise(regions)]
    pauses = [next(g for g in gaps if g[0] <= j <= g[1]) for j in joins]
    return pauses


@pytest.mark.parametrize("max_s", [30.0, 12.0])
def test_long_recording_is_cut_in_pauses_without_losing_speech(corpus, max_s):
    path = corpus.corpus_dir() / corpus.LONG_FILE
    gap = np.zeros(RATE, dtype=np.float32)
    x = np.concatenate([gap, corpus.read_mono_float(path), gap])
    segments = closed(run(Segmenter(SegmenterConfig(max_segment_duration=max_s)), x, [1600]))
    t = truth(path)

    assert 1 <= len(segments) <= (10 if max_s == 30.0 else 15)
    assert all(s.duration_s <= max_s + 1e-9 for s in segments)
    assert all(len(s.audio) == round((s.end_s - s.start_s) * RATE) for s in segments)
    assert_speech_inside_segments(t, RATE, segments)
    cuts = [round(s.end_s * RATE) - RATE for s in segments if s.end_reason == "max_length"]
    if max_s == 30.0:
        # 70 s of speech with 0.4 s pauses: at least two cuts, each between sentences.
        assert len(cuts) >= 2
        pauses = _sentence_pauses(corpus)
        for c in cuts:
            assert any(a <= c <= b for a, b in pauses), f"cut at {c / RATE:.2f}s is not between sentences"
    else:
        assert len(cuts) >= 5
        gaps = [(a[1], b[0]) for a, b in itertools.pairwise(t.regions)]
        for c in cuts:
            assert any(a <= c <= b for a, b in gaps), f"cut at {c / RATE:.2f}s is inside speech"
    # A max-length cut continues seamlessly: the next segment starts where the last one ended.
    for s, nxt in itertools.pairwise(segments):
        if s.end_reason == "max_length":
            assert nxt.start_s == s.end_s and nxt.pre_roll_s == 0.0


@pytest.mark.parametrize("noise_dbfs", [None, -30.0])
def test_silence_and_white_noise_give_no_segment(noise_dbfs):
    rng = np.random.default_rng(7)
    n = 60 * RATE
    if noise_dbfs is None:
        x = np.zeros(n, dtype=np.float32)
    else:
        x = quantize(rng.standard_normal(n) * 10 ** (noise_dbfs / 20))
    events = run(Segmenter(DEFAULT), x, [1600])
    assert events == []


def _chunking_case(corpus) -> np.ndarray:
    m = corpus.manifest()
    names = ["jfk.wav", "ljspeech_LJ001-0002.wav", "librispeech_1089-134686-0001.wav"]
    x, _ = concat_with_gaps([m[n] for n in names])
    return x


@pytest.fixture(scope="module")
def chunking_case(corpus):
    x = _chunking_case(corpus)
    return x, [(s.start_s, s.end_s, s.end_reason) for s in closed(run(Segmenter(DEFAULT), x, [320]))]


def assert_same_segments(a: list, b: list) -> None:
    assert len(a) == len(b)
    for (s1, e1, r1), (s2, e2, r2) in zip(a, b, strict=True):
        assert r1 == r2
        assert abs(s1 - s2) * RATE <= FRAME_SAMPLES and abs(e1 - e2) * RATE <= FRAME_SAMPLES


def test_segments_do_not_depend_on_100ms_chunks(chunking_case):
    x, reference = chunking_case
    assert len(reference) >= 3
    got = [(s.start_s, s.end_s, s.end_reason) for s in closed(run(Segmenter(DEFAULT), x, [1600]))]
    assert_same_segments(got, reference)


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=20))
def test_segments_do_not_depend_on_random_chunk_sizes(chunking_case, sizes):
    x, reference = chunking_case
    got = [(s.start_s, s.end_s, s.end_reason) for s in closed(run(Segmenter(DEFAULT), x, sizes))]
    assert_same_segments(got, reference)


# -- state machine behaviour on one real utterance ------------------------------------------


@pytest.fixture(scope="module")
def utterance(corpus) -> np.ndarray:
    x = corpus.read_mono_float(corpus.manifest()["ljspeech_LJ001-0004.wav"].path)
    return np.concatenate([np.zeros(RATE, np.float32), x, np.zeros(RATE, np.float32)])


def test_events_are_ordered_and_offsets_match_audio(utterance):
    events = run(Segmenter(SegmenterConfig(interim_interval=0.5)), utterance, [1600])
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted and kinds[-1] is SegmentClosed
    assert SegmentAudio in kinds
    started, end = events[0], events[-1]
    assert started.index == end.index == 0
    assert started.start_s == end.start_s and started.pre_roll_s == end.pre_roll_s
    assert end.first_voiced_s < end.last_voiced_s < end.end_s
    np.testing.assert_array_equal(end.audio, utterance[round(end.start_s * RATE) : round(end.end_s * RATE)])
    interims = [e for e in events if isinstance(e, SegmentAudio)]
    ends = [e.end_s for e in interims]
    assert ends == sorted(ends) and all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(ends))
    for e in interims:
        np.testing.assert_array_equal(e.audio, utterance[round(e.start_s * RATE) : round(e.end_s * RATE)])


def test_stop_closes_an_open_segment_with_everything_fed(utterance):
    seg = Segmenter(DEFAULT)
    half = len(utterance) // 2
    events = seg.feed(utterance[:half])
    assert seg.recording and any(isinstance(e, SpeechStarted) for e in events)
    current = seg._buffer.slice(seg._open.start, seg._fed)  # the open segment's audio so far
    assert len(current) > 0
    (end,) = seg.stop()
    assert end.end_reason == "stop" and end.end_s == half / RATE
    assert not seg.recording and seg.stop() == []


def test_clear_drops_the_open_segment_and_a_new_one_can_start(utterance):
    seg = Segmenter(DEFAULT)
    seg.feed(utterance[: 2 * RATE])
    (cleared,) = seg.clear()
    assert cleared.end_reason == "clear"
    rest = closed(run(seg, utterance, [1600]))
    assert [s.index for s in rest] == [1]


def test_pause_closes_and_ignores_audio_until_resume(utterance):
    seg = Segmenter(DEFAULT)
    seg.feed(utterance[: 2 * RATE])
    (paused,) = seg.pause()
    assert paused.end_reason == "pause"
    assert seg.feed(utterance) == [] and seg.paused
    assert seg.position_s == (2 * RATE + len(utterance)) / RATE
    seg.resume()
    later = closed(run(seg, utterance, [1600]))
    assert len(later) == 1 and later[0].start_s >= (2 * RATE + len(utterance)) / RATE


def test_early_transcription_fires_before_the_segment_closes(utterance):
    events = run(Segmenter(SegmenterConfig(early_transcription_on_silence=0.2)), utterance, [1600])
    early = [e for e in events if isinstance(e, EarlyTranscription)]
    cancels = [e for e in events if isinstance(e, EarlyTranscriptionCancelled)]
    end = closed(events)[-1]
    assert len(early) >= 1 + len(cancels)
    assert early[-1].end_s < end.end_s and early[-1].silence_s >= 0.2
    assert events.index(early[-1]) < events.index(end)


def test_min_gap_between_recordings_delays_the_next_start(corpus):
    m = corpus.manifest()
    x, _ = concat_with_gaps([m["ljspeech_LJ001-0002.wav"], m["ljspeech_LJ001-0008.wav"]])
    free = closed(run(Segmenter(DEFAULT), x, [1600]))
    gapped = closed(run(Segmenter(SegmenterConfig(min_gap_between_recordings=1.0)), x, [1600]))
    assert len(free) == len(gapped) == 2
    assert free[1].first_voiced_s < free[0].end_s + 1.0 <= gapped[1].first_voiced_s


def test_config_rejects_a_search_window_longer_than_the_segment():
    with pytest.raises(ValueError):
        SegmenterConfig(max_segment_duration=4.0, max_length_search_window=5.0)
