"""A finished segment, as it is stored and sent, and when an early final can stand for it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from speech import events
from speech.audio import SAMPLE_RATE
from speech.inference.jobs import TranscriptionResult
from speech.segmenter import SegmentClosed


@dataclass
class FinalSegment:
    """A finished segment, as stored and as sent."""

    index: int
    segment_id: str
    start_s: float
    end_s: float
    text: str
    confidence: float | None
    language: str
    words: list[dict]
    end_reason: str
    pre_roll_s: float
    latency_ms: float | None
    result: TranscriptionResult | None = field(default=None, repr=False)
    # Set by the enrichment stage (speech.enrich.session) before the final is stored and sent.
    speaker: str = ""
    sentiment: dict[str, Any] | None = None
    enrichment: events.Enrichment | None = None
    analysis: dict[str, Any] | None = field(default=None, repr=False)  # the session's, stored with it
    wake_word: str = ""  # the wake word that opened the segment (wake-word mode)

    @classmethod
    def of(
        cls,
        index: int,
        segment_id: str,
        event: SegmentClosed,
        result: TranscriptionResult | None,
        default_language: str | None,
        latency_ms: float,
    ) -> FinalSegment:
        """The final of a closed segment from its transcription (None: it failed; empty text)."""
        return cls(
            index=index,
            segment_id=segment_id,
            start_s=event.start_s,
            end_s=event.end_s,
            text=result.text.strip() if result is not None else "",
            confidence=result.confidence if result is not None else None,
            language=(result.language if result is not None else "") or (default_language or ""),
            words=[w.to_dict() for w in result.words] if result is not None else [],
            end_reason=event.end_reason,
            pre_roll_s=event.pre_roll_s,
            latency_ms=latency_ms,
            result=result,
        )

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def event(self, *, words: bool) -> events.Final:
        """The event that tells the client (`words`: with word timings)."""
        return events.Final(
            self.segment_id,
            events.SegmentTiming(self.index, self.start_s, self.end_s, self.pre_roll_s),
            self.text,
            self.confidence,
            self.language,
            self.end_reason,
            self.latency_ms,
            words=self.words if words else None,
            speaker=self.speaker or None,
            enrichment=self.enrichment,
            wake_word=self.wake_word or None,
        )

    def stored_fields(self) -> dict[str, Any]:
        """The fields a store persists (services.segment_finalize's keywords)."""
        return {
            "index": self.index,
            "segment_id": self.segment_id,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "confidence": self.confidence,
            "language": self.language,
            "words": self.words,
            "speaker": self.speaker,
            "sentiment": (self.sentiment or {}).get("label", ""),
            "sentiment_score": (self.sentiment or {}).get("score"),
            "end_reason": self.end_reason,
            "latency_ms": self.latency_ms,
            "analysis": self.analysis,
            "wake_word": self.wake_word,
        }


def only_silence_added(early_samples: int, event: SegmentClosed) -> bool:
    if event.last_voiced_s is None:
        return True
    voiced_samples = round((event.last_voiced_s - event.start_s) * SAMPLE_RATE)
    return voiced_samples <= early_samples


class ArrivalLog:
    """When recent audio arrived (stream offset, wall clock), to date the end of speech for latency."""

    def __init__(self, size: int = 2048) -> None:
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=size)

    def add(self, offset_s: float, wall: float) -> None:
        self._arrivals.append((offset_s, wall))

    def wall_at(self, offset_s: float) -> float | None:
        """Wall-clock time at which the audio at `offset_s` had arrived."""
        for position, wall in self._arrivals:
            if position >= offset_s:
                return wall
        return None
