"""URL configuration."""

from __future__ import annotations

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

# The API docs pages, under the Content-Security-Policy of settings.py with inline styles added (Swagger
# UI's page and Redoc's components bring theirs); their scripts are static files all the same (the
# split view serves Swagger UI's start-up script at ?script rather than inline).
docs_page = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # History REST API and its OpenAPI schema (Swagger UI at /api/docs/, Redoc at /api/redoc/).
    path("api/v1/", include("transcription.api.urls")),
    path("api/v1/", include("transcription.uploads.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", docs_page(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", docs_page(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    # OpenAI-, Deepgram- and AssemblyAI-compatible HTTP endpoints (/v1/audio/..., /v1/listen, /v3/token).
    path("", include("transcription.compat.urls")),
    path("", include("accounts.urls")),
    path("", include("transcription.urls")),
    path("", include("vocabularies.urls")),  # /api/v1/vocabularies and the /vocabularies/ page
]
