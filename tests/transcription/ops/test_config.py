"""/api/config: public settings for anyone; changes by staff only, CSRF-protected for browser sessions."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.services import api_key_create
from transcription import runtime_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True)


def patch(client: Client, body, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.patch("/api/config", data, content_type="application/json", **headers)


def test_anyone_reads_the_settings_and_their_buckets(client):
    body = client.get("/api/config").json()
    assert body["settings"]["max_sessions"] == runtime_config.current()["max_sessions"]
    assert {"activeSessionSafe", "newSessionOnly", "startupOnly"} <= set(body)
    assert body["engines"]["supported"] == ["faster_whisper"]


def test_a_staff_session_changes_settings_only_with_its_csrf_token(staff):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    # A cross-site form rides the cookie but cannot know the token: refused, nothing changes.
    forged = patch(browser, {"settings": {"max_sessions": 7}})
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    assert runtime_config.current()["max_sessions"] != 7
    browser.get("/live/")  # any page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    changed = patch(browser, {"settings": {"max_sessions": 7}}, HTTP_X_CSRFTOKEN=token)
    assert changed.status_code == 200, changed.content
    assert changed.json()["applied"] == {"max_sessions": 7}
    runtime_config.invalidate()
    assert runtime_config.current()["max_sessions"] == 7


def test_a_staff_api_key_changes_settings_without_a_csrf_token(staff):
    key = api_key_create(owner=staff, scopes=["stream"])[1]
    client = Client(enforce_csrf_checks=True)
    response = patch(client, {"settings": {"max_active_speakers": 5}}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200, response.content
    assert response.json()["settings"]["max_active_speakers"] == 5


def test_others_are_refused_and_bad_bodies_get_a_code(client, alice, staff):
    assert patch(client, {"settings": {"max_sessions": 3}}).status_code in (401, 403)
    client.force_login(alice)
    refused = patch(client, {"settings": {"max_sessions": 3}})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    client.force_login(staff)
    assert patch(client, "{not json").json()["error"] == "invalid_json"
    assert patch(client, {"settings": {}}).json()["error"] == "invalid_body"
    rejected = patch(client, {"settings": {"max_sessions": 3, "no_such": 1}})
    assert rejected.status_code == 400 and rejected.json()["applied"] == {}
    assert "no_such" in rejected.json()["rejected"]
    assert runtime_config.current()["max_sessions"] != 3  # all or nothing


def test_wake_word_settings_change_for_new_sessions_and_are_checked_together(staff):
    from transcription.streaming.lifecycle import default_options

    key = api_key_create(owner=staff, scopes=["stream"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    body = Client().get("/api/config").json()
    assert {"wake_words", "wakeword_backend", "wake_word_followup_window"} <= set(body["newSessionOnly"])
    response = patch(
        Client(), {"settings": {"wake_words": "jarvis, computer", "wake_word_timeout": 3}}, **auth
    )
    assert response.status_code == 200, response.content
    runtime_config.invalidate()
    wake = default_options().wake
    assert wake.enabled and wake.words == ("jarvis", "computer") and wake.timeout_s == 3.0
    # Porcupine knows only its built-in keywords; the transcript backend takes any phrase.
    refused = patch(Client(), {"settings": {"wake_words": "abracadabra"}}, **auth)
    assert refused.status_code == 400 and "abracadabra" in refused.content.decode()
    both = {"wakeword_backend": "transcript", "wake_words": "abracadabra"}
    assert patch(Client(), {"settings": both}, **auth).status_code == 200
    runtime_config.invalidate()
    assert default_options().wake.backend == "transcript"
