"""HTTP routes of the transcription app."""

from __future__ import annotations

from django.urls import path

from transcription import views

urlpatterns = [
    path("", views.home, name="home"),
]
