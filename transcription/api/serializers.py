"""Output serializers of the history API (reads only: writes go through services)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from transcription.exports import FORMATS
from transcription.models import Segment, TranscriptionSession

PREVIEW_CHARS = 200


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


class WordSerializer(serializers.Serializer):
    start = serializers.FloatField(required=False)
    end = serializers.FloatField(required=False)
    word = serializers.CharField(required=False)
    probability = serializers.FloatField(required=False)


class SegmentSerializer(serializers.ModelSerializer):
    words = WordSerializer(many=True, read_only=True)
    duration_s = serializers.FloatField(read_only=True)

    class Meta:
        model = Segment
        fields = [
            "index",
            "segment_id",
            "start_s",
            "end_s",
            "duration_s",
            "text",
            "confidence",
            "language",
            "speaker",
            "end_reason",
            "words",
        ]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    word_count = serializers.SerializerMethodField()
    preview = serializers.SerializerMethodField(
        help_text=f"First {PREVIEW_CHARS} characters of the transcript"
    )

    class Meta:
        model = TranscriptionSession
        fields = [
            "id",
            "url",
            "endpoint",
            "status",
            "language",
            "started_at",
            "ended_at",
            "duration_s",
            "audio_seconds",
            "end_reason",
            "error",
            "word_count",
            "preview",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, session: TranscriptionSession) -> str:
        return _absolute(self.context.get("request"), reverse("api-session-detail", args=[session.pk]))

    def get_word_count(self, session: TranscriptionSession) -> int:
        transcript = getattr(session, "transcript", None)
        return transcript.word_count if transcript is not None else 0

    def get_preview(self, session: TranscriptionSession) -> str:
        transcript = getattr(session, "transcript", None)
        return transcript.text[:PREVIEW_CHARS] if transcript is not None else ""


class ExportLinksSerializer(serializers.Serializer):
    txt = serializers.URLField()
    srt = serializers.URLField()
    vtt = serializers.URLField()
    json = serializers.URLField()


class UploadInfoSerializer(serializers.Serializer):
    filename = serializers.CharField(required=False)
    size_bytes = serializers.IntegerField(required=False)
    container = serializers.CharField(required=False)
    codec = serializers.CharField(required=False)
    sample_rate = serializers.IntegerField(required=False)
    channels = serializers.IntegerField(required=False)
    duration_s = serializers.FloatField(required=False)


class SessionDetailSerializer(SessionSerializer):
    transcript = serializers.SerializerMethodField()
    segments = serializers.SerializerMethodField()
    exports = serializers.SerializerMethodField()
    upload = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "options", "models_used", "transcript", "segments"]
        fields += ["exports", "upload"]
        read_only_fields = fields

    def get_transcript(self, session: TranscriptionSession) -> str:
        transcript = getattr(session, "transcript", None)
        return transcript.text if transcript is not None else ""

    @extend_schema_field(SegmentSerializer(many=True))
    def get_segments(self, session: TranscriptionSession) -> list[dict]:
        return SegmentSerializer(session.segments.order_by("index"), many=True).data

    @extend_schema_field(ExportLinksSerializer)
    def get_exports(self, session: TranscriptionSession) -> dict[str, str]:
        request = self.context.get("request")
        return {
            fmt: _absolute(request, reverse("api-session-export", args=[session.pk, fmt])) for fmt in FORMATS
        }

    @extend_schema_field(UploadInfoSerializer(allow_null=True))
    def get_upload(self, session: TranscriptionSession) -> dict | None:
        info = (session.client_info or {}).get("upload")
        return UploadInfoSerializer(info).data if info else None


class SegmentSearchResultSerializer(SegmentSerializer):
    session = serializers.UUIDField(source="session_id", read_only=True)
    session_url = serializers.SerializerMethodField()
    session_started_at = serializers.DateTimeField(source="session.started_at", read_only=True)
    session_endpoint = serializers.CharField(source="session.endpoint", read_only=True)

    class Meta(SegmentSerializer.Meta):
        fields = [*SegmentSerializer.Meta.fields, "session", "session_url", "session_started_at"]
        fields += ["session_endpoint"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_session_url(self, segment: Segment) -> str:
        return _absolute(
            self.context.get("request"), reverse("api-session-detail", args=[segment.session_id])
        )


class LimitsSerializer(serializers.Serializer):
    monthly_audio_seconds = serializers.IntegerField()
    max_concurrent_streams = serializers.IntegerField()
    max_session_seconds = serializers.IntegerField()
    max_upload_bytes = serializers.IntegerField()
    is_default = serializers.BooleanField(help_text="True when the user has no quota of their own")
