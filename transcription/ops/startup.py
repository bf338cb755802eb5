"""Once the server runs: load the models (so `/health` and `ready` tell the truth) and take over SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings

from sttproject import daphne
from transcription.ops import shutdown

log = logging.getLogger(__name__)

# The latest model load of this process (at start-up, or asked for by the live page) and its failure.
_load: dict[str, Any] = {"task": None, "error": None}


def startup_errors() -> list[str]:
    error = _load["error"]
    return [f"inference: {type(error).__name__}: {error}"] if error is not None else []


def load_error() -> Exception | None:
    return _load["error"]


def load_models() -> asyncio.Task:
    """Start loading the models on the running loop, unless a load is already under way there."""
    task = _load["task"]
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        task = _load["task"] = asyncio.ensure_future(_load_models())
    return task


async def _load_models() -> None:
    from speech.vad import SileroModel
    from transcription.streaming.service import get_service, turn_model

    try:
        # The VAD model takes ~1.7 s to load: in a thread, at start-up, not in the event loop at the
        # first stream (where it stalled every other stream, and the workers' heartbeats with them).
        await asyncio.to_thread(SileroModel.shared)
        await asyncio.to_thread(turn_model)
        await get_service()
        _load["error"] = None
    except Exception as exc:
        log.exception("the inference service failed to start")
        _load["error"] = exc


def when_serving() -> None:
    """Schedule `_on_start` for when Daphne's reactor runs (a no-op anywhere else, tests included)."""
    daphne.when_serving(_on_start)


def _on_start() -> None:
    from transcription.uploads.jobs import upload_runner_start

    shutdown.install()
    if settings.STT_INFERENCE.get("PRELOAD", True):
        load_models()
    # Upload jobs run on this loop; the runner first takes up what a stopped server left.
    upload_runner_start()
