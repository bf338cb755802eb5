"""Client side of distributed inference: send jobs to workers over the channel layer, await replies."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.exceptions import ChannelFull

from transcription.inference.jobs import (
    InferenceError,
    InferenceRejected,
    JobDropped,
    ServiceWarning,
    TranscriptionJob,
    TranscriptionResult,
)
from transcription.inference.metrics import LaneMetrics
from transcription.inference.service import ServiceLimits, WarningCallback
from transcription.inference.wire import (
    ACK_TYPE,
    CHANNEL_PREFIX,
    DEFAULT_MAX_MESSAGE_BYTES,
    HEARTBEAT_TYPE,
    RESULT_TYPE,
    WORKER_TIMEOUT_S,
    cancel_and_wait,
    clients_group,
    encode_job,
    harden_redis_layer,
    job_channel,
)
from transcription.inference.workers import WorkerRegistry

NO_WORKER = "no_inference_worker"
# Group membership expires in channels-redis (a day by default): a long-running process joins again.
GROUP_REJOIN_S = 600.0

OutageCallback = Callable[[str], Awaitable[None]]

logger = logging.getLogger(__name__)


class _Session:
    def __init__(self) -> None:
        self.finals_in_flight = 0
        self.realtime_running = False
        # The newest realtime job waiting for the running one to come back (older ones are superseded).
        self.realtime_waiting: tuple[TranscriptionJob, asyncio.Future] | None = None
        self.finalized: set[str] = set()


@dataclass
class _Pending:
    segment_id: str
    sequence: int
    kind: str
    future: asyncio.Future
    attempt: int = 0
    holder: str = ""  # the worker that acknowledged the current attempt
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class ChannelLayerInferenceService:
    """Same `await transcribe(job)` API as the local service, served by `inference_worker` processes.

    Replies, acknowledgements and the workers' heartbeats arrive on one process-local channel of the
    layer's ordinary kind (`new_channel()`): channels-redis reads every process-local channel of a layer
    through one receive lock that waits on one Redis list, so a channel with a prefix of its own would be
    starved by any connected consumer.

    A worker acknowledges each job it takes; when that worker falls silent (no heartbeat for
    `worker_timeout_s`) the job is resent at once. A job nobody acknowledged (or a worker that heartbeats
    but never answers) is resent after its deadline, `job_deadline_s` plus `deadline_per_audio_s` per second
    of audio, up to `job_max_attempts` sends, then fails with InferenceError("deadline_exceeded"). Replies
    are matched by job id, segment id and sequence; a second reply for the same job is ignored. With no live
    worker, jobs fail at once with `no_inference_worker` and `on_outage` is called, so streams can be told.
    Per session, at most `max_final_queue_depth_per_session` finals are in flight (more wait, with a
    warning) and at most one realtime job: newer ones replace the one waiting behind it.
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
    ) -> None:
        self.layer = channel_layer
        self.limits = limits or ServiceLimits()
        self.job_deadline_s = job_deadline_s
        self.deadline_per_audio_s = deadline_per_audio_s
        self.job_max_attempts = max(1, job_max_attempts)
        self.max_message_bytes = max_message_bytes
        self.prefix = prefix
        self.on_outage = on_outage
        self._languages = supported_languages
        self.reply_channel = ""
        self._pending: dict[str, _Pending] = {}
        self._sessions: dict[str, _Session] = {}
        self._ids = itertools.count(1)
        self._client_id = uuid.uuid4().hex[:12]
        self._tasks: list[asyncio.Task] = []
        self._room: asyncio.Condition | None = None
        self._heard = asyncio.Event()
        self._had_workers = False
        self._ready = False
        self.counters = {
            "retried": 0,
            "resent_lost": 0,
            "duplicates": 0,
            "deadline_exceeded": 0,
            "outages": 0,
        }
        self.lane_metrics = {kind: LaneMetrics(kind) for kind in ("final", "realtime")}
        self.workers = WorkerRegistry(worker_timeout_s)

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
        """Open the reply channel, join the heartbeat group and wait (one timeout at most) to hear workers."""
        if self._ready:
            return
        harden_redis_layer(self.layer)
        self.reply_channel = await self.layer.new_channel()
        await self.layer.group_add(clients_group(self.prefix), self.reply_channel)
        self._room = asyncio.Condition()
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="inference-replies"),
            asyncio.create_task(self._watch_loop(), name="inference-workers"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._heard.wait(), self.workers.timeout_s)
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self.reply_channel:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.layer.group_discard(clients_group(self.prefix), self.reply_channel), 2
                )
        self._fail_pending(InferenceRejected("stopped", "the inference client stopped"))

    def outage(self) -> str | None:
        """Why no job can be served now (no live worker), or None."""
        if self.workers.live_names():
            return None
        return "No inference worker is running; try again when one is."

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
            result = await self._send_with_retries(job, attempts=self.job_max_attempts)
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
            result = await self._send_with_retries(job, attempts=1)
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
        if len(self._pending) >= cap:
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

    def deadline_s(self, job: TranscriptionJob) -> float:
        """How long one attempt may wait for its reply: longer audio takes longer to transcribe."""
        return self.job_deadline_s + self.deadline_per_audio_s * job.duration_s

    async def _send_with_retries(self, job: TranscriptionJob, *, attempts: int) -> TranscriptionResult:
        job_id = f"{self._client_id}-{next(self._ids)}"
        pending = _Pending(job.segment_id, job.sequence, job.kind, asyncio.get_running_loop().create_future())
        self._pending[job_id] = pending
        channel = job_channel(job.kind, self.prefix)
        metrics = self.lane_metrics[job.kind]
        deadline = self.deadline_s(job)
        started = time.monotonic()
        lost = False
        try:
            for attempt in range(1, attempts + 1):
                message = encode_job(
                    job,
                    job_id=job_id,
                    attempt=attempt,
                    reply_channel=self.reply_channel,
                    max_bytes=self.max_message_bytes,
                )
                self._check_workers(metrics)
                pending.attempt, pending.holder = attempt, ""
                pending.lost.clear()
                try:
                    # A stalled Redis must not hang the caller past its deadline.
                    await asyncio.wait_for(self.layer.send(channel, message), deadline)
                    outcome = await self._await_reply(pending, deadline)
                except ChannelFull as exc:
                    metrics.incr("rejected")
                    raise InferenceRejected("queue_full", f"the {channel} queue is full") from exc
                except (InferenceRejected, InferenceError):
                    raise
                except Exception as exc:
                    # Redis errors (a restart, a dropped connection) count as a failed attempt.
                    if not isinstance(exc, TimeoutError):
                        logger.warning("inference job %s could not be sent: %s", job_id, exc)
                        await asyncio.sleep(min(1.0, deadline))
                    outcome = "timeout"
                if isinstance(outcome, dict):
                    reply = outcome
                    break
                lost = outcome == "lost"
                if attempt < attempts:
                    self.counters["retried"] += 1
                    if lost:
                        self.counters["resent_lost"] += 1
                        logger.warning(
                            "inference job %s: worker %s went silent; resending", job_id, pending.holder
                        )
                    else:
                        logger.warning("inference job %s got no reply in %.1fs; resending", job_id, deadline)
            else:
                self.counters["deadline_exceeded"] += 1
                if job.kind == "realtime":
                    metrics.incr("stale_dropped")
                    raise JobDropped("stale")
                metrics.incr("failed")
                if lost:
                    raise InferenceError(
                        "worker_lost", f"the inference worker went silent on each of {attempts} attempt(s)"
                    )
                raise InferenceError(
                    "deadline_exceeded",
                    f"no inference worker answered within {deadline:.0f}s after {attempts} attempt(s)",
                )
        finally:
            self._pending.pop(job_id, None)
        return self._unpack(reply, job, metrics, started)

    def _check_workers(self, metrics: LaneMetrics) -> None:
        reason = self.outage()
        if reason is not None:
            metrics.incr("rejected")
            raise InferenceError(NO_WORKER, reason)

    async def _await_reply(self, pending: _Pending, deadline: float) -> dict[str, Any] | str:
        """The reply, or "lost" (its worker went silent), or "timeout"; raises what the outage set."""
        lost = asyncio.ensure_future(pending.lost.wait())
        try:
            await asyncio.wait({pending.future, lost}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if pending.future.done():
            return pending.future.result()
        return "lost" if pending.lost.is_set() else "timeout"

    def _unpack(
        self, reply: dict[str, Any], job: TranscriptionJob, metrics: LaneMetrics, started: float
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

    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.reply_channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("inference reply channel receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            kind = message.get("type")
            if kind == HEARTBEAT_TYPE:
                self._on_heartbeat(message)
            elif kind == ACK_TYPE:
                pending = self._pending.get(str(message.get("job_id")))
                if pending is not None and pending.attempt == message.get("attempt"):
                    pending.holder = str(message.get("worker") or "")
            elif kind == RESULT_TYPE:
                self._on_result(message)

    def _on_heartbeat(self, message: dict[str, Any]) -> None:
        worker = self.workers.heard(message)
        if worker is None:
            return
        self._heard.set()
        if worker.state != "serving":
            self._check_holders()  # a stopping worker's word counts at once

    def _on_result(self, message: dict[str, Any]) -> None:
        self.workers.seen_reply(str(message.get("worker", "")))
        pending = self._pending.get(str(message.get("job_id")))
        if (
            pending is None
            or pending.future.done()
            or pending.segment_id != message.get("segment_id")
            or pending.sequence != message.get("sequence")
        ):
            self.counters["duplicates"] += 1
            return
        pending.future.set_result(message)

    async def _watch_loop(self) -> None:
        """Resend the jobs of workers gone silent; on losing the last worker, fail jobs and tell streams."""
        step = min(0.2, self.workers.timeout_s / 4)
        joined = time.monotonic()
        while True:
            before = time.monotonic()
            await asyncio.sleep(step)
            if time.monotonic() - before > step + max(0.25, step):
                # This event loop was stalled (a first import, a CPU-starved host): heartbeats may be
                # waiting unread in Redis. Let the receiver catch up before judging anyone dead.
                continue
            try:
                self._check_holders()
                if time.monotonic() - joined > GROUP_REJOIN_S:
                    joined = time.monotonic()
                    await self.layer.group_add(clients_group(self.prefix), self.reply_channel)
                    self.workers.forget_old()
                await self._check_outage()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("watching the inference workers failed")

    def _check_holders(self) -> None:
        for pending in self._pending.values():
            if pending.holder and not pending.future.done() and not self.workers.alive(pending.holder):
                pending.lost.set()

    async def _check_outage(self) -> None:
        alive = bool(self.workers.live_names())
        if alive or not self._had_workers:
            self._had_workers = self._had_workers or alive
            return
        self._had_workers = False
        self.counters["outages"] += 1
        reason = self.outage() or ""
        logger.error("inference: no live worker (last heard: %s)", ", ".join(self.workers.known_names()))
        self._fail_pending(InferenceError(NO_WORKER, reason))
        if self.on_outage is not None:
            await self.on_outage(reason)

    def _fail_pending(self, error: Exception) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
                pending.future.exception()

    def metrics(self) -> dict:
        return {
            "backend": "channels",
            "ready": self._ready,
            "in_flight": len(self._pending),
            "max_global_queue_depth": self.limits.max_global_queue_depth,
            "job_deadline_s": self.job_deadline_s,
            "job_deadline_per_audio_s": self.deadline_per_audio_s,
            "job_max_attempts": self.job_max_attempts,
            "worker_timeout_s": self.workers.timeout_s,
            **self.counters,
            "live_workers": self.workers.live_names(),
            "workers_seen": self.workers.known_names(),
            "workers": self.workers.snapshot(),
            "lanes": {
                kind: m.snapshot(queued_now=sum(1 for p in self._pending.values() if p.kind == kind))
                for kind, m in self.lane_metrics.items()
            },
        }
