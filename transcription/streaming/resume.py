"""Resuming a dropped /ws/transcribe stream: the resume token, the parked stream and its window.

A stream that may be resumed is a `Resumable`: the session's sink, forwarding events to the
connection attached now. When that connection drops abnormally the stream is parked: its lease
(session, billing, stream place, recorder) stays as it is, events made meanwhile are kept, and a
timer finishes it at the end of the window. A connection of the same user presenting the token
within the window attaches to it and gets those events, in order, once.

Parked streams live in this process only: a resume that reaches another process is not found.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from collections import deque
from typing import Any

from django.conf import settings

from speech import events
from transcription.streaming import registry
from transcription.streaming.lifecycle import Refusal

log = logging.getLogger(__name__)

CLOSE_RESUME_NOT_FOUND = 4404  # unknown token, another user's, or parked in another process
CLOSE_RESUME_EXPIRED = 4410  # this user's stream, but its window ended and it was finished
CLOSE_RESUMED_ELSEWHERE = 4409  # sent to a stale connection whose stream a newer one took over
RESUME_NOT_FOUND = Refusal(
    "resume_not_found", "No stream to resume with that token; start a new one.", CLOSE_RESUME_NOT_FOUND
)
RESUME_EXPIRED = Refusal(
    "resume_expired",
    "The stream was not resumed within its window, so it was finished and saved; start a new one.",
    CLOSE_RESUME_EXPIRED,
)
# Closes after which the client is gone on purpose: the stream ends at once (1001 is a page
# being left or a tab closed, said in a close frame; 1005 a close frame without a code).
GOODBYE_CLOSES = (1000, 1001, 1005)
MAX_BACKLOG = 2000  # events kept while parked (interims are not kept: they are stale by then)
MAX_DELIVERED_FINALS = 200  # finals kept to re-send ones a resuming client says it missed
EXPIRED_MEMORY_S = 600.0  # how long an expired token is told apart from an unknown one

_streams: dict[str, Resumable] = {}
_expired: dict[str, tuple[int, float]] = {}  # token -> (user id, when it expired)


def window_s() -> float:
    """How long a dropped stream waits for its client (0: resume is off)."""
    return float(settings.STT_STREAM.get("RESUME_WINDOW_S", 0) or 0)


def parks_on(close_code: int) -> bool:
    """Whether a disconnect with this code waits for a resume: an abnormal drop, not a goodbye."""
    return window_s() > 0 and close_code not in GOODBYE_CLOSES


def new_token() -> str:
    """A resume token, "<instance>.<random>" when this process has a name (STT_INSTANCE)."""
    instance = settings.STT_STREAM["INSTANCE"]
    random_part = secrets.token_urlsafe(24)
    return f"{instance}.{random_part}" if instance else random_part


class Resumable:
    """One resumable stream: its token, its lease, and the connection attached now (None: parked)."""

    def __init__(self, lease: Any, consumer: Any) -> None:
        self.token = new_token()
        self.user_id = lease.scope["user"].pk
        self.lease = lease
        self.consumer = consumer
        self.handoff: dict[str, Any] = {}  # the dropped connection's protocol state, for the next
        self.end_reason = ""
        self.parked_at: float | None = None
        self._backlog: deque[events.SessionEvent] = deque()
        self._delivered: deque[events.Final] = deque(maxlen=MAX_DELIVERED_FINALS)
        self._timer: asyncio.Task | None = None
        _streams[self.token] = self

    @property
    def consumer(self) -> Any:
        # Held weakly: a connection that went without a disconnect must not live on through its token.
        return self._consumer() if self._consumer is not None else None

    @consumer.setter
    def consumer(self, consumer: Any) -> None:
        self._consumer = weakref.ref(consumer) if consumer is not None else None

    # -- the session's sink --------------------------------------------------------------------

    async def emit(self, event: events.SessionEvent) -> None:
        consumer = self.consumer
        if consumer is None:
            if not isinstance(event, events.Interim) and len(self._backlog) < MAX_BACKLOG:
                self._backlog.append(event)
            return
        await consumer.emit(event)
        if isinstance(event, events.Final):
            self._delivered.append(event)

    # -- parking -------------------------------------------------------------------------------

    def park(self, *, end_reason: str, handoff: dict[str, Any]) -> None:
        """The connection dropped: keep the stream for the window, then finish it."""
        self.consumer = None
        self.handoff = handoff
        self.end_reason = end_reason
        self.parked_at = time.monotonic()
        self.lease.cancel_spawned()  # the dropped connection's idle watch and the like
        registry.track(self)  # a shutdown or an inference outage finishes parked streams too
        self._timer = asyncio.ensure_future(self._expire(window_s()))
        log.info("stream %s parked for %.0f s (%s)", self.lease.client_id, window_s(), end_reason)

    async def _expire(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        _expired[self.token] = (self.user_id, time.monotonic())
        log.info("stream %s was not resumed within %.0f s; finishing it", self.lease.client_id, after_s)
        await self._finish_parked(self.end_reason)

    async def _finish_parked(self, end_reason: str) -> None:
        forget(self)
        registry.untrack(self)
        await self.lease.finish(end_reason=end_reason)

    async def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self._finish_parked("server_shutdown")

    async def inference_outage(self, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self._finish_parked("no_inference_worker")

    # -- resuming ------------------------------------------------------------------------------

    def detach(self) -> dict[str, Any]:
        """A newer connection takes the stream over from one still attached (a drop the server
        has not noticed yet): the old one's protocol state passes on."""
        self.consumer = None
        self.lease.cancel_spawned()
        return self.handoff

    async def attach(self, consumer: Any, *, last_final: int | None) -> int:
        """Attach `consumer`: first the finals after `last_final` it missed, then what was made while
        parked, in order, once; then it gets events as they come. Returns how many were re-sent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        registry.untrack(self)
        replay: list[events.SessionEvent] = []
        if last_final is not None:
            replay = [f for f in self._delivered if _final_number(f) > last_final]
        sent = 0
        for event in replay:
            await consumer.emit(event)
            sent += 1
        # Events keep coming while these are sent; the consumer is attached once none are left.
        while self._backlog:
            event = self._backlog.popleft()
            await consumer.emit(event)
            if isinstance(event, events.Final):
                self._delivered.append(event)
            sent += 1
        self.consumer = consumer
        self.parked_at = None
        return sent


def _final_number(event: events.Final) -> int:
    """A final's per-session number as the client sees it (`segmentId`), 0 when it has none."""
    return events.segment_number(event.segment_id) or 0


def claim(token: str, user_id: int) -> Resumable | Refusal:
    """The stream `token` resumes for this user, or why not (never saying another user's exists)."""
    found = _streams.get(token)
    if found is not None and found.user_id == user_id and not found.lease.finishing:
        return found
    expired = _expired.get(token)
    if expired is not None and expired[0] == user_id and time.monotonic() - expired[1] < EXPIRED_MEMORY_S:
        return RESUME_EXPIRED
    return RESUME_NOT_FOUND


def forget(stream: Resumable) -> None:
    """The stream ended: its token resumes nothing any more."""
    if _streams.get(stream.token) is stream:
        del _streams[stream.token]
    now = time.monotonic()
    for token, (_, when) in list(_expired.items()):
        if now - when > EXPIRED_MEMORY_S:
            del _expired[token]


def parked_count() -> int:
    return sum(1 for s in _streams.values() if s.consumer is None)
