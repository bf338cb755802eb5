"""Wake-word audio: espeak-ng speech of a wake word in a voice Porcupine hears, then a sentence."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

# Porcupine 1.9.5 spots its built-in "jarvis", "computer" and "porcupine" in this espeak-ng voice at
# every frame alignment tried (sensitivity 0.7); en-us+m3 at the default speed misses some.
VOICE, SPEED = "en-us+m1", 140


def espeak_missing() -> str | None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return "espeak-ng and sox are needed (.ci/run installs them)"
    return None


def espeak(text: str, voice: str = VOICE, speed: int = SPEED) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz mono float32 (resampled by sox)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    ).stdout
    raw = subprocess.run(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", "-"],
        input=wav,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 16000), np.float32)


def wake_then(word: str | None, *parts: np.ndarray, lead_s: float = 0.7, gap_s: float = 0.3) -> np.ndarray:
    """Silence, the wake word (None: none), a short pause, then `parts` (audio or pauses) in order."""
    head = [silence(lead_s)]
    if word:
        head += [espeak(word), silence(gap_s)]
    return np.concatenate([*head, *parts])
