"""Web pages through the Django test client: sign-in, live, history, usage and API keys."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import ActiveStream, ApiKey
from accounts.services import api_key_authenticate, api_key_create, quota_set, usage_add
from tests.live_server import ROOT
from transcription.models import Segment, TranscriptionSession
from transcription.ops import startup
from transcription.streaming.service import get_service, shutdown_service
from transcription.web import views

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.force_login(user)
    return client


# -- sign-in ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/live/",
        "/history/",
        f"/history/{uuid.uuid4()}/",
        f"/history/{uuid.uuid4()}/delete/",
        "/usage/",
        "/keys/",
    ],
)
def test_pages_without_login_redirect_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={path}"


def test_warm_up_without_login_redirects_and_starts_nothing(client):
    response = client.post(reverse("live-warmup"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert startup._load["task"] is None or startup._load["task"].done()


def test_login_form_signs_in_and_returns_to_the_page_asked_for(client, alice):
    page = client.get("/accounts/login/?next=/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'for="id_username"' in html and 'for="id_password"' in html and 'value="/history/"' in html
    wrong = client.post("/accounts/login/", {"username": "alice", "password": "nope", "next": "/history/"})
    assert wrong.status_code == 200 and 'role="alert"' in wrong.content.decode()
    right = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-pass-123", "next": "/history/"}
    )
    assert right.status_code == 302 and right["Location"] == "/history/"
    assert client.get("/history/").status_code == 200


def test_logout_is_a_post_and_ends_the_session(client, alice):
    signed_in(client, alice)
    page = client.get("/").content.decode()
    assert f'action="{reverse("logout")}"' in page and "Sign out" in page
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get("/live/").status_code == 302


def test_home_page_is_a_landing_page_for_visitors_and_a_dashboard_when_signed_in(client, alice, make_session):
    visitor = client.get("/").content.decode()
    assert "Sign in to start" in visitor and "Recent sessions" not in visitor
    make_session(alice, ["Remember the milk"])
    page = signed_in(client, alice).get("/").content.decode()
    assert "Recent sessions" in page and "Remember the milk" in page and 'href="/live/"' in page


# -- live page ------------------------------------------------------------------------------------------


def _live_config(html: str) -> dict:
    match = re.search(r'<script id="live-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the live page embeds its configuration"
    return json.loads(match.group(1))


def test_live_page_has_labelled_controls_options_limits_and_a_live_region(client, alice):
    quota_set(user=alice, monthly_audio_seconds=3600, max_session_seconds=1800, max_concurrent_streams=3)
    usage_add(user=alice, streamed_seconds=600)
    html = signed_in(client, alice).get("/live/").content.decode()
    config = _live_config(html)
    assert config["wsPath"] == "/ws/transcribe" and config["packetMs"] == 40
    assert config["warmupUrl"] == reverse("live-warmup") and config["workletUrl"].endswith(
        "js/capture-worklet.js"
    )
    assert config["remainingSeconds"] == 3000 and config["maxSessionSeconds"] == 1800
    assert config["maxConcurrentStreams"] == 3
    # Start stays disabled until the page has seen the server ready.
    assert re.search(r'<button[^>]*id="rec-button"[^>]*disabled', html)
    # Every control has a label; the transcript is a polite live region.
    for control in ("mic", "opt-language", "opt-interim", "opt-words"):
        assert f'for="{control}"' in html, control
    assert re.search(r'id="transcript"[^>]*role="log"[^>]*aria-live="polite"', html)
    # The bundled model is English-only: the language is shown but cannot be changed.
    assert re.search(r'<select id="opt-language"[^>]*disabled', html) and "English only" in html
    assert re.search(r'id="opt-interim"[^>]*checked', html)
    assert not re.search(r'id="opt-words"[^>]*checked', html)
    # Server limits in words.
    assert "50 min" in html and "30 min" in html and ">3<" in html


def test_live_page_offers_every_language_and_auto_detect_for_a_multilingual_model(client, alice, settings):
    # The languages are the running model's own (here a multilingual fake stands in for "small").
    fake = {"ENGINE": "speech.inference.fake.FakeEngine", "ENGINE_OPTIONS": {"languages": ["en", "de", "ja"]}}
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "MODEL": "small", **fake}
    signed = signed_in(client, alice)
    before = signed.get("/live/").content.decode()  # not loaded yet: detection only, never English only
    assert '<option value="">Detect automatically</option>' in before and "English only" not in before
    async_to_sync(get_service)()
    try:
        html = signed.get("/live/").content.decode()
    finally:
        async_to_sync(shutdown_service)()
    assert not re.search(r'<select id="opt-language"[^>]*disabled', html)
    assert '<option value="">Detect automatically</option>' in html
    assert '<option value="de">German</option>' in html and '<option value="ja">Japanese</option>' in html


def _wake_select(html: str) -> list[tuple[str, list[str]]]:
    """The wake-word select's option groups: [(label, [option values])]."""
    select = re.search(r'<select id="opt-wake-word"[^>]*>(.*?)</select>', html, re.S)
    assert select, "the live page offers a choice of wake word"
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', select.group(1), re.S)
    return [(label, re.findall(r'<option value="([^"]*)"', body)) for label, body in groups]


