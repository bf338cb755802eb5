"""GET /api/v1/sessions/{id}/audio: the owner only (cookie or a history:read key), ranges, deletion, usage."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.services import api_key_create
from tests.transcription.recordings.stored import session_with_audio
from transcription import services
from transcription.models import TranscriptionSession

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def with_key(user, scopes) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(owner=user, scopes=scopes)[1]}")
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def url(session) -> str:
    return f"/api/v1/sessions/{session.pk}/audio"


def test_the_owner_gets_the_file_with_the_cookie_and_with_a_key(alice, audio_dir):
    session = session_with_audio(alice, audio_dir)
    stored = (audio_dir / session.audio_file.name).read_bytes()
    assert session.audio_bytes == len(stored) > 0
    for client in (signed_in(alice), with_key(alice, ["history:read"])):
        response = client.get(url(session), HTTP_ACCEPT="audio/*")
        assert response.status_code == 200
        assert response["Content-Type"] == "audio/ogg"
        assert response["Accept-Ranges"] == "bytes"
        assert body(response) == stored
    response = signed_in(alice).get(url(session), HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert body(response) == stored[100:200]
    assert response["Content-Range"] == f"bytes 100-199/{len(stored)}"
    response = signed_in(alice).get(url(session), HTTP_RANGE=f"bytes={len(stored)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(stored)}"


def test_anyone_else_gets_404(alice, bob, django_user_model, audio_dir):
    session = session_with_audio(alice, audio_dir)
    staff = django_user_model.objects.create_user("sam", password="pw-sam-123", is_staff=True)
    for client in (signed_in(bob), with_key(bob, ["history:read"]), signed_in(staff)):
        response = client.get(url(session))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert APIClient().get(url(session)).status_code in (401, 403)
    assert with_key(alice, ["stream"]).get(url(session)).status_code == 403


def test_a_session_without_audio_and_a_bad_id_are_404(alice, audio_dir):
    session = services.session_start(user=alice, endpoint="ws_transcribe")
    assert signed_in(alice).get(url(session)).status_code == 404
    assert signed_in(alice).get("/api/v1/sessions/not-a-uuid/audio").status_code == 404


def test_deleting_the_session_removes_its_file(alice, audio_dir):
    session = session_with_audio(alice, audio_dir)
    path = audio_dir / session.audio_file.name
    assert path.is_file()
    response = signed_in(alice).delete(f"/api/v1/sessions/{session.pk}")
    assert response.status_code == 204
    assert not path.exists()


def test_deleting_the_user_removes_their_files(alice, audio_dir):
    path = audio_dir / session_with_audio(alice, audio_dir).audio_file.name
    alice.delete()
    assert not path.exists()


def test_usage_counts_the_stored_bytes(alice, bob, audio_dir):
    first = session_with_audio(alice, audio_dir)
    second = session_with_audio(alice, audio_dir)
    session_with_audio(bob, audio_dir)
    usage = signed_in(alice).get("/api/v1/usage").json()
    assert usage["audio_bytes_stored"] == first.audio_bytes + second.audio_bytes > 0
    page = signed_in(alice).get("/usage/")
    assert page.status_code == 200
    assert 'id="audio-bytes-stored"' in page.content.decode()


def test_the_user_sets_their_default_on_the_usage_page(alice, settings):
    from transcription.recordings.policy import store_audio_wanted

    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "DEFAULT": False}
    client = signed_in(alice)
    assert client.post("/usage/", {"store_audio": "keep"}).status_code == 302
    assert store_audio_wanted(user=alice, asked=None) is True
    assert client.post("/usage/", {"store_audio": "default"}).status_code == 302
    assert store_audio_wanted(user=alice, asked=None) is False
    assert client.post("/usage/", {"store_audio": "maybe"}).status_code == 400


@pytest.mark.parametrize("dry_run", [False, True])
def test_audio_purge_removes_only_expired_audio_and_keeps_the_text(alice, audio_dir, dry_run, capsys):
    import datetime as dt

    from django.utils import timezone

    old = session_with_audio(alice, audio_dir, text="old words")
    new = session_with_audio(alice, audio_dir, text="new words")
    TranscriptionSession.objects.filter(pk=old.pk).update(ended_at=timezone.now() - dt.timedelta(days=40))
    args = ["--older-than-days", "30", *(["--dry-run"] if dry_run else [])]
    call_command("audio_purge", *args)
    out = capsys.readouterr().out
    assert "1 session(s)" in out
    old.refresh_from_db()
    new.refresh_from_db()
    assert (audio_dir / new.audio_file.name).is_file()
    assert old.segments.get().text == "old words"
    if dry_run:
        assert old.audio_file and (audio_dir / old.audio_file.name).is_file()
    else:
        assert not old.audio_file and old.audio_bytes == 0
        assert not list((audio_dir / str(alice.pk)).glob(f"{old.pk}*"))


def test_audio_purge_with_zero_days_keeps_everything(alice, audio_dir, settings, capsys):
    import datetime as dt

    from django.utils import timezone

    session = session_with_audio(alice, audio_dir)
    TranscriptionSession.objects.filter(pk=session.pk).update(
        ended_at=timezone.now() - dt.timedelta(days=4000)
    )
    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "RETENTION_DAYS": 0}
    call_command("audio_purge")
    assert "kept" in capsys.readouterr().out
    session.refresh_from_db()
    assert session.audio_file
