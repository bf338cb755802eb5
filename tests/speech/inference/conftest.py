"""Fixtures for inference tests: Redis channel layers and worker processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.server import WorkerProcess, start_worker


@pytest.fixture
def channel_prefix() -> str:
    return f"stt-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis_layer(redis_url: str, channel_prefix: str):
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[redis_url], prefix=channel_prefix, capacity=1000, expiry=60)
    yield layer
    await layer.flush()
    await layer.close_pools()


@pytest.fixture(name="start_worker")
def start_worker_fixture(redis_url: str, channel_prefix: str, tmp_path: Path) -> Iterator:
    """Starts `manage.py inference_worker` subprocesses on this test's channel prefix; kills them after."""
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        base = {"REDIS_URL": redis_url, "CHANNEL_PREFIX": channel_prefix, "STT_CPU_THREADS": "1"}
        worker = start_worker(base | (env or {}), log_path, *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(10)
