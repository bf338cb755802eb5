"""Pre-recorded audio: POST /api/v1/transcriptions/ (202 + Location) and GET on that location."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.selectors import quota_for_user
from speech.enrich.options import MAX_SPEAKERS_LIMIT
from speech.keyterms import MAX_KEYTERM_CHARS, MAX_KEYTERMS, KeytermError, clean_keyterms
from transcription import selectors
from transcription.api.base import ApiMixin, PayloadTooLarge, ServiceUnavailable, error_responses, parse_uuid
from transcription.api.serializers import SegmentSerializer
from transcription.api.views import SESSION_ID
from transcription.enrichment import EnrichmentError, enrich_from_client
from transcription.models import Endpoint, SessionStatus, TranscriptionSession
from transcription.recordings.store import upload_store_audio_ask
from transcription.speech_models import model_languages
from transcription.streaming.service import current_service
from transcription.uploads.accept import FileOptions, declared_length, upload_accept, upload_precheck
from transcription.uploads.decode import ACCEPTED_FORMATS, UploadError
from transcription.uploads.jobs import upload_schedule
from vocabularies.lookup import keyterms_for

ENRICHMENT_FIELDS = ("speakers", "max_speakers", "sentiment", "topics", "profanity_filter", "redact")

# Multipart framing around the file (boundaries, part headers, the small fields).
_MULTIPART_SLACK = 64 * 1024
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


@extend_schema_field(serializers.ListField(child=serializers.CharField(max_length=MAX_KEYTERM_CHARS)))
class KeytermsField(serializers.Field):
    """Key terms of a form upload: the `keyterms` field repeated, one term each, or once holding a JSON
    array of strings. A value is never split at commas (a term may hold one). Validated by the key-term
    rule of `speech.keyterms`; its error codes are the field's."""

    def get_value(self, dictionary: Any) -> Any:
        if hasattr(dictionary, "getlist"):  # a form: every value of the repeated field
            values = dictionary.getlist(self.field_name)
            return values if values else serializers.empty
        return dictionary.get(self.field_name, serializers.empty)

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], str):
            if data[0].lstrip().startswith("["):
                try:
                    data = json.loads(data[0])
                except (ValueError, RecursionError):
                    raise serializers.ValidationError(
                        "keyterms must be repeated form fields or one JSON array of strings.",
                        code="invalid_keyterms",
                    ) from None
        try:
            return list(clean_keyterms(data))
        except KeytermError as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None

    def to_representation(self, value: Any) -> list[str]:
        return list(value)


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True, help_text=f"The recording: {ACCEPTED_FORMATS}. Size and length limits: quota."
    )
    language = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=35,
        help_text="Spoken language (`en`, `en-IN`: the base code is used); `auto` detects it. "
        "Default: the server's STT_LANGUAGE.",
    )
    word_timestamps = serializers.BooleanField(required=False, default=False)
    keyterms = KeytermsField(
        required=False,
        help_text=f"Key terms the recognition leans toward (names, jargon): repeat the field once per term, "
        f"or send one JSON array of strings. At most {MAX_KEYTERMS} terms of at most {MAX_KEYTERM_CHARS} "
        "characters, 600 in all.",
    )
    vocabulary = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The name of one of your vocabularies: its terms come first, then `keyterms`.",
    )

    store_audio = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Keep the original file after transcription (GET /api/v1/sessions/{id}/audio). "
        "Default: your account's setting, else the server's STT_STORE_AUDIO.",
    )
    speakers = serializers.BooleanField(
        required=False, help_text="Label who speaks each segment (clustered over the whole file)."
    )
    max_speakers = serializers.IntegerField(required=False, min_value=1, max_value=MAX_SPEAKERS_LIMIT)
    sentiment = serializers.BooleanField(required=False, help_text="Sentiment per segment and overall.")
    topics = serializers.BooleanField(required=False, help_text="Key phrases of the recording.")
    profanity_filter = serializers.BooleanField(required=False, help_text="Mask profane words (`f***`).")
    redact = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Comma-separated kinds to redact before anything is stored: pci (card numbers), "
        "phone, email, ssn, numbers (three digits or more); Deepgram's `pii` (phone, e-mail, SSN) "
        "and `true` (numbers) are accepted too.",
    )

    def validate_file(self, upload: Any) -> Any:
        if not upload.size:
            raise serializers.ValidationError("The uploaded file is empty.", code="empty_file")
        return upload

    def validate_language(self, value: str) -> str:
        value = value.strip()
        if value.lower() in ("", "auto"):
            return ""
        if not _LANGUAGE.fullmatch(value):
            raise serializers.ValidationError("Use a language code such as `en` or `en-IN`.", code="invalid")
        base = re.split(r"[-_]", value)[0].lower()
        supported = model_languages(current_service())
        if base not in supported:
            raise serializers.ValidationError(
                f"The model transcribes only: {', '.join(supported[:20])}{', ...' * (len(supported) > 20)}.",
                code="unsupported_language",
            )
        return base

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A named vocabulary's terms merged with the inline ones (the context's `user` owns it);
        the enrichment fields read as one set of options."""
        asked = {name: attrs.pop(name) for name in ENRICHMENT_FIELDS if name in attrs}
        try:
            attrs["enrich"] = enrich_from_client(asked)
        except EnrichmentError as exc:
            field = "redact" if "redact" in exc.message else next(iter(asked), "speakers")
            raise serializers.ValidationError({field: [exc.message]}, code=exc.code) from None
        vocabulary = attrs.get("vocabulary") or None
        attrs["vocabulary"] = vocabulary
        if vocabulary is None:
            attrs["keyterms"] = list(attrs.get("keyterms") or ())
            return attrs
        try:
            attrs["keyterms"] = list(keyterms_for(self.context["user"].pk, attrs.get("keyterms"), vocabulary))
        except KeytermError as exc:
            field = "vocabulary" if exc.code == "unknown_vocabulary" else "keyterms"
            raise serializers.ValidationError({field: [exc.message]}, code=exc.code) from None
        return attrs


class TranscriptionSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    url = serializers.SerializerMethodField()
    session_url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    progress = serializers.SerializerMethodField(help_text="0..1: share of the audio transcribed so far")
    created_at = serializers.DateTimeField(source="started_at")
    completed_at = serializers.DateTimeField(source="ended_at", allow_null=True)
    duration_s = serializers.FloatField(source="audio_seconds", help_text="Length of the recording")
    language = serializers.CharField()
    keyterms = serializers.SerializerMethodField(
        help_text="The key terms every chunk is transcribed with (a vocabulary's merged in)"
    )
    vocabulary = serializers.SerializerMethodField(help_text="The vocabulary named at upload, if any")
    filename = serializers.SerializerMethodField()
    error = serializers.CharField(help_text="Why it failed (status `failed`)")
    transcript = serializers.SerializerMethodField(help_text="The text, once completed")
    segments = serializers.SerializerMethodField()

    def _absolute(self, name: str, session: TranscriptionSession) -> str:
        url = reverse(name, args=[session.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    def get_url(self, session: TranscriptionSession) -> str:
        return self._absolute("api-transcription-detail", session)

    def get_session_url(self, session: TranscriptionSession) -> str:
        return self._absolute("api-session-detail", session)

    def get_progress(self, session: TranscriptionSession) -> float:
        if session.status == SessionStatus.COMPLETED:
            return 1.0
        return float(_upload_info(session).get("progress") or 0.0)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_keyterms(self, session: TranscriptionSession) -> list[str]:
        return [str(term) for term in (session.options or {}).get("keyterms") or ()]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_vocabulary(self, session: TranscriptionSession) -> str | None:
        return (session.options or {}).get("vocabulary") or None

    def get_filename(self, session: TranscriptionSession) -> str:
        return str(_upload_info(session).get("filename") or "")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_transcript(self, session: TranscriptionSession) -> str | None:
        if session.status != SessionStatus.COMPLETED:
            return None
        transcript = getattr(session, "transcript", None)
        return transcript.text if transcript is not None else ""

    @extend_schema_field(SegmentSerializer(many=True))
    def get_segments(self, session: TranscriptionSession) -> list[dict]:
        if session.status != SessionStatus.COMPLETED:
            return []
        return SegmentSerializer(selectors.segment_list(session=session), many=True).data


def _upload_info(session: TranscriptionSession) -> dict:
    return (session.client_info or {}).get("upload") or {}


class QuotaUploadHandler(FileUploadHandler):
    """Stops reading an upload once its files pass the user's `max_upload_bytes`.

    Goes first among the request's upload handlers, so the bytes past the limit are never written to
    memory or a temporary file, whatever `Content-Length` said. The limit is looked up at the first
    file chunk: by then the request is authenticated (a session's CSRF check may read the form during
    authentication; an API key's user is known before the view reads it).
    """

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request)
        self.limit: int | None = None
        self.received = 0
        self.exceeded = False

    def _limit(self) -> int:
        if self.limit is None:
            user = getattr(self.request, "user", None)
            if user is not None and user.is_authenticated:
                self.limit = quota_for_user(user=user).max_upload_bytes
            else:
                self.limit = int(settings.STT_DEFAULT_QUOTA["max_upload_bytes"])
        return self.limit

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self._limit():
            self.exceeded = True
            # Django's parser closes the partial files and stops reading the body.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handlers store the file


class TranscriptionCreateView(ApiMixin, APIView):
    parser_classes = [MultiPartParser]

    def initial(self, request: Request, *args, **kwargs) -> None:
        # Before authentication, which may already read the form (the CSRF check of a session).
        self.upload_guard = QuotaUploadHandler(request._request)
        request._request.upload_handlers = [self.upload_guard, *request._request.upload_handlers]
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="transcriptions_create",
        request={"multipart/form-data": UploadSerializer},
        responses={
            202: OpenApiResponse(TranscriptionSerializer, description="Accepted; poll the Location"),
            **error_responses(400, 401, 403, 413, 415, 503),
        },
        description="Upload a recording to transcribe in the background. Answers 202 with a Location "
        "to poll. The file is validated (decoded) before anything is stored: 400 `empty_file`, "
        "`not_audio`, `empty_audio`, `unsupported_audio` (more channels than STT_UPLOAD_MAX_CHANNELS, "
        "or a sample rate outside STT_UPLOAD_MIN_SAMPLE_RATE..STT_UPLOAD_MAX_SAMPLE_RATE), "
        "`invalid_keyterms`, `keyterm_too_long`, `too_many_keyterms`, `unknown_vocabulary`; "
        "413 `file_too_large`, `audio_too_long`, `quota_exceeded`; "
        "503 `server_shutting_down` (with Retry-After) while the server stops.",
    )
    def post(self, request: Request) -> Response:
        user = request.user
        try:
            upload_precheck(user=user, declared_bytes=declared_length(request._request))
        except UploadError as exc:
            raise _api_error(exc) from None
        data = request.data
        if self.upload_guard.exceeded:
            raise PayloadTooLarge(
                f"The file is larger than the limit of {self.upload_guard.limit} bytes.",
                code="file_too_large",
            )
        form = UploadSerializer(data=data, context={"user": user})
        form.is_valid(raise_exception=True)
        valid = form.validated_data
        options = FileOptions(
            language=valid.get("language"),
            word_timestamps=valid["word_timestamps"],
            keyterms=tuple(valid["keyterms"]),
            vocabulary=valid["vocabulary"],
            enrich=valid["enrich"],
        )
        try:
            session = upload_accept(
                user=user,
                api_key=request.auth if isinstance(request.auth, ApiKey) else None,
                upload=valid["file"],
                options=options,
            )
        except UploadError as exc:
            raise _api_error(exc) from None
        upload_store_audio_ask(session=session, asked=valid.get("store_audio"))
        transaction.on_commit(lambda: upload_schedule(session_id=str(session.pk)))
        body = TranscriptionSerializer(session, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


def _api_error(exc: UploadError) -> exceptions.APIException:
    """An UploadError in the history API's error format (a 400 names the file field)."""
    if exc.status == 413:
        return PayloadTooLarge(exc.message, code=exc.code)
    if exc.status == 503:
        return ServiceUnavailable(exc.message, code=exc.code)
    return exceptions.ValidationError({"file": [exc.message]}, code=exc.code)


class TranscriptionDetailView(ApiMixin, APIView):
    @extend_schema(
        operation_id="transcriptions_retrieve",
        parameters=[SESSION_ID],
        responses={200: TranscriptionSerializer, **error_responses(401, 403, 404)},
        description="Status (`pending`, `active`, `completed`, `failed`), progress and, when completed, "
        "the transcript and its segments.",
    )
    def get(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get(
            user=request.user, session_id=parse_uuid(session_id), any_owner=request.user.is_staff
        )
        if session is None or session.endpoint != Endpoint.UPLOAD:
            raise exceptions.NotFound("No such transcription.")
        return Response(TranscriptionSerializer(session, context={"request": request}).data)