WAKE_ON = {
    "wakeword_backend": "pvporcupine",
    "wake_words": "computer,jarvis",
    "wake_words_sensitivity": 0.6,
    "wake_word_timeout": 5.0,
    "wake_word_followup_window": 8.0,
    "wake_word_activation_delay": 0.0,
}


def test_live_page_offers_wake_words_the_servers_first_then_porcupines_keywords(client, alice):
    pytest.importorskip("pvporcupine")
    from speech.wake import porcupine

    keywords = porcupine.keywords()
    signed = signed_in(client, alice)
    # Off by default (the server's default has no wake words); the choice is there for when it is on.
    html = signed.get("/live/").content.decode()
    assert re.search(r'<input type="checkbox" id="opt-wake"[^>]*aria-controls="wake-fields"', html)
    assert not re.search(r'id="opt-wake"[^>]*checked', html)
    assert re.search(r'<div class="wake-fields" id="wake-fields" hidden>', html)
    groups = _wake_select(html)
    assert [label for label, _ in groups] == ["Built-in keywords (Porcupine)", "Your own"]
    assert groups[0][1] == keywords and "jarvis" in keywords and "computer" in keywords
    assert groups[1][1] == [""]  # any phrase (the transcript backend)
    assert re.search(r'<option value="jarvis" data-backend="pvporcupine" selected>', html)
    for control in ("opt-wake", "opt-wake-word", "opt-wake-phrase", "opt-wake-followup"):
        assert f'for="{control}"' in html, control
    assert "Any phrase works, but" in html
    assert re.search(r'id="opt-wake-followup"[^>]*min="0" max="600"[^>]*value="0"', html)
    # The state line the stream drives is a polite live region.
    assert re.search(r'id="wake-state-text" role="status" aria-live="polite"', html)
    assert _live_config(html)["wake"] == {
        "backend": "",
        "words": "",
        "enabled": False,
        "timeoutSeconds": 5.0,
        "followupSeconds": 0.0,
        "porcupine": True,
    }

    with override_settings(STT_WAKE=WAKE_ON):
        html = signed.get("/live/").content.decode()
    assert re.search(r'id="opt-wake"[^>]*checked', html)
    assert re.search(r'<div class="wake-fields" id="wake-fields">', html)
    groups = _wake_select(html)
    assert groups[0] == ("This server's words", ["computer,jarvis", "computer", "jarvis"])
    assert groups[1] == (
        "Built-in keywords (Porcupine)",
        [k for k in keywords if k not in ("computer", "jarvis")],
    )
    assert re.search(
        r'<option value="computer,jarvis" data-backend="pvporcupine" selected>computer or jarvis<', html
    )
    assert re.search(r'id="opt-wake-followup"[^>]*value="8"', html)
    config = _live_config(html)["wake"]
    assert (
        config["enabled"] is True
        and config["words"] == "computer,jarvis"
        and config["followupSeconds"] == 8.0
    )


