"""Client side of distributed inference: the InferenceService API, served by workers over Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from speech.inference.dispatch import JobDispatcher, OutageCallback
from speech.inference.jobs import (
    InferenceError,
    InferenceRejected,
    JobDropped,
    ServiceWarning,
    TranscriptionJob,
    TranscriptionResult,
)
from speech.inference.metrics import LaneMetrics
from speech.inference.service import ServiceLimits, WarningCallback
from speech.inference.wire import CHANNEL_PREFIX, DEFAULT_MAX_MESSAGE_BYTES, WORKER_TIMEOUT_S


class _Session:
    def __init__(self) -> None:
        self.finals_in_flight = 0
        self.realtime_running = False
        # The newest realtime job waiting for the running one to come back (older ones are superseded).
        self.realtime_waiting: tuple[TranscriptionJob, asyncio.Future] | None = None
        self.finalized: set[str] = set()


class ChannelLayerInferenceService:
    """Same `await transcribe(job)` API as the local service, served by `inference_worker` processes.

    The transport (`JobDispatcher`) resends a job whose worker falls silent and fails jobs when no worker
    is left; here, per session, at most `max_final_queue_depth_per_session` finals are in flight (more wait,
    with a warning) and at most one realtime job: newer ones replace the one waiting behind it. A final is
    sent up to `job_max_attempts` times, a realtime job once (by a resend its audio is long superseded).
    """

    def __init__(
        self,
        channel_layer: Any,
        *,
        limits: ServiceLimits | None = None,
        job_deadline_s: float = 10.0,
        deadline_per_audio_s: float = 1.0,
        job_max_attempts: int = 3,
        worker_timeout_s: float = WORKER_TIMEOUT_S,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        prefix: str = CHANNEL_PREFIX,
        supported_languages: list[str] | None = None,
        on_outage: OutageCallback | None = None,
        full_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.limits = limits or ServiceLimits()
        self.job_max_attempts = max(1, job_max_attempts)
        self.dispatcher = JobDispatcher(
            channel_layer,
            job_deadline_s=job_deadline_s,
            deadline_per_audio_s=deadline_per_audio_s,
            worker_timeout_s=worker_timeout_s,
            max_message_bytes=max_message_bytes,
            prefix=prefix,
            on_outage=on_outage,
            full_errors=full_errors,
        )
        self.workers = self.dispatcher.workers
        self._languages = supported_languages
        self._sessions: dict[str, _Session] = {}
        self._room: asyncio.Condition | None = None
        self._ready = False
        self.lane_metrics = {kind: LaneMetrics(kind, backend="channels") for kind in ("final", "realtime")}

    # -- lifecycle ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def supported_languages(self) -> list[str]:
        return list(self._languages or ["en"])

    @property
    def is_multilingual(self) -> bool:
        return len(self.supported_languages) > 1

    async def start(self) -> None:
        if self._ready:
            return
        self._room = asyncio.Condition()
        await self.dispatcher.start()
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        await self.dispatcher.stop()

    def outage(self) -> str | None:
        return self.dispatcher.outage()

    def deadline_s(self, job: TranscriptionJob) -> float:
        return self.dispatcher.deadline_s(job)

    # -- API ---------------------------------------------------------------------

    async def transcribe(
        self, job: TranscriptionJob, *, on_warning: WarningCallback | None = None
    ) -> TranscriptionResult:
        if not self._ready:
            await self.start()
        metrics = self.lane_metrics[job.kind]
        metrics.incr("submitted")
        if (
            job.options.language
            and self._languages is not None
            and job.options.language not in self._languages
        ):
            metrics.incr("rejected")
            raise InferenceRejected(
                "unsupported_language", f"language {job.options.language!r} is not supported"
            )
        session = self._sessions.setdefault(job.session_id, _Session())
        if job.kind == "realtime":
            return await self._transcribe_realtime(job, session)
        session.finalized.add(job.segment_id)
        self._drop_waiting_realtime(session, job.segment_id, "segment_final")
        backpressure_ms = await self._wait_for_final_room(job, session, on_warning)
        self._check_capacity(job)
        session.finals_in_flight += 1
        try:
            result = await self._send(job, attempts=self.job_max_attempts)
        finally:
            session.finals_in_flight -= 1
            await self._notify_room()
            self._forget_if_idle(job.session_id)
        result.backpressure_ms = round(backpressure_ms, 3)
        return result

    async def _transcribe_realtime(self, job: TranscriptionJob, session: _Session) -> TranscriptionResult:
        if session.realtime_running:
            # Coalesce on this side: never more than one realtime job per session in Redis.
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            previous = session.realtime_waiting
            session.realtime_waiting = (job, future)
            if previous is not None:
                self._resolve_dropped(previous[1], "superseded", "realtime")
            else:
                self._check_capacity(job)
            return await future
        return await self._run_realtime(job, session)

    async def _run_realtime(self, job: TranscriptionJob, session: _Session) -> TranscriptionResult:
        session.realtime_running = True
        try:
            if time.monotonic() - job.created_at > self.limits.max_realtime_queue_age_ms / 1000.0:
                self.lane_metrics["realtime"].incr("stale_dropped")
                raise JobDropped("stale")
            self._check_capacity(job)
            # Realtime work is not worth resending: by the deadline its audio is long superseded.
            result = await self._send(job, attempts=1)
            if job.segment_id in session.finalized:
                self.lane_metrics["realtime"].incr("segment_final_dropped")
                raise JobDropped("segment_final")
            return result
        finally:
            session.realtime_running = False
            waiting, session.realtime_waiting = session.realtime_waiting, None
            if waiting is not None:
                asyncio.get_running_loop().create_task(self._chain_realtime(waiting, session))
            else:
                self._forget_if_idle(job.session_id)

    async def _chain_realtime(
        self, waiting: tuple[TranscriptionJob, asyncio.Future], session: _Session
    ) -> None:
        job, future = waiting
        if future.done():
            return
        try:
            future.set_result(await self._run_realtime(job, session))
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()

    def _drop_waiting_realtime(self, session: _Session, segment_id: str, reason: str) -> None:
        waiting = session.realtime_waiting
        if waiting is not None and (segment_id == "*" or waiting[0].segment_id == segment_id):
            session.realtime_waiting = None
            self._resolve_dropped(waiting[1], reason, "realtime")

    def _resolve_dropped(self, future: asyncio.Future, reason: str, kind: str) -> None:
        counter = {"superseded": "coalesced", "segment_final": "segment_final_dropped"}.get(
            reason, "coalesced"
        )
        self.lane_metrics[kind].incr(counter)
        if not future.done():
            future.set_exception(JobDropped(reason))  # type: ignore[arg-type]
            future.exception()

    async def _wait_for_final_room(
        self, job: TranscriptionJob, session: _Session, on_warning: WarningCallback | None
    ) -> float:
        cap = self.limits.max_final_queue_depth_per_session
        if session.finals_in_flight < cap:
            return 0.0
        self.lane_metrics["final"].incr("backpressured")
        if on_warning is not None:
            on_warning(
                ServiceWarning(
                    "final_queue_full",
                    f"{session.finals_in_flight} final segments are already waiting for transcription",
                )
            )
        started = time.monotonic()
        assert self._room is not None
        async with self._room:
            await self._room.wait_for(lambda: session.finals_in_flight < cap)
        return (time.monotonic() - started) * 1000.0

    async def _notify_room(self) -> None:
        if self._room is not None:
            async with self._room:
                self._room.notify_all()

    def _check_capacity(self, job: TranscriptionJob) -> None:
        cap = self.limits.max_global_queue_depth
        if self.dispatcher.in_flight >= cap:
            self.lane_metrics[job.kind].incr("rejected")
            raise InferenceRejected(
                "queue_full", f"{cap} inference jobs are already in flight from this server"
            )

    def segment_finalized(self, session_id: str, segment_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.finalized.add(segment_id)
            self._drop_waiting_realtime(session, segment_id, "segment_final")

    def session_closed(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._drop_waiting_realtime(session, "*", "superseded")
            self._forget_if_idle(session_id)

    def _forget_if_idle(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if (
            session
            and not session.finals_in_flight
            and not session.realtime_running
            and not session.realtime_waiting
        ):
            # Finalized ids only matter while that session's realtime jobs can still come back.
            del self._sessions[session_id]

    # -- transport ---------------------------------------------------------------

    async def _send(self, job: TranscriptionJob, *, attempts: int) -> TranscriptionResult:
        metrics = self.lane_metrics[job.kind]
        reply = await self.dispatcher.send(job, attempts=attempts, metrics=metrics)
        return self._unpack(reply, job, metrics)

    def _unpack(
        self, reply: dict[str, Any], job: TranscriptionJob, metrics: LaneMetrics
    ) -> TranscriptionResult:
        if "dropped" in reply:
            reason = reply["dropped"]
            metrics.incr(
                {"stale": "stale_dropped", "segment_final": "segment_final_dropped"}.get(reason, "coalesced")
            )
            raise JobDropped(reason)
        if "error" in reply:
            metrics.incr("failed")
            raise InferenceError(
                reply["error"].get("code", "engine_error"), reply["error"].get("message", "")
            )
        result = TranscriptionResult.from_dict(reply["result"])
        total_ms = (time.monotonic() - job.created_at) * 1000.0
        result.total_ms = round(total_ms, 3)
        metrics.record_job(result.queue_ms, result.inference_ms, total_ms, result.audio_s)
        return result

    def metrics(self) -> dict:
        return {
            "backend": "channels",
            "ready": self._ready,
            "in_flight": self.dispatcher.in_flight,
            "max_global_queue_depth": self.limits.max_global_queue_depth,
            "job_deadline_s": self.dispatcher.job_deadline_s,
            "job_deadline_per_audio_s": self.dispatcher.deadline_per_audio_s,
            "job_max_attempts": self.job_max_attempts,
            "worker_timeout_s": self.workers.timeout_s,
            **self.dispatcher.counters,
            "live_workers": self.workers.live_names(),
            "workers_seen": self.workers.known_names(),
            "workers": self.workers.snapshot(),
            "lanes": {
                kind: m.snapshot(queued_now=self.dispatcher.in_flight_of(kind))
                for kind, m in self.lane_metrics.items()
            },
        }
