"""The admin: every page renders for staff; a new key's secret is shown exactly once."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import ApiKey
from accounts.services import api_key_authenticate, api_key_create, quota_set, usage_add
from transcription.services import segment_finalize, session_end, session_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin_user)
    return client


@pytest.fixture
def populated(django_user_model):
    user = django_user_model.objects.create_user("erin")
    quota_set(user=user, monthly_audio_seconds=600)
    usage_add(user=user, streamed_seconds=30)
    api_key_create(owner=user, name="laptop")
    session = session_start(user=user, endpoint="ws_transcribe", sample_rate=16000)
    segment_finalize(session=session, index=0, segment_id="s0", start_s=0.0, end_s=1.5, text="hello there")
    session_end(session=session, end_reason="stop")
    return user


def test_every_changelist_and_add_page_answers_200(staff_client, populated):
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        response = staff_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert response.status_code == 200, info
        search = staff_client.get(reverse("admin:{}_{}_changelist".format(*info)), {"q": "erin"})
        assert search.status_code == 200, info
        if model_admin.has_add_permission(response.wsgi_request):
            assert staff_client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200, info
        obj = model._default_manager.first()
        if obj is not None:
            change = staff_client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            assert change.status_code == 200, info


def test_adding_a_key_in_the_admin_shows_the_secret_once_and_stores_only_its_hash(staff_client, populated):
    response = staff_client.post(
        reverse("admin:accounts_apikey_add"),
        {"owner": populated.pk, "name": "from-admin", "scopes": ["stream", "history:read"]},
    )
    assert response.status_code == 200
    body = response.content.decode()
    secrets_shown = re.findall(r"stt_[a-z0-9]{10}_[A-Za-z0-9_\-]+", body)
    assert len(set(secrets_shown)) == 1
    secret = secrets_shown[0]
    key = ApiKey.objects.get(name="from-admin")
    assert key.scopes == ["stream", "history:read"]
    assert secret not in key.secret_hash
    assert api_key_authenticate(raw_key=secret).pk == key.pk
    # Nowhere to be seen again: not on the key's page, nor the list.
    for url in (
        reverse("admin:accounts_apikey_change", args=[key.pk]),
        reverse("admin:accounts_apikey_changelist"),
    ):
        assert secret not in staff_client.get(url).content.decode()


def test_revoke_action_revokes_selected_keys(staff_client, populated):
    key = ApiKey.objects.get(owner=populated)
    response = staff_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_keys", "_selected_action": [key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.is_revoked


def test_user_changelist_shows_usage_against_limit(staff_client, populated):
    body = staff_client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "0.5 / 10 min (5%)" in body


def test_non_staff_cannot_use_the_admin(client, django_user_model):
    user = django_user_model.objects.create_user("frank", password="pw-frank-123")
    client.force_login(user)
    response = client.get(reverse("admin:accounts_apikey_changelist"))
    assert response.status_code == 302
