"""Account reads shared by the web pages and the API: remaining audio and the key self-service switch."""

from __future__ import annotations

import pytest

from accounts import views
from accounts.selectors import (
    api_key_self_service_enabled,
    quota_for_user,
    usage_for_month,
    usage_remaining_seconds,
)
from accounts.services import quota_set, usage_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


def test_remaining_seconds_never_go_below_zero_and_reuse_what_the_caller_read(
    user, django_assert_num_queries
):
    quota_set(user=user, monthly_audio_seconds=600)
    usage_add(user=user, streamed_seconds=100, uploaded_seconds=50)
    assert usage_remaining_seconds(user=user) == 450
    limits, usage = quota_for_user(user=user), usage_for_month(user=user)
    with django_assert_num_queries(1):  # only what live streams hold reserved is read
        assert usage_remaining_seconds(user=user, limits=limits, usage=usage) == 450
    usage_add(user=user, streamed_seconds=1000)
    assert usage_remaining_seconds(user=user) == 0.0


def test_usage_page_and_api_report_the_same_remaining_seconds(user, client):
    quota_set(user=user, monthly_audio_seconds=600)
    usage_add(user=user, streamed_seconds=90)
    client.force_login(user)
    api = client.get("/api/v1/usage/").json()
    page = views.usage_summary(user)
    assert api["audio_seconds_remaining"] == page["remaining_seconds"] == usage_remaining_seconds(user=user)
    assert page["remaining_seconds"] == 510


def test_self_service_switch_follows_the_setting(settings):
    assert api_key_self_service_enabled() is True
    settings.STT_API_KEY_SELF_SERVICE = False
    assert api_key_self_service_enabled() is False
