"""Fixtures for the history API: users, authenticated clients and stored sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from tests.transcription.uploads.upload_runner import BackgroundRunner
from transcription import services
from transcription.models import Endpoint, SessionStatus, TranscriptionSession


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam", password="pw-sam-123", is_staff=True)


def signed_in(user) -> APIClient:
    """A client with a real browser session (SessionAuthentication), not forced authentication."""
    client = APIClient()
    client.force_login(user)
    return client


def with_key(user, scopes: list[str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(owner=user, scopes=scopes)[1]}")
    return client


@pytest.fixture
def make_session() -> Callable[..., TranscriptionSession]:
    """Store a finished session with one segment per text, as the streaming endpoints do."""

    def make(
        user,
        texts: list[str] | None = None,
        *,
        endpoint: str = Endpoint.WS_TRANSCRIBE,
        status: str = SessionStatus.COMPLETED,
        language: str = "en",
        started_at: dt.datetime | None = None,
        words: bool = False,
    ) -> TranscriptionSession:
        session = services.session_start(user=user, endpoint=endpoint, language=language)
        for index, text in enumerate(texts or []):
            start = index * 4.0 + 0.5
            services.segment_finalize(
                session=session,
                index=index,
                segment_id=f"s{index}",
                start_s=start,
                end_s=start + 3.25,
                text=text,
                confidence=0.9,
                language=language,
                words=[
                    {
                        "start": start + i * 0.5,
                        "end": start + i * 0.5 + 0.4,
                        "word": f" {w}",
                        "probability": 0.9,
                    }
                    for i, w in enumerate(text.split())
                ]
                if words
                else [],
            )
        services.session_end(session=session, end_reason="client_disconnected", status=status)
        if started_at is not None:
            TranscriptionSession.objects.filter(pk=session.pk).update(started_at=started_at)
        return TranscriptionSession.objects.select_related("transcript").get(pk=session.pk)

    return make


@pytest.fixture
def upload_dir(settings, tmp_path):
    """Uploaded files go to a temporary folder."""
    settings.STT_UPLOAD = {**settings.STT_UPLOAD, "DIR": tmp_path / "uploads"}
    return tmp_path / "uploads"


@pytest.fixture
def fake_engine(transactional_db, settings, upload_dir):
    """Uploads are transcribed by the fake engine on a background runner; jobs end with the test.

    The runner's thread has its own database connection, so the test's data must be committed
    (transactional_db), and its jobs must end before the database is flushed.
    """
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine"}
    runner = BackgroundRunner()
    yield runner
    runner.stop()


def ago(**delta: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(**delta)
