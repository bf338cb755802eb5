"""Routes of vocabularies: the REST API under /api/v1/ (with and without a trailing slash) and the page."""

from __future__ import annotations

from django.urls import path

from transcription.api.base import both_slashes
from vocabularies import api, views

urlpatterns = [
    *both_slashes("api/v1/vocabularies", api.VocabularyListView.as_view(), "api-vocabulary-list"),
    *both_slashes(
        "api/v1/vocabularies/<str:name>", api.VocabularyDetailView.as_view(), "api-vocabulary-detail"
    ),
    path("vocabularies/", views.vocabularies, name="vocabularies"),
    path("vocabularies/<slug:name>/", views.vocabulary_edit, name="vocabulary-edit"),
    path("vocabularies/<slug:name>/delete/", views.vocabulary_delete, name="vocabulary-delete"),
]
