"""Once the server runs: load the models (so `/health` and `ready` tell the truth) and take over SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys

from django.conf import settings

from transcription import shutdown

log = logging.getLogger(__name__)

_errors: list[str] = []
_tasks: set[asyncio.Task] = set()


def startup_errors() -> list[str]:
    return list(_errors)


def when_serving() -> None:
    """Schedule `_on_start` for when Daphne's reactor runs (a no-op anywhere else, tests included)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or getattr(reactor, "running", False):
        return
    # callLater(0) runs inside the asyncio loop, after Twisted has installed its signal handlers.
    reactor.callWhenRunning(lambda: reactor.callLater(0, _on_start))


def _on_start() -> None:
    shutdown.install()
    if settings.STT_INFERENCE.get("PRELOAD", True):
        task = asyncio.ensure_future(preload())
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


async def preload() -> None:
    from transcription.inference import get_service

    try:
        await get_service()
    except Exception as exc:
        log.exception("the inference service failed to start")
        _errors.append(f"inference: {type(exc).__name__}: {exc}")
