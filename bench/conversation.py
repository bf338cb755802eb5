"""A two-voice conversation built from the dev corpus (LJSpeech and LibriSpeech taking turns), with
who speaks when, to score speaker labels."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from bench import corpus

SAMPLE_RATE = 16000
# (file, voice): a female reader (LJSpeech) and a male one (LibriSpeech 1089) taking turns.
TURNS = (
    ("ljspeech_LJ001-0004.wav", "lj"),
    ("librispeech_1089-134686-0001.wav", "libri"),
    ("ljspeech_LJ001-0006.wav", "lj"),
    ("librispeech_1089-134686-0000.wav", "libri"),
    ("ljspeech_LJ001-0011.wav", "lj"),
    ("librispeech_1089-134686-0001.wav", "libri"),
    ("ljspeech_LJ001-0013.wav", "lj"),
)
GAP_S = 1.2  # between turns: long enough that every turn is its own segment


@dataclass(frozen=True)
class Turn:
    start_s: float
    end_s: float
    voice: str
    reference: str


def conversation(turns=TURNS, gap_s: float = GAP_S) -> tuple[np.ndarray, list[Turn]]:
    """16 kHz float32 audio (silence first and last) and its turns."""
    manifest = corpus.manifest()
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    pieces, spans, at = [gap], [], gap_s
    for name, voice in turns:
        audio = corpus.read_mono_float(manifest[name].path)
        spans.append(Turn(at, at + len(audio) / SAMPLE_RATE, voice, manifest[name].reference))
        pieces += [audio, gap]
        at += len(audio) / SAMPLE_RATE + gap_s
    return np.concatenate(pieces), spans


def voice_at(turns: list[Turn], start_s: float, end_s: float) -> str | None:
    """The voice that speaks most of [start_s, end_s] (None: nobody does)."""
    overlap: Counter[str] = Counter()
    for turn in turns:
        shared = min(end_s, turn.end_s) - max(start_s, turn.start_s)
        if shared > 0:
            overlap[turn.voice] += shared
    return overlap.most_common(1)[0][0] if overlap else None


def label_accuracy(turns: list[Turn], segments: list[tuple[float, float, str]]) -> tuple[float, dict]:
    """Share of (start, end, label) segments whose label is their voice's, under the best mapping of
    labels to voices (each label to the voice it is most often given to); and that mapping."""
    truth = [(voice_at(turns, start, end), label) for start, end, label in segments]
    truth = [(voice, label) for voice, label in truth if voice is not None]
    if not truth:
        return 0.0, {}
    by_label: dict[str, Counter[str]] = {}
    for voice, label in truth:
        by_label.setdefault(label, Counter())[voice] += 1
    mapping = {label: counts.most_common(1)[0][0] for label, counts in by_label.items()}
    right = sum(1 for voice, label in truth if mapping[label] == voice)
    return right / len(truth), mapping
