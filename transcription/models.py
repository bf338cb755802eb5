"""Stored sessions, their final segments and the assembled transcript."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone


class Endpoint(models.TextChoices):
    WS_TRANSCRIBE = "ws_transcribe", "/ws/transcribe"
    API_V1_WS = "api_v1_ws", "/api/v1/ws"
    STT_V3 = "stt_v3", "/stt/v3/stream"
    V1_STREAM = "v1_stream", "/v1/stream"
    UPLOAD = "upload", "Upload"
    # The cloud-compatible endpoints (README "Moving from a hosted API").
    OPENAI_TRANSCRIPTIONS = "openai_transcriptions", "/v1/audio/transcriptions (OpenAI)"
    DEEPGRAM_LISTEN = "deepgram_listen", "/v1/listen live (Deepgram)"
    DEEPGRAM_PRERECORDED = "deepgram_prerecorded", "/v1/listen pre-recorded (Deepgram)"
    ASSEMBLYAI_STREAMING = "assemblyai_streaming", "/v3/ws (AssemblyAI)"


# Sessions made from a whole recording (an upload job transcribes them, resumes them, sweeps them).
FILE_ENDPOINTS = (Endpoint.UPLOAD, Endpoint.OPENAI_TRANSCRIPTIONS, Endpoint.DEEPGRAM_PRERECORDED)


class SessionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


def audio_storage() -> Storage:
    """Where stored audio lives: Django's `STORAGES["audio"]` (a folder by default). Django calls this
    once, when the model is defined: a deployment's setting applies, a test swaps the field's storage."""
    return storages["audio"]


def audio_name(instance, filename: str) -> str:
    """`<user id>/<session id><suffix>`: one folder per owner, one file per session."""
    suffix = filename[filename.rfind(".") :] if "." in filename else ""
    return f"{instance.user_id}/{instance.pk}{suffix}"


class TranscriptionSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="transcription_sessions"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    endpoint = models.CharField(max_length=32, choices=Endpoint.choices)
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.ACTIVE)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    language = models.CharField(max_length=32, blank=True)
    models_used = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    audio_seconds = models.FloatField(default=0.0)
    client_info = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Enrichment of the whole session (speech.enrich): overall sentiment, its sentences, the
    # topics and what the filters masked (counts and masked forms only, never the originals).
    analysis = models.JSONField(default=dict, blank=True)
    sentiment = models.CharField(max_length=8, blank=True, help_text="Overall sentiment label")
    # Stored audio (transcription/recordings), when the session kept it: live audio as Ogg/Opus
    # written while it arrived, an upload's original file. Served to its owner only.
    audio_file = models.FileField(storage=audio_storage, upload_to=audio_name, max_length=255, blank=True)
    audio_format = models.CharField(max_length=64, blank=True, help_text="Its MIME type")
    audio_bytes = models.PositiveBigIntegerField(default=0, help_text="Bytes of stored audio")

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["user", "-started_at"], name="session_user_started"),
            models.Index(fields=["user", "endpoint", "-started_at"], name="session_user_endpoint"),
            models.Index(fields=["status"], name="session_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_endpoint_display()} {self.id} ({self.user})"

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class Segment(models.Model):
    session = models.ForeignKey(TranscriptionSession, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    segment_id = models.CharField(max_length=64, help_text="Identifier sent on the wire")
    start_s = models.FloatField(help_text="Start offset in the session's audio, seconds")
    end_s = models.FloatField()
    text = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True)
    language = models.CharField(max_length=32, blank=True)
    words = models.JSONField(default=list, blank=True)
    speaker = models.CharField(max_length=64, blank=True, help_text="Speaker label (speaker_1, ...)")
    sentiment = models.CharField(max_length=8, blank=True)
    sentiment_score = models.FloatField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    latency_ms = models.FloatField(null=True, blank=True, help_text="End of speech to final text")
    wake_word = models.CharField(max_length=64, blank=True, help_text="The wake word that opened it")
    created_at = models.DateTimeField(default=timezone.now)
    # Corrections by the owner: `text` and `speaker` are what exports and search use; the
    # originals are kept here on the first edit ("" and None: never edited).
    original_text = models.TextField(blank=True, help_text="The transcribed text, before any correction")
    original_speaker = models.CharField(max_length=64, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session", "index"]
        constraints = [models.UniqueConstraint(fields=["session", "index"], name="segment_unique_index")]
        indexes = [models.Index(fields=["session", "speaker"], name="segment_session_speaker")]

    def __str__(self) -> str:
        return f"{self.session_id} #{self.index}"

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


def speaker_display_name(label: str) -> str:
    """`speaker_2` -> `Speaker 2` (what a speaker is called until its owner names it)."""
    prefix, _, number = label.partition("_")
    return f"{prefix.capitalize()} {number}" if number else label


class SessionSpeaker(models.Model):
    """A voice of a session (live: clustered as it spoke; upload: over the whole file)."""

    session = models.ForeignKey(TranscriptionSession, on_delete=models.CASCADE, related_name="speakers")
    label = models.CharField(max_length=64, help_text="The label segments carry (speaker_1, ...)")
    name = models.CharField(max_length=100, blank=True, help_text="The owner's name for it (exports use it)")
    speaking_time_s = models.FloatField(default=0.0)
    segment_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["session", "label"]
        constraints = [models.UniqueConstraint(fields=["session", "label"], name="speaker_unique_label")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.label}"

    @property
    def display_name(self) -> str:
        return self.name or speaker_display_name(self.label)


class SessionTopic(models.Model):
    """A key phrase of a session's transcript, with its confidence and the segments that say it."""

    session = models.ForeignKey(TranscriptionSession, on_delete=models.CASCADE, related_name="topics")
    topic = models.CharField(max_length=200)
    confidence = models.FloatField()
    mentions = models.JSONField(default=list, blank=True, help_text="Indices of the segments that say it")

    class Meta:
        ordering = ["session", "-confidence"]
        constraints = [models.UniqueConstraint(fields=["session", "topic"], name="topic_unique_per_session")]
        indexes = [models.Index(fields=["topic"], name="topic_topic")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.topic}"


class Transcript(models.Model):
    session = models.OneToOneField(TranscriptionSession, on_delete=models.CASCADE, related_name="transcript")
    text = models.TextField(blank=True)
    word_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Transcript of {self.session_id}"


class RuntimeSetting(models.Model):
    """A runtime override of a setting, shared by every Daphne process (PATCH /api/config)."""

    name = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"{self.name}={self.value!r}"
