"""Lanes: one model and one worker thread each, batching jobs from their fair scheduler."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from speech.inference.engine import Engine, confidence_from_logprob
from speech.inference.jobs import (
    DropReason,
    EngineOutput,
    InferenceError,
    JobDropped,
    TranscriptionResult,
)
from speech.inference.metrics import DEFAULT_WINDOW_S, LaneMetrics
from speech.inference.scheduler import LaneScheduler, Ticket

logger = logging.getLogger(__name__)


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

    def publish_depth(self) -> None:
        """The queue depth gauge follows the scheduler: called wherever jobs join or leave its queues."""
        self.metrics.telemetry.queued(self.scheduler.depth)

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
            self.publish_depth()
            for ticket, reason in dropped:
                drop_ticket(ticket, reason, self.metrics)
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
            drop_ticket(ticket, "segment_final", self.metrics)
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


def drop_ticket(ticket: Ticket, reason: DropReason, metrics: LaneMetrics) -> None:
    metrics.incr(_DROP_COUNTERS[reason])
    future: asyncio.Future = ticket.handle
    if not future.done():
        future.set_exception(JobDropped(reason))
        # Nobody may be awaiting a superseded job any more; don't log "exception never retrieved".
        future.exception()
