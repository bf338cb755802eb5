"""The shared speech corpus (../shared/audio): loading, references and word error rate."""

from __future__ import annotations

import csv
import os
import re
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "audio"

# The single-utterance files used as the "dev corpus" by tests and benchmarks.
DEV_PREFIXES = ("jfk", "ljspeech_LJ001-00", "librispeech_")
LONG_FILE = "long_ljspeech_LJ001-0001_0010_concat.wav"


def corpus_dir() -> Path:
    """The corpus directory: STT_AUDIO_CORPUS_DIR, else ../shared/audio beside the project."""
    return Path(os.environ.get("STT_AUDIO_CORPUS_DIR", str(DEFAULT_DIR)))


def corpus_missing_reason() -> str | None:
    path = corpus_dir()
    if not (path / "manifest.tsv").is_file():
        return f"speech corpus not found at {path} (set STT_AUDIO_CORPUS_DIR)"
    return None


@dataclass(frozen=True)
class Utterance:
    name: str
    path: Path
    reference: str
    duration_s: float


@cache
def manifest() -> dict[str, Utterance]:
    root = corpus_dir()
    rows: dict[str, Utterance] = {}
    with open(root / "manifest.tsv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rows[row["file"]] = Utterance(
                name=row["file"],
                path=root / row["file"],
                reference=row["reference"],
                duration_s=float(row["duration_s"]),
            )
    return rows


def dev_utterances() -> list[Utterance]:
    """Single-utterance mono files (excludes the long concatenation and the stereo pair)."""
    return [u for name, u in sorted(manifest().items()) if name.startswith(DEV_PREFIXES)]


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """PCM16 WAV as int16 samples shaped (frames, channels) and its sample rate."""
    with wave.open(str(path), "rb") as wf:
        if wf.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = wf.getframerate(), wf.getnchannels()
        data = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2")
    return data.reshape(-1, channels), rate


def read_mono_float(path: Path) -> np.ndarray:
    """16 kHz mono float32 in [-1, 1) (the corpus is 16 kHz mono)."""
    samples, rate = read_wav(path)
    if rate != 16000 or samples.shape[1] != 1:
        raise ValueError(f"{path}: expected 16 kHz mono, got {rate} Hz x{samples.shape[1]}")
    return samples[:, 0].astype(np.float32) / 32768.0


_PARENS = re.compile(r"\([^)]*\)")


@cache
def _normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    return _normalizer()(_PARENS.sub(" ", text)).strip()


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate after Whisper English normalization."""
    import jiwer

    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    return float(jiwer.wer([r for r, _ in pairs], [h if h else "<empty>" for _, h in pairs]))


def bundled_engine(cpu_threads: int = 2):
    """The bundled tiny.en on CPU (int8), warmed up: what the offline benchmarks measure."""
    from speech.inference.engine import WhisperEngine

    engine = WhisperEngine("", device="cpu", compute_type="int8", cpu_threads=cpu_threads)
    engine.warmup()
    return engine
