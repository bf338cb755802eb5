"""Wake-word audio: espeak-ng speech of a wake word in a voice Porcupine hears, then a sentence."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

# Porcupine 1.9.5 (sensitivity 0.7) spots its built-in "jarvis", "computer" and "porcupine" in this
# espeak-ng voice, over a room's noise floor, at 16 of 16 frame alignments. Over digital silence it
# misses most (jarvis at 0 of 16): its features need the noise every microphone has. en-us+m3 at
# the default speed misses some even with the noise.
VOICE, SPEED = "en-us+m1", 140
NOISE_FLOOR = 0.003  # white noise, about -50 dBFS: a quiet room through a laptop microphone


def espeak_missing() -> str | None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return "espeak-ng and sox are needed (.ci/run installs them)"
    return None


def espeak(text: str, voice: str = VOICE, speed: int = SPEED) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz mono float32 (resampled by sox)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    ).stdout
    # -D: no dither, so the same text gives the same samples every run.
    to_raw = ["-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", "-"]
    raw = subprocess.run(
        ["sox", "-D", "-t", "wav", "-", *to_raw], input=wav, capture_output=True, check=True
    ).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 16000), np.float32)


def wake_then(word: str | None, *parts: np.ndarray, lead_s: float = 0.7, gap_s: float = 0.3) -> np.ndarray:
    """Quiet, the wake word (None: none), a short pause, then `parts` (audio or pauses) in order,
    all over the same seeded noise floor (the same audio every run)."""
    head = [silence(lead_s)]
    if word:
        head += [espeak(word), silence(gap_s)]
    audio = np.concatenate([*head, *parts])
    noise = np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32) * NOISE_FLOOR
    return np.clip(audio + noise, -1.0, 1.0)
