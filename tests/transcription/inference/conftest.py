"""Fixtures for inference tests: the real model (loaded once), Redis channel layers and worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def whisper_engine():
    """The bundled tiny.en, int8 on CPU with 2 threads, loaded and warmed up once per test session."""
    from transcription.inference.engine import WhisperEngine

    return WhisperEngine("", device="cpu", compute_type="int8", cpu_threads=2)


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


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "ready: lanes" in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {timeout_s}s:\n{self.log()}")


@pytest.fixture
def start_worker(redis_url: str, channel_prefix: str, tmp_path: Path) -> Iterator:
    """Starts `manage.py inference_worker` subprocesses on this test's channel prefix; kills them after."""
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        full_env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "CHANNEL_PREFIX": channel_prefix,
            "DEBUG": "true",
            "PYTHONUNBUFFERED": "1",
            "STT_CPU_THREADS": "1",
            **(env or {}),
        }
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "inference_worker", *args],
                cwd=PROJECT_DIR,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.terminate()
            try:
                worker.proc.wait(10)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
