"""Accepting a recording, whichever API it came through: the checks, in order, and the session.

The history API's upload (202, then poll), OpenAI's `/v1/audio/transcriptions` and Deepgram's
pre-recorded `/v1/listen` (both answer when the transcript is done) share these steps and their
codes; each maps an `UploadError` (code, message, HTTP status) into its own error format.
`transcribe_now` is the synchronous answer: the accepted upload's job, awaited on the server's loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.selectors import quota_for_user, usage_remaining_seconds
from speech.enrich.options import EnrichOptions
from transcription.models import Endpoint, TranscriptionSession
from transcription.streaming import registry
from transcription.uploads import services as uploads
from transcription.uploads.decode import UploadError, probe
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
) -> TranscriptionSession:
    """Validate (decode) the file within the user's limits and store it as a pending session.

    `upload` is a Django `File` (an uploaded one, or a request body written to a temporary file).
    Raises UploadError: file_too_large, audio_too_long, quota_exceeded (413), empty_file, not_audio,
    empty_audio (400), server_shutting_down (503).
    """
    limits = quota_for_user(user=user)
    if not upload.size:
        raise UploadError("empty_file", "The uploaded file is empty.")
    if upload.size > limits.max_upload_bytes:
        raise too_large(upload.size, limits.max_upload_bytes)
    audio = probe(_source(upload), max_seconds=limits.max_session_seconds)
    refuse_while_draining()  # again: probing a long file takes a while
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


async def transcribe_now(session_id: str) -> None:
    """On the server's loop: run the accepted upload's job and wait for it to end (done or failed).

    The job is shielded: a client that hangs up does not stop it (the session is stored and billed
    as any upload is). Raises UploadError 503 where no runner serves this process.
    """
    runner = upload_runner()
    if runner is None or runner.loop is not asyncio.get_running_loop():
        raise UploadError(
            "service_unavailable", "This process transcribes no files (it is not the server).", status=503
        )
    runner.submit(session_id)
    task = runner.jobs.get(session_id)
    if task is not None:
        await asyncio.shield(task)
