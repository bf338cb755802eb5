"""/api/v1/usage/: this month's audio against the quota, sessions and limits."""

from __future__ import annotations

import pytest

from accounts.services import quota_set, usage_add

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def test_usage_reports_seconds_sessions_and_limits(alice, bob, make_session):
    quota_set(user=alice, monthly_audio_seconds=3600, max_upload_bytes=5_000_000)
    make_session(alice, ["hello"])
    usage_add(user=alice, streamed_seconds=100.5, uploaded_seconds=20)
    usage_add(user=bob, streamed_seconds=999)
    body = signed_in(alice).get("/api/v1/usage/").json()
    assert body["audio_seconds_used"] == 120.5
    assert (body["audio_seconds_streamed"], body["audio_seconds_uploaded"]) == (100.5, 20.0)
    assert body["audio_seconds_remaining"] == 3600 - 120.5
    assert body["sessions"] == 1 and body["active_streams"] == 0
    assert body["limits"]["monthly_audio_seconds"] == 3600 and body["limits"]["max_upload_bytes"] == 5_000_000
    assert body["limits"]["is_default"] is False


def test_usage_of_a_new_user_is_zero_with_default_limits(alice, settings):
    body = signed_in(alice).get("/api/v1/usage").json()
    assert body["audio_seconds_used"] == 0 and body["sessions"] == 0
    assert body["limits"]["is_default"] is True
    assert body["limits"]["monthly_audio_seconds"] == settings.STT_DEFAULT_QUOTA["monthly_audio_seconds"]
