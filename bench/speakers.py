"""Speaker embeddings on the corpus: similarity distributions, thresholds, speed, conversation labelling."""

from __future__ import annotations

import itertools
import time

import numpy as np

from bench.corpus import LONG_FILE, corpus_dir, corpus_missing_reason, read_mono_float

RATE = 16000

LJ = [f"ljspeech_LJ001-{i:04d}.wav" for i in range(1, 21)]
LIBRI = ["librispeech_1089-134686-0000.wav", "librispeech_1089-134686-0001.wav"]
# Voice name -> files. stereo_left is LibriSpeech 61-70968 (another male); stereo_right is unknown.
VOICES = {
    "lj": LJ,
    "libri1089": LIBRI,
    "jfk": ["jfk.wav"],
    "stereo_left": ["stereo_left.wav"],
    "stereo_right": ["stereo_right.wav"],
}


def speech_only(wav: np.ndarray, floor_db: float = 28.0, hang_frames: int = 3) -> np.ndarray:
    """The clip with silences removed, a stand-in for the VAD that cuts callers' segments.

    30 ms frames within floor_db of the loudest frame are speech; hang_frames either side keep
    word edges. Pauses of jfk and the silent half of stereo_right would otherwise be embedded.
    """
    n = len(wav) // 480
    frames = wav[: n * 480].reshape(n, 480).astype(np.float64)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    loud = db >= db.max() - floor_db
    keep = np.convolve(loud, np.ones(2 * hang_frames + 1), mode="same") > 0
    return frames[keep].reshape(-1).astype(np.float32)


