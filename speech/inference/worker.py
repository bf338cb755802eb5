"""Inference worker: consumes jobs from channel-layer work queues and replies to each requester."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from speech.inference.jobs import InferenceError, JobDropped
from speech.inference.service import LocalInferenceService
from speech.inference.wire import (
    CHANNEL_PREFIX,
    HEARTBEAT_S,
    cancel_and_wait,
    clients_group,
    decode_job,
    encode_ack,
    encode_heartbeat,
    encode_result,
    harden_redis_layer,
    job_channel,
)

logger = logging.getLogger(__name__)


class InferenceWorker:
    """Pulls jobs from "inference.final" / "inference.realtime" (shared by every worker: Redis normal
    channels are work queues) into a local service, and sends each result to the job's reply channel.

    A worker only takes as many jobs as it can batch soon (`prefetch` per channel), so the rest stay in Redis
    for other workers. It acknowledges each job it takes to the requester and announces itself and its jobs
    in flight every `heartbeat_s` to the clients' group, so a requester notices a dead worker within about a
    second and resends what it held; a stopping worker says so last.
    """

    def __init__(
        self,
        channel_layer: Any,
        service: LocalInferenceService,
        *,
        kinds: Iterable[str] = ("final", "realtime"),
        prefetch: int | None = None,
        prefix: str = CHANNEL_PREFIX,
        name: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.layer = channel_layer
        harden_redis_layer(channel_layer)
        self.service = service
        self.kinds = [k for k in kinds if k in ("final", "realtime")]
        if not self.kinds:
            raise ValueError("a worker needs at least one of the lanes 'final' and 'realtime'")
        self.prefetch = prefetch or max(2, service.limits.max_batch_size * 2)
        self.prefix = prefix
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.heartbeat_s = heartbeat_s
        self.handled = 0
        self._in_flight: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._receivers: list[asyncio.Task] = []
        self._heartbeat: asyncio.Task | None = None
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        """Serve until `stop()`; starts (loads models for) the service first."""
        await self.service.start()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="inference-heartbeat")
        self._receivers = [
            asyncio.create_task(self._receive_loop(kind), name=f"inference-receive-{kind}")
            for kind in self.kinds
        ]
        logger.info("inference worker %s ready on %s", self.name, ", ".join(self._channels()))
        await self._stopped.wait()

    def _channels(self) -> list[str]:
        return [job_channel(kind, self.prefix) for kind in self.kinds]

    async def stop(self, *, drain_timeout_s: float = 10.0) -> None:
        """Stop taking jobs, finish (and answer) those already taken, then stop the service."""
        await cancel_and_wait(self._receivers)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=drain_timeout_s)
        if self._heartbeat is not None:
            await cancel_and_wait([self._heartbeat])
            # The last word: requesters stop counting on this worker at once, not after the timeout.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._announce("stopped"), 2.0)
        await self.service.stop(drain_timeout_s=drain_timeout_s)
        self._stopped.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self._announce("serving")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("worker %s: heartbeat failed", self.name, exc_info=True)
            await asyncio.sleep(max(0.0, self.heartbeat_s - (time.monotonic() - started)))

    async def _announce(self, state: str) -> None:
        await self.layer.group_send(
            clients_group(self.prefix),
            encode_heartbeat(
                worker=self.name,
                state=state,
                lanes=self.kinds,
                jobs=list(self._in_flight.values()) if state == "serving" else [],
                handled=self.handled,
                interval_s=self.heartbeat_s,
            ),
        )

    async def _receive_loop(self, kind: str) -> None:
        channel = job_channel(kind, self.prefix)
        slots = asyncio.Semaphore(self.prefetch)
        while True:
            await slots.acquire()
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                slots.release()
                logger.exception("worker %s: receive on %s failed; retrying", self.name, channel)
                await asyncio.sleep(0.5)
                continue
            task = asyncio.create_task(self._handle(message))
            self._tasks.add(task)
            task.add_done_callback(lambda t: (self._tasks.discard(t), slots.release()))

    async def _handle(self, message: dict[str, Any]) -> None:
        reply_channel = message.get("reply")
        job_id = str(message.get("job_id", ""))
        self._in_flight[job_id] = {
            "id": job_id,
            "kind": message.get("kind"),
            "session_id": message.get("session_id"),
            "segment_id": message.get("segment_id"),
        }
        try:
            if reply_channel:
                await self._reply(reply_channel, encode_ack(message, worker=self.name))
            await self._transcribe_and_reply(message, reply_channel)
        finally:
            self._in_flight.pop(job_id, None)

    async def _transcribe_and_reply(self, message: dict[str, Any], reply_channel: str | None) -> None:
        try:
            job = decode_job(message)
            result = await self.service.transcribe(job)
            result.worker = self.name
            reply = encode_result(message, result=result, worker=self.name)
        except JobDropped as dropped:
            reply = encode_result(message, dropped=dropped.reason, worker=self.name)
        except InferenceError as exc:
            reply = encode_result(message, error=(exc.code, exc.message), worker=self.name)
        except Exception as exc:  # a malformed message must not kill the worker
            logger.exception("worker %s: job failed", self.name)
            reply = encode_result(
                message, error=("worker_error", f"{type(exc).__name__}: {exc}"), worker=self.name
            )
        self.handled += 1
        if reply_channel:
            await self._reply(reply_channel, reply)

    async def _reply(self, reply_channel: str, reply: dict[str, Any]) -> None:
        try:
            await self.layer.send(reply_channel, reply)
        except Exception:
            # The requester is gone or its channel is full; it will time out and resend if it still cares.
            logger.warning("worker %s: could not reply on %s", self.name, reply_channel, exc_info=True)
