"""HTTP routes of the OpenAI-compatible API, at OpenAI's paths (the SDK's base_url ends in /v1)."""

from __future__ import annotations

from django.urls import path

from transcription.compat.openai import views

urlpatterns = [
    path("v1/audio/transcriptions", views.transcriptions_create, name="openai-transcriptions"),
    path("v1/models", views.models_list, name="openai-models"),
    path("v1/models/<path:model>", views.model_retrieve, name="openai-model"),
]
