"""OpenAI's audio transcription API: POST /v1/audio/transcriptions, GET /v1/models[/<id>].

The transcription is synchronous, as OpenAI's is: the file is checked and stored (the shared upload
path, `transcription.uploads.accept`), its job runs on the server's loop and the answer is rendered
once it is done. The session is stored under the caller with endpoint `openai_transcriptions`.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Scope
from transcription import selectors
from transcription.compat.openai import errors
from transcription.compat.openai.auth import Caller, caller_authenticate, csrf_check, presented_key
from transcription.compat.openai.form import TranscriptionForm, transcription_form
from transcription.compat.openai.formats import render
from transcription.compat.openai.model_names import accepted_models, is_accepted, model_object
from transcription.models import Endpoint, SessionStatus, TranscriptionSession
from transcription.uploads.accept import (
    declared_length,
    runner_ready,
    transcribe_now,
    upload_accept,
    upload_precheck,
)
from transcription.uploads.api import QuotaUploadHandler
from transcription.uploads.decode import UploadError


def _method_not_allowed(request: HttpRequest, allowed: str) -> JsonResponse:
    response = errors.error_response(
        errors.OpenAIError(405, f"Method {request.method} is not allowed here; use {allowed}.")
    )
    response["Allow"] = allowed
    return response


async def _caller(request: HttpRequest, scope: str | None) -> Caller:
    browser_user = None if presented_key(request) is not None else await request.auser()
    return await sync_to_async(caller_authenticate)(request, browser_user=browser_user, scope=scope)


def _read_form(request: HttpRequest, caller: Caller) -> TranscriptionForm:
    """Sync: the multipart body, read through the quota's size guard, then its fields checked."""
    guard = QuotaUploadHandler(request)
    request.user = caller.user  # the guard's limit is this user's
    request.upload_handlers = [guard, *request.upload_handlers]
    try:
        if caller.key is None:
            csrf_check(request)  # may read the form: after the guard is in place
        data, files = request.POST, request.FILES
    except RequestDataTooBig:
        raise errors.OpenAIError(
            413, "The request's form fields are too large.", code="request_too_large"
        ) from None
    except (MultiPartParserError, TooManyFieldsSent, SuspiciousOperation) as exc:
        raise errors.invalid(
            "file", f"The request body is not a valid multipart form: {exc}", "invalid_body"
        ) from None
    if guard.exceeded:
        raise errors.OpenAIError(
            413,
            f"The file is larger than the limit of {guard.limit} bytes.",
            param="file",
            code="file_too_large",
        )
    return transcription_form(data, files)


def _accept(request: HttpRequest, caller: Caller, answerable: bool) -> tuple[str, TranscriptionForm]:
    upload_precheck(user=caller.user, declared_bytes=declared_length(request))
    form = _read_form(request, caller)
    session = upload_accept(
        user=caller.user,
        api_key=caller.key,
        upload=form.upload,
        options=form.options,
        endpoint=Endpoint.OPENAI_TRANSCRIPTIONS,
        answerable=answerable,
    )
    return str(session.pk), form


def _answer(session: TranscriptionSession, form: TranscriptionForm) -> HttpResponse:
    if session.status != SessionStatus.COMPLETED:
        reason = session.error or "transcription failed"
        raise errors.server_error(f"The server had an error while processing your request: {reason}.")
    return render(session, list(selectors.segment_list(session=session)), form)


@csrf_exempt
async def transcriptions_create(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed(request, "POST")
    try:
        caller = await _caller(request, Scope.HISTORY_WRITE)
        # Asked on the server's loop; a valid file is refused before it is stored and billed.
        session_id, form = await sync_to_async(_accept)(request, caller, runner_ready())
        session = await transcribe_now(session_id)
        return await sync_to_async(_answer)(session, form)
    except UploadError as exc:
        return errors.error_response(errors.from_upload_error(exc))
    except errors.OpenAIError as exc:
        return errors.error_response(exc)


async def models_list(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    try:
        await _caller(request, None)
    except errors.OpenAIError as exc:
        return errors.error_response(exc)
    return JsonResponse({"object": "list", "data": [model_object(name) for name in accepted_models()]})


async def model_retrieve(request: HttpRequest, model: str) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    try:
        await _caller(request, None)
        if not is_accepted(model):
            raise errors.model_not_found(model)
    except errors.OpenAIError as exc:
        return errors.error_response(exc)
    return JsonResponse(model_object(model))
