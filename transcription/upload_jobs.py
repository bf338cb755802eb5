"""Background transcription of uploaded recordings through the shared inference service (final lane).

Under Daphne the job runs as a task on the server's event loop, next to the streaming sessions and
with the same process-wide inference service, so it outlives the request that created it (a client
may disconnect right after the 202). Without a running server loop (WSGI, tests, shell) a daemon
thread with its own event loop and its own service takes the jobs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.conf import settings

from speech.chunking import AudioChunk, SpeechChunker, chunk_stream
from speech.inference.jobs import InferenceError, InferenceRejected, TranscribeOptions, TranscriptionJob
from speech.inference.service import InferenceService
from transcription import services
from transcription.models import TranscriptionSession
from transcription.streaming.service import build_inference_service, get_service
from transcription.uploads import UploadError, decode_16k

log = logging.getLogger(__name__)

# A full queue is temporary: wait and resubmit, for about a minute in all, before giving up.
_QUEUE_FULL_RETRIES = 12
_QUEUE_FULL_BACKOFF_S = 0.25


@dataclasses.dataclass(frozen=True)
class UploadPlan:
    session_id: str
    path: Path
    options: TranscribeOptions
    duration_s: float


class _Gone(Exception):
    """The session was deleted while it was being transcribed."""


# -- scheduling ------------------------------------------------------------------------


_jobs: dict[str, concurrent.futures.Future] = {}
_jobs_lock = threading.Lock()
# The jobs' own tasks, so a shutdown on their loop can wait for them (and for their clean-up).
_tasks: set[asyncio.Task] = set()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's running loop when called from a sync view under it (as asgiref finds it)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    if loop is not None and pid == os.getpid() and loop.is_running() and not loop.is_closed():
        return loop
    return None


class _LoopThread:
    """A daemon thread running an event loop, with its own inference service (rebuilt on new settings)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._service: InferenceService | None = None
        self._config: dict | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="upload-jobs", daemon=True)
        self.thread.start()

    async def service(self) -> InferenceService:
        config = dict(settings.STT_INFERENCE)
        if self._service is None or self._config != config:
            if self._service is not None:
                await self._service.stop()
            self._service = build_inference_service(config)
            self._config = config
            await self._service.start()
        return self._service

    async def stop_service(self) -> None:
        if self._service is not None:
            service, self._service = self._service, None
            await service.stop()


_fallback: _LoopThread | None = None
_fallback_lock = threading.Lock()


def _fallback_thread() -> _LoopThread:
    global _fallback
    with _fallback_lock:
        if _fallback is None or not _fallback.thread.is_alive():
            _fallback = _LoopThread()
        return _fallback


def upload_schedule(*, session_id: str) -> None:
    """Start transcribing an accepted upload in the background (call after the session is committed)."""
    loop = _server_loop()
    if loop is not None:
        future = asyncio.run_coroutine_threadsafe(_isolated(session_id, get_service), loop)
    else:
        runner = _fallback_thread()
        future = asyncio.run_coroutine_threadsafe(_isolated(session_id, runner.service), runner.loop)
    log.info("upload %s scheduled on the %s loop", session_id, "server" if loop is not None else "fallback")
    with _jobs_lock:
        _jobs[session_id] = future
    future.add_done_callback(lambda done: _forget(session_id, done))


def _forget(session_id: str, future: concurrent.futures.Future) -> None:
    with _jobs_lock:
        if _jobs.get(session_id) is future:
            del _jobs[session_id]


def upload_cancel(*, session_id: str) -> bool:
    """Stop the job of a deleted session if it runs in this process."""
    with _jobs_lock:
        future = _jobs.get(session_id)
    return future is not None and future.cancel()


def upload_jobs_running() -> list[str]:
    with _jobs_lock:
        return [session_id for session_id, future in _jobs.items() if not future.done()]


def upload_jobs_drain(timeout_s: float = 30.0) -> None:
    """Wait for this process's jobs to end, cancelling them after `timeout_s` (tests, shutdown).

    Not from the event loop that runs them.
    """
    with _jobs_lock:
        futures = list(_jobs.values())
    _, pending = concurrent.futures.wait(futures, timeout=timeout_s)
    for future in pending:
        future.cancel()
    concurrent.futures.wait(pending, timeout=10)


def upload_runner_stop() -> None:
    """Stop the fallback thread's inference service (tests use it between settings changes)."""
    runner = _fallback
    if runner is not None and runner.thread.is_alive():
        asyncio.run_coroutine_threadsafe(runner.stop_service(), runner.loop).result(30)


# -- the job -------------------------------------------------------------------------------


async def _isolated(session_id: str, service_getter: Any) -> None:
    # A task inherits the context of the thread that scheduled it: here a request's, whose asgiref
    # executors are gone once it has answered. The job runs in a context of its own.
    job = asyncio.get_running_loop().create_task(
        _run(session_id, service_getter), context=contextvars.Context()
    )
    _tasks.add(job)
    job.add_done_callback(_tasks.discard)
    await job


async def upload_jobs_finish(timeout_s: float) -> int:
    """Server shutdown, on the server loop: let its jobs finish for up to `timeout_s`, then cancel
    them (a cancelled job marks its session interrupted and refunds its usage). Returns their number."""
    loop = asyncio.get_running_loop()
    tasks = [task for task in _tasks if not task.done() and task.get_loop() is loop]
    if not tasks:
        return 0
    log.warning("shutting down: letting %d upload job(s) finish", len(tasks))
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    return len(tasks)


