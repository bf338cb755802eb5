"""The upload page through the Django test client: signed-in users only, its options and links."""

from __future__ import annotations

import json
import re

import pytest
from django.test import override_settings

from accounts.services import quota_set
from transcription.recordings.policy import user_store_audio_set
from vocabularies.services import vocabulary_create

pytestmark = pytest.mark.django_db


def page(client, user) -> str:
    client.force_login(user)
    response = client.get("/upload/")
    assert response.status_code == 200
    return response.content.decode()


def config(html: str) -> dict:
    found = re.search(r'<script id="upload-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page carries its configuration"
    return json.loads(found.group(1))


def test_signed_out_the_upload_page_leads_to_sign_in(client):
    response = client.get("/upload/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/upload/"


def test_the_page_posts_to_the_api_with_the_users_limit(client, alice):
    quota_set(user=alice, max_upload_bytes=5 * 1024 * 1024)
    html = page(client, alice)
    assert config(html) == {
        "createUrl": "/api/v1/transcriptions/",
        "sessionUrl": "/history/00000000-0000-0000-0000-000000000000/",
        "maxUploadBytes": 5 * 1024 * 1024,
    }
    assert 'name="csrfmiddlewaretoken"' in html and 'type="file"' in html and 'id="dropzone"' in html
    assert 'id="sending-bar"' in html and 'id="transcribing-bar"' in html
    assert "5.0\xa0MB" in html  # the limit, as people read it
    assert "js/upload.js" in html


@override_settings(
    STT_ENRICHMENT={
        "SPEAKERS": True,
        "SENTIMENT": True,
        "TOPICS": False,
        "FILTERS": True,
        "DEFAULT": ["sentiment"],
        "REDACT_ALWAYS": "",
        "SPEAKER_THRESHOLD": 0,
    }
)
def test_the_options_are_the_servers_and_the_users(client, alice):
    vocabulary_create(owner=alice, name="medical", terms=["tachycardia"])
    user_store_audio_set(user=alice, store_audio=True)
    html = page(client, alice)
    for name in ("language", "keyterms_text", "vocabulary", "word_timestamps", "store_audio"):
        assert f'name="{name}"' in html, name
    assert '<option value="medical">medical</option>' in html
    assert re.search(r'id="upload-store-audio" name="store_audio" checked', html)  # her default
    assert re.search(r'id="upload-sentiment" name="sentiment" checked', html)  # the server's default
    assert re.search(r'id="upload-speakers" name="speakers">', html)  # offered, off
    assert 'name="topics"' not in html  # not offered by this server
    assert 'name="redact" value="pci,phone,email"' in html


def test_without_a_stored_audio_default_keep_the_audio_follows_the_server(client, alice, settings):
    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "DEFAULT": False}
    assert re.search(r'id="upload-store-audio" name="store_audio">', page(client, alice))


def test_history_links_to_the_upload_page(client, alice):
    client.force_login(alice)
    html = client.get("/history/").content.decode()
    assert 'href="/upload/"' in html
