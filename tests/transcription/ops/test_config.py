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


# -- every field validated: languages the model produces, finite numbers in range -------------------


@pytest.fixture
def staff_key(staff):
    return {"HTTP_AUTHORIZATION": f"Bearer {api_key_create(owner=staff, scopes=['stream'])[1]}"}


@pytest.fixture
def no_service(monkeypatch):
    """No inference service started in this process (another test may have left one)."""
    monkeypatch.setattr("transcription.streaming.service._service", None)


class _Service:
    ready = True

    def __init__(self, languages):
        self.supported_languages = list(languages)


def test_an_english_only_model_takes_english_or_detection_only(staff_key, no_service):
    for unknown in ("xx", "de", "english", "e", "en\x00", "en-US-x-a"):
        refused = patch(Client(), {"settings": {"language": unknown}}, **staff_key)
        assert refused.status_code == 400, (unknown, refused.content)
        body = refused.json()
        assert body["error"] == "rejected" and "language" in body["rejected"], body
        assert "en" in body["rejected"]["language"]  # says what the model takes
    runtime_config.invalidate()
    assert runtime_config.current()["language"] == "en"
    for accepted, stored in (("en", "en"), ("EN", "en"), ("", ""), ("auto", "")):
        response = patch(Client(), {"settings": {"language": accepted}}, **staff_key)
        assert response.status_code == 200, (accepted, response.content)
        assert response.json()["applied"] == {"language": stored}


def test_a_multilingual_model_takes_any_whisper_language(staff_key, no_service, settings):
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "MODEL": "small"}
    for code in ("de", "ja", "haw", "en", ""):
        response = patch(Client(), {"settings": {"language": code}}, **staff_key)
        assert response.status_code == 200, (code, response.content)
    for unknown in ("xx", "klingon", "de-DE-x-private"):
        refused = patch(Client(), {"settings": {"language": unknown}}, **staff_key)
        assert refused.status_code == 400 and "language" in refused.json()["rejected"], unknown


def test_a_running_service_says_which_languages_its_model_produces(staff_key, monkeypatch):
    monkeypatch.setattr("transcription.streaming.service._service", _Service(["en", "de"]))
    assert patch(Client(), {"settings": {"language": "de"}}, **staff_key).status_code == 200
    refused = patch(Client(), {"settings": {"language": "fr"}}, **staff_key)
    assert refused.status_code == 400 and "de" in refused.json()["rejected"]["language"]


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e400", "-1e400"])
@pytest.mark.parametrize("name", ["max_sessions", "silero_sensitivity", "wake_word_timeout"])
def test_non_finite_numbers_are_refused_with_a_code_not_a_500(staff_key, name, literal):
    before = runtime_config.current()[name]
    response = patch(Client(), f'{{"settings": {{"{name}": {literal}}}}}', **staff_key)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_json"
    assert "finite" in response.json()["message"]
    runtime_config.invalidate()
    assert runtime_config.current()[name] == before


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_sessions", float("inf")),
        ("max_sessions", float("nan")),
        ("silero_sensitivity", float("nan")),
        ("silero_sensitivity", float("-inf")),
        ("beam_size", 10**400),
        ("max_sessions", 0),
        ("max_sessions", 100001),
        ("beam_size", 2.5),
        ("silero_sensitivity", 0.99),
        ("interim_results", 1),
        ("language", 5),
        ("wake_words", ["a"]),
    ],
    ids=lambda value: str(value)[:12],
)
def test_each_setting_is_checked_for_its_type_and_range(name, value):
    accepted, rejected = runtime_config.validate_patch({name: value})
    assert accepted == {} and rejected[name].startswith("invalid:"), rejected