def test_without_porcupine_the_live_page_offers_only_a_wake_phrase(client, alice, monkeypatch):
    from speech.wake import porcupine
    from speech.wake.options import WakeWordError

    def unavailable():
        raise WakeWordError("wake_word_unavailable", "pvporcupine cannot load", "wakeword_backend")

    monkeypatch.setattr(porcupine, "keywords", unavailable)
    transcript = {**WAKE_ON, "wakeword_backend": "transcript", "wake_words": "hey scribe"}
    with override_settings(STT_WAKE=transcript):
        html = signed_in(client, alice).get("/live/").content.decode()
    assert 'id="opt-wake-word"' not in html
    assert re.search(r'<div class="field" id="wake-phrase-field">', html)  # shown, not hidden
    assert re.search(r'id="opt-wake-phrase"[^>]*value="hey scribe"', html)
    assert re.search(r'id="opt-wake"[^>]*checked', html)
    assert _live_config(html)["wake"]["porcupine"] is False


@pytest.fixture
async def closes_thread_connections():
    """The async client's database work runs in asgiref's worker thread; close its connection after."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_warm_up_loads_the_models_once_and_then_reports_ready(
    async_client, fake_inference, django_user_model, closes_thread_connections
):
    user = await sync_to_async(django_user_model.objects.create_user)("carol", password="carol-pass-123")
    await async_client.aforce_login(user)
    first = await async_client.post(reverse("live-warmup"))
    assert first.status_code == 200
    assert first.json() == {"ready": False, "loading": True, "error": None, "lanes": []}
    task = startup._load["task"]
    second = await async_client.post(reverse("live-warmup"))
    assert startup._load["task"] is task, "a second poll while loading starts nothing new"
    assert second.json()["loading"] or second.json()["ready"]
    await asyncio.wait_for(asyncio.shield(task), 30)
    ready = (await async_client.post(reverse("live-warmup"))).json()
    assert ready["ready"] is True and ready["lanes"] and ready["error"] is None
    assert (await async_client.get(reverse("live-warmup"))).status_code == 405


# -- history ----------------------------------------------------------------------------------------------


def test_history_lists_only_the_users_own_sessions(client, alice, bob, make_session):
    mine = make_session(alice, ["Alpha bravo charlie"])
    theirs = make_session(bob, ["Secret plans of bob"])
    html = signed_in(client, alice).get("/history/").content.decode()
    assert str(mine.pk) in html and "Alpha bravo charlie" in html
    assert str(theirs.pk) not in html and "Secret plans" not in html
    assert "1 session<" in html


def test_history_search_and_filters_narrow_the_list(client, alice, make_session, days_ago):
    weather = make_session(alice, ["The weather is sunny today"], started_at=days_ago(0))
    meeting = make_session(alice, ["Budget meeting notes"], started_at=days_ago(10))
    german = make_session(alice, ["Guten Morgen"], language="de", endpoint="stt_v3", started_at=days_ago(3))
    running = make_session(alice, ["Still talking"], end=False, started_at=days_ago(1))
    c = signed_in(client, alice)

    def listed(query: str) -> set:
        html = c.get("/history/?" + query).content.decode()
        return {s for s in (weather, meeting, german, running) if f'data-session="{s.pk}"' in html}

    assert listed("") == {weather, meeting, german, running}
    assert listed("q=weather") == {weather}
    assert listed("q=budget+notes") == {meeting}
    assert listed("endpoint=stt_v3") == {german}
    assert listed("language=de") == {german}
    assert listed("status=active") == {running}
    today = days_ago(0).date()
    assert listed(f"from={days_ago(4).date()}") == {weather, german, running}
    assert listed(f"to={days_ago(5).date()}") == {meeting}
    assert listed(f"from={today}&to={today}") == {weather}
    # Bad values are reported at their fields and otherwise ignored, rather than failing the page.
    assert listed("from=yesterday&status=bogus&endpoint=nope") == {weather, meeting, german, running}
    bad = c.get("/history/?from=yesterday&to=2024-02-30")
    html = bad.content.decode()
    assert bad.status_code == 400 and html.count("Enter a date as YYYY-MM-DD.") == 2
    assert 'id="f-from-error"' in html and 'value="yesterday"' in html and 'aria-invalid="true"' in html
    empty = c.get("/history/?q=zebra").content.decode()
    assert "No sessions match" in empty and 'value="zebra"' in empty


def test_history_accepts_the_last_day_there_is(client, alice, make_session, days_ago):
    session = make_session(alice, ["Far future filter"], started_at=days_ago(1))
    response = signed_in(client, alice).get("/history/?from=2000-01-01&to=9999-12-31")
    html = response.content.decode()
    assert response.status_code == 200 and f'data-session="{session.pk}"' in html
    assert 'value="9999-12-31"' in html and "field-error" not in html


def test_history_reports_a_date_the_database_cannot_hold(client, alice, make_session, settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # 0001-01-01 00:00 there is before year 1 in UTC
    session = make_session(alice, ["Still listed"])
    response = signed_in(client, alice).get("/history/?from=0001-01-01")
    html = response.content.decode()
    assert response.status_code == 400 and 'id="f-from-error"' in html
    assert f'data-session="{session.pk}"' in html


def test_history_is_paginated_and_keeps_the_filters_in_page_links(client, alice, make_session):
    for i in range(views.HISTORY_PAGE_SIZE + 3):
        make_session(alice, [f"note number {i}"])
    c = signed_in(client, alice)
    first = c.get("/history/?q=note").content.decode()
    assert first.count("data-session=") == views.HISTORY_PAGE_SIZE
    assert "Page 1 of 2" in first and 'href="?q=note&amp;page=2"' in first
    second = c.get("/history/?q=note&page=2").content.decode()
    assert second.count("data-session=") == 3


def test_session_page_shows_transcript_segments_times_and_export_links(client, alice, make_session):
    session = make_session(alice, ["Ask not what your country can do for you,", "ask what you can do."])
    html = signed_in(client, alice).get(f"/history/{session.pk}/").content.decode()
    assert "Ask not what your country can do for you, ask what you can do." in html
    assert "0:00.5" in html and "0:02.5" in html and "0:03.0" in html and "0:05.0" in html
    for fmt in ("txt", "srt", "vtt", "json"):
        assert f'href="/api/v1/sessions/{session.pk}/export/{fmt}/" download' in html
    assert f'href="/history/{session.pk}/delete/"' in html and "data-confirm-post" in html


def test_another_users_session_page_and_delete_are_not_found(client, alice, bob, make_session):
    theirs = make_session(bob, ["Bob only"])
    c = signed_in(client, alice)
    assert c.get(f"/history/{theirs.pk}/").status_code == 404
    assert c.get(f"/history/{theirs.pk}/delete/").status_code == 404
    assert c.post(f"/history/{theirs.pk}/delete/").status_code == 404
    assert TranscriptionSession.objects.filter(pk=theirs.pk).exists()


def test_delete_asks_for_confirmation_then_removes_the_session(client, alice, make_session):
    session = make_session(alice, ["Delete me"])
    c = signed_in(client, alice)
    confirm = c.get(f"/history/{session.pk}/delete/")
    assert confirm.status_code == 200 and "Delete this session?" in confirm.content.decode()
    assert TranscriptionSession.objects.filter(pk=session.pk).exists(), "GET only asks"
    response = c.post(f"/history/{session.pk}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/history/"
    assert "were deleted" in response.content.decode()
    assert not TranscriptionSession.objects.filter(pk=session.pk).exists()
    assert not Segment.objects.filter(session_id=session.pk).exists()


def test_a_session_still_streaming_is_not_deleted_and_the_page_says_why(client, alice, make_session):
    ActiveStream.objects.create(user=alice, endpoint="ws_transcribe", started_at=timezone.now())
    session = make_session(alice, ["Still talking"], end=False)
    response = signed_in(client, alice).post(f"/history/{session.pk}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == f"/history/{session.pk}/"
    assert "still being streamed" in response.content.decode()
    assert TranscriptionSession.objects.filter(pk=session.pk).exists()


# -- usage --------------------------------------------------------------------------------------------------


def test_usage_page_shows_the_quota_as_a_bar(client, alice):
    quota_set(user=alice, monthly_audio_seconds=100 * 60)
    usage_add(user=alice, streamed_seconds=20 * 60, uploaded_seconds=5 * 60, sessions=3)
    html = signed_in(client, alice).get("/usage/").content.decode()
    bar = re.search(r'<div class="bar large" id="quota-bar" role="progressbar"[^>]*>', html).group(0)
    assert 'aria-valuenow="25.0"' in bar and 'aria-valuetext="25 of 100 minutes (25.0%)"' in bar
    assert "pct-25" in html and "75 minutes left" in html
    assert "20 min" in html and "5 min" in html and "set these limits for you" in html


def test_usage_bar_turns_red_near_the_limit_and_caps_at_full(client, alice):
    quota_set(user=alice, monthly_audio_seconds=60)
    usage_add(user=alice, streamed_seconds=90)
    html = signed_in(client, alice).get("/usage/").content.decode()
    assert 'aria-valuenow="100.0"' in html and "level-danger" in html and "almost used" in html


# -- API keys ----------------------------------------------------------------------------------------------


def test_creating_a_key_shows_its_secret_once(client, alice):
    c = signed_in(client, alice)
    response = c.post("/keys/", {"name": "laptop", "scopes": ["stream", "history:read"]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = re.search(r'id="new-secret" value="([^"]+)"', html).group(1)
    key = api_key_authenticate(raw_key=secret)
    assert key.owner == alice and key.name == "laptop" and key.scopes == ["stream", "history:read"]
    again = c.get("/keys/").content.decode()
    assert secret not in again and key.prefix in again and "laptop" in again
    assert secret not in str(c.cookies) and secret not in str(dict(c.session))


def test_key_form_errors_are_shown_next_to_the_fields(client, alice):
    response = signed_in(client, alice).post("/keys/", {"name": "x" * 101, "expires": "2001-01-01"})
    html = response.content.decode()
    assert response.status_code == 400 and not ApiKey.objects.exists()
    assert "at most 100 characters" in html and "at least one permission" in html and "in the future" in html
    assert 'aria-invalid="true"' in html


def test_revoking_a_key_stops_it_working(client, alice):
    key, secret = api_key_create(owner=alice, name="old")
    c = signed_in(client, alice)
    html = c.get("/keys/").content.decode()
    assert f'action="/keys/{key.pk}/revoke/"' in html and "data-confirm" in html
    response = c.post(f"/keys/{key.pk}/revoke/", follow=True)
    assert "was revoked" in response.content.decode() and "Revoked" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    with pytest.raises(Exception, match="revoked"):
        api_key_authenticate(raw_key=secret)


def test_one_user_never_sees_or_revokes_another_users_keys(client, alice, bob):
    theirs, _ = api_key_create(owner=bob, name="bobs-key")
    c = signed_in(client, alice)
    assert "bobs-key" not in c.get("/keys/").content.decode()
    assert c.post(f"/keys/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert c.get(f"/keys/{theirs.pk}/revoke/").status_code == 405


def test_keys_are_read_only_when_self_service_is_off(client, alice, settings):
    settings.STT_API_KEY_SELF_SERVICE = False
    key, _ = api_key_create(owner=alice, name="issued")
    c = signed_in(client, alice)
    html = c.get("/keys/").content.decode()
    assert "issued" in html and "Create key" not in html and "/revoke/" not in html
    assert c.post("/keys/", {"name": "mine", "scopes": ["stream"]}).status_code == 403
    assert c.post(f"/keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.count() == 1


# -- assets ---------------------------------------------------------------------------------------------


def test_static_assets_are_served_by_the_app_itself(client):
    for path in (
        "/static/css/app.css",
        "/static/js/live.js",
        "/static/js/capture-worklet.js",
        "/static/js/app.js",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 500, path


def test_pages_load_nothing_from_other_sites():
    """Offline first: no CDN fonts, scripts or styles anywhere in the templates or static files."""
    external = re.compile(
        r"""(?:src|href)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import\s+["']?https?:"""
    )
    files = [
        p
        for folder in ("templates", "static")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in {".html", ".css", ".js"} and "admin" not in p.parts
    ]
    assert files
    offenders = [str(p.relative_to(ROOT)) for p in files if external.search(p.read_text())]
    assert offenders == []
