"""Deepgram's pre-recorded POST /v1/listen: the audio is the body; the answer is the whole transcript.

The body goes through the shared upload path (stored, billed and listed as any upload is, under
the endpoint `deepgram_prerecorded`). A JSON body naming a `url` is refused: this server fetches
no remote URLs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files import File
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Scope
from accounts.selectors import quota_for_user
from accounts.services import ApiKeyError, RateLimited, ScopeError, api_key_from_headers
from transcription import selectors
from transcription.compat.deepgram import wire
from transcription.compat.deepgram.params import (
    DeepgramError,
    ListenParams,
    check_language,
    parse_params,
    query_pairs,
)
from transcription.models import Endpoint, SessionStatus, TranscriptionSession
from transcription.speech_models import model_label
from transcription.streaming.protocols.common import model_languages
from transcription.streaming.service import get_service
from transcription.uploads.accept import (
    FileOptions,
    UploadError,
    declared_length,
    runner_ready,
    transcribe_now,
    upload_accept,
    upload_precheck,
)

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
MAX_JSON_BYTES = 64 * 1024
# Our upload codes as Deepgram's (status, err_code); the rest are 400 Bad Request.
UPLOAD_ERRORS = {
    "file_too_large": (413, "PAYLOAD_TOO_LARGE"),
    "audio_too_long": (413, "PAYLOAD_TOO_LARGE"),
    "quota_exceeded": (402, "ASR_PAYMENT_REQUIRED"),
    "server_shutting_down": (503, "SERVICE_UNAVAILABLE"),
    "service_unavailable": (503, "SERVICE_UNAVAILABLE"),
    "transcription_deleted": (500, "INTERNAL_SERVER_ERROR"),
    "transcription_timeout": (500, "INTERNAL_SERVER_ERROR"),
}
NOT_AUDIO = "Bad Request: failed to process audio: corrupt or unsupported data"


def error_response(exc: DeepgramError, request_id: str) -> JsonResponse:
    response = JsonResponse(wire.rest_error(exc.err_code, exc.err_msg, request_id), status=exc.status)
    response["dg-request-id"] = request_id
    response["dg-error"] = exc.err_msg[:200]
    if getattr(exc, "retry_after_s", None):
        response["Retry-After"] = str(exc.retry_after_s)
    return response


def upload_error(exc: UploadError) -> DeepgramError:
    status, code = UPLOAD_ERRORS.get(exc.code, (400, "Bad Request"))
    message = f"{NOT_AUDIO} ({exc.message})" if exc.code in ("not_audio", "empty_audio") else exc.message
    if status == 400 and exc.code not in ("not_audio", "empty_audio"):
        message = f"Bad Request: {exc.message}"
    return DeepgramError(message, err_code=code, status=status)


def authenticate(request: HttpRequest):
    """The request's API key (with `history:write`: the recording is stored as an upload)."""
    try:
        key = api_key_from_headers(
            request.headers.items(), scope=Scope.HISTORY_WRITE, address=request.META.get("REMOTE_ADDR")
        )
    except RateLimited as exc:  # too many failed key checks: Deepgram's 429
        refused = DeepgramError(f"Too many requests. {exc.message}", err_code="TOO_MANY_REQUESTS", status=429)
        refused.retry_after_s = exc.retry_after_s
        raise refused from None
    except ScopeError as exc:
        raise DeepgramError(
            f"Insufficient permissions: {exc.message}", err_code="INSUFFICIENT_PERMISSIONS", status=403
        ) from None
    except ApiKeyError as exc:
        raise DeepgramError(
            f"Invalid credentials. {exc.message}", err_code="INVALID_AUTH", status=401
        ) from None
    if key is None:
        raise DeepgramError(
            "Invalid credentials: send Authorization: Token <api key>.", err_code="INVALID_AUTH", status=401
        )
    return key


