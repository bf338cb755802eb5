"""Per-session fair queues for one lane: round-robin finals, coalesced realtime work, stale drops."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from speech.inference.jobs import DropReason, TranscriptionJob

# Finalized segment ids remembered per session, to discard late realtime results for them.
FINALIZED_MEMORY = 256
# A session nobody closed (its consumer crashed) is forgotten after this long without work.
IDLE_SESSION_TTL_S = 600.0


@dataclass(eq=False)
class Ticket:
    """A queued job plus whatever the service needs to answer its submitter (`handle`)."""

    job: TranscriptionJob
    enqueued_at: float
    handle: Any = None
    backpressure_ms: float = 0.0

    @property
    def cancelled(self) -> bool:
        done = getattr(self.handle, "done", None)
        return bool(done and done())


@dataclass
class _SessionQueue:
    finals: deque[Ticket] = field(default_factory=deque)
    realtime: Ticket | None = None
    finalized: OrderedDict[str, None] = field(default_factory=OrderedDict)
    closed: bool = False
    last_active: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.finals and self.realtime is None


class LaneScheduler:
    """Queues of one lane. Not thread-safe: the owning service touches it from one event loop.

    Finals are FIFO per session and never dropped here; a session's finals are capped by
    `max_final_per_session` (the service waits for `final_room` before `push_final`). Each session has at
    most one pending realtime job: a newer one replaces it. `pop_batch` serves sessions round-robin,
    finals of all sessions before any realtime job.
    """

    def __init__(
        self,
        *,
        max_final_per_session: int = 8,
        max_realtime_age_ms: float = 1500.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_final_per_session = max_final_per_session
        self.max_realtime_age_s = max_realtime_age_ms / 1000.0
        self.clock = clock
        self._sessions: dict[str, _SessionQueue] = {}
        # Separate rotations so a busy final stream does not reset realtime fairness and vice versa.
        self._final_turns: deque[str] = deque()
        self._realtime_turns: deque[str] = deque()
        self._finals = 0
        self._realtime = 0
        self._last_prune = 0.0

    # -- state -------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self._finals + self._realtime

    @property
    def final_depth(self) -> int:
        return self._finals

    @property
    def realtime_depth(self) -> int:
        return self._realtime

    def has_work(self) -> bool:
        return self.depth > 0

    def final_count(self, session_id: str) -> int:
        queue = self._sessions.get(session_id)
        return len(queue.finals) if queue else 0

    def final_room(self, session_id: str) -> bool:
        return self.final_count(session_id) < self.max_final_per_session

    def has_pending_realtime(self, session_id: str) -> bool:
        queue = self._sessions.get(session_id)
        return bool(queue and queue.realtime is not None)

    def is_finalized(self, session_id: str, segment_id: str) -> bool:
        queue = self._sessions.get(session_id)
        return bool(queue and segment_id in queue.finalized)

    def _queue(self, session_id: str) -> _SessionQueue:
        queue = self._sessions.get(session_id)
        if queue is None:
            queue = self._sessions[session_id] = _SessionQueue()
            self._final_turns.append(session_id)
            self._realtime_turns.append(session_id)
        queue.last_active = self.clock()
        return queue

    # -- submit ------------------------------------------------------------------

    def push_final(self, ticket: Ticket) -> list[Ticket]:
        """Queue a final; returns realtime tickets it made obsolete (same segment, still pending).

        The segment is not marked finalized: a final may be an early transcription at a pause, and
        when speech resumes the segment goes on, with interim text. Its session says when it is
        finalized (`mark_finalized`, from the service's `segment_finalized`)."""
        queue = self._queue(ticket.job.session_id)
        queue.finals.append(ticket)
        self._finals += 1
        return self._take_pending_realtime(queue, ticket.job.segment_id)

    def push_realtime(self, ticket: Ticket) -> Ticket | None:
        """Queue a realtime job; returns the pending one it superseded, if any."""
        queue = self._queue(ticket.job.session_id)
        previous = queue.realtime
        queue.realtime = ticket
        if previous is None:
            self._realtime += 1
        return previous

    def mark_finalized(self, session_id: str, segment_id: str) -> list[Ticket]:
        queue = self._queue(session_id)
        queue.finalized[segment_id] = None
        while len(queue.finalized) > FINALIZED_MEMORY:
            queue.finalized.popitem(last=False)
        return self._take_pending_realtime(queue, segment_id)

    def _take_pending_realtime(self, queue: _SessionQueue, segment_id: str) -> list[Ticket]:
        pending = queue.realtime
        if pending is not None and pending.job.segment_id == segment_id:
            queue.realtime = None
            self._realtime -= 1
            return [pending]
        return []

    def close_session(self, session_id: str) -> list[Ticket]:
        """Forget a session's pending realtime job; its queued finals still run."""
        queue = self._sessions.get(session_id)
        if queue is None:
            return []
        queue.closed = True
        dropped = []
        if queue.realtime is not None:
            dropped.append(queue.realtime)
            queue.realtime = None
            self._realtime -= 1
        self._forget_if_idle(session_id)
        return dropped

    def shed_oldest_realtime(self) -> Ticket | None:
        """Drop the oldest pending realtime job to make room for a final."""
        oldest: _SessionQueue | None = None
        for queue in self._sessions.values():
            if queue.realtime is not None and (
                oldest is None or queue.realtime.job.created_at < oldest.realtime.job.created_at  # type: ignore[union-attr]
            ):
                oldest = queue
        if oldest is None:
            return None
        ticket, oldest.realtime = oldest.realtime, None
        self._realtime -= 1
        return ticket

    # -- serve -------------------------------------------------------------------

    def pop_batch(self, max_items: int) -> tuple[list[Ticket], list[tuple[Ticket, DropReason]]]:
        """Up to `max_items` tickets, round-robin over sessions, finals first; plus what was dropped."""
        batch: list[Ticket] = []
        dropped: list[tuple[Ticket, DropReason]] = []
        now = self.clock()
        self._take(self._final_turns, batch, dropped, max_items, now, final=True)
        if len(batch) < max_items:
            self._take(self._realtime_turns, batch, dropped, max_items, now, final=False)
        for session_id in {t.job.session_id for t, _ in dropped} | {t.job.session_id for t in batch}:
            self._forget_if_idle(session_id)
        if len(self._sessions) > 64 and now - self._last_prune > 10.0:
            self._prune(now)
        return batch, dropped

    def _prune(self, now: float) -> None:
        self._last_prune = now
        for session_id, queue in list(self._sessions.items()):
            if queue.empty and now - queue.last_active > IDLE_SESSION_TTL_S:
                queue.closed = True
                self._forget_if_idle(session_id)

    def _take(
        self,
        turns: deque[str],
        batch: list[Ticket],
        dropped: list[tuple[Ticket, DropReason]],
        max_items: int,
        now: float,
        *,
        final: bool,
    ) -> None:
        progressed = True
        while progressed and len(batch) < max_items:
            progressed = False
            for _ in range(len(turns)):
                session_id = turns[0]
                turns.rotate(-1)
                ticket = self._pop_one(session_id, final, now, dropped)
                if ticket is not None:
                    batch.append(ticket)
                    progressed = True
                    if len(batch) >= max_items:
                        return

    def _pop_one(
        self, session_id: str, final: bool, now: float, dropped: list[tuple[Ticket, DropReason]]
    ) -> Ticket | None:
        queue = self._sessions.get(session_id)
        if queue is None:
            return None
        if final:
            while queue.finals:
                ticket = queue.finals.popleft()
                self._finals -= 1
                if not ticket.cancelled:
                    return ticket
            return None
        ticket = queue.realtime
        if ticket is None:
            return None
        queue.realtime = None
        self._realtime -= 1
        if ticket.cancelled:
            return None
        if now - ticket.job.created_at > self.max_realtime_age_s:
            dropped.append((ticket, "stale"))
            return None
        if ticket.job.segment_id in queue.finalized:
            dropped.append((ticket, "segment_final"))
            return None
        return ticket

    def _forget_if_idle(self, session_id: str) -> None:
        # Open sessions keep their finalized-segment memory; closed, drained ones are forgotten.
        queue = self._sessions.get(session_id)
        if queue is not None and queue.closed and queue.empty:
            del self._sessions[session_id]
            self._final_turns.remove(session_id)
            self._realtime_turns.remove(session_id)

    def sessions(self) -> int:
        return len(self._sessions)
