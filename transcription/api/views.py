"""History API views: sessions (list, detail, delete), their segments and speakers, exports, segment
search and usage."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from transcription import corrections, selectors, services
from transcription.api.base import ApiMixin, error_responses, parse_uuid, target_user
from transcription.api.filters import (
    SegmentListFilterSerializer,
    SegmentSearchFilterSerializer,
    SessionFilterSerializer,
)
from transcription.api.serializers import (
    SegmentEditSerializer,
    SegmentSearchResultSerializer,
    SegmentSerializer,
    SessionDetailSerializer,
    SessionSerializer,
    SpeakerRenameSerializer,
    SpeakerSerializer,
)
from transcription.exports import FORMATS, export_filename, export_render
from transcription.models import TranscriptionSession

SESSION_ID = OpenApiParameter("session_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
SPEAKER_LABEL = OpenApiParameter(
    "label", OpenApiTypes.STR, OpenApiParameter.PATH, description="The speaker's label (`speaker_1`)"
)

RENAME_BODY = {
    "type": "object",
    "properties": {
        "name": {
            "type": "string",
            "maxLength": 100,
            "description": "The speaker's name in pages and exports; blank: back to `Speaker N`",
        }
    },
    "required": ["name"],
}


def _readable_session(request: Request, session_id: str) -> TranscriptionSession:
    """The caller's session (staff may read anyone's); 404 for everyone else's."""
    session = selectors.session_get(
        user=request.user, session_id=parse_uuid(session_id), any_owner=request.user.is_staff
    )
    if session is None:
        raise exceptions.NotFound("No such session.")
    return session


def _owned_session(request: Request, session_id: str) -> TranscriptionSession:
    """The caller's own session, for writes (staff included: they read others', never change them)."""
    session = selectors.session_get(user=request.user, session_id=parse_uuid(session_id))
    if session is None:
        raise exceptions.NotFound("No such session.")
    return session


class SessionListView(ApiMixin, generics.ListAPIView):
    serializer_class = SessionSerializer

    @extend_schema(
        operation_id="sessions_list",
        parameters=[SessionFilterSerializer],
        responses={200: SessionSerializer(many=True), **error_responses(400, 401, 403, 404)},
        description="The caller's sessions, newest first. `q` searches transcripts (PostgreSQL full-text "
        "search; every word must occur on SQLite); `topic` finds sessions by their topics, `sentiment` "
        "by their overall sentiment. Staff may pass `user`.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = SessionFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        sessions = selectors.session_list(
            user=target_user(self.request, data.get("user")),
            q=data.get("q", ""),
            endpoint=data.get("endpoint", ""),
            status=data.get("status", ""),
            language=data.get("language", ""),
            topic=data.get("topic", ""),
            sentiment=data.get("sentiment", ""),
            started_from=data.get("from"),
            started_to=data.get("to"),
        )
        return corrections.sessions_with_edited(sessions)


