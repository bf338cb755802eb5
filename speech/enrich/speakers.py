"""Speaker labels from voice embeddings: online tracking within a session, offline clustering of files."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

# Chosen with `python -m bench.speakers` on the shared corpus (five voices, speech pieces of
# 1-10 s with silences removed). In its simulated conversations (two and three voices, and one
# voice cut into 1-4 s pieces) the tracker labels every segment right from 0.575 to 0.675: below,
# two LibriSpeech men merge; above, one voice in 1 s pieces splits. 0.65 is also where 2 s pieces
# separate pairwise (different voices <= 0.652, same voice >= 0.655), which is what the tracker
# compares before a speaker has a centroid of several turns. Weak spot: with 3-4 s pieces those
# two same-channel men reach 0.71 against each other's centroid, so similar voices may merge.
DEFAULT_THRESHOLD = 0.65
# Average linkage compares segments pairwise, without a centroid's averaging; in the same sweep
# cluster() is right everywhere from 0.60 to 0.675, and 0.64 is the middle.
CLUSTER_THRESHOLD = 0.64

_MIN_WEIGHT_S = 0.1  # a zero duration must still count a little, or the centroid never moves


def label(index: int) -> str:
    """The label of the index-th speaker to appear (0-based)."""
    return f"speaker_{index + 1}"


def _unit(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("embedding must be a non-zero finite vector")
    return v / norm


class SpeakerTracker:
    """Online speaker labels for one session: nearest centroid by cosine similarity.

    A segment joins the most similar speaker when the similarity reaches `threshold` (the centroid
    becomes the duration-weighted mean, renormalised, so long turns count more than
    back-channels); otherwise it opens a new speaker, unless `max_speakers` already exist, in which
    case it joins the nearest. Labels never change once given: `speaker_1` is the first voice heard.
    Safe to call from several threads.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, max_speakers: int | None = None) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError("threshold is a cosine similarity in [-1, 1]")
        if max_speakers is not None and max_speakers < 1:
            raise ValueError("max_speakers must be at least 1")
        self.threshold = float(threshold)
        self.max_speakers = max_speakers
        self._sums: list[np.ndarray] = []  # duration-weighted sums of unit embeddings
        self._centroids: list[np.ndarray] = []  # their unit directions
        self._seconds: list[float] = []
        self._lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        """Labels given so far, in order of first appearance."""
        with self._lock:
            return [label(i) for i in range(len(self._centroids))]

    def _choose(self, e: np.ndarray) -> tuple[int, bool]:
        """(speaker index, is new); the caller holds the lock."""
        if not self._centroids:
            return 0, True
        sims = np.stack(self._centroids) @ e
        best = int(np.argmax(sims))
        full = self.max_speakers is not None and len(self._centroids) >= self.max_speakers
        if sims[best] >= self.threshold or full:
            return best, False
        return len(self._centroids), True

    def assign(self, embedding: np.ndarray, duration_s: float) -> str:
        """The label for a segment, updating that speaker's centroid and speaking time."""
        e = _unit(embedding)
        weight = max(float(duration_s), _MIN_WEIGHT_S)
        with self._lock:
            index, new = self._choose(e)
            if new:
                self._sums.append(e * weight)
                self._centroids.append(e)
                self._seconds.append(max(float(duration_s), 0.0))
            else:
                self._sums[index] = self._sums[index] + e * weight
                self._centroids[index] = _unit(self._sums[index])
                self._seconds[index] += max(float(duration_s), 0.0)
            return label(index)

    def peek(self, embedding: np.ndarray | None) -> str | None:
        """The label `assign` would give now (a new speaker's label included), changing nothing.

        For interim text. None when there is no embedding (the clip was too short to embed).
        """
        if embedding is None:
            return None
        e = _unit(embedding)
        with self._lock:
            return label(self._choose(e)[0])

    def similarities(self, embedding: np.ndarray) -> dict[str, float]:
        """Cosine similarity of an embedding to each speaker's centroid (for diagnostics)."""
        e = _unit(embedding)
        with self._lock:
            return {label(i): float(c @ e) for i, c in enumerate(self._centroids)}

    def speaking_time(self) -> dict[str, float]:
        """Seconds assigned to each label so far."""
        with self._lock:
            return {label(i): s for i, s in enumerate(self._seconds)}


def cluster(
    embeddings: Sequence[np.ndarray],
    durations: Sequence[float],
    *,
    threshold: float = CLUSTER_THRESHOLD,
    max_speakers: int | None = None,
) -> list[str]:
    """Labels for a whole recording's segments: agglomerative clustering, average linkage on cosine.

    Clusters merge while their duration-weighted mean pairwise similarity is >= threshold, then
    keep merging the closest pair until at most max_speakers remain. Labels are numbered by first
    appearance, so one label is one voice across the recording. O(n^2) memory; a few thousand
    segments take well under a second.
    """
    n = len(embeddings)
    if n != len(durations):
        raise ValueError("embeddings and durations differ in length")
    if max_speakers is not None and max_speakers < 1:
        raise ValueError("max_speakers must be at least 1")
    if n == 0:
        return []
    e = np.stack([_unit(v) for v in embeddings])
    weight = np.maximum(np.asarray(durations, dtype=np.float64), _MIN_WEIGHT_S)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    active = np.ones(n, dtype=bool)
    parent = np.arange(n)  # each segment's cluster representative (the lower index of a merge)
    # Per-row best match, so each merge costs O(n) instead of a scan of the whole matrix.
    best = sim.argmax(axis=1)
    best_sim = sim[np.arange(n), best]
    clusters = n
    while clusters > 1:
        a = int(np.argmax(np.where(active, best_sim, -np.inf)))
        b = int(best[a])
        if best_sim[a] < threshold and (max_speakers is None or clusters <= max_speakers):
            break
        a, b = min(a, b), max(a, b)
        # Lance-Williams update for weighted average linkage: the merged row is the
        # weight-averaged rows, i.e. the mean pairwise similarity weighted by duration.
        row = (weight[a] * sim[a] + weight[b] * sim[b]) / (weight[a] + weight[b])
        weight[a] += weight[b]
        active[b] = False
        row[~active] = -np.inf
        row[a] = -np.inf
        sim[a], sim[:, a] = row, row
        sim[b], sim[:, b] = -np.inf, -np.inf
        parent[parent == b] = a
        clusters -= 1
        best[a] = int(np.argmax(row))
        best_sim[a] = row[best[a]]
        # Rows that pointed at a or b must look again; any other row's best can only be
        # displaced by the merged cluster, whose similarity is known.
        stale = active & ((best == a) | (best == b))
        stale[a] = False
        for i in np.flatnonzero(stale):
            best[i] = int(np.argmax(sim[i]))
            best_sim[i] = sim[i, best[i]]
        better = active & (row > best_sim)
        best[better] = a
        best_sim[better] = row[better]
    names: dict[int, str] = {}
    out: list[str] = []
    for root in parent:
        if int(root) not in names:
            names[int(root)] = label(len(names))
        out.append(names[int(root)])
    return out