def _plan(session_id: str) -> UploadPlan | None:
    session = TranscriptionSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    files = services.upload_audio_files(session_id=session.pk)
    if not files:
        services.upload_fail(session_id=session.pk, error="The uploaded audio file is missing.")
        return None
    opts = session.options or {}
    return UploadPlan(
        session_id=str(session.pk),
        path=files[0],
        options=TranscribeOptions(
            language=opts.get("language") or None,
            beam_size=int(settings.STT_INFERENCE.get("BEAM_SIZE", 1)),
            word_timestamps=bool(opts.get("word_timestamps")),
        ),
        duration_s=session.audio_seconds,
    )


async def _run(session_id: str, service_getter: Any) -> None:
    plan = await database_sync_to_async(_plan)(session_id)
    if plan is None:
        return
    service: InferenceService | None = None
    try:
        if not await database_sync_to_async(services.upload_started)(session_id=session_id):
            return
        service = await service_getter()
        await _transcribe(plan, service)
        await database_sync_to_async(services.upload_complete)(session_id=session_id)
    except _Gone:
        log.info("upload %s was deleted while being transcribed", session_id)
    except asyncio.CancelledError:
        # Deleted (nothing left to mark) or the server is stopping: say so if the row is still there.
        with contextlib.suppress(Exception):
            await asyncio.shield(
                database_sync_to_async(services.upload_fail)(
                    session_id=session_id, error="Transcription was interrupted.", end_reason="interrupted"
                )
            )
        raise
    except Exception as exc:
        log.warning("upload %s failed: %s", session_id, exc, exc_info=not isinstance(exc, InferenceError))
        with contextlib.suppress(Exception):
            await database_sync_to_async(services.upload_fail)(session_id=session_id, error=_describe(exc))
    finally:
        if service is not None:
            service.session_closed(_job_session(plan.session_id))
        if not settings.STT_UPLOAD["KEEP_AUDIO"]:
            plan.path.unlink(missing_ok=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UploadError | InferenceError):
        return f"{exc.code}: {exc.message}"
    return f"internal_error: {type(exc).__name__}"


def _job_session(session_id: str) -> str:
    return f"upload:{session_id}"


def _chunks(plan: UploadPlan) -> Iterator[AudioChunk]:
    chunker = SpeechChunker(max_s=float(settings.STT_UPLOAD["CHUNK_S"]))
    return chunk_stream(decode_16k(plan.path), chunker)


async def _transcribe(plan: UploadPlan, service: InferenceService) -> None:
    loop = asyncio.get_running_loop()
    chunks = _chunks(plan)
    window = int(settings.STT_UPLOAD["MAX_IN_FLIGHT"])
    in_flight: set[asyncio.Task] = set()
    progress = _Progress(plan)
    try:
        while True:
            # Decoding and voice activity detection are CPU work: off the event loop.
            chunk = await loop.run_in_executor(None, next, chunks, None)
            if chunk is None:
                break
            while len(in_flight) >= window:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            in_flight.add(asyncio.ensure_future(_transcribe_chunk(plan, service, chunk, progress)))
        for task in asyncio.as_completed(list(in_flight)):
            await task
    finally:
        for task in in_flight:
            task.cancel()
        with contextlib.suppress(ValueError):  # still running in the executor: the GC closes it
            chunks.close()


@dataclasses.dataclass
class _Progress:
    plan: UploadPlan
    done_until_s: float = 0.0

    async def advance(self, end_s: float) -> None:
        self.done_until_s = max(self.done_until_s, end_s)
        fraction = min(0.99, self.done_until_s / max(self.plan.duration_s, 1e-6))
        if not await database_sync_to_async(services.upload_progress_set)(
            session_id=self.plan.session_id, progress=fraction
        ):
            raise _Gone()


async def _transcribe_chunk(
    plan: UploadPlan, service: InferenceService, chunk: AudioChunk, progress: _Progress
) -> None:
    job = TranscriptionJob(
        session_id=_job_session(plan.session_id),
        segment_id=f"{plan.session_id[:8]}-{chunk.index}",
        sequence=0,
        kind="final",
        audio=chunk.audio,
        options=plan.options,
    )
    for attempt in range(_QUEUE_FULL_RETRIES + 1):
        try:
            result = await service.transcribe(job)
            break
        except InferenceRejected as exc:
            if exc.code != "queue_full" or attempt == _QUEUE_FULL_RETRIES:
                raise
            await asyncio.sleep(min(_QUEUE_FULL_BACKOFF_S * 2**attempt, 10.0))
    text = result.text.strip()
    if text:
        words = [
            {
                **w.to_dict(),
                "start": round(w.start + chunk.start_s, 3),
                "end": round(w.end + chunk.start_s, 3),
            }
            for w in result.words
        ]
        stored = await database_sync_to_async(_store_segment)(
            session_id=plan.session_id,
            index=chunk.index,
            segment_id=job.segment_id,
            start_s=round(chunk.start_s, 3),
            end_s=round(chunk.end_s, 3),
            text=text,
            confidence=result.confidence,
            language=result.language,
            words=words,
            end_reason="upload_chunk",
            latency_ms=result.total_ms,
        )
        if not stored:
            raise _Gone()
    await progress.advance(chunk.end_s)


def _store_segment(*, session_id: str, **fields: Any) -> bool:
    session = TranscriptionSession.objects.filter(pk=session_id).first()
    if session is None:
        return False
    services.segment_finalize(session=session, **fields)
    return True
