"""Management commands: apikey, quota and ensure_admin through call_command."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey
from accounts.selectors import quota_for_user
from accounts.services import api_key_authenticate

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_apikey_create_prints_only_the_secret(django_user_model):
    out, _ = run("apikey", "create", "--user", "gina", "--create-user", "--name", "ci", "--scopes", "stream")
    secret = out.strip()
    assert "\n" not in secret and secret.startswith("stt_")
    key = api_key_authenticate(raw_key=secret, scope="stream")
    assert key.owner.username == "gina" and key.name == "ci" and key.scopes == ["stream"]


def test_apikey_create_refuses_unknown_user_without_create_flag():
    with pytest.raises(CommandError, match="--create-user"):
        run("apikey", "create", "--user", "nobody")


def test_apikey_list_and_revoke(django_user_model):
    run("apikey", "create", "--user", "hank", "--create-user")
    key = ApiKey.objects.get(owner__username="hank")
    out, _ = run("apikey", "list")
    assert key.prefix in out and "active" in out
    out, _ = run("apikey", "revoke", key.prefix)
    assert "revoked" in out
    assert "revoked" in run("apikey", "list", "--user", "hank")[0]
    with pytest.raises(CommandError):
        run("apikey", "revoke", "nosuchprefix")


def test_quota_set(django_user_model):
    user = django_user_model.objects.create_user("ivy")
    run("quota", "set", "--user", "ivy", "--monthly-minutes", "90", "--max-streams", "3")
    limits = quota_for_user(user=user)
    assert not limits.is_default
    assert limits.monthly_audio_seconds == 5400 and limits.max_concurrent_streams == 3
    run("quota", "set", "--user", "ivy", "--max-streams", "1")
    limits = quota_for_user(user=user)
    assert limits.monthly_audio_seconds == 5400 and limits.max_concurrent_streams == 1


def test_ensure_admin_creates_one_superuser_with_a_generated_password(django_user_model):
    out, _ = run("ensure_admin")
    password = out.split("password: ", 1)[1].split()[0]
    admin_user = django_user_model.objects.get(username="admin")
    assert admin_user.is_superuser and admin_user.check_password(password)
    assert len(password) >= 12
    out2, _ = run("ensure_admin")
    assert "already exists" in out2
    assert django_user_model.objects.filter(is_superuser=True).count() == 1