class SessionDetailView(ApiMixin, APIView):
    @extend_schema(
        operation_id="sessions_retrieve",
        parameters=[SESSION_ID],
        responses={200: SessionDetailSerializer, **error_responses(401, 403, 404)},
        description="A session with its transcript, segments (timings, words, speaker, sentiment), "
        "speakers, topics, enrichment analysis and export links.",
    )
    def get(self, request: Request, session_id: str) -> Response:
        session = _readable_session(request, session_id)
        return Response(SessionDetailSerializer(session, context={"request": request}).data)

    @extend_schema(
        operation_id="sessions_destroy",
        parameters=[SESSION_ID],
        responses={204: OpenApiResponse(description="Deleted"), **error_responses(401, 403, 404, 409)},
        description="Delete a session with its segments, transcript and stored audio. Only the owner "
        "may; a live stream cannot be deleted while it runs (409 `session_active`); an upload being "
        "transcribed can (its job is stopped).",
    )
    def delete(self, request: Request, session_id: str) -> Response:
        session = _owned_session(request, session_id)
        try:
            services.session_delete(session=session)
        except services.SessionActive as exc:
            return Response(
                {"code": "session_active", "detail": exc.message}, status=status.HTTP_409_CONFLICT
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionSegmentListView(ApiMixin, generics.ListAPIView):
    serializer_class = SegmentSerializer

    @extend_schema(
        operation_id="sessions_segments_list",
        parameters=[SESSION_ID, SegmentListFilterSerializer],
        responses={200: SegmentSerializer(many=True), **error_responses(400, 401, 403, 404)},
        description="A session's segments in order; `speaker` keeps one speaker's (its label).",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        session = _readable_session(self.request, self.kwargs["session_id"])
        filters = SegmentListFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.segment_list(session=session, speaker=filters.validated_data.get("speaker", ""))


class SessionSpeakerView(ApiMixin, APIView):
    @extend_schema(
        operation_id="sessions_speakers_partial_update",
        parameters=[SESSION_ID, SPEAKER_LABEL],
        # Not the serializer itself: drf-spectacular would document every field of a PATCH as optional.
        request={media: RENAME_BODY for media in ("application/json", "application/x-www-form-urlencoded")},
        responses={200: SpeakerSerializer, **error_responses(400, 401, 403, 404)},
        description="Name a speaker of a session (a blank name: back to `Speaker N`). Pages and exports "
        "show the name. Only the owner may; an unknown label is 404.",
    )
    def patch(self, request: Request, session_id: str, label: str) -> Response:
        session = _owned_session(request, session_id)
        if not selectors.speaker_label_exists(session=session, label=label):
            raise exceptions.NotFound("No such speaker in this session.")
        body = SpeakerRenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        speaker = services.speaker_rename(session=session, label=label, name=body.validated_data["name"])
        return Response(SpeakerSerializer(speaker).data)


SEGMENT_INDEX = OpenApiParameter(
    "index", OpenApiTypes.INT, OpenApiParameter.PATH, description="The segment's `index` in its session"
)

EDIT_BODY = {
    "type": "object",
    "properties": {
        "text": {
            "type": "string",
            "maxLength": corrections.MAX_TEXT_CHARS,
            "description": "The corrected text (white space is collapsed to single spaces); may be empty",
        },
        "speaker": {
            "type": "string",
            "pattern": corrections.LABEL_PATTERN,
            "description": "A speaker label of the session, or a new one (`speaker_3`); empty for none",
        },
    },
    "minProperties": 1,
}


class SegmentEditView(ApiMixin, APIView):
    @extend_schema(
        operation_id="sessions_segments_partial_update",
        parameters=[SESSION_ID, SEGMENT_INDEX],
        request={media: EDIT_BODY for media in ("application/json", "application/x-www-form-urlencoded")},
        responses={200: SegmentSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Correct a segment's `text` and/or `speaker`. The first correction keeps the "
        "transcribed text and speaker (`original_text`, `original_speaker`); `edited_at` is set on "
        "each. Exports, search and the session's transcript use the corrected text; speaker figures "
        "follow a moved segment. Empty text is allowed (the segment says nothing; its timings and "
        "original stay). Only the owner may (404 for others). 400 `nothing_to_change`, `text_too_long`, "
        "`invalid_speaker`; 409 `session_live` while the stream runs, `session_processing` while an "
        "upload is being transcribed.",
    )
    def patch(self, request: Request, session_id: str, index: str) -> Response:
        session = _owned_session(request, session_id)
        if not (index.isascii() and index.isdecimal() and len(index) < 10):
            raise exceptions.NotFound("No such segment in this session.")
        body = SegmentEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            segment = corrections.segment_edit(
                session=session,
                index=int(index),
                text=body.validated_data.get("text"),
                speaker=body.validated_data.get("speaker"),
            )
        except corrections.CorrectionError as exc:
            if exc.status == 404:
                raise exceptions.NotFound(exc.message) from None
            if exc.status == 409:
                return Response({"code": exc.code, "detail": exc.message}, status=status.HTTP_409_CONFLICT)
            detail = {exc.field: [exc.message]} if exc.field else [exc.message]
            raise exceptions.ValidationError(detail, code=exc.code) from None
        segment = selectors.segment_list(session=session).get(pk=segment.pk)
        return Response(SegmentSerializer(segment).data)


class _IgnoreAccept(BaseContentNegotiation):
    """Exports are files: an Accept header (text/vtt, ...) must not turn them into 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class SessionExportView(ApiMixin, APIView):
    content_negotiation_class = _IgnoreAccept

    @extend_schema(
        operation_id="sessions_export",
        parameters=[
            SESSION_ID,
            OpenApiParameter("fmt", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(FORMATS)),
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="One line per segment"),
            (200, "application/x-subrip"): OpenApiResponse(OpenApiTypes.STR, description="SubRip"),
            (200, "text/vtt"): OpenApiResponse(OpenApiTypes.STR, description="WebVTT"),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="Session, text and segments with timings and words"
            ),
            **error_responses(400, 401, 403, 404),
        },
        description="The transcript as a file (Content-Disposition: attachment) in `txt`, `srt`, `vtt` "
        "or `json`.",
    )
    def get(self, request: Request, session_id: str, fmt: str) -> HttpResponse:
        if fmt not in FORMATS:
            raise exceptions.ValidationError(
                {"fmt": [f"Unknown export format {fmt[:20]!r}; use one of: {', '.join(FORMATS)}."]},
                code="unknown_export_format",
            )
        session = _readable_session(request, session_id)
        body = export_render(
            session=session,
            segments=selectors.segment_list(session=session),
            speakers=selectors.speaker_list(session=session),
            topics=selectors.topic_list(session=session) if fmt == "json" else (),
            fmt=fmt,
        )
        response = HttpResponse(body, content_type=FORMATS[fmt].content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="{export_filename(session=session, fmt=fmt)}"'
        )
        return response


class SegmentSearchView(ApiMixin, generics.ListAPIView):
    serializer_class = SegmentSearchResultSerializer

    @extend_schema(
        operation_id="segments_search",
        parameters=[SegmentSearchFilterSerializer],
        responses={200: SegmentSearchResultSerializer(many=True), **error_responses(400, 401, 403, 404)},
        description="Segments of the caller's sessions whose text matches `q` (newest session first); "
        "`speaker` keeps one speaker label's.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = SegmentSearchFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        return selectors.segment_search(
            user=target_user(self.request, data.get("user")),
            q=data["q"],
            started_from=data.get("from"),
            started_to=data.get("to"),
            speaker=data.get("speaker", ""),
        )
