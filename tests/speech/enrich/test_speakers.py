"""Speaker labels: SpeakerTracker and cluster() on synthetic vectors and on real voices."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from speech.enrich.speakers import CLUSTER_THRESHOLD, DEFAULT_THRESHOLD, SpeakerTracker, cluster

RATE = 16000
DIM = 256


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _voices(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    return [_unit(rng.standard_normal(DIM)) for _ in range(count)]


def _near(rng: np.random.Generator, centre: np.ndarray, similarity: float = 0.9) -> np.ndarray:
    """A unit vector at exactly `similarity` to centre (a random orthogonal direction mixed in)."""
    noise = rng.standard_normal(DIM)
    noise = _unit(noise - (noise @ centre) * centre)
    return similarity * centre + np.sqrt(1 - similarity**2) * noise


def _accuracy(truth: list[int], labels: list[str]) -> float:
    names, voices = sorted(set(labels)), sorted(set(truth))
    best = 0
    for perm in itertools.permutations(names, min(len(names), len(voices))):
        mapping = dict(zip(perm, voices, strict=False))
        best = max(best, sum(mapping.get(lab) == t for lab, t in zip(labels, truth, strict=True)))
    return best / len(truth)


# --- synthetic vectors: fast, no model ---------------------------------------------------------


def test_tracker_labels_voices_in_order_of_first_appearance():
    rng = np.random.default_rng(0)
    a, b, c = _voices(rng, 3)
    tracker = SpeakerTracker(threshold=0.7)
    order = [b, b, a, b, c, a, c]
    labels = [tracker.assign(_near(rng, v), 2.0) for v in order]
    assert labels == [
        "speaker_1",
        "speaker_1",
        "speaker_2",
        "speaker_1",
        "speaker_3",
        "speaker_2",
        "speaker_3",
    ]
    assert tracker.labels == ["speaker_1", "speaker_2", "speaker_3"]
    assert tracker.speaking_time() == {"speaker_1": 6.0, "speaker_2": 4.0, "speaker_3": 4.0}


def test_tracker_centroid_is_a_duration_weighted_mean():
    x, y = np.eye(DIM)[0], np.eye(DIM)[1]
    tracker = SpeakerTracker(threshold=0.0)
    tracker.assign(x, 3.0)
    tracker.assign(y, 1.0)  # cos 0 >= threshold 0: joins
    sims = tracker.similarities(x)
    expected = _unit(3.0 * x + 1.0 * y)
    assert sims == {"speaker_1": pytest.approx(float(expected @ x))}
    assert tracker.similarities(y)["speaker_1"] == pytest.approx(float(expected @ y))


def test_tracker_threshold_decides_join_or_new():
    rng = np.random.default_rng(1)
    a = _voices(rng, 1)[0]
    tracker = SpeakerTracker(threshold=0.8)
    assert tracker.assign(a, 1.0) == "speaker_1"
    assert tracker.assign(_near(rng, a, 0.81), 1.0) == "speaker_1"
    tracker = SpeakerTracker(threshold=0.8)
    tracker.assign(a, 1.0)
    assert tracker.assign(_near(rng, a, 0.79), 1.0) == "speaker_2"


def test_tracker_max_speakers_joins_the_nearest():
    rng = np.random.default_rng(2)
    a, b, c = _voices(rng, 3)
    tracker = SpeakerTracker(threshold=0.9, max_speakers=2)
    assert tracker.assign(a, 1.0) == "speaker_1"
    assert tracker.assign(b, 1.0) == "speaker_2"
    mix = _unit(0.3 * a + 0.7 * b + 0.2 * c)  # new voice, closer to b
    assert tracker.assign(mix, 1.0) == "speaker_2"
    assert tracker.assign(c, 1.0) in {"speaker_1", "speaker_2"}
    assert tracker.labels == ["speaker_1", "speaker_2"]


def test_peek_changes_nothing():
    rng = np.random.default_rng(3)
    a, b = _voices(rng, 2)
    tracker = SpeakerTracker(threshold=0.7)
    assert tracker.peek(a) == "speaker_1"  # what assign would give: a first speaker
    assert tracker.labels == []
    tracker.assign(a, 2.0)
    probe = _near(rng, a)
    before = tracker.similarities(probe)
    assert tracker.peek(probe) == "speaker_1"
    assert tracker.peek(b) == "speaker_2"
    assert tracker.peek(None) is None
    assert tracker.labels == ["speaker_1"]
    assert tracker.speaking_time() == {"speaker_1": 2.0}
    assert tracker.similarities(probe) == before  # the centroid did not move


def test_tracker_rejects_bad_input():
    with pytest.raises(ValueError):
        SpeakerTracker(threshold=1.5)
    with pytest.raises(ValueError):
        SpeakerTracker(max_speakers=0)
    with pytest.raises(ValueError):
        SpeakerTracker().assign(np.zeros(DIM), 1.0)
    assert -1.0 < DEFAULT_THRESHOLD < 1.0 and -1.0 < CLUSTER_THRESHOLD < 1.0


def test_cluster_groups_voices_and_numbers_by_first_appearance():
    rng = np.random.default_rng(4)
    voices = _voices(rng, 3)
    truth = [2, 0, 2, 1, 0, 1, 2, 0]
    embeds = [_near(rng, voices[t], 0.85) for t in truth]
    labels = cluster(embeds, [1.0] * len(truth), threshold=0.6)
    assert labels == [
        "speaker_1",
        "speaker_2",
        "speaker_1",
        "speaker_3",
        "speaker_2",
        "speaker_3",
        "speaker_1",
        "speaker_2",
    ]


def test_cluster_threshold_and_max_speakers():
    rng = np.random.default_rng(5)
    voices = _voices(rng, 4)
    truth = [i % 4 for i in range(12)]
    embeds = [_near(rng, voices[t], 0.85) for t in truth]
    durs = [1.0] * 12
    assert len(set(cluster(embeds, durs, threshold=0.99))) == 12  # nothing is that close
    assert len(set(cluster(embeds, durs, threshold=0.6))) == 4
    capped = cluster(embeds, durs, threshold=0.6, max_speakers=2)
    assert len(set(capped)) == 2
    assert cluster(embeds, durs, threshold=0.6, max_speakers=1) == ["speaker_1"] * 12
    assert cluster([], [], threshold=0.6) == []
    with pytest.raises(ValueError):
        cluster(embeds, durs[:-1], threshold=0.6)


def _naive_average_linkage(
    e: np.ndarray, w: np.ndarray, threshold: float, max_speakers: int | None
) -> list[int]:
    """Textbook O(n^3) weighted average linkage, for checking the fast loop."""
    groups = [[i] for i in range(len(e))]
    sim = e @ e.T

    def link(g: list[int], h: list[int]) -> float:
        ww = np.outer(w[g], w[h])
        return float((sim[np.ix_(g, h)] * ww).sum() / ww.sum())

    while len(groups) > 1:
        pairs = [(link(g, h), i, j) for (i, g), (j, h) in itertools.combinations(enumerate(groups), 2)]
        s, i, j = max(pairs)
        if s < threshold and (max_speakers is None or len(groups) <= max_speakers):
            break
        groups[i] = groups[i] + groups[j]
        del groups[j]
    out = [0] * len(e)
    for k, g in enumerate(groups):
        for i in g:
            out[i] = k
    return out


@pytest.mark.parametrize("seed", range(5))
def test_cluster_matches_the_textbook_algorithm(seed):
    rng = np.random.default_rng(seed)
    voices = _voices(rng, 4)
    n = 30
    e = np.stack([_near(rng, voices[rng.integers(4)], rng.uniform(0.5, 0.9)) for _ in range(n)])
    w = rng.uniform(0.5, 6.0, n)
    for threshold, cap in ((0.45, None), (0.3, None), (0.45, 2)):
        fast = cluster(list(e), list(w), threshold=threshold, max_speakers=cap)
        slow = _naive_average_linkage(e, w, threshold, cap)
        # Same partition (label names differ: the naive one is not numbered by appearance).
        assert len(set(zip(fast, slow, strict=True))) == len(set(fast)) == len(set(slow))


def test_cluster_handles_thousands_of_segments_quickly():
    rng = np.random.default_rng(6)
    voices = _voices(rng, 5)
    truth = list(rng.integers(5, size=2000))
    embeds = [_near(rng, voices[t], 0.8) for t in truth]
    start = time.perf_counter()
    labels = cluster(embeds, [2.0] * len(truth), threshold=0.5)
    assert time.perf_counter() - start < 5.0
    assert len(set(labels)) == 5
    assert _accuracy(truth, labels) == 1.0


# --- real voices: the pretrained encoder on the corpus ----------------------------------------


@pytest.fixture(scope="module")
def encoder():
    from speech.enrich.voice import VoiceEncoder

    try:
        return VoiceEncoder.load()
    except RuntimeError as exc:
        print(f"SKIP: {exc}")
        pytest.skip(str(exc))


def _cuts(wav: np.ndarray, piece_s: float) -> list[np.ndarray]:
    count = max(1, int(len(wav) // (piece_s * RATE)))
    edges = np.linspace(0, len(wav), count + 1).astype(int)
    return [wav[a:b] for a, b in itertools.pairwise(edges)]


@pytest.fixture(scope="module")
def two_voices(corpus, encoder) -> tuple[list[int], list[np.ndarray], list[float]]:
    """Alternating turns: LJSpeech files (a woman) and ~3 s LibriSpeech pieces (a man)."""

    def load(name: str) -> np.ndarray:
        return corpus.read_mono_float(corpus.corpus_dir() / name)

    woman = [load(f"ljspeech_LJ001-{i:04d}.wav") for i in (2, 4, 6, 8, 11, 13)]
    man = [*_cuts(load("librispeech_1089-134686-0000.wav"), 3.0), load("librispeech_1089-134686-0001.wav")]
    truth, embeds, durs = [], [], []
    for w, m in zip(woman, man, strict=False):
        for voice, clip in ((0, w), (1, m)):
            truth.append(voice)
            embeds.append(encoder.embed(clip))
            durs.append(len(clip) / RATE)
    assert len(truth) == 8
    return truth, embeds, durs


def test_tracker_follows_two_alternating_voices(two_voices):
    truth, embeds, durs = two_voices
    tracker = SpeakerTracker()
    labels = [tracker.assign(e, d) for e, d in zip(embeds, durs, strict=True)]
    assert tracker.labels == ["speaker_1", "speaker_2"]
    assert _accuracy(truth, labels) >= 0.9
    assert labels[0] == "speaker_1" and labels[1] == "speaker_2"


def test_cluster_separates_two_alternating_voices(two_voices):
    truth, embeds, durs = two_voices
    labels = cluster(embeds, durs)
    assert sorted(set(labels)) == ["speaker_1", "speaker_2"]
    assert _accuracy(truth, labels) >= 0.9


def test_peek_on_real_voices_changes_nothing(two_voices):
    _, embeds, durs = two_voices
    tracker = SpeakerTracker()
    tracker.assign(embeds[0], durs[0])
    before = tracker.similarities(embeds[2])
    assert tracker.peek(embeds[1]) == "speaker_2"  # the man would open a new speaker...
    assert tracker.peek(embeds[2]) == "speaker_1"  # ...the woman again would join
    assert tracker.labels == ["speaker_1"]
    assert tracker.similarities(embeds[2]) == before
    assert tracker.assign(embeds[1], durs[1]) == "speaker_2"


def test_max_speakers_on_three_real_voices(corpus, encoder, two_voices):
    _, embeds, durs = two_voices
    jfk = corpus.read_mono_float(corpus.corpus_dir() / "jfk.wav")
    extra = [encoder.embed(p) for p in _cuts(jfk, 3.5)]
    all_embeds = embeds + extra
    all_durs = durs + [3.5] * len(extra)
    assert len(set(cluster(all_embeds, all_durs))) == 3
    assert len(set(cluster(all_embeds, all_durs, max_speakers=2))) == 2
    tracker = SpeakerTracker(max_speakers=2)
    labels = {tracker.assign(e, d) for e, d in zip(all_embeds, all_durs, strict=True)}
    assert labels == {"speaker_1", "speaker_2"}


def test_one_voice_over_a_long_recording_stays_one_speaker(corpus, encoder):
    wav = corpus.read_mono_float(corpus.corpus_dir() / corpus.LONG_FILE)
    parts = encoder.embed_parts(wav, part_s=4.0)
    assert len(parts) >= 15
    embeds = [e for _, _, e in parts]
    durs = [b - a for a, b, _ in parts]
    tracker = SpeakerTracker()
    assert {tracker.assign(e, d) for e, d in zip(embeds, durs, strict=True)} == {"speaker_1"}
    assert tracker.speaking_time()["speaker_1"] == pytest.approx(len(wav) / RATE)
    assert set(cluster(embeds, durs)) == {"speaker_1"}