def refuse_json(request: HttpRequest) -> None:
    """A JSON body is Deepgram's remote-URL form, which this server does not serve."""
    body = request.read(MAX_JSON_BYTES + 1)
    try:
        payload = json.loads(body) if len(body) <= MAX_JSON_BYTES else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise DeepgramError("Content-type was application/json, but we could not process the JSON payload.")
    if "url" in payload:
        raise DeepgramError(
            "Bad Request: this server fetches no remote URLs; send the audio itself as the request body "
            "(any Content-Type but application/json)."
        )
    raise DeepgramError("Bad Request: a JSON body must name a url, and this server fetches no remote URLs.")


def read_body(request: HttpRequest, limit: int) -> tuple[tempfile._TemporaryFileWrapper, str]:
    """The body, chunk by chunk, into a temporary file (at most `limit` bytes), and its SHA-256."""
    spool = tempfile.NamedTemporaryFile(prefix="deepgram-", suffix=".audio")
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := request.read(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadError(
                    "file_too_large", f"The body is over the limit of {limit} bytes.", status=413
                )
            digest.update(chunk)
            spool.write(chunk)
        spool.flush()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, digest.hexdigest()


def accept(
    request: HttpRequest, key, params: ListenParams, answerable: bool
) -> tuple[TranscriptionSession, str]:
    """Checks before the body is read, the body, and the pending session (UploadError when refused)."""
    user = key.owner
    upload_precheck(user=user, declared_bytes=declared_length(request), slack=0)
    spool, sha256 = read_body(request, quota_for_user(user=user).max_upload_bytes)
    with spool:
        upload = File(spool, name="audio")
        options = FileOptions(
            language=params.language,
            word_timestamps=True,
            keyterms=params.keyterms,
            enrich=params.enrich or FileOptions().enrich,
        )
        session = upload_accept(
            user=user,
            api_key=key,
            upload=upload,
            options=options,
            endpoint=Endpoint.DEEPGRAM_PRERECORDED,
            answerable=answerable,
            filename="",
            content_type=request.content_type or "",
        )
    return session, sha256


def render(session: TranscriptionSession, sha256: str, params: ListenParams) -> dict[str, Any]:
    if session.status != SessionStatus.COMPLETED:
        raise DeepgramError(
            f"The transcription failed: {session.error or session.status}.",
            err_code="INTERNAL_SERVER_ERROR",
            status=500,
        )
    segments = [
        {
            "text": s.text,
            "start_s": s.start_s,
            "end_s": s.end_s,
            "confidence": s.confidence,
            "words": s.words,
            "speaker": s.speaker,
        }
        for s in selectors.segment_list(session=session)
    ]
    return wire.prerecorded_response(
        request_id=str(session.pk),
        sha256=sha256,
        created=session.started_at.isoformat().replace("+00:00", "Z"),
        duration_s=session.audio_seconds,
        channels=session.channels or 1,
        model=session.models_used.get("final") or model_label(),
        segments=segments,
        params=params,
    )


@csrf_exempt
async def listen(request: HttpRequest) -> JsonResponse:
    """POST /v1/listen: transcribe the body; Deepgram's response, or its error form."""
    request_id = str(uuid.uuid4())
    try:
        if request.method != "POST":
            raise DeepgramError(
                "Method Not Allowed: POST the audio here, or open a WebSocket for live audio.",
                err_code="METHOD_NOT_ALLOWED",
                status=405,
            )
        key = await sync_to_async(authenticate)(request)
        params = parse_params(query_pairs(request.META.get("QUERY_STRING", "")), own_model=model_label())
        if params.language is not None:
            check_language(params, model_languages(await get_service()))
        if (request.content_type or "").lower() == "application/json":
            refuse_json(request)
        try:
            # Asked on the server's loop; a valid body is refused before it is stored and billed.
            session, sha256 = await sync_to_async(accept)(request, key, params, runner_ready())
            request_id = str(session.pk)
            session = await transcribe_now(request_id)
        except UploadError as exc:
            raise upload_error(exc) from None
        body = await sync_to_async(render)(session, sha256, params)
    except DeepgramError as exc:
        return error_response(exc, request_id)
    response = JsonResponse(body)
    response["dg-request-id"] = request_id
    return response
