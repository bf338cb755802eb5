"""Shared fixtures: the speech corpus (skipped with a printed reason where absent)."""

from __future__ import annotations

import os

import pytest

from bench import corpus as corpus_module


@pytest.fixture(scope="session")
def corpus():
    """The bench.corpus module, after checking the shared recordings are present."""
    reason = corpus_module.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return corpus_module


@pytest.fixture(autouse=True)
def _fresh_runtime_config():
    """Runtime overrides are cached per process for a few seconds; tests must not inherit them."""
    from transcription import runtime_config

    runtime_config.invalidate()
    yield
    runtime_config.invalidate()


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    """Each test counts failed credential checks and connections under keys of its own: the cache
    (this process's memory, or the shared Redis) keeps them for a minute otherwise."""
    import uuid

    from accounts import ratelimit

    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"ratelimit-test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-123")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        # The embedded pass of `make test` runs without REDIS_URL on purpose; the second pass
        # sets it, and under CI=true that pass fails when Redis is unreachable.
        reason = "REDIS_URL is not set: multi-process tests over Redis run in the PostgreSQL+Redis pass"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def whisper_engine():
    """The bundled tiny.en, int8 on CPU with 2 threads, loaded and warmed up once per test session."""
    from speech.inference.engine import WhisperEngine

    return WhisperEngine("", device="cpu", compute_type="int8", cpu_threads=2)


@pytest.fixture
def wake_sentence(corpus):
    """A dev-corpus sentence for wake-word tests, once espeak-ng and sox (the wake words) are here."""
    from bench import wake

    reason = wake.espeak_missing()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return corpus.read_mono_float(corpus.manifest()["ljspeech_LJ001-0002.wav"].path)
