"""Fixtures for the web UI: users with sessions, and a fake inference engine for the warm-up view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import pytest_asyncio
from django.utils import timezone

from transcription.models import TranscriptionSession
from transcription.services import segment_finalize, session_end, session_start


@pytest.fixture
def make_session() -> Callable[..., TranscriptionSession]:
    """A finished session with one segment per text (2 s each, 0.5 s apart)."""

    def make(
        user,
        texts: list[str],
        *,
        endpoint: str = "ws_transcribe",
        language: str = "en",
        started_at: dt.datetime | None = None,
        end: bool = True,
    ) -> TranscriptionSession:
        session = session_start(user=user, endpoint=endpoint, language=language, sample_rate=48000)
        for i, text in enumerate(texts):
            start = 0.5 + i * 2.5
            segment_finalize(
                session=session,
                index=i,
                segment_id=f"s{i}",
                start_s=start,
                end_s=start + 2.0,
                text=text,
                confidence=0.9,
                language=language,
                latency_ms=400.0 + i,
            )
        if end:
            session_end(session=session, end_reason="client_disconnected")
        if started_at is not None:
            TranscriptionSession.objects.filter(pk=session.pk).update(started_at=started_at)
        session.refresh_from_db()
        return session

    return make


@pytest.fixture
def days_ago() -> Callable[[int], dt.datetime]:
    return lambda days: timezone.now() - dt.timedelta(days=days)


@pytest_asyncio.fixture
async def fake_inference(settings):
    """Route inference to the in-memory fake engine; stop the process-wide service afterwards."""
    from transcription.streaming.service import shutdown_service

    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine"}
    await shutdown_service()
    yield settings.STT_INFERENCE
    await shutdown_service()
