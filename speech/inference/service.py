"""The in-process inference service: lanes of worker threads fed by fair per-session queues."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from speech.inference.engine import Engine
from speech.inference.jobs import (
    InferenceRejected,
    ServiceWarning,
    TranscriptionJob,
    TranscriptionResult,
)
from speech.inference.lanes import Lane, ServiceLimits, drop_ticket
from speech.inference.scheduler import Ticket

logger = logging.getLogger(__name__)

WarningCallback = Callable[[ServiceWarning], Any]
EngineFactory = Callable[[str], Engine]


class InferenceService(Protocol):
    """What consumers call, whichever backend (local threads or channel-layer workers) serves them."""

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def transcribe(
        self, job: TranscriptionJob, *, on_warning: WarningCallback | None = None
    ) -> TranscriptionResult: ...

    def segment_finalized(self, session_id: str, segment_id: str) -> None: ...

    def session_closed(self, session_id: str) -> None: ...

    def metrics(self) -> dict: ...

    def outage(self) -> str | None:
        """Why no job can be served now, or None."""
        ...

    @property
    def supported_languages(self) -> list[str]: ...


class LocalInferenceService:
    """Lanes on worker threads in this process. `await transcribe(job)` never blocks the event loop.

    With `shared_lane` one model serves both kinds (finals before realtime); otherwise a final lane and a
    realtime lane each get their own engine from `engine_factory(lane_name)`.
    """

    def __init__(
        self,
        engine_factory: EngineFactory,
        *,
        shared_lane: bool = True,
        limits: ServiceLimits | None = None,
        name: str = "local",
    ) -> None:
        self.engine_factory = engine_factory
        self.shared_lane = shared_lane
        self.limits = limits or ServiceLimits()
        self.name = name
        self.lanes: dict[str, Lane] = {}
        self._ready = False
        self._stopping = False
        self._start_lock: asyncio.Lock | None = None
        self.load_s = 0.0

    # -- lifecycle ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        if self._ready:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._ready:
                return
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            names = ["shared"] if self.shared_lane else ["final", "realtime"]
            # Model loading and warm-up take seconds: keep them off the event loop.
            engines = [await loop.run_in_executor(None, self.engine_factory, n) for n in names]
            self.load_s = time.monotonic() - started
            for lane_name, engine in zip(names, engines, strict=True):
                lane = Lane(lane_name, engine, self.limits)
                lane.start()
                self.lanes[lane_name] = lane
            self._stopping = False
            self._ready = True

    async def stop(self, *, drain_timeout_s: float = 10.0, close_engines: bool = True) -> None:
        """Stop accepting work, let queued jobs finish (up to `drain_timeout_s`), then stop the lanes."""
        self._stopping = True
        deadline = time.monotonic() + drain_timeout_s
        # A short poll: draining happens once per process lifetime, an event per lane is not worth it.
        while time.monotonic() < deadline and any(  # noqa: ASYNC110
            lane.scheduler.has_work() or lane.in_flight for lane in self.lanes.values()
        ):
            await asyncio.sleep(0.01)
        for lane in self.lanes.values():
            await lane.stop()
            for ticket in _pending_tickets(lane):
                if not ticket.handle.done():
                    ticket.handle.set_exception(InferenceRejected("stopped", "the inference service stopped"))
            if close_engines:
                lane.engine.close()
            lane.publish_depth()  # empty now
        self.lanes.clear()
        self._ready = False

    # -- routing -----------------------------------------------------------------

    def lane_for(self, kind: str) -> Lane:
        if self.shared_lane:
            return self.lanes["shared"]
        return self.lanes["final" if kind == "final" else "realtime"]

    @property
    def engine(self) -> Engine:
        return self.lane_for("final").engine

    @property
    def supported_languages(self) -> list[str]:
        return list(self.engine.supported_languages)

    @property
    def is_multilingual(self) -> bool:
        return bool(self.engine.is_multilingual)

    def queue_depth(self) -> int:
        return sum(lane.scheduler.depth for lane in self.lanes.values())

    # -- API ---------------------------------------------------------------------

    async def transcribe(
        self, job: TranscriptionJob, *, on_warning: WarningCallback | None = None
    ) -> TranscriptionResult:
        """Transcribe one segment. Raises InferenceRejected, JobDropped (realtime only) or InferenceError."""
        future = await self.submit(job, on_warning=on_warning)
        return await future

    async def submit(
        self, job: TranscriptionJob, *, on_warning: WarningCallback | None = None
    ) -> asyncio.Future:
        """Queue a job and return the future of its result.

        A final waits here while its session already has the maximum of queued finals (after telling
        `on_warning`); that wait is the back-pressure on a session that sends faster than it is served.
        """
        if not self._ready:
            await self.start()
        if self._stopping:
            raise InferenceRejected("stopped", "the inference service is stopping")
        lane = self.lane_for(job.kind)
        self._check_language(job, lane)
        lane.metrics.incr("submitted")
        backpressure_ms = 0.0
        if job.kind == "final" and not lane.scheduler.final_room(job.session_id):
            lane.metrics.incr("backpressured")
            if on_warning is not None:
                on_warning(
                    ServiceWarning(
                        "final_queue_full",
                        f"{lane.scheduler.final_count(job.session_id)} final segments are already waiting "
                        "for transcription; audio is arriving faster than it can be transcribed",
                    )
                )
            waited = time.monotonic()
            await lane.wait_for_final_room(job.session_id)
            backpressure_ms = (time.monotonic() - waited) * 1000.0
            if self._stopping:
                raise InferenceRejected("stopped", "the inference service is stopping")
        self._make_room(job, lane)
        future = asyncio.get_running_loop().create_future()
        ticket = Ticket(job=job, enqueued_at=time.monotonic(), handle=future, backpressure_ms=backpressure_ms)
        if job.kind == "final":
            for obsolete in lane.scheduler.push_final(ticket):
                drop_ticket(obsolete, "segment_final", lane.metrics)
        else:
            superseded = lane.scheduler.push_realtime(ticket)
            if superseded is not None:
                drop_ticket(superseded, "superseded", lane.metrics)
        self._publish_depths()
        lane.wake()
        return future

    def _check_language(self, job: TranscriptionJob, lane: Lane) -> None:
        language = job.options.language
        if language and language not in lane.engine.supported_languages:
            lane.metrics.incr("rejected")
            raise InferenceRejected(
                "unsupported_language",
                f"language {language!r} is not supported by model {lane.engine.name} "
                f"(supported: {', '.join(lane.engine.supported_languages[:10])})",
            )

    def _make_room(self, job: TranscriptionJob, lane: Lane) -> None:
        cap = self.limits.max_global_queue_depth
        if self.queue_depth() < cap:
            return
        if job.kind == "realtime" and lane.scheduler.has_pending_realtime(job.session_id):
            return  # replaces its own pending job: the depth does not grow
        if job.kind == "final":
            # Interim work is expendable; a final is not. Shed the oldest realtime job anywhere.
            for candidate in self.lanes.values():
                shed = candidate.scheduler.shed_oldest_realtime()
                if shed is not None:
                    drop_ticket(shed, "shed", candidate.metrics)
                    return
        lane.metrics.incr("rejected")
        raise InferenceRejected(
            "queue_full", f"the inference queue is full ({cap} jobs waiting); try again shortly"
        )

    def segment_finalized(self, session_id: str, segment_id: str) -> None:
        """No more realtime results are wanted for this segment: queued ones drop, late ones are discarded."""
        for lane in self._realtime_lanes():
            for ticket in lane.scheduler.mark_finalized(session_id, segment_id):
                drop_ticket(ticket, "segment_final", lane.metrics)
            lane.publish_depth()

    def session_closed(self, session_id: str) -> None:
        """The session ended: drop its pending realtime work; its queued finals still complete."""
        for lane in self.lanes.values():
            for ticket in lane.scheduler.close_session(session_id):
                drop_ticket(ticket, "session_closed", lane.metrics)
            lane.publish_depth()

    def _publish_depths(self) -> None:
        # Every lane: making room for a final may have shed a job from another lane's queue.
        for lane in self.lanes.values():
            lane.publish_depth()

    def _realtime_lanes(self) -> list[Lane]:
        return [self.lane_for("realtime")] if self.lanes else []

    def outage(self) -> str | None:
        return None  # the models run in this process: while it is up, they are

    def metrics(self) -> dict:
        lanes = {
            name: lane.metrics.snapshot(
                queued_now=lane.scheduler.depth,
                in_flight=lane.in_flight,
                extra={
                    "queued_finals": lane.scheduler.final_depth,
                    "queued_realtime": lane.scheduler.realtime_depth,
                    "sessions": lane.scheduler.sessions(),
                    "engine": lane.engine.name,
                },
            )
            for name, lane in self.lanes.items()
        }
        return {
            "backend": "local",
            "name": self.name,
            "ready": self._ready,
            "shared_lane": self.shared_lane,
            "queue_depth": self.queue_depth(),
            "max_global_queue_depth": self.limits.max_global_queue_depth,
            "max_batch_size": self.limits.max_batch_size,
            "max_batch_wait_ms": self.limits.max_batch_wait_ms,
            "load_s": round(self.load_s, 3),
            "lanes": lanes,
        }


def _pending_tickets(lane: Lane) -> list[Ticket]:
    batch, dropped = lane.scheduler.pop_batch(10**9)
    return batch + [t for t, _ in dropped]
