"""Accepting a recording, whichever API it came through: the checks, in order, and the session.

The history API's upload (202, then poll), OpenAI's `/v1/audio/transcriptions` and Deepgram's
pre-recorded `/v1/listen` (both answer when the transcript is done) share these steps and their
codes; each maps an `UploadError` (code, message, HTTP status) into its own error format.
`transcribe_now` is the synchronous answer: the accepted upload's job, awaited on the server's loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest

from accounts.selectors import quota_for_user, usage_remaining_seconds
from speech.enrich.options import EnrichOptions
from transcription.models import Endpoint, SessionStatus, TranscriptionSession
from transcription.streaming import registry
from transcription.uploads import services as uploads
from transcription.uploads.decode import AudioLimits, UploadError, probe
from transcription.uploads.jobs import upload_runner

# Multipart framing around the file (boundaries, part headers, the small fields).
MULTIPART_SLACK = 64 * 1024
RETRY_AFTER_S = 10


@dataclass(frozen=True)
class FileOptions:
    """How an accepted recording is transcribed (validated by the API that took it)."""

    language: str | None = None  # None: the server's STT_LANGUAGE; "": detect
    word_timestamps: bool = False
    keyterms: tuple[str, ...] = ()
    vocabulary: str | None = None
    enrich: EnrichOptions = field(default_factory=EnrichOptions)
    prompt: str = ""


def refuse_while_draining() -> None:
    # A job started now would be cut short by the shutdown and leave its session unfinished.
    if registry.draining():
        raise UploadError(
            "server_shutting_down", "The server is restarting; send the file again in a moment.", status=503
        )


def too_large(size: int, limit: int) -> UploadError:
    return UploadError("file_too_large", f"The file is {size} bytes; the limit is {limit} bytes.", status=413)


def upload_precheck(*, user, declared_bytes: int | None, slack: int = MULTIPART_SLACK) -> None:
    """Before the body is read: a stopping server, a declared size past the limit, no quota left."""
    refuse_while_draining()
    limits = quota_for_user(user=user)
    if declared_bytes is not None and declared_bytes > limits.max_upload_bytes + slack:
        raise too_large(declared_bytes, limits.max_upload_bytes)
    if usage_remaining_seconds(user=user) < 1:
        raise UploadError("quota_exceeded", "This month's audio quota is used up.", status=413)


def declared_length(request: HttpRequest) -> int | None:
    declared = str(request.META.get("CONTENT_LENGTH") or "")
    return int(declared) if declared.isdigit() else None


def audio_limits() -> AudioLimits:
    """The channel counts and sample rates a recording may have (settings.STT_UPLOAD)."""
    config = settings.STT_UPLOAD
    return AudioLimits(
        max_channels=config["MAX_CHANNELS"],
        min_sample_rate=config["MIN_SAMPLE_RATE"],
        max_sample_rate=config["MAX_SAMPLE_RATE"],
    )


def upload_type(upload: Any) -> str:
    return getattr(upload, "content_type", "") or ""


def _source(upload: Any) -> Any:
    if hasattr(upload, "temporary_file_path"):
        return upload.temporary_file_path()
    upload.file.seek(0)
    return upload.file


def upload_accept(
    *,
    user,
    api_key=None,
    upload: Any,
    options: FileOptions,
    endpoint: str = Endpoint.UPLOAD,
    filename: str | None = None,
    content_type: str | None = None,
    answerable: bool = True,
) -> TranscriptionSession:
    """Validate (decode) the file within the user's limits and store it as a pending session.

    `upload` is a Django `File` (an uploaded one, or a request body written to a temporary file).
    `answerable=False` (a synchronous API where no upload job can run: `runner_ready`) refuses a
    valid file with 503 before anything is stored or billed.

    Raises UploadError: file_too_large, audio_too_long, quota_exceeded (413), empty_file, not_audio,
    empty_audio, unsupported_audio (400), server_shutting_down, service_unavailable (503).
    """
    limits = quota_for_user(user=user)
    if not upload.size:
        raise UploadError("empty_file", "The uploaded file is empty.")
    if upload.size > limits.max_upload_bytes:
        raise too_large(upload.size, limits.max_upload_bytes)
    audio = probe(_source(upload), max_seconds=limits.max_session_seconds, limits=audio_limits())
    refuse_while_draining()  # again: probing a long file takes a while
    if not answerable:
        raise UploadError(
            "service_unavailable", "This process transcribes no files (it is not the server).", status=503
        )
    language = settings.STT_STREAM["LANGUAGE"] if options.language is None else options.language
    try:
        return uploads.upload_session_create(
            user=user,
            api_key=api_key,
            audio=audio,
            chunks=upload.chunks(),
            filename=(upload.name if filename is None else filename) or "",
            content_type=(upload_type(upload) if content_type is None else content_type) or "",
            size_bytes=upload.size,
            language=language,
            word_timestamps=options.word_timestamps,
            keyterms=options.keyterms,
            vocabulary=options.vocabulary,
            enrich=options.enrich,
            endpoint=endpoint,
            prompt=options.prompt,
        )
    except uploads.QuotaExceeded as exc:
        raise UploadError("quota_exceeded", exc.message, status=413) from None


# How often, and for how long at most, a synchronous answer looks for a job that runs elsewhere.
_POLL_S = 0.5
_WAIT_LIMIT_S = 600.0


def _runner_here():
    runner = upload_runner()
    if runner is None or runner.loop is not asyncio.get_running_loop():
        raise UploadError(
            "service_unavailable", "This process transcribes no files (it is not the server).", status=503
        )
    return runner


def runner_ready() -> bool:
    """On the server's loop: whether a synchronous API can answer here (ask before accepting a file,
    and pass the answer to `upload_accept`, which refuses once the file is validated)."""
    try:
        _runner_here()
    except UploadError:
        return False
    return True


def _finished(session_id: str) -> TranscriptionSession | None:
    session = TranscriptionSession.objects.select_related("transcript").filter(pk=session_id).first()
    if session is None:
        raise UploadError(
            "transcription_deleted", "The transcription was deleted before it was done.", status=500
        )
    return session if session.status in (SessionStatus.COMPLETED, SessionStatus.FAILED) else None


async def transcribe_now(session_id: str) -> TranscriptionSession:
    """On the server's loop: run the accepted upload's job and wait until its session is completed or
    failed (here; or in another process that took it up). Returns the finished session.

    The job is shielded: a client that hangs up does not stop it (the session is stored and billed
    as any upload is). Raises UploadError: 503 where no runner serves this process; 500 when the
    session was deleted meanwhile or did not finish within the wait limit.
    """
    runner = _runner_here()
    runner.submit(session_id)
    task = runner.jobs.get(session_id)
    if task is not None:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise  # the request itself is cancelled (the client is gone)
            # else the job was cancelled (its session deleted, the server stopping): read the row
    deadline = time.monotonic() + _WAIT_LIMIT_S
    while (session := await database_sync_to_async(_finished)(session_id)) is None:
        if time.monotonic() > deadline:
            raise UploadError(
                "transcription_timeout",
                "The transcription did not finish in time; it goes on in the background.",
                status=500,
            )
        await asyncio.sleep(_POLL_S)
    return session
