"""Fixtures for endpoint tests: a fake inference engine and a fresh service per test."""

from __future__ import annotations

import pytest_asyncio


@pytest_asyncio.fixture
async def fake_inference(settings):
    """Route inference to the in-memory fake engine; stop the process-wide service afterwards."""
    from transcription.streaming.service import shutdown_service

    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine"}
    # Consumer tests run each test on its own event loop; channels-redis keeps per-loop
    # receive state, so the in-memory layer stands in here. Redis itself is exercised by the
    # distributed inference tests and the real-server tests.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield settings.STT_INFERENCE
    await shutdown_service()
