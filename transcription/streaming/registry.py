"""This process's open streams, for those who must reach all of them: shutdown and an inference outage."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from django.conf import settings

log = logging.getLogger(__name__)


class Drainable(Protocol):
    async def shutdown(self) -> None: ...

    async def inference_outage(self, reason: str) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_state = {"installed": False, "draining": False}


def draining() -> bool:
    """True once the server is shutting down: new streams and uploads are refused."""
    return _state["draining"]


def set_draining() -> None:
    _state["draining"] = True


def grace_s() -> float:
    """How long finalizing a stream may take (inside the shutdown grace period)."""
    return float(settings.STT_STREAM["SHUTDOWN_GRACE_S"])


def track(stream: Drainable) -> None:
    _live.add(stream)


def untrack(stream: Drainable) -> None:
    _live.discard(stream)


def live_streams() -> list[Drainable]:
    return list(_live)


async def streams_outage(reason: str) -> None:
    """No inference is possible (the last worker went silent): finalize and tell every open stream."""
    streams = live_streams()
    if streams:
        log.error("inference outage: finalizing %d open stream(s)", len(streams))
        await asyncio.gather(*(s.inference_outage(reason) for s in streams), return_exceptions=True)