def pieces(wav: np.ndarray, piece_s: float) -> list[np.ndarray]:
    """Consecutive pieces of about piece_s (the remainder is spread over them); [] when shorter."""
    count = int(len(wav) // (piece_s * RATE))
    if count == 0:
        return []
    edges = np.linspace(0, len(wav), count + 1).astype(int)
    return [wav[a:b] for a, b in itertools.pairwise(edges)]


def voice_pieces(
    piece_s: float | None, voices: dict[str, list[str]] = VOICES
) -> list[tuple[str, np.ndarray]]:
    """(voice, clip) pairs: whole files when piece_s is None, else pieces of speech of ~piece_s."""
    out: list[tuple[str, np.ndarray]] = []
    for voice, files in voices.items():
        for name in files:
            wav = speech_only(read_mono_float(corpus_dir() / name))
            # Whole LJSpeech files are already 2-10 s utterances; cut the longer recordings.
            if piece_s is None:
                clips = [wav] if voice == "lj" else pieces(wav, 4.0) or [wav]
            else:
                clips = pieces(wav, piece_s)
            out.extend((voice, c) for c in clips)
    return out


def stats(values: np.ndarray) -> str:
    if len(values) == 0:
        return "n=0"
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return f"n={len(values):4d} min {q[0]:.3f} p5 {q[1]:.3f} median {q[2]:.3f} p95 {q[3]:.3f} max {q[4]:.3f}"


def best_threshold(same: np.ndarray, diff: np.ndarray) -> tuple[float, float]:
    """The threshold with the fewest errors (same below it + different at or above), and its error rate."""
    candidates = np.unique(np.concatenate([same, diff, [1.0]]))
    errors = [(np.sum(same < t) + np.sum(diff >= t), t) for t in candidates]
    err, t = min(errors, key=lambda x: (x[0], -x[1]))
    # Midpoint of the gap when the two sets separate cleanly, rather than its edge.
    if err == 0 and len(diff) and len(same):
        t = (float(diff.max()) + float(same.min())) / 2
    return float(t), float(err) / (len(same) + len(diff))


def pairwise(labels: list[str], embeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = embeds @ embeds.T
    same, diff = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        (same if labels[i] == labels[j] else diff).append(sim[i, j])
    return np.array(same), np.array(diff)


def to_centroid(labels: list[str], embeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each piece against each voice's leave-one-out centroid: what SpeakerTracker compares."""
    same, diff = [], []
    voices = sorted(set(labels))
    for i, v in enumerate(labels):
        for w in voices:
            idx = [j for j, lab in enumerate(labels) if lab == w and j != i]
            if not idx:
                continue
            c = embeds[idx].mean(axis=0)
            s = float(embeds[i] @ (c / np.linalg.norm(c)))
            (same if v == w else diff).append(s)
    return np.array(same), np.array(diff)


def timing(encoder) -> None:
    wav = read_mono_float(corpus_dir() / LONG_FILE)
    print("\nms per embed() call (threads=1, warm, median of 30; CPU time is this process's):")
    for seconds in (1, 2, 5, 10, 30):
        clip = wav[: seconds * RATE]
        encoder.embed(clip)
        wall, cpu = [], []
        for _ in range(30):
            start, start_cpu = time.perf_counter(), time.process_time()
            encoder.embed(clip)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(
            f"  {seconds:3d} s clip: wall {np.median(wall) * 1000:6.1f} ms (min {min(wall) * 1000:.1f}),"
            f" CPU {np.median(cpu) * 1000:6.1f} ms"
        )


def conversation(voice_a: list[np.ndarray], voice_b: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Alternating turns a, b, a, b, ... until one voice runs out."""
    turns: list[tuple[str, np.ndarray]] = []
    for a, b in zip(voice_a, voice_b, strict=False):
        turns += [("a", a), ("b", b)]
    return turns


def label_accuracy(truth: list[str], labels: list[str]) -> float:
    """Share of segments right under the best one-to-one mapping of labels to true voices."""
    voices, names = sorted(set(truth)), sorted(set(labels))
    best = 0
    for perm in itertools.permutations(names, min(len(names), len(voices))):
        mapping = dict(zip(perm, voices, strict=False))
        best = max(best, sum(mapping.get(lab) == t for lab, t in zip(labels, truth, strict=True)))
    return best / len(truth)


def embed_turns(
    encoder, turns: list[tuple[str, np.ndarray]]
) -> tuple[list[str], list[np.ndarray], list[float]]:
    truth, embeds, durs = [], [], []
    for voice, clip in turns:
        e = encoder.embed(clip)
        if e is not None:  # too short to embed: a caller would leave it unlabelled
            truth.append(voice)
            embeds.append(e)
            durs.append(len(clip) / RATE)
    return truth, embeds, durs


def conversations(encoder) -> dict[str, tuple[list[str], list[np.ndarray], list[float]]]:
    """Simulated conversations (alternating turns of VAD-like speech pieces) and one-voice runs."""

    def load(name: str) -> np.ndarray:
        return speech_only(read_mono_float(corpus_dir() / name))

    lj = [load(n) for n in LJ]
    libri = np.concatenate([load(n) for n in LIBRI])
    jfk, left, right = load("jfk.wav"), load("stereo_left.wav"), load("stereo_right.wav")
    long_wav = read_mono_float(corpus_dir() / LONG_FILE)
    three = []
    for a, b, c in zip(lj, pieces(libri, 2.5), pieces(jfk, 2.5), strict=False):
        three += [("a", a), ("b", b), ("c", c)]
    turns = {
        "LJ files / Libri 3 s": conversation(lj, pieces(libri, 3.0)),
        "LJ files / Libri 1.5 s": conversation(lj, pieces(libri, 1.5)),
        "Libri / jfk 2 s": conversation(pieces(libri, 2.0), pieces(jfk, 2.0)),
        "Libri / stereo_left 1.5 s": conversation(pieces(libri, 1.5), pieces(left, 1.5)),
        "stereo_left / right 1 s": conversation(pieces(left, 1.0), pieces(right, 1.0)),
        "LJ / Libri / jfk 2.5 s": three,
        # The long file keeps its 0.4 s pauses: fixed cuts, as embed_parts() makes inside a segment.
        "one voice: long file 4 s": [("a", p) for p in pieces(long_wav, 4.0)],
        "one voice: long file 2 s": [("a", p) for p in pieces(long_wav, 2.0)],
        "one voice: jfk 1.5 s": [("a", p) for p in pieces(jfk, 1.5)],
    }
    return {name: embed_turns(encoder, t) for name, t in turns.items()}


def sweep(data: dict[str, tuple[list[str], list[np.ndarray], list[float]]]) -> None:
    from speech.enrich.speakers import SpeakerTracker, cluster

    names = list(data)
    print("  columns: " + "; ".join(f"[{i}] {n} ({len(data[n][0])} segs)" for i, n in enumerate(names)))
    print("  cell = labels/share right")
    for threshold in np.arange(0.55, 0.826, 0.025):
        rows = {"tracker": [], "cluster": []}
        for name in names:
            truth, embeds, durs = data[name]
            tracker = SpeakerTracker(threshold=float(threshold))
            online = [tracker.assign(e, d) for e, d in zip(embeds, durs, strict=True)]
            offline = cluster(embeds, durs, threshold=float(threshold))
            for key, labels in (("tracker", online), ("cluster", offline)):
                ok = len(set(labels)) == len(set(truth))
                cell = f"{len(set(labels))}/{label_accuracy(truth, labels):.0%}"
                rows[key].append(cell if ok else cell + "*")
        for key, cells in rows.items():
            print(f"  {key} {threshold:.3f}: " + " ".join(f"{c:>6s}" for c in cells))


def report_defaults(data: dict[str, tuple[list[str], list[np.ndarray], list[float]]]) -> None:
    from speech.enrich.speakers import SpeakerTracker, cluster

    for name, (truth, embeds, durs) in data.items():
        tracker = SpeakerTracker()
        online = [tracker.assign(e, d) for e, d in zip(embeds, durs, strict=True)]
        offline = cluster(embeds, durs)
        line = (
            f"  {name}: {len(truth)} segments, {len(set(truth))} voice(s); tracker {len(set(online))} labels "
            f"{label_accuracy(truth, online):.0%} right; cluster {len(set(offline))} labels "
            f"{label_accuracy(truth, offline):.0%} right"
        )
        if len(set(truth)) > 1:
            capped = cluster(embeds, durs, max_speakers=len(set(truth)))
            line += f"; cluster(max_speakers={len(set(truth))}) {label_accuracy(truth, capped):.0%}"
        print(line)


def main() -> None:
    reason = corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return
    from speech.enrich.speakers import CLUSTER_THRESHOLD, DEFAULT_THRESHOLD
    from speech.enrich.voice import MIN_SECONDS, VoiceEncoder

    encoder = VoiceEncoder.load()
    print(f"thresholds in use: SpeakerTracker {DEFAULT_THRESHOLD}, cluster {CLUSTER_THRESHOLD}")
    print(f"voices: {', '.join(VOICES)} (silences removed by an energy gate, like VAD-cut segments)")
    for piece_s in (None, 3.0, 2.0, 1.5, 1.0, 0.8, 0.7, 0.5):
        items = voice_pieces(piece_s)
        embeds, labels = [], []
        for voice, clip in items:
            # embed() refuses clips under MIN_SECONDS; the bench measures below it on purpose.
            e = encoder.embed(clip) if len(clip) >= MIN_SECONDS * RATE else _embed_any(encoder, clip)
            embeds.append(e)
            labels.append(voice)
        arr = np.stack(embeds)
        title = "whole LJ files, other voices ~4 s pieces" if piece_s is None else f"~{piece_s} s pieces"
        counts = {v: labels.count(v) for v in VOICES}
        print(f"\n{title}: {counts}")
        same, diff = pairwise(labels, arr)
        t, err = best_threshold(same, diff)
        print(f"  pairwise  same {stats(same)}")
        print(f"  pairwise  diff {stats(diff)}")
        print(f"  pairwise  best threshold {t:.3f} ({err:.1%} of pairs wrong)")
        same, diff = to_centroid(labels, arr)
        t, err = best_threshold(same, diff)
        print(f"  centroid  same {stats(same)}")
        print(f"  centroid  diff {stats(diff)}")
        print(f"  centroid  best threshold {t:.3f} ({err:.1%} wrong)")
        by_pair = []
        for v, w in itertools.combinations(VOICES, 2):
            sims = [
                arr[i] @ arr[j]
                for i, a in enumerate(labels)
                for j, b in enumerate(labels)
                if (a, b) == (v, w)
            ]
            if sims:
                by_pair.append(f"{v}-{w} {max(sims):.2f}")
        print(f"  max different-voice similarity by pair: {', '.join(by_pair)}")

    timing(encoder)

    data = conversations(encoder)
    print("\nthreshold sweep over simulated conversations (* = wrong number of labels):")
    sweep(data)
    print(f"\nat the defaults (tracker {DEFAULT_THRESHOLD}, cluster {CLUSTER_THRESHOLD}):")
    report_defaults(data)

    from speech.enrich.speakers import SpeakerTracker

    long_wav = read_mono_float(corpus_dir() / LONG_FILE)
    start = time.perf_counter()
    parts = encoder.embed_parts(long_wav, part_s=4.0)
    elapsed_ms = (time.perf_counter() - start) * 1000
    tracker = SpeakerTracker()
    found = sorted({tracker.assign(e, b - a) for a, b, e in parts})
    print(
        f"\nembed_parts(70 s one-voice file, part_s=4): {len(parts)} parts in {elapsed_ms:.0f} ms -> {found}"
    )


def _embed_any(encoder, clip: np.ndarray) -> np.ndarray:
    """An embedding even below MIN_SECONDS (the bench measures how bad they are)."""
    from speech.enrich.voice import normalize_volume

    mean = encoder._forward(encoder._partials(normalize_volume(clip))).mean(axis=0)
    return mean / np.linalg.norm(mean)


if __name__ == "__main__":
    main()
