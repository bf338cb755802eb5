"""Account APIs under /api/v1/: self-service API keys (secret shown once, revoke) and usage."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ALL_SCOPES, ApiKey, Scope
from accounts.selectors import (
    api_key_list,
    api_key_self_service_enabled,
    quota_for_user,
    stream_active_list,
    usage_for_month,
    usage_remaining_seconds,
)
from accounts.services import api_key_create, api_key_revoke
from accounts.tokens import DEFAULT_TTL_S, MAX_TTL_S, stream_token_mint
from audit.services import origin_of
from transcription.api.base import ApiMixin, error_responses, target_user
from transcription.api.filters import UserFilterSerializer
from transcription.api.parsers import StrictJSONParser
from transcription.api.serializers import LimitsSerializer
from transcription.recordings.store import audio_bytes_stored

MAX_EXPIRES_DAYS = 3650


class SelfServiceEnabled(permissions.BasePermission):
    message = "API key self-service is turned off on this server; ask an administrator."
    code = "self_service_disabled"

    def has_permission(self, request, view) -> bool:
        if not api_key_self_service_enabled():
            raise exceptions.PermissionDenied(self.message, code=self.code)
        return True


class SignedInUser(permissions.BasePermission):
    """Keys are managed from a signed-in browser session: a key cannot mint or revoke keys."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            raise exceptions.PermissionDenied(
                "API keys cannot manage API keys; sign in to the web application.", code="session_required"
            )
        return True


class ApiKeySerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "state", "created_at", "last_used_at", "expires_at"]
        fields += ["revoked_at"]
        read_only_fields = fields

    def get_state(self, key: ApiKey) -> str:
        if key.is_revoked:
            return "revoked"
        return "expired" if key.is_expired() else "active"


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The secret: shown only in this answer, never again")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices),
        required=False,
        allow_empty=False,
        max_length=len(ALL_SCOPES),
        help_text="Default: every scope",
    )
    expires_in_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_EXPIRES_DAYS, default=None
    )


class _KeysMixin(ApiMixin):
    permission_classes = [permissions.IsAuthenticated, SignedInUser, SelfServiceEnabled]


class ApiKeyListCreateView(_KeysMixin, generics.ListAPIView):
    serializer_class = ApiKeySerializer

    def get_queryset(self):
        return api_key_list(user=self.request.user)

    @extend_schema(
        operation_id="keys_list",
        responses={200: ApiKeySerializer(many=True), **error_responses(401, 403, 404)},
        description="The signed-in user's API keys (never their secrets). Browser session only.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="keys_create",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, **error_responses(400, 401, 403, 415)},
        description="Create a key. The answer holds the secret (`key`) once; store it now.",
    )
    def post(self, request: Request) -> Response:
        form = ApiKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        days = data.get("expires_in_days")
        key, secret = api_key_create(
            owner=request.user,
            name=data["name"],
            scopes=data.get("scopes"),
            expires_at=timezone.now() + dt.timedelta(days=days) if days else None,
            origin=origin_of(request, via="api"),
        )
        key.key = secret
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeView(_KeysMixin, APIView):
    @extend_schema(
        operation_id="keys_revoke",
        parameters=[OpenApiParameter("key_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={204: OpenApiResponse(description="Revoked"), **error_responses(401, 403, 404)},
        description="Revoke one of the signed-in user's keys (idempotent).",
    )
    def delete(self, request: Request, key_id: str) -> Response:
        key = None
        if key_id.isdigit() and len(key_id) < 19:
            key = api_key_list(user=request.user).filter(pk=int(key_id)).first()
        if key is None:
            raise exceptions.NotFound("No such API key.")
        api_key_revoke(key=key, origin=origin_of(request, via="api"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsageSerializer(serializers.Serializer):
    month = serializers.DateField(help_text="First day of the current month (UTC)")
    audio_seconds_used = serializers.FloatField()
    audio_seconds_streamed = serializers.FloatField()
    audio_seconds_uploaded = serializers.FloatField()
    audio_seconds_remaining = serializers.FloatField()
    sessions = serializers.IntegerField(help_text="Sessions started this month")
    active_streams = serializers.IntegerField()
    audio_bytes_stored = serializers.IntegerField(help_text="Bytes of audio your sessions keep (all months)")
    limits = LimitsSerializer()


class UsageView(ApiMixin, APIView):
    @extend_schema(
        operation_id="usage_retrieve",
        parameters=[UserFilterSerializer],
        responses={200: UsageSerializer, **error_responses(400, 401, 403)},
        description="This month's audio seconds used against the quota, sessions started, and the limits.",
    )
    def get(self, request: Request) -> Response:
        filters = UserFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        user = target_user(request, filters.validated_data.get("user"))
        usage = usage_for_month(user=user)
        limits = quota_for_user(user=user)
        body = {
            "month": usage.month,
            "audio_seconds_used": usage.audio_seconds,
            "audio_seconds_streamed": usage.audio_seconds_streamed,
            "audio_seconds_uploaded": usage.audio_seconds_uploaded,
            "audio_seconds_remaining": usage_remaining_seconds(user=user, limits=limits, usage=usage),
            "sessions": usage.sessions,
            "active_streams": stream_active_list().filter(user=user).count(),
            "audio_bytes_stored": audio_bytes_stored(user=user),
            "limits": {**limits.as_dict(), "is_default": limits.is_default},
        }
        return Response(UsageSerializer(body).data)


class StreamTokenRequestSerializer(serializers.Serializer):
    expires_in_seconds = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_TTL_S,
        default=DEFAULT_TTL_S,
        help_text=f"How long the token may wait to be used (default {DEFAULT_TTL_S}, at most {MAX_TTL_S})",
    )


class StreamTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Good for one stream; put it in `?token=` or a subprotocol")
    expires_at = serializers.DateTimeField()
    expires_in_seconds = serializers.IntegerField()
    scope = serializers.CharField(help_text="Always `stream`")


class StreamTokenView(ApiMixin, APIView):
    """A short-lived, single-use stream token for a browser (a signed-in user, or a key with `stream`)."""

    required_scopes = {"POST": Scope.STREAM}
    parser_classes = [StrictJSONParser]  # what the schema says: a JSON object (or no body at all)

    @extend_schema(
        operation_id="tokens_create",
        request=StreamTokenRequestSerializer,
        responses={201: StreamTokenSerializer, **error_responses(400, 401, 403, 415)},
        description="Mint a temporary token that opens one stream on any streaming endpoint "
        "(`/ws/transcribe`, `/v1/stream`, `/v1/listen`, `/v3/ws`, ...), for a page that cannot send a key "
        "header: `?token=<token>` or the subprotocols `token, <token>`. It is refused once used or expired; "
        "it is never accepted by any other endpoint. Keys stay on your server.",
    )
    def post(self, request: Request) -> Response:
        form = StreamTokenRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        minted = stream_token_mint(
            user=request.user,
            api_key=request.auth if isinstance(request.auth, ApiKey) else None,
            ttl_s=form.validated_data["expires_in_seconds"],
        )
        body = {
            "token": minted.token,
            "expires_at": minted.expires_at,
            "expires_in_seconds": minted.ttl_s,
            "scope": Scope.STREAM,
        }
        return Response(StreamTokenSerializer(body).data, status=status.HTTP_201_CREATED)
