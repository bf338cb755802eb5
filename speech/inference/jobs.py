"""Job, result and error types shared by engines, the scheduler and the services."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from speech.audio import SAMPLE_RATE

JobKind = Literal["final", "realtime"]
DropReason = Literal["superseded", "stale", "segment_final", "shed", "session_closed"]


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None
    beam_size: int = 1
    initial_prompt: str | None = None
    word_timestamps: bool = False
    task: str = "transcribe"
    keyterms: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "keyterms": list(self.keyterms)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscribeOptions:
        return cls(
            language=data.get("language"),
            beam_size=int(data.get("beam_size") or 1),
            initial_prompt=data.get("initial_prompt"),
            word_timestamps=bool(data.get("word_timestamps", False)),
            task=data.get("task") or "transcribe",
            keyterms=tuple(data.get("keyterms") or ()),
        )


@dataclass
class TranscriptionJob:
    session_id: str
    segment_id: str
    sequence: int
    kind: JobKind
    audio: np.ndarray
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    created_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.kind not in ("final", "realtime"):
            raise ValueError(f"job kind must be 'final' or 'realtime', got {self.kind!r}")
        if self.audio.dtype != np.float32 or self.audio.ndim != 1:
            self.audio = np.ascontiguousarray(self.audio, dtype=np.float32).reshape(-1)

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.session_id, self.segment_id, self.sequence, self.kind)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EngineOutput:
    """What an engine returns for one segment (timings are added by the service)."""

    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    language: str = "en"
    language_probability: float = 1.0
    compression_ratio: float = 0.0
    # True when the hallucination guard blanked the text (silence decoded as words).
    suppressed: bool = False


@dataclass
class TranscriptionResult:
    session_id: str
    segment_id: str
    sequence: int
    kind: JobKind
    text: str
    words: list[Word]
    confidence: float
    no_speech_prob: float
    avg_logprob: float
    language: str
    language_probability: float
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    total_ms: float = 0.0
    batch_size: int = 1
    suppressed: bool = False
    # Milliseconds the submitter waited for room in its session's final queue.
    backpressure_ms: float = 0.0
    audio_s: float = 0.0
    lane: str = ""
    worker: str = ""

    @property
    def backpressured(self) -> bool:
        return self.backpressure_ms > 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptionResult:
        fields = dict(data)
        fields["words"] = [Word(**w) for w in data.get("words", [])]
        return cls(**fields)


class InferenceError(Exception):
    """Inference failed for a job (engine error, worker lost past its retries, bad input)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InferenceRejected(InferenceError):
    """The service refused a job before queueing it (queue_full, too_large, bad_language, stopped)."""


class JobDropped(Exception):
    """A realtime job was intentionally not transcribed (its result would be obsolete)."""

    def __init__(self, reason: DropReason) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ServiceWarning:
    """Told to a session when its work is being slowed down (e.g. its final queue is full)."""

    code: str
    message: str
