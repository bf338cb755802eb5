"""A compat consumer without a socket: its handlers run for real; sending, closing, finishing and the
session are stubs, so a message's whole handling (replies included) runs in the fuzz callback."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

from bench.fuzz.harness import require
from bench.fuzz.targets.common import nothing
from speech.options import SessionOptions
from transcription.streaming.lifecycle import ErrorCounter


class FakeSession:
    open_segment_id: str | None = None
    position_s = 0.0
    audio_seconds = 0.0
    recording = False

    def __init__(self) -> None:
        self.options = SessionOptions()

    async def finalize(self) -> None:
        return None

    def reconfigure(self, options: SessionOptions) -> None:
        require(isinstance(options, SessionOptions), "reconfigured with no SessionOptions")
        self.options = options


def consumer(cls: type, **attributes: Any) -> Any:
    """An instance of `cls` (a StreamingConsumer) that was admitted, with its I/O stubbed."""
    instance = cls.__new__(cls)
    sent: list[Any] = []

    async def send(
        text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        require(
            text_data is None or isinstance(json.loads(text_data), dict), "a reply that is no JSON object"
        )
        sent.append(text_data)

    async def started(*args: Any, **kwargs: Any) -> bool:
        return True

    instance.lease = SimpleNamespace(
        errors=ErrorCounter(),
        base_options=SessionOptions(),
        closing=False,
        finishing=False,
        session=FakeSession(),
        db_session=SimpleNamespace(pk="fuzz"),
        client_id="fuzz",
        service=SimpleNamespace(supported_languages=["en"]),
        record_format=nothing,
    )
    instance.sent = sent
    instance.send, instance.close, instance.finish = send, nothing, nothing
    instance.feed_limited = instance.start_or_close = started
    instance.connected_at = time.monotonic()
    instance.last_activity = time.monotonic()
    for name, value in attributes.items():
        setattr(instance, name, value)
    return instance
