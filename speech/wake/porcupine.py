"""Porcupine (pvporcupine 1.9.5, no access key): its built-in keywords, one handle per session."""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from speech.wake.options import WakeWordError

FRAME_SAMPLES = 512  # Porcupine's frame at 16 kHz: the VAD's 32 ms frame
_SHORTS = ctypes.POINTER(ctypes.c_short)


@functools.cache
def _module():
    try:
        import pvporcupine
    except Exception as exc:  # ImportError, or its native library failing to load
        raise WakeWordError(
            "wake_word_unavailable",
            f"wakeword_backend pvporcupine cannot load ({type(exc).__name__}: {exc}); install "
            "pvporcupine==1.9.5 (requirements-models.txt) or use wakeword_backend transcript.",
            "wakeword_backend",
        ) from exc
    return pvporcupine


def keywords() -> list[str]:
    """The built-in keywords this platform's Porcupine can spot (WakeWordError if it cannot load)."""
    return sorted(_module().KEYWORDS)


def check(words: tuple[str, ...]) -> None:
    """WakeWordError naming `wake_words` when a word is not one of Porcupine's built-in keywords."""
    known = set(keywords())
    unknown = [w for w in words if w not in known]
    if unknown:
        raise WakeWordError(
            "wake_word_unavailable",
            f"wake_words: Porcupine has no keyword {', '.join(map(repr, unknown))}; its keywords are "
            f"{', '.join(sorted(known))} (any phrase works with wakeword_backend transcript).",
            "wake_words",
        )


class PorcupineSpotter:
    """Spots the session's words in 512-sample int16 frames; `process` gives the word or None."""

    frame_samples = FRAME_SAMPLES

    def __init__(self, words: tuple[str, ...], sensitivity: float) -> None:
        check(words)
        self.words = words
        self._handle = _module().create(keywords=list(words), sensitivities=[sensitivity] * len(words))
        self._result = ctypes.c_int()

    def process(self, pcm: np.ndarray) -> str | None:
        """One 512-sample int16 frame. The engine is called with the array's own buffer: the
        wrapper's `process` copies it sample by sample into a ctypes array, which took as long
        as the engine itself (7.7 against 3.6 ms per audio second, bench.pipeline's machine)."""
        handle = self._handle
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        if len(pcm) != FRAME_SAMPLES:
            raise ValueError(f"Porcupine takes frames of {FRAME_SAMPLES} samples, not {len(pcm)}")
        status = handle.process_func(handle._handle, pcm.ctypes.data_as(_SHORTS), ctypes.byref(self._result))
        if status is not handle.PicovoiceStatuses.SUCCESS:
            raise handle._PICOVOICE_STATUS_TO_EXCEPTION[status]()
        index = self._result.value
        return self.words[index] if index >= 0 else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.delete()
            self._handle = None
