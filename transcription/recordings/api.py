"""GET /api/v1/sessions/{id}/audio: a session's stored audio, to its owner only, with range requests.

API keys need `history:read`; the session page's `<audio>` uses the same route with the browser's
session cookie. Anyone but the owner (staff included: this is their voice) gets 404, as does a
session that kept no audio.
"""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView, exception_handler

from accounts.authentication import HasScope
from accounts.models import Scope
from transcription.models import TranscriptionSession
from transcription.recordings.serve import ranged_response


class _AnyAccept(BaseContentNegotiation):
    """A player's `Accept: audio/*` must not become a 406; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _errors(exc: Exception, context: dict):
    """DRF's answer in the API's error shape: `{"code", "detail"}`."""
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    return response


def owned_audio(*, user, session_id) -> TranscriptionSession | None:
    """The user's own session with stored audio, or None (the rule for both routes)."""
    try:
        pk = uuid.UUID(str(session_id))
    except ValueError:
        return None
    if user is None or not user.is_authenticated:
        return None
    session = TranscriptionSession.objects.filter(pk=pk, user=user).first()
    if session is None or not session.audio_file:
        return None
    return session


class SessionAudioView(APIView):
    permission_classes = [IsAuthenticated, HasScope]
    required_scopes = {"GET": Scope.HISTORY_READ, "HEAD": Scope.HISTORY_READ}
    content_negotiation_class = _AnyAccept

    def get_exception_handler(self):
        return _errors

    @extend_schema(
        operation_id="sessions_audio_retrieve",
        parameters=[OpenApiParameter("session_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={
            (200, "audio/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The whole file"),
            (206, "audio/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The range asked for"),
            401: OpenApiResponse(description="Not authenticated"),
            403: OpenApiResponse(description="The API key lacks `history:read`"),
            404: OpenApiResponse(description="No such session of yours, or it kept no audio"),
            416: OpenApiResponse(description="The range is past the end (`Content-Range: bytes */<length>`)"),
        },
        description="The session's stored audio (live sessions: Ogg/Opus; uploads: the original file). "
        "Supports `Range: bytes=...` (206 with `Content-Range`, 416 past the end). Only the owner "
        "may read it.",
    )
    def get(self, request: Request, session_id: str):
        session = owned_audio(user=request.user, session_id=session_id)
        if session is None:
            raise exceptions.NotFound("No stored audio for this session.")
        try:
            return ranged_response(
                storage=session.audio_file.storage,
                name=session.audio_file.name,
                content_type=session.audio_format or "application/octet-stream",
                range_header=request.headers.get("Range"),
                head=request.method == "HEAD",
            )
        except FileNotFoundError:
            raise exceptions.NotFound("No stored audio for this session.") from None
