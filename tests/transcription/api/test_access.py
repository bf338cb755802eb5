"""Every endpoint: authentication, isolation between users, and API-key scopes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_create
from transcription.models import Endpoint, TranscriptionSession

from .conftest import signed_in, with_key

pytestmark = pytest.mark.django_db

# (method, path) with {session}/{upload}/{key} for objects of the *other* user.
OBJECT_ROUTES = [
    ("get", "/api/v1/sessions/{session}/"),
    ("delete", "/api/v1/sessions/{session}/"),
    ("get", "/api/v1/sessions/{session}/export/txt/"),
    ("get", "/api/v1/sessions/{session}/export/srt/"),
    ("get", "/api/v1/sessions/{session}/export/vtt/"),
    ("get", "/api/v1/sessions/{session}/export/json/"),
    ("get", "/api/v1/transcriptions/{upload}/"),
    ("delete", "/api/v1/keys/{key}/"),
]
READ_ROUTES = [
    "/api/v1/sessions/",
    "/api/v1/sessions/{session}/",
    "/api/v1/sessions/{session}/export/srt/",
    "/api/v1/segments/?q=secret",
    "/api/v1/usage/",
    "/api/v1/transcriptions/{upload}/",
]


@pytest.fixture
def bobs(bob, make_session):
    key, _ = api_key_create(owner=bob, name="bob's key")
    return {
        "session": make_session(bob, ["bob's secret plan"]).pk,
        "upload": make_session(bob, ["bob's secret upload"], endpoint=Endpoint.UPLOAD).pk,
        "key": key.pk,
    }


@pytest.mark.parametrize(("method", "route"), OBJECT_ROUTES)
def test_another_users_objects_answer_404(alice, bobs, method, route):
    response = getattr(signed_in(alice), method)(route.format(**bobs))
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert TranscriptionSession.objects.filter(pk=bobs["session"]).exists()
    assert ApiKey.objects.get(pk=bobs["key"]).revoked_at is None


@pytest.mark.parametrize(("method", "route"), OBJECT_ROUTES)
def test_the_owner_reaches_the_same_objects(bob, bobs, method, route):
    client = signed_in(bob)
    response = getattr(client, method)(route.format(**bobs))
    assert response.status_code in (200, 204), response.content


def test_lists_search_and_usage_show_only_the_callers_data(alice, bob, bobs, make_session):
    mine = make_session(alice, ["my own secret"])
    client = signed_in(alice)
    assert [s["id"] for s in client.get("/api/v1/sessions/").json()["results"]] == [str(mine.pk)]
    assert [s["session"] for s in client.get("/api/v1/segments/?q=secret").json()["results"]] == [
        str(mine.pk)
    ]
    assert client.get("/api/v1/usage/").json()["sessions"] == 1
    assert client.get("/api/v1/keys/").json()["results"] == []
    assert signed_in(bob).get("/api/v1/usage/").json()["sessions"] == 2


@pytest.mark.parametrize(
    ("method", "route"),
    [("get", r) for r in READ_ROUTES]
    + [
        ("delete", "/api/v1/sessions/{session}/"),
        ("post", "/api/v1/transcriptions/"),
        ("get", "/api/v1/keys/"),
    ],
)
def test_anonymous_requests_answer_401(bobs, method, route):
    response = getattr(APIClient(), method)(route.format(**bobs))
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_key_answers_401_with_its_reason(bobs):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stt_nope_nope")
    response = client.get("/api/v1/sessions/")
    assert response.status_code == 401 and response.json()["code"] == "invalid_key"


@pytest.mark.parametrize("route", READ_ROUTES)
def test_reading_needs_the_history_read_scope(bob, bobs, route):
    path = route.format(**bobs)
    denied = with_key(bob, ["stream", "history:write"]).get(path)
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert with_key(bob, ["history:read"]).get(path).status_code == 200


def test_deleting_needs_the_history_write_scope(bob, bobs):
    path = f"/api/v1/sessions/{bobs['session']}/"
    assert with_key(bob, ["history:read"]).delete(path).status_code == 403
    assert TranscriptionSession.objects.filter(pk=bobs["session"]).exists()
    assert with_key(bob, ["history:write"]).delete(path).status_code == 204


def test_uploading_needs_the_history_write_scope(bob, upload_dir):
    response = with_key(bob, ["history:read", "stream"]).post(
        "/api/v1/transcriptions/", {"file": b"x"}, format="multipart"
    )
    assert response.status_code == 403
    assert not TranscriptionSession.objects.exists()


# Every history route of /api/v1/ with a method: a key's scopes are checked for every method, and a
# method no scope is mapped for is refused (fail closed), not left to the view to answer 405.
HISTORY_ROUTES = [
    "/api/v1/sessions/",
    "/api/v1/sessions/{session}/",
    "/api/v1/sessions/{session}/audio/",
    "/api/v1/sessions/{session}/segments/",
    "/api/v1/sessions/{session}/segments/0/",
    "/api/v1/sessions/{session}/speakers/S1/",
    "/api/v1/sessions/{session}/export/srt/",
    "/api/v1/segments/",
    "/api/v1/usage/",
    "/api/v1/transcriptions/",
    "/api/v1/transcriptions/{upload}/",
    "/api/v1/vocabularies/",
]


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
@pytest.mark.parametrize("route", HISTORY_ROUTES)
def test_a_stream_only_key_is_refused_every_history_write(bob, bobs, route, method):
    response = getattr(with_key(bob, ["stream"]), method)(route.format(**bobs))
    assert response.status_code == 403, (response.status_code, response.content)
    assert response.json()["code"] == "permission_denied"
    assert TranscriptionSession.objects.filter(pk=bobs["session"]).exists()


@pytest.mark.parametrize("method", ["PROPFIND", "TRACE", "FOO"])
def test_a_method_no_scope_is_mapped_for_is_refused(bob, bobs, method):
    client = with_key(bob, ["stream", "history:read", "history:write"])
    for route in ("/api/v1/sessions/", "/api/v1/sessions/{session}/audio/", "/api/v1/tokens/"):
        response = client.generic(method, route.format(**bobs))
        assert response.status_code == 403, (route, response.status_code, response.content)
    assert client.get(f"/api/v1/sessions/{bobs['session']}/").status_code == 200
