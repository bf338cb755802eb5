"""/api/v1/keys/: a signed-in user lists, creates (secret once) and revokes their own keys."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ALL_SCOPES, ApiKey
from accounts.services import api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(alice):
    client = APIClient()
    client.force_login(alice)
    return client


def test_create_shows_the_secret_once_and_it_works(client, alice):
    response = client.post(
        "/api/v1/keys/", {"name": "laptop", "scopes": ["history:read"], "expires_in_days": 30}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "laptop" and body["scopes"] == ["history:read"] and body["state"] == "active"
    assert body["expires_at"] is not None
    assert api_key_authenticate(raw_key=body["key"]).owner == alice
    listed = client.get("/api/v1/keys/").json()["results"]
    assert [k["prefix"] for k in listed] == [body["prefix"]] and "key" not in listed[0]
    # The new key reads history but cannot manage keys.
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {body['key']}")
    assert keyed.get("/api/v1/sessions/").status_code == 200


def test_create_defaults_to_every_scope(client):
    body = client.post("/api/v1/keys/", {}, format="json").json()
    assert sorted(body["scopes"]) == sorted(ALL_SCOPES) and body["expires_at"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"scopes": ["admin"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"name": "x" * 101}, "name"),
        ({"expires_in_days": 0}, "expires_in_days"),
    ],
)
def test_create_rejects_bad_input(client, payload, field):
    response = client.post("/api/v1/keys/", payload, format="json")
    assert response.status_code == 400 and field in response.json()["fields"]
    assert not ApiKey.objects.exists()


def test_revoke_own_key(client, alice):
    key, secret = api_key_create(owner=alice)
    assert client.delete(f"/api/v1/keys/{key.pk}/").status_code == 204
    assert client.delete(f"/api/v1/keys/{key.pk}").status_code == 204  # idempotent
    assert client.get("/api/v1/keys/").json()["results"][0]["state"] == "revoked"
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert keyed.get("/api/v1/sessions/").json()["code"] == "key_revoked"


def test_keys_of_others_are_invisible_and_cannot_be_revoked(client, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    bobs, _ = api_key_create(owner=bob)
    assert client.get("/api/v1/keys/").json()["results"] == []
    assert client.delete(f"/api/v1/keys/{bobs.pk}/").status_code == 404
    assert client.delete("/api/v1/keys/not-a-number/").status_code == 404
    bobs.refresh_from_db()
    assert bobs.revoked_at is None


def test_an_api_key_cannot_manage_keys(alice):
    _, secret = api_key_create(owner=alice)
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    for response in [keyed.get("/api/v1/keys/"), keyed.post("/api/v1/keys/", {}, format="json")]:
        assert response.status_code == 403 and response.json()["code"] == "session_required"
    assert ApiKey.objects.count() == 1


def test_self_service_can_be_turned_off(client, settings, alice):
    settings.STT_API_KEY_SELF_SERVICE = False
    key, _ = api_key_create(owner=alice)
    for response in [
        client.get("/api/v1/keys/"),
        client.post("/api/v1/keys/", {}, format="json"),
        client.delete(f"/api/v1/keys/{key.pk}/"),
    ]:
        assert response.status_code == 403
        assert (
            response.json()["code"] == "self_service_disabled" and "turned off" in response.json()["detail"]
        )
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None


def test_anonymous_cannot_list_keys():
    assert APIClient().get("/api/v1/keys/").status_code == 401
