"""Query-string serializers: validate list and search filters, answering 400 on malformed ones."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from transcription.api.serializers import SENTIMENT_LABELS
from transcription.models import Endpoint, SessionStatus
from transcription.selectors import started_bounds


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
)
class DateOrDateTimeField(serializers.Field):
    """An ISO 8601 date (a whole day) or date-time; naive date-times are in the server's time zone."""

    default_error_messages = {
        "invalid_date": "Enter an ISO 8601 date (2024-05-31) or date-time (2024-05-31T12:00:00Z).",
    }

    def get_value(self, dictionary):
        # DRF reads an empty query value as "not given"; here `?from=` is malformed, not absent.
        return dictionary.get(self.field_name, serializers.empty)

    def to_internal_value(self, data: object) -> dt.date | dt.datetime:
        value: dt.date | dt.datetime | None = None
        if isinstance(data, str) and len(data) <= 40:
            try:
                # A bare date first: fromisoformat would read it as a date-time at midnight.
                value = parse_date(data.strip()) or parse_datetime(data.strip())
            except ValueError:
                value = None
        if value is None:
            self.fail("invalid_date")
        if isinstance(value, dt.datetime) and timezone.is_naive(value):
            try:
                value = timezone.make_aware(value)
            except (ValueError, OverflowError):
                self.fail("invalid_date")
        return value

    def to_representation(self, value: dt.date) -> str:
        return value.isoformat()


class QueryText(serializers.CharField):
    """Text of a query parameter; NUL characters are dropped (PostgreSQL cannot compare them)."""

    def to_internal_value(self, data: object) -> str:
        return super().to_internal_value(data).replace("\x00", "")


class QueryFilter(serializers.Serializer):
    """Query-string filters: each parameter at most once."""

    def to_internal_value(self, data):
        if hasattr(data, "getlist"):
            repeated = {
                name: ["Give this parameter once."] for name in self.fields if len(data.getlist(name)) > 1
            }
            if repeated:
                raise serializers.ValidationError(repeated, code="repeated_parameter")
        return super().to_internal_value(data)


class _RangeFilter(QueryFilter):
    """`from` / `to` (Python keywords, hence renamed in get_fields) and staff's `user`."""

    from_ = DateOrDateTimeField(required=False, help_text="Sessions started at or after (date or date-time)")
    to = DateOrDateTimeField(
        required=False, help_text="Sessions started before (a date: up to the end of that day)"
    )
    user = QueryText(
        required=False,
        allow_blank=True,
        max_length=150,
        help_text="Staff only: the username (or id) whose data to read",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def validate(self, attrs: dict) -> dict:
        # A `to` before `from` is not an error: the range is simply empty.
        try:
            started_bounds(attrs.get("from"), attrs.get("to"))
        except (OverflowError, ValueError):
            raise serializers.ValidationError({"from": ["Date out of range."]}, code="invalid_date") from None
        return attrs


class SessionFilterSerializer(_RangeFilter):
    q = QueryText(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Full-text search in the transcript",
    )
    # Blank values mean "any" (DRF reads an empty query value as not given).
    endpoint = serializers.ChoiceField(choices=Endpoint.choices, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=SessionStatus.choices, required=False, allow_blank=True)
    language = QueryText(required=False, allow_blank=True, max_length=32, help_text="e.g. `en`")
    topic = QueryText(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Sessions with a topic containing this text (case-insensitive)",
    )
    sentiment = serializers.ChoiceField(
        choices=SENTIMENT_LABELS,
        required=False,
        allow_blank=True,
        help_text="Sessions whose overall sentiment is this",
    )


def speaker_filter() -> QueryText:
    return QueryText(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Only this speaker's segments (its label, `speaker_1`)",
    )


class SegmentSearchFilterSerializer(_RangeFilter):
    q = QueryText(max_length=200, help_text="Words to find in segment text (required)")
    speaker = speaker_filter()


class SegmentListFilterSerializer(QueryFilter):
    speaker = speaker_filter()


class UserFilterSerializer(QueryFilter):
    user = QueryText(
        required=False,
        allow_blank=True,
        max_length=150,
        help_text="Staff only: the username (or id) whose data to read",
    )
