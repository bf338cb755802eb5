"""Output serializers of the history API (reads only: writes go through services)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator

from transcription import selectors
from transcription.corrections import session_edited
from transcription.exports import FORMATS
from transcription.models import Segment, SessionSpeaker, SessionTopic, TranscriptionSession

PREVIEW_CHARS = 200


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


class WordSerializer(serializers.Serializer):
    start = serializers.FloatField(required=False)
    end = serializers.FloatField(required=False)
    word = serializers.CharField(required=False)
    probability = serializers.FloatField(required=False)


SENTIMENT_LABELS = ["positive", "neutral", "negative"]


class SegmentSerializer(serializers.ModelSerializer):
    """A final segment. Give it segments from selectors (segment_list, segment_search): they carry
    their speakers' names, so `speaker_name` costs no query per segment."""

    words = WordSerializer(many=True, read_only=True)
    duration_s = serializers.FloatField(read_only=True)
    speaker = serializers.CharField(
        read_only=True, help_text="Speaker label (`speaker_1`, ...); empty without speaker identification"
    )
    speaker_name = serializers.SerializerMethodField(
        help_text="What the speaker is called: the name its owner gave, else `Speaker N`; empty without one"
    )
    sentiment = serializers.CharField(
        read_only=True, help_text=f"One of {', '.join(SENTIMENT_LABELS)}; empty without sentiment analysis"
    )
    edited = serializers.SerializerMethodField(help_text="Whether its owner corrected the text or speaker")
    original_text = serializers.SerializerMethodField(
        help_text="The transcribed text before the first correction; null when never edited"
    )
    original_speaker = serializers.SerializerMethodField(
        help_text="The speaker label before the first correction; null when never edited"
    )
    edited_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="The last correction")

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
            "speaker_name",
            "sentiment",
            "sentiment_score",
            "end_reason",
            "words",
            "edited",
            "original_text",
            "original_speaker",
            "edited_at",
        ]
        read_only_fields = fields

    def get_speaker_name(self, segment: Segment) -> str:
        return selectors.segment_speaker_name(segment=segment)

    def get_edited(self, segment: Segment) -> bool:
        return segment.edited_at is not None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_original_text(self, segment: Segment) -> str | None:
        return segment.original_text if segment.edited_at is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_original_speaker(self, segment: Segment) -> str | None:
        return segment.original_speaker if segment.edited_at is not None else None


class SessionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    sentiment = serializers.CharField(
        read_only=True, help_text="Overall sentiment of the session; empty without sentiment analysis"
    )
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    word_count = serializers.SerializerMethodField()
    preview = serializers.SerializerMethodField(
        help_text=f"First {PREVIEW_CHARS} characters of the transcript"
    )
    edited = serializers.SerializerMethodField(help_text="Whether its owner corrected any of its segments")

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
            "sentiment",
            "word_count",
            "preview",
            "edited",
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

    def get_edited(self, session: TranscriptionSession) -> bool:
        return session_edited(session)


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


class SpeakerSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True, help_text="The name, else `Speaker N`")

    class Meta:
        model = SessionSpeaker
        fields = ["label", "name", "display_name", "speaking_time_s", "segment_count"]
        read_only_fields = fields


class SpeakerRenameSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=100,
        allow_blank=True,
        help_text="The speaker's name in pages and exports; blank: back to `Speaker N`",
    )


class StringField(serializers.CharField):
    """A string and nothing else (no number read as text). NUL and surrogate characters are let
    through: corrections.clean_text turns them into storable text rather than refusing it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.validators = [
            v
            for v in self.validators
            if not isinstance(v, ProhibitNullCharactersValidator | ProhibitSurrogateCharactersValidator)
        ]

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return data


class SegmentEditSerializer(serializers.Serializer):
    """A correction's body (corrections.segment_edit checks the values and cleans the text)."""

    text = StringField(required=False, allow_blank=True, trim_whitespace=False)
    speaker = StringField(required=False, allow_blank=True)


class TopicSerializer(serializers.ModelSerializer):
    mentions = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, help_text="Indices of the segments that say it"
    )

    class Meta:
        model = SessionTopic
        fields = ["topic", "confidence", "mentions"]
        read_only_fields = fields


class ScoredSentimentSerializer(serializers.Serializer):
    label = serializers.CharField(help_text=f"One of {', '.join(SENTIMENT_LABELS)}")
    score = serializers.FloatField()


class SentenceSentimentSerializer(serializers.Serializer):
    text = serializers.CharField()
    sentiment = serializers.CharField(help_text=f"One of {', '.join(SENTIMENT_LABELS)}")
    score = serializers.FloatField()


class SentimentAnalysisSerializer(serializers.Serializer):
    overall = ScoredSentimentSerializer(required=False)
    by_sentence = SentenceSentimentSerializer(many=True, required=False)


class AnalysisTopicSerializer(serializers.Serializer):
    topic = serializers.CharField()
    confidence = serializers.FloatField()
    mentions = serializers.ListField(child=serializers.IntegerField(), required=False)


class ProfanitySerializer(serializers.Serializer):
    detected = serializers.BooleanField()
    filtered_words = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="The masked forms only (`f***`)"
    )


class FiltersSerializer(serializers.Serializer):
    profanity = ProfanitySerializer(required=False)
    redacted = serializers.DictField(
        child=serializers.IntegerField(), required=False, help_text="Redactions by kind (`pci`, `phone`, ...)"
    )


class AnalysisSerializer(serializers.Serializer):
    """A session's enrichment: what its stages found (absent keys: that stage did not run)."""

    sentiment = SentimentAnalysisSerializer(required=False)
    topics = AnalysisTopicSerializer(many=True, required=False)
    filters = FiltersSerializer(required=False)


class SessionDetailSerializer(SessionSerializer):
    transcript = serializers.SerializerMethodField()
    segments = serializers.SerializerMethodField()
    speakers = serializers.SerializerMethodField()
    topics = serializers.SerializerMethodField()
    analysis = serializers.SerializerMethodField()
    exports = serializers.SerializerMethodField()
    upload = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "options", "models_used", "transcript", "segments"]
        fields += ["speakers", "topics", "analysis", "exports", "upload"]
        read_only_fields = fields

    def get_transcript(self, session: TranscriptionSession) -> str:
        transcript = getattr(session, "transcript", None)
        return transcript.text if transcript is not None else ""

    @extend_schema_field(SegmentSerializer(many=True))
    def get_segments(self, session: TranscriptionSession) -> list[dict]:
        return SegmentSerializer(selectors.segment_list(session=session), many=True).data

    @extend_schema_field(SpeakerSerializer(many=True))
    def get_speakers(self, session: TranscriptionSession) -> list[dict]:
        return SpeakerSerializer(selectors.speaker_list(session=session), many=True).data

    @extend_schema_field(TopicSerializer(many=True))
    def get_topics(self, session: TranscriptionSession) -> list[dict]:
        return TopicSerializer(selectors.topic_list(session=session), many=True).data

    @extend_schema_field(AnalysisSerializer)
    def get_analysis(self, session: TranscriptionSession) -> dict:
        return AnalysisSerializer(session.analysis or {}).data

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
