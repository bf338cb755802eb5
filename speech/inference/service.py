"""The in-process inference service: lanes of worker threads fed by fair per-session queues."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from speech.inference.engine import Engine, confidence_from_logprob
from speech.inference.jobs import (
    DropReason,
    EngineOutput,
    InferenceError,
    InferenceRejected,
    JobDropped,
    ServiceWarning,
    TranscriptionJob,
    TranscriptionResult,
)
from speech.inference.metrics import DEFAULT_WINDOW_S, LaneMetrics
from speech.inference.scheduler import LaneScheduler, Ticket

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


@dataclass(frozen=True)
class ServiceLimits:
    max_batch_size: int = 8
    max_batch_wait_ms: float = 5.0
    max_global_queue_depth: int = 64
    max_final_queue_depth_per_session: int = 8
    max_realtime_queue_age_ms: float = 1500.0
    metrics_window_s: float = DEFAULT_WINDOW_S


class Lane:
    """One model and one worker thread; batches jobs from its scheduler through the engine."""

    def __init__(self, name: str, engine: Engine, limits: ServiceLimits) -> None:
        self.name = name
        self.engine = engine
        self.limits = limits
        self.scheduler = LaneScheduler(
            max_final_per_session=limits.max_final_queue_depth_per_session,
            max_realtime_age_ms=limits.max_realtime_queue_age_ms,
        )
        self.metrics = LaneMetrics(name, window_s=limits.metrics_window_s)
        self.in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"inference-{name}")
        self._wakeup = asyncio.Event()
        self._room = asyncio.Condition()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"inference-lane-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._wakeup.set()

    async def wait_for_final_room(self, session_id: str) -> None:
        async with self._room:
            await self._room.wait_for(lambda: self.scheduler.final_room(session_id))

    async def _notify_room(self) -> None:
        async with self._room:
            self._room.notify_all()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wait_s = self.limits.max_batch_wait_ms / 1000.0
        max_batch = self.limits.max_batch_size
        while True:
            if not self.scheduler.has_work():
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if wait_s > 0 and self.scheduler.depth < max_batch:
                await self._gather(wait_s, max_batch)
            batch, dropped = self.scheduler.pop_batch(max_batch)
            for ticket, reason in dropped:
                _drop(ticket, reason, self.metrics)
            await self._notify_room()
            if batch:
                await self._execute(loop, batch)

    async def _gather(self, wait_s: float, max_batch: int) -> None:
        # Let other sessions' jobs that arrive within a few ms share this batch.
        deadline = time.monotonic() + wait_s
        while self.scheduler.depth < max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[Ticket]) -> None:
        items = [(t.job.audio, t.job.options) for t in batch]
        self.in_flight = len(batch)
        started = time.monotonic()
        try:
            outputs: list[EngineOutput | BaseException] = list(
                await loop.run_in_executor(self._executor, self.engine.transcribe_batch, items)
            )
        except Exception as exc:
            logger.warning(
                "lane %s: batch of %d failed (%s); retrying one by one", self.name, len(batch), exc
            )
            outputs = [exc] if len(batch) == 1 else await self._one_by_one(loop, items)
        finally:
            self.in_flight = 0
        ended = time.monotonic()
        self.metrics.record_batch(started, ended, len(batch))
        inference_ms = (ended - started) * 1000.0
        for ticket, output in zip(batch, outputs, strict=True):
            self._deliver(ticket, output, started, ended, inference_ms, len(batch))

    async def _one_by_one(
        self, loop: asyncio.AbstractEventLoop, items: list[Any]
    ) -> list[EngineOutput | BaseException]:
        outputs: list[EngineOutput | BaseException] = []
        for item in items:
            try:
                outputs.extend(
                    await loop.run_in_executor(self._executor, self.engine.transcribe_batch, [item])
                )
            except Exception as exc:
                outputs.append(exc)
        return outputs

    def _deliver(
        self,
        ticket: Ticket,
        output: EngineOutput | BaseException,
        started: float,
        ended: float,
        inference_ms: float,
        batch_size: int,
    ) -> None:
        future: asyncio.Future = ticket.handle
        if future.done():
            return
        job = ticket.job
        if isinstance(output, BaseException):
            self.metrics.incr("failed")
            future.set_exception(InferenceError("engine_error", f"{type(output).__name__}: {output}"))
            return
        if job.kind == "realtime" and self.scheduler.is_finalized(job.session_id, job.segment_id):
            _drop(ticket, "segment_final", self.metrics)
            return
        queue_ms = (started - ticket.enqueued_at) * 1000.0
        total_ms = (ended - job.created_at) * 1000.0
        self.metrics.record_job(queue_ms, inference_ms, total_ms, job.duration_s)
        future.set_result(
            TranscriptionResult(
                session_id=job.session_id,
                segment_id=job.segment_id,
                sequence=job.sequence,
                kind=job.kind,
                text=output.text,
                words=list(output.words),
                confidence=0.0 if output.suppressed else confidence_from_logprob(output.avg_logprob),
                no_speech_prob=output.no_speech_prob,
                avg_logprob=output.avg_logprob,
                language=output.language,
                language_probability=output.language_probability,
                queue_ms=round(queue_ms, 3),
                inference_ms=round(inference_ms, 3),
                total_ms=round(total_ms, 3),
                batch_size=batch_size,
                suppressed=output.suppressed,
                backpressure_ms=round(ticket.backpressure_ms, 3),
                audio_s=job.duration_s,
                lane=self.name,
            )
        )


_DROP_COUNTERS = {
    "superseded": "coalesced",
    "stale": "stale_dropped",
    "segment_final": "segment_final_dropped",
    "shed": "shed",
    "session_closed": "coalesced",
}


def _drop(ticket: Ticket, reason: DropReason, metrics: LaneMetrics) -> None:
    metrics.incr(_DROP_COUNTERS[reason])
    future: asyncio.Future = ticket.handle
    if not future.done():
        future.set_exception(JobDropped(reason))
        # Nobody may be awaiting a superseded job any more; don't log "exception never retrieved".
        future.exception()


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
                _drop(obsolete, "segment_final", lane.metrics)
        else:
            superseded = lane.scheduler.push_realtime(ticket)
            if superseded is not None:
                _drop(superseded, "superseded", lane.metrics)
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
                    _drop(shed, "shed", candidate.metrics)
                    return
        lane.metrics.incr("rejected")
        raise InferenceRejected(
            "queue_full", f"the inference queue is full ({cap} jobs waiting); try again shortly"
        )

    def segment_finalized(self, session_id: str, segment_id: str) -> None:
        """No more realtime results are wanted for this segment: queued ones drop, late ones are discarded."""
        for lane in self._realtime_lanes():
            for ticket in lane.scheduler.mark_finalized(session_id, segment_id):
                _drop(ticket, "segment_final", lane.metrics)

    def session_closed(self, session_id: str) -> None:
        """The session ended: drop its pending realtime work; its queued finals still complete."""
        for lane in self.lanes.values():
            for ticket in lane.scheduler.close_session(session_id):
                _drop(ticket, "session_closed", lane.metrics)

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
