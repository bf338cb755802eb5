"""Typed events a streaming session emits to its sink; each wire protocol encodes the ones it carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def segment_number(segment_id: str | None) -> int | None:
    """A segment id (`<session>-<index>`) as the per-session number clients see (index + 1)."""
    if not segment_id:
        return None
    try:
        return int(segment_id.rsplit("-", 1)[1]) + 1
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class SegmentTiming:
    """Where a segment lies in the session's audio (seconds from the stream's start)."""

    index: int
    start_s: float
    end_s: float | None = None
    pre_roll_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return 0.0 if self.end_s is None else max(0.0, self.end_s - self.start_s)


@dataclass(frozen=True)
class SpeechStarted:
    """A segment opened: someone started speaking (`continued`: after a max-length cut)."""

    segment_id: str
    timing: SegmentTiming
    first_voiced_s: float | None = None
    continued: bool = False
    wake_word: str | None = None  # the wake word that opened it (wake-word mode)


@dataclass(frozen=True)
class SpeechEnded:
    """The segment closed (end of turn, stop, max length, clear); its final follows unless cleared."""

    segment_id: str
    timing: SegmentTiming
    end_reason: str


@dataclass(frozen=True)
class TranscriptionStarted:
    """The final transcription of a closed segment is under way."""

    segment_id: str


@dataclass(frozen=True)
class Interim:
    """Interim text of an open segment, split into the part that stopped changing and the rest."""

    segment_id: str
    sequence: int
    text: str
    stable_text: str
    unstable_text: str
    confidence: float
    speaker: str | None = None  # the voice it most likely is (speakers enrichment), None: not known
    wake_word: str | None = None  # the wake word that opened its segment (wake-word mode)


@dataclass(frozen=True)
class Final:
    """A segment's final text: stored before it is emitted; replaces the segment's interim text."""

    segment_id: str
    timing: SegmentTiming
    text: str
    confidence: float | None
    language: str
    end_reason: str
    latency_ms: float | None
    words: list[dict[str, Any]] | None = None  # None: word timings were not asked for
    speaker: str | None = None  # speaker label (speakers enrichment on), e.g. "speaker_1"
    enrichment: Enrichment | None = None  # None: no enrichment stage is on
    wake_word: str | None = None  # the wake word that opened the segment (wake-word mode)


@dataclass(frozen=True)
class Enrichment:
    """What the enrichment stages said about a final (and the session so far).

    A field is None when its stage is off. Masked text never appears here: `profanity` holds the
    masked forms, `redacted` only counts.
    """

    sentiment: dict[str, Any] | None = None  # this segment: {label, score}
    sentences: list[dict[str, Any]] | None = None  # this segment's [{text, sentiment, score}]
    session_sentiment: dict[str, Any] | None = None  # the session so far: {label, score}
    topics: list[dict[str, Any]] | None = None  # the session's [{topic, confidence, mentions}]
    speakers: list[dict[str, Any]] | None = None  # [{id, speaking_time, segments}]
    profanity: list[str] | None = None  # masked forms of the words filtered in this segment
    redacted: dict[str, int] | None = None  # kind -> how many were redacted in this segment


TURN_EAGER_END = "eager_end"  # the turn probably ended (the final follows unless speech resumes)
TURN_RESUMED = "resumed"  # speech went on after an eager_end: the turn continues
TURN_END = "end"  # the turn's final was sent


@dataclass(frozen=True)
class Turn:
    """End-of-turn signal for voice agents; `reason` is the verdict or what closed the turn."""

    segment_id: str
    state: str
    reason: str | None = None


WAKE_WAIT_STARTED = "wait_started"  # listening for a wake word; nothing is transcribed
WAKE_WAIT_ENDED = "wait_ended"  # a segment opened after a wake word
WAKE_DETECTED = "detected"  # a wake word was heard: the next voice (within the timeout) is transcribed
WAKE_TIMEOUT = "timeout"  # no voice within the timeout after the wake word: waiting again
WAKE_FOLLOWUP_STARTED = "followup_started"  # after a segment: voice within the window needs no wake word
WAKE_FOLLOWUP_TIMEOUT = "followup_timeout"  # the window passed without voice: waiting again


@dataclass(frozen=True)
class WakeWord:
    """A wake-word state change (wake-word mode); `position_s` is where in the stream it happened."""

    state: str
    position_s: float
    word: str | None = None  # detected, wait_ended: which wake word
    duration_s: float | None = None  # followup_started: the window, in seconds


@dataclass(frozen=True)
class Notice:
    """Something the client should know that is not a failure (a warning)."""

    code: str
    message: str
    segment_id: str | None = None


@dataclass(frozen=True)
class Error:
    """Something failed (`where`: inference, storage, ...); the stream goes on."""

    code: str
    message: str
    where: str
    segment_id: str | None = None


SessionEvent = (
    SpeechStarted | SpeechEnded | TranscriptionStarted | Interim | Final | Turn | WakeWord | Notice | Error
)
