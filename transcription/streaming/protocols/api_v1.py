"""/api/v1/ws (seeds/001): raw PCM16 16 kHz mono in, each final transcript out as plain text."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from django.conf import settings

from speech.audio import SAMPLE_RATE, decode_pcm16
from speech.events import Final, SessionEvent
from transcription.models import Endpoint
from transcription.streaming.consumer import StreamingConsumer

log = logging.getLogger(__name__)
# The provider serving this endpoint (settings.STT_PROVIDER). The source document also names
# "groq" and "deepgram": hosted services this server does not call, so they are refused too.
SUPPORTED_PROVIDERS = ("faster_whisper",)

# Every text message is a transcript, so errors travel only as close codes (and close reasons).
CLOSE_UNSUPPORTED_DATA = 1003  # a text message: this endpoint accepts binary audio only


def provider_error(provider: str) -> str | None:
    """Why `provider` cannot serve /api/v1/ws, or None when it can."""
    if provider in SUPPORTED_PROVIDERS:
        return None
    return f"STT_PROVIDER={provider!r} is not supported; supported values: {', '.join(SUPPORTED_PROVIDERS)}."


class PcmStream:
    """Cuts a PCM16 byte stream into whole samples; a message may end half-way through a sample.

    The document's clients send "binary audio data" of any length, so an odd trailing byte is
    kept for the next message rather than refused.
    """

    def __init__(self) -> None:
        self._carry = b""

    def push(self, data: bytes) -> bytes:
        data = self._carry + data
        cut = len(data) - len(data) % 2
        self._carry = data[cut:]
        return data[:cut]

    @property
    def pending(self) -> int:
        return len(self._carry)


def close_reason(code: str, message: str) -> str:
    """A WebSocket close reason (at most 123 bytes of UTF-8)."""
    reason = f"{code}: {message}" if message else code
    return reason.encode("utf-8")[:123].decode("utf-8", "ignore")


class ApiV1Consumer(StreamingConsumer):
    """/api/v1/ws: binary PCM16 16 kHz mono in; each final transcript back as one text message."""

    endpoint = Endpoint.API_V1_WS

    async def on_admitted(self) -> None:
        self._pcm = PcmStream()
        # Finals only: this protocol has no interim messages, so no interim inference either.
        self.lease.base_options = replace(self.lease.base_options, interim_results=False)
        await super().on_admitted()
        await self.lease.record_format(SAMPLE_RATE)
        await self.start_or_close()

    async def send_json(self, payload: dict[str, Any]) -> None:
        # Every text message is a transcript here: an error is only remembered, for the close reason.
        if payload.get("type") in ("error", "warning"):
            self._close_reason = close_reason(str(payload.get("code")), str(payload.get("message", "")))
            log.info("/api/v1/ws %s: %s", self.lease.client_id, self._close_reason)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        await super().close(code, reason or getattr(self, "_close_reason", None))

    async def deliver(self, event: SessionEvent) -> None:
        if isinstance(event, Final) and event.text:
            await self.send(text_data=event.text)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.lease.finishing or self.session is None:
            return
        if bytes_data is None:
            await self.close_for(
                "binary_only", "/api/v1/ws accepts binary PCM16 audio only.", CLOSE_UNSUPPORTED_DATA
            )
            return
        # A message over STT_MAX_PACKET_BYTES never gets here: StreamingConsumer closes with 1009.
        limit = settings.STT_STREAM["MAX_PACKET_BYTES"]
        pcm = self._pcm.push(bytes_data)
        if pcm:
            # The odd byte carried over may take a message one byte past the limit.
            await self.feed_limited(decode_pcm16(pcm, sample_rate=SAMPLE_RATE, max_payload_bytes=limit + 1))
