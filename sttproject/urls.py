"""URL configuration."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # History REST API and its OpenAPI schema (Swagger UI at /api/docs/, Redoc at /api/redoc/).
    path("api/v1/", include("transcription.api.urls")),
    path("api/v1/", include("transcription.uploads.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # OpenAI-, Deepgram- and AssemblyAI-compatible HTTP endpoints (/v1/audio/..., /v1/listen, /v3/token).
    path("", include("transcription.compat.urls")),
    path("", include("accounts.urls")),
    path("", include("transcription.urls")),
    path("", include("vocabularies.urls")),  # /api/v1/vocabularies and the /vocabularies/ page
]
