"""Background transcription of uploaded recordings on the server's event loop (final lane).

An `UploadRunner` is started on the server's loop when it starts serving, next to the streaming
sessions and with the same process-wide inference service, so a job outlives the request that
created it. Jobs are the uploads' own rows: the runner first takes up every upload left pending,
or active under a runner that is gone, and then each new one as it is accepted. A job resumes
where it stopped: chunks whose segment is stored already are skipped. Without a running server
(a management command) an accepted upload simply waits in the database for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.dispatch import receiver

from speech.chunking import AudioChunk, SpeechChunker, chunk_stream
from speech.enrich.options import EnrichOptions
from speech.enrich.recording import RecordingEnricher
from speech.finals import FinalSegment
from speech.inference.jobs import InferenceError, InferenceRejected, TranscribeOptions, TranscriptionJob
from speech.inference.service import InferenceService
from transcription import services
from transcription.identity import SERVER_ID, process_gone
from transcription.models import Segment, TranscriptionSession
from transcription.recordings.store import upload_original_keep
from transcription.streaming import registry
from transcription.streaming.service import get_service
from transcription.uploads import services as uploads
from transcription.uploads.decode import UploadError, decode_16k

log = logging.getLogger(__name__)

# A full queue is temporary: wait and resubmit, for about a minute in all, before giving up.
_QUEUE_FULL_RETRIES = 12
_QUEUE_FULL_BACKOFF_S = 0.25
# An active upload of another process that has not progressed for this long is taken over.
STALE_S = 300.0
RECHECK_S = 60.0
_SPEAKER_PAUSE_CUT_S = 0.5


@dataclasses.dataclass(frozen=True)
class UploadPlan:
    session_id: str
    path: Path
    options: TranscribeOptions
    duration_s: float
    done: frozenset[int]  # chunk indices already stored (a resumed job)
    enrich: EnrichOptions = dataclasses.field(default_factory=EnrichOptions)


class _Gone(Exception):
    """The session was deleted while it was being transcribed."""


class UploadRunner:
    """This process's upload jobs, one task each, on the loop it was started on."""

    def __init__(self, service_getter: Callable[[], Awaitable[InferenceService]] = get_service) -> None:
        self.loop = asyncio.get_running_loop()
        self.service_getter = service_getter
        self.jobs: dict[str, asyncio.Task] = {}
        self.taken_up = asyncio.Event()  # set once what was left unfinished has been submitted
        self._lock = threading.Lock()
        self._sweeper = asyncio.ensure_future(self._take_up_unfinished())

    def submit(self, session_id: str) -> None:
        """On the runner's loop: start the job of `session_id` unless it runs already."""
        with self._lock:
            if session_id in self.jobs:
                return
            # A context of its own: the one of the thread that scheduled it is a request's, whose
            # asgiref executors are gone once it has answered.
            job = _run(session_id, self.service_getter)
            task = self.loop.create_task(job, context=contextvars.Context())
            self.jobs[session_id] = task
        task.add_done_callback(lambda _: self._forget(session_id, task))

    def _forget(self, session_id: str, task: asyncio.Task) -> None:
        with self._lock:
            if self.jobs.get(session_id) is task:
                del self.jobs[session_id]

    def running(self) -> list[str]:
        with self._lock:
            return [sid for sid, task in self.jobs.items() if not task.done()]

    def cancel(self, session_id: str) -> bool:
        with self._lock:
            task = self.jobs.get(session_id)
        if task is None:
            return False
        self.loop.call_soon_threadsafe(task.cancel)
        return True

    async def _take_up_unfinished(self) -> None:
        """What a stopped server left (at once), then whatever goes stale elsewhere (now and then)."""
        while True:
            try:
                found = await database_sync_to_async(uploads.upload_unfinished_claim)(
                    orphaned=process_gone, stale_s=STALE_S, running=self.running()
                )
                for session_id in found:
                    self.submit(session_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("taking up unfinished uploads failed")
            self.taken_up.set()
            await asyncio.sleep(RECHECK_S)

    async def stop(self, timeout_s: float) -> int:
        """Let the jobs finish for up to `timeout_s`, then cancel them (a cancelled job marks its
        session interrupted and refunds its usage). Returns how many there were."""
        self._sweeper.cancel()
        tasks = [task for task in list(self.jobs.values()) if not task.done()]
        if not tasks:
            return 0
        log.warning("shutting down: letting %d upload job(s) finish", len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        return len(tasks)


_runner: UploadRunner | None = None


ServiceGetter = Callable[[], Awaitable[InferenceService]]


def upload_runner_start(service_getter: ServiceGetter = get_service) -> UploadRunner:
    """Start this process's runner on the running loop (the server's, at start-up)."""
    global _runner
    _runner = UploadRunner(service_getter)
    return _runner


def upload_runner() -> UploadRunner | None:
    return _runner


async def upload_jobs_finish(timeout_s: float) -> int:
    """Server shutdown, on the runner's loop: see `UploadRunner.stop`."""
    global _runner
    runner, _runner = _runner, None
    if runner is None or runner.loop is not asyncio.get_running_loop():
        return 0
    return await runner.stop(timeout_s)


def upload_schedule(*, session_id: str) -> None:
    """Start transcribing an accepted upload (call after the session is committed; from any thread).

    With no runner in this process the upload waits, pending, for the next one that starts.
    """
    runner = _runner
    if runner is None or runner.loop.is_closed():
        log.info("upload %s accepted; no runner in this process, it waits for the next start", session_id)
        return
    runner.loop.call_soon_threadsafe(runner.submit, session_id)
    log.info("upload %s scheduled on the server loop", session_id)


@receiver(services.session_deleted)
def _on_session_deleted(sender, *, session_id, **kwargs) -> None:
    """A deleted session's job stops (if it runs here) and its stored audio goes."""
    if _runner is not None:
        _runner.cancel(str(session_id))
    uploads.upload_audio_remove(session_id=session_id)


# -- the job -------------------------------------------------------------------------------


def _plan(session_id: str) -> UploadPlan | None:
    session = TranscriptionSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    files = uploads.upload_audio_files(session_id=session.pk)
    if not files:
        uploads.upload_fail(session_id=session.pk, error="The uploaded audio file is missing.")
        return None
    opts = session.options or {}
    enrich = dataclasses.replace(
        EnrichOptions.from_stored(opts.get("enrichment")),
        speaker_threshold=settings.STT_ENRICHMENT["SPEAKER_THRESHOLD"] or None,
    )
    return UploadPlan(
        session_id=str(session.pk),
        path=files[0],
        options=TranscribeOptions(
            language=opts.get("language") or None,
            beam_size=int(settings.STT_INFERENCE.get("BEAM_SIZE", 5)),
            # Word timings let a speaker change inside a long chunk label its words.
            word_timestamps=bool(opts.get("word_timestamps")) or enrich.speakers,
            # Validated (and a vocabulary merged in) when the upload was accepted: a resumed job
            # primes every chunk with the same terms as the first run.
            keyterms=tuple(str(term) for term in opts.get("keyterms") or ()),
            # OpenAI's `prompt` (its compatible endpoint): Whisper's initial prompt for every chunk.
            initial_prompt=str(opts.get("prompt") or "") or None,
        ),
        duration_s=session.audio_seconds,
        done=frozenset(Segment.objects.filter(session=session).values_list("index", flat=True)),
        enrich=enrich,
    )


async def _run(session_id: str, service_getter: Callable[[], Awaitable[InferenceService]]) -> None:
    plan = await database_sync_to_async(_plan)(session_id)
    if plan is None:
        return
    # Another runner (another process sharing the upload folder) may have claimed it first: then its
    # file and its row are that runner's, untouched here.
    if not await database_sync_to_async(uploads.upload_started)(session_id=session_id, runner=SERVER_ID):
        return
    service: InferenceService | None = None
    resumable = False
    try:
        service = await service_getter()
        await _transcribe(plan, service)
        await database_sync_to_async(uploads.upload_complete)(session_id=session_id)
        # The original goes into the audio storage if the session keeps its audio (a copy: with
        # STT_UPLOAD_KEEP_AUDIO the upload folder keeps its own).
        await _keep_original(session_id, plan.path)
    except _Gone:
        log.info("upload %s was deleted while being transcribed", session_id)
    except asyncio.CancelledError:
        if registry.draining():
            # The server stops before the job is done: the row stays active under this (soon gone)
            # process and the file stays, so the next start resumes it after its stored chunks.
            resumable = True
            log.warning("upload %s: the server stops; the next start resumes it", session_id)
            raise
        # Deleted: say so if the row is still there.
        with contextlib.suppress(Exception):
            await asyncio.shield(
                database_sync_to_async(uploads.upload_fail)(
                    session_id=session_id, error="Transcription was interrupted.", end_reason="interrupted"
                )
            )
        raise
    except Exception as exc:
        log.warning("upload %s failed: %s", session_id, exc, exc_info=not isinstance(exc, InferenceError))
        with contextlib.suppress(Exception):
            await database_sync_to_async(uploads.upload_fail)(session_id=session_id, error=_describe(exc))
    finally:
        if service is not None:
            service.session_closed(_job_session(plan.session_id))
        if not settings.STT_UPLOAD["KEEP_AUDIO"] and not resumable:
            plan.path.unlink(missing_ok=True)


async def _keep_original(session_id: str, path: Path) -> None:
    try:
        # Off the shared database thread: the copy may be long (a remote storage, a large file).
        await database_sync_to_async(upload_original_keep, thread_sensitive=False)(
            session_id=session_id, path=path
        )
    except Exception:
        log.exception("upload %s: keeping the original in the audio storage failed", session_id)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UploadError | InferenceError):
        return f"{exc.code}: {exc.message}"
    return f"internal_error: {type(exc).__name__}"


def _job_session(session_id: str) -> str:
    return f"upload:{session_id}"


def _chunks(plan: UploadPlan) -> Iterator[AudioChunk]:
    # With speakers labelled, a chunk per utterance (cut at every half-second pause), so a chunk
    # rarely holds two voices; Whisper then gets less context per call (measured in the README).
    pause = _SPEAKER_PAUSE_CUT_S if plan.enrich.speakers else None
    chunker = SpeechChunker(max_s=float(settings.STT_UPLOAD["CHUNK_S"]), pause_cut_s=pause)
    return chunk_stream(decode_16k(plan.path), chunker)


async def _transcribe(plan: UploadPlan, service: InferenceService) -> None:
    loop = asyncio.get_running_loop()
    chunks = _chunks(plan)
    window = int(settings.STT_UPLOAD["MAX_IN_FLIGHT"])
    in_flight: set[asyncio.Task] = set()
    progress = _Progress(plan)
    enricher = RecordingEnricher(plan.enrich) if plan.enrich.any else None
    durations: dict[int, float] = {}
    try:
        while True:
            # Decoding and voice activity detection are CPU work: off the event loop.
            chunk = await loop.run_in_executor(None, next, chunks, None)
            if chunk is None:
                break
            durations[chunk.index] = chunk.duration_s
            if chunk.index in plan.done:  # stored before the server stopped
                if enricher is not None:
                    await enricher.add_stored(chunk.index, chunk.audio)
                continue
            while len(in_flight) >= window:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            in_flight.add(asyncio.ensure_future(_transcribe_chunk(plan, service, chunk, progress, enricher)))
        for task in asyncio.as_completed(list(in_flight)):
            await task
        if enricher is not None:
            await _finish_enrichment(plan, enricher, durations)
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
        if not await database_sync_to_async(uploads.upload_progress_set)(
            session_id=self.plan.session_id, progress=fraction
        ):
            raise _Gone()


async def _finish_enrichment(
    plan: UploadPlan, enricher: RecordingEnricher, durations: dict[int, float]
) -> None:
    """Speakers clustered over the whole recording, topics and every sentence: stored."""
    labels = await enricher.relabel()
    snapshot = await enricher.settle(labels, durations)
    await database_sync_to_async(_store_enrichment)(
        session_id=plan.session_id, labels=labels, snapshot=snapshot
    )


def _store_enrichment(*, session_id: str, labels: dict[int, str], snapshot: dict | None) -> None:
    session = TranscriptionSession.objects.filter(pk=session_id).first()
    if session is None:
        raise _Gone()
    if labels:
        services.segments_speakers_set(session=session, labels=labels)
    if snapshot:
        services.session_analysis_store(session=session, analysis=snapshot)


async def _transcribe_chunk(
    plan: UploadPlan,
    service: InferenceService,
    chunk: AudioChunk,
    progress: _Progress,
    enricher: RecordingEnricher | None = None,
) -> None:
    job = TranscriptionJob(
        session_id=_job_session(plan.session_id),
        segment_id=f"{plan.session_id[:8]}-{chunk.index}",
        sequence=0,
        kind="final",
        audio=chunk.audio,
        options=plan.options,
    )
    voice = enricher.voice(chunk.audio) if enricher is not None else None  # alongside the text
    for attempt in range(_QUEUE_FULL_RETRIES + 1):
        try:
            result = await service.transcribe(job)
            break
        except InferenceRejected as exc:
            if exc.code != "queue_full" or attempt == _QUEUE_FULL_RETRIES:
                if voice is not None:
                    voice.cancel()
                raise
            await asyncio.sleep(min(_QUEUE_FULL_BACKOFF_S * 2**attempt, 10.0))
    final = FinalSegment(
        index=chunk.index,
        segment_id=job.segment_id,
        start_s=round(chunk.start_s, 3),
        end_s=round(chunk.end_s, 3),
        text=result.text.strip(),
        confidence=result.confidence,
        language=result.language,
        words=[w.to_dict() for w in result.words],
        end_reason="upload_chunk",
        pre_roll_s=0.0,
        latency_ms=result.total_ms,
    )
    if enricher is not None:
        await enricher.enrich(final, voice)  # masks before anything is stored
    if final.text:
        fields = final.stored_fields()
        # Word timings become offsets in the whole recording.
        fields["words"] = [
            {**w, "start": round(w["start"] + chunk.start_s, 3), "end": round(w["end"] + chunk.start_s, 3)}
            for w in final.words
        ]
        stored = await database_sync_to_async(_store_segment)(session_id=plan.session_id, **fields)
        if not stored:
            raise _Gone()
    await progress.advance(chunk.end_s)


def _store_segment(*, session_id: str, **fields: Any) -> bool:
    session = TranscriptionSession.objects.filter(pk=session_id).first()
    if session is None:
        return False
    services.segment_finalize(session=session, **fields)
    return True
