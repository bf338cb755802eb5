"""Read-only admin for stored sessions, segments and transcripts."""

from __future__ import annotations

from django.contrib import admin

from transcription.models import Segment, Transcript, TranscriptionSession


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SegmentInline(ReadOnlyMixin, admin.TabularInline):
    model = Segment
    extra = 0
    fields = ["index", "start_s", "end_s", "text", "confidence", "end_reason", "latency_ms"]
    readonly_fields = fields
    can_delete = False


class TranscriptInline(ReadOnlyMixin, admin.StackedInline):
    model = Transcript
    fields = ["text", "word_count", "updated_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(TranscriptionSession)
class TranscriptionSessionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "user", "endpoint", "status", "started_at", "ended_at", "audio_seconds", "language"]
    list_filter = ["endpoint", "status", "language", "started_at"]
    search_fields = ["id", "user__username", "transcript__text"]
    date_hierarchy = "started_at"
    list_select_related = ["user"]
    inlines = [TranscriptInline, SegmentInline]


@admin.register(Segment)
class SegmentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["session", "index", "start_s", "end_s", "text", "confidence", "end_reason"]
    list_filter = ["end_reason", "language"]
    search_fields = ["text", "session__id", "session__user__username"]
    list_select_related = ["session"]


@admin.register(Transcript)
class TranscriptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["session", "word_count", "updated_at"]
    search_fields = ["text", "session__user__username"]
    list_select_related = ["session"]
