"""Inference worker: consumes jobs from channel-layer work queues and replies to each requester."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable
from typing import Any

from transcription.inference.jobs import InferenceError, JobDropped
from transcription.inference.service import LocalInferenceService
from transcription.inference.wire import (
    CHANNEL_PREFIX,
    cancel_and_wait,
    decode_job,
    encode_result,
    harden_redis_layer,
    job_channel,
)

logger = logging.getLogger(__name__)


class InferenceWorker:
    """Pulls jobs from "inference.final" / "inference.realtime" (shared by every worker: Redis normal
    channels are work queues) into a local service, and sends each result to the job's reply channel.

    A worker only takes as many jobs as it can batch soon (`prefetch` per channel), so the rest stay in Redis
    for other workers and a crash loses little (the client resends after its deadline).
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
        self.handled = 0
        self._tasks: set[asyncio.Task] = set()
        self._receivers: list[asyncio.Task] = []
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        """Serve until `stop()`; starts (loads models for) the service first."""
        await self.service.start()
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
        await self.service.stop(drain_timeout_s=drain_timeout_s)
        self._stopped.set()

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
        if not reply_channel:
            return
        try:
            await self.layer.send(reply_channel, reply)
        except Exception:
            # The requester is gone or its channel is full; it will time out and resend if it still cares.
            logger.warning("worker %s: could not reply on %s", self.name, reply_channel, exc_info=True)
