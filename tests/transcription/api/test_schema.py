"""The OpenAPI schema: valid, its docs page works offline, and a bounded schemathesis run passes."""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.services import api_key_create
from sttproject.wsgi import application as wsgi_application

pytestmark = pytest.mark.django_db


def test_schema_is_valid_and_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    for route in [
        "/api/v1/sessions/",
        "/api/v1/sessions/{session_id}/export/{fmt}/",
        "/api/v1/transcriptions/",
    ]:
        assert f"  {route}:" in text
    assert "/api/v1/sessions:" not in text  # slash-less twins are not documented twice


def test_schema_is_served_as_openapi_json(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200 and response.json()["openapi"].startswith("3.")
    assert "ApiKeyAuth" in response.json()["components"]["securitySchemes"]


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_their_assets_from_this_server(client, page):
    html = client.get(page).content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+\.(?:js|css))["']""", html)
    assert assets, html
    assert not re.search(r"https?://(?!testserver)", " ".join(assets)), assets
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a local static file"


@pytest.fixture
def in_test_transaction():
    """Keep Django from closing the test's connection after each WSGI request (as its test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def key_headers(in_test_transaction, django_user_model, make_session) -> dict[str, str]:
    """A user with a full-scope key and a little history, so lists and searches return real rows."""
    user = django_user_model.objects.create_user("fuzz", password="pw-fuzz-123")
    make_session(user, ["hello world", "fuzzing the history"], words=True)
    return {"Authorization": f"Bearer {api_key_create(owner=user)[1]}"}


# Loaded from the in-process WSGI app at collection (schema generation reads no database).
published = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_application)


@published.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, key_headers):
    excluded = []
    if case.operation.method.upper() == "POST" and case.operation.path == "/api/v1/transcriptions/":
        # Any bytes are a schema-valid `file`, but only real audio is accepted (400 not_audio).
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers=key_headers, excluded_checks=excluded)
