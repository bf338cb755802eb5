"""An in-memory, deterministic engine for fast tests: no model, configurable delay and failures."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from speech.inference.jobs import SAMPLE_RATE, EngineOutput, TranscribeOptions, Word

ENV_DELAY_MS = "STT_FAKE_ENGINE_DELAY_MS"


def _default_text(audio: np.ndarray, options: TranscribeOptions) -> str:
    return f"fake {len(audio) / SAMPLE_RATE:.2f}s"


class FakeEngine:
    """Returns text derived from the audio length (or `text_fn`) after `delay_ms` per batch.

    `delay_ms` defaults to the STT_FAKE_ENGINE_DELAY_MS environment variable so worker subprocesses can be
    slowed down from a test. `fail_fn(audio, options)` returning true makes that item raise.
    """

    def __init__(
        self,
        model: str = "",
        *,
        delay_ms: float | None = None,
        per_item_delay_ms: float = 0.0,
        text_fn: Callable[[np.ndarray, TranscribeOptions], str] | None = None,
        fail_fn: Callable[[np.ndarray, TranscribeOptions], bool] | None = None,
        languages: Sequence[str] = ("en",),
        **_: Any,
    ) -> None:
        if delay_ms is None:
            delay_ms = float(os.environ.get(ENV_DELAY_MS, "0") or 0)
        self.name = f"fake:{model}" if model else "fake"
        self.delay_s = delay_ms / 1000.0
        self.per_item_delay_s = per_item_delay_ms / 1000.0
        self.text_fn = text_fn or _default_text
        self.fail_fn = fail_fn
        self.supported_languages = list(languages)
        self.is_multilingual = len(self.supported_languages) > 1
        self.batches: list[int] = []
        self.seen: list[TranscribeOptions] = []  # every item's options, in order (tests read them)
        self._lock = threading.Lock()

    def warmup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def transcribe_batch(self, items: Sequence[tuple[np.ndarray, TranscribeOptions]]) -> list[EngineOutput]:
        with self._lock:
            self.batches.append(len(items))
            self.seen.extend(options for _, options in items)
        delay = self.delay_s + self.per_item_delay_s * len(items)
        if delay:
            time.sleep(delay)
        outputs = []
        for audio, options in items:
            if self.fail_fn is not None and self.fail_fn(audio, options):
                raise RuntimeError("fake engine failure")
            text = self.text_fn(audio, options)
            words = (
                [
                    Word(start=float(i), end=float(i) + 0.5, word=" " + w, probability=0.9)
                    for i, w in enumerate(text.split())
                ]
                if options.word_timestamps
                else []
            )
            outputs.append(
                EngineOutput(
                    text=text,
                    words=words,
                    avg_logprob=-0.1,
                    no_speech_prob=0.01,
                    language=options.language or self.supported_languages[0],
                    language_probability=1.0,
                )
            )
        return outputs
