"""Fixtures for the compatibility endpoints: a user with a streaming key, a multilingual fake engine."""

from __future__ import annotations

import pytest

from accounts.services import api_key_create


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("compat-user", password="pw-compat-user-1")


@pytest.fixture
def key(user):
    return api_key_create(owner=user, scopes=["stream"])[1]


@pytest.fixture
def multilingual(settings, fake_inference):
    """The fake engine reporting the languages of a multilingual Whisper model."""
    settings.STT_INFERENCE = {
        **settings.STT_INFERENCE,
        "ENGINE_OPTIONS": {"languages": ["en", "hi", "ta", "te", "bn", "gu", "kn", "ml", "mr", "pa", "fr"]},
    }
    return settings.STT_INFERENCE
