"""Jobs to inference workers and replies back over the channel layer, noticing workers that fall silent."""

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

from speech.inference.jobs import InferenceError, InferenceRejected, JobDropped, TranscriptionJob
from speech.inference.metrics import LaneMetrics
from speech.inference.wire import (
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
from speech.inference.workers import WorkerRegistry

NO_WORKER = "no_inference_worker"
# Group membership expires in channels-redis (a day by default): a long-running process joins again.
GROUP_REJOIN_S = 600.0

OutageCallback = Callable[[str], Awaitable[None]]
OUTAGE_PATIENCE = 2.0

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    segment_id: str
    sequence: int
    kind: str
    future: asyncio.Future
    attempt: int = 0
    holder: str = ""  # the worker that acknowledged the current attempt
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class JobDispatcher:
    """Sends jobs to the workers' queues and matches their replies, acknowledgements and heartbeats.

    Replies, acknowledgements and heartbeats arrive on one process-local channel of the layer's ordinary
    kind (`new_channel()`): channels-redis reads every process-local channel of a layer through one
    receive lock that waits on one Redis list, so a channel with a prefix of its own would be starved by
    any connected consumer.

    A worker acknowledges each job it takes; when that worker falls silent (no heartbeat for
    `worker_timeout_s`) the job is resent at once. A job nobody acknowledged (or a worker that heartbeats
    but never answers) is resent after its deadline, `job_deadline_s` plus `deadline_per_audio_s` per second
    of audio. Replies are matched by job id, segment id and sequence; a second reply for the same job is
    ignored. With no live worker, jobs fail at once with `no_inference_worker`, and on losing the last one
    the jobs in flight fail too and `on_outage` is awaited.
    """

    def __init__(
        self,
        channel_layer: Any,
        *,
        job_deadline_s: float = 10.0,
        deadline_per_audio_s: float = 1.0,
        worker_timeout_s: float = WORKER_TIMEOUT_S,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        prefix: str = CHANNEL_PREFIX,
        on_outage: OutageCallback | None = None,
        full_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        """`full_errors`: what the layer raises for a full queue (channels' ChannelFull), given by the
        caller so that this module needs no Channels import."""
        self.layer = channel_layer
        self.full_errors = full_errors
        self.job_deadline_s = job_deadline_s
        self.deadline_per_audio_s = deadline_per_audio_s
        self.max_message_bytes = max_message_bytes
        self.prefix = prefix
        self.on_outage = on_outage
        self.reply_channel = ""
        self.workers = WorkerRegistry(worker_timeout_s)
        self.counters = {
            "retried": 0,
            "resent_lost": 0,
            "duplicates": 0,
            "deadline_exceeded": 0,
            "outages": 0,
        }
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._client_id = uuid.uuid4().hex[:12]
        self._tasks: list[asyncio.Task] = []
        self._heard = asyncio.Event()
        self._had_workers = False

    async def start(self) -> None:
        """Open the reply channel, join the heartbeat group and wait (one timeout at most) to hear workers."""
        harden_redis_layer(self.layer)
        self.reply_channel = await self.layer.new_channel()
        await self.layer.group_add(clients_group(self.prefix), self.reply_channel)
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="inference-replies"),
            asyncio.create_task(self._watch_loop(), name="inference-workers"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._heard.wait(), self.workers.timeout_s)

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self.reply_channel:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.layer.group_discard(clients_group(self.prefix), self.reply_channel), 2
                )
        self._fail_pending(InferenceRejected("stopped", "the inference client stopped"))

    def outage(self) -> str | None:
        """Why no job can be served now, or None.

        A job is resent as soon as its worker misses `worker_timeout_s` (a needless resend costs only
        work: the first reply wins). Declaring every worker gone ends every stream, so that waits
        twice as long, unless the workers said they stopped.
        """
        if self.workers.live_names(patience=OUTAGE_PATIENCE):
            return None
        return "No inference worker is running; try again when one is."

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def in_flight_of(self, kind: str) -> int:
        return sum(1 for p in self._pending.values() if p.kind == kind)

    def deadline_s(self, job: TranscriptionJob) -> float:
        """How long one attempt may wait for its reply: longer audio takes longer to transcribe."""
        return self.job_deadline_s + self.deadline_per_audio_s * job.duration_s

    async def send(self, job: TranscriptionJob, *, attempts: int, metrics: LaneMetrics) -> dict[str, Any]:
        """Send `job` (again on a lost worker or a deadline, up to `attempts` sends) and return the reply."""
        job_id = f"{self._client_id}-{next(self._ids)}"
        pending = _Pending(job.segment_id, job.sequence, job.kind, asyncio.get_running_loop().create_future())
        self._pending[job_id] = pending
        channel = job_channel(job.kind, self.prefix)
        deadline = self.deadline_s(job)
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
                except (InferenceRejected, InferenceError):
                    raise
                except self.full_errors as exc:
                    metrics.incr("rejected")
                    raise InferenceRejected("queue_full", f"the {channel} queue is full") from exc
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
        return reply

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
        if worker.state == "serving":
            self._had_workers = True  # so that losing it is an outage, even between two watch rounds
        else:
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
                self._check_outage()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("watching the inference workers failed")

    def _check_holders(self) -> None:
        for pending in self._pending.values():
            if pending.holder and not pending.future.done() and not self.workers.alive(pending.holder):
                pending.lost.set()

    def _check_outage(self) -> None:
        if self.workers.live_names() or not self._had_workers:
            return
        self._had_workers = False
        self.counters["outages"] += 1
        reason = self.outage() or ""
        logger.error("inference: no live worker (last heard: %s)", ", ".join(self.workers.known_names()))
        self._fail_pending(InferenceError(NO_WORKER, reason))
        if self.on_outage is not None:
            # Finishing every stream takes a while; the watch goes on meanwhile (a worker may return).
            task = asyncio.ensure_future(self.on_outage(reason))
            self._tasks.append(task)
            task.add_done_callback(self._outage_done)

    def _outage_done(self, task: asyncio.Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("telling the streams of the inference outage failed", exc_info=task.exception())

    def _fail_pending(self, error: Exception) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
                pending.future.exception()
