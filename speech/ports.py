"""What a streaming session needs from outside: a sink for its events and finals, and inference."""

from __future__ import annotations

from typing import Protocol

from speech import events
from speech.finals import FinalSegment
from speech.inference.jobs import TranscriptionJob, TranscriptionResult


class SessionSink(Protocol):
    """What a session needs from its endpoint."""

    async def emit(self, event: events.SessionEvent) -> None:
        """Deliver an event to this session's client (only this one)."""

    async def store_final(self, segment: FinalSegment) -> None:
        """Persist a final segment; returns once it is committed."""


class InferenceClient(Protocol):
    async def transcribe(self, job: TranscriptionJob, *, on_warning=None) -> TranscriptionResult: ...

    def segment_finalized(self, session_id: str, segment_id: str) -> None: ...

    def session_closed(self, session_id: str) -> None: ...
