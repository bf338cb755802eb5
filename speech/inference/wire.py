"""Channel-layer message formats for jobs and results (msgpack-safe dicts, audio as PCM16 bytes)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from speech.inference.jobs import (
    InferenceRejected,
    TranscribeOptions,
    TranscriptionJob,
    TranscriptionResult,
)

JOB_TYPE = "inference.job"
RESULT_TYPE = "inference.result"
# A worker tells the requester at once which worker took a job, so a job whose worker goes silent is
# resent within about a second instead of waiting for its deadline.
ACK_TYPE = "inference.ack"
# Each worker announces itself, its lanes and its jobs in flight to every web process (a group).
HEARTBEAT_TYPE = "inference.heartbeat"
HEARTBEAT_S = 0.2
# A worker unheard of for this long is taken for dead: its jobs are resent to the others.
WORKER_TIMEOUT_S = 0.8
# Redis would take 512 MB, but every byte sits in Redis and in two processes' memory; 8 MiB of PCM16 is
# about 4.4 minutes of audio, far beyond any speech segment the segmenter cuts.
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
CHANNEL_PREFIX = "inference"


# channels-redis blocks in BZPOPMIN for 5 s while redis-py >= 6 times socket reads out after 5 s by default.
# When the read times out first, Redis still hands the next message to the abandoned BZPOPMIN and it is lost.
REDIS_SOCKET_TIMEOUT_S = 30.0

logger = logging.getLogger(__name__)


def harden_redis_layer(channel_layer: Any) -> None:
    """Give a RedisChannelLayer's hosts a socket timeout longer than its blocking pop, before first use."""
    hosts = getattr(channel_layer, "hosts", None)
    if not isinstance(hosts, list) or getattr(channel_layer, "_layers", None):
        return  # not channels-redis, or its connection pools already exist
    for host in hosts:
        if isinstance(host, dict):
            host.setdefault("socket_timeout", REDIS_SOCKET_TIMEOUT_S)


async def cancel_and_wait(tasks: Iterable[asyncio.Task], *, timeout_s: float = 10.0) -> None:
    """Cancel `tasks` and wait until they finish, cancelling again every 0.1 s while one still runs.

    One cancel() is not enough for a channels-redis receive(): redis-py wraps each socket write in
    asyncio.wait_for(), which before Python 3.12 swallows a cancellation that lands just as the write
    completes (CPython gh-86296). The receive then goes on polling Redis (BZPOPMIN) as if never cancelled,
    until a message arrives, and awaiting the task hangs.
    """
    tasks = list(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            logger.warning("%d task(s) still running %.0fs after being cancelled", len(pending), timeout_s)
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.1, remaining))
    # Retrieve the outcomes so asyncio does not log "exception was never retrieved".
    await asyncio.gather(*(task for task in tasks if task.done()), return_exceptions=True)


def job_channel(kind: str, prefix: str = CHANNEL_PREFIX) -> str:
    return f"{prefix}.{kind}"


def clients_group(prefix: str = CHANNEL_PREFIX) -> str:
    """The group every web process's reply channel joins to hear the workers' heartbeats."""
    return f"{prefix}.clients"


def encode_ack(message: dict[str, Any], *, worker: str) -> dict[str, Any]:
    return {
        "type": ACK_TYPE,
        "job_id": message.get("job_id"),
        "attempt": message.get("attempt", 1),
        "worker": worker,
    }


def encode_heartbeat(
    *, worker: str, state: str, lanes: list[str], jobs: list[dict[str, Any]], handled: int, interval_s: float
) -> dict[str, Any]:
    return {
        "type": HEARTBEAT_TYPE,
        "worker": worker,
        "state": state,  # "serving", or "stopped" as the worker's last word
        "lanes": lanes,
        "jobs": jobs,
        "handled": handled,
        "interval_s": interval_s,
        "sent_at": time.time(),
    }


def audio_to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()


def pcm16_to_audio(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def encode_job(
    job: TranscriptionJob,
    *,
    job_id: str,
    attempt: int,
    reply_channel: str,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> dict[str, Any]:
    size = len(job.audio) * 2
    if size > max_bytes:
        raise InferenceRejected(
            "too_large",
            f"segment audio is {size} bytes as PCM16 ({job.duration_s:.1f}s), over the {max_bytes}-byte "
            "limit of a channel-layer message",
        )
    return {
        "type": JOB_TYPE,
        "job_id": job_id,
        "attempt": attempt,
        "reply": reply_channel,
        "session_id": job.session_id,
        "segment_id": job.segment_id,
        "sequence": job.sequence,
        "kind": job.kind,
        "audio": audio_to_pcm16(job.audio),
        "options": job.options.to_dict(),
        # Monotonic clocks differ between machines: send the age, the worker rebuilds created_at.
        "age_ms": (time.monotonic() - job.created_at) * 1000.0,
        "sent_at": time.time(),
    }


def decode_job(message: dict[str, Any]) -> TranscriptionJob:
    # Wall-clock transit time is added so a job that sat in Redis ages like it would locally.
    transit_s = max(0.0, time.time() - float(message.get("sent_at", time.time())))
    return TranscriptionJob(
        session_id=str(message["session_id"]),
        segment_id=str(message["segment_id"]),
        sequence=int(message["sequence"]),
        kind=message["kind"],
        audio=pcm16_to_audio(message["audio"]),
        options=TranscribeOptions.from_dict(message.get("options") or {}),
        created_at=time.monotonic() - float(message.get("age_ms", 0.0)) / 1000.0 - transit_s,
    )


def encode_result(
    message: dict[str, Any],
    *,
    result: TranscriptionResult | None = None,
    error: tuple[str, str] | None = None,
    dropped: str | None = None,
    worker: str = "",
) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "type": RESULT_TYPE,
        "job_id": message["job_id"],
        "attempt": message.get("attempt", 1),
        "segment_id": message["segment_id"],
        "sequence": message["sequence"],
        "kind": message["kind"],
        "worker": worker,
    }
    if result is not None:
        reply["result"] = result.to_dict()
    elif dropped is not None:
        reply["dropped"] = dropped
    else:
        code, text = error or ("engine_error", "unknown error")
        reply["error"] = {"code": code, "message": text}
    return reply
