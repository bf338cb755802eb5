"""The WebSocket side every streaming protocol shares: connect, close with a reason, recover from a fault."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.keys import scope_headers
from accounts.models import Scope
from speech.audio import AudioPacket
from speech.events import SessionEvent
from speech.options import SessionOptions
from speech.session import StreamingSession
from transcription.models import Endpoint
from transcription.streaming import registry, telemetry
from transcription.streaming.lifecycle import (
    CLOSE_CAPACITY,
    CLOSE_IDLE,
    CLOSE_INTERNAL_ERROR,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_BIG,
    NO_INFERENCE_WORKER,
    PLANNED_CLOSES,
    TOO_MANY_ERRORS,
    Refusal,
    StreamLease,
    attempt,
)
from transcription.streaming.service import get_service

log = logging.getLogger(__name__)

INFERENCE_UNAVAILABLE = "inference_unavailable"
MESSAGE_TOO_BIG = "message_too_big"


async def inference_service():
    """(the started inference service, None) or (None, why it failed to start)."""
    try:
        return await get_service(), None
    except Exception as exc:
        log.exception("inference service failed to start")
        return None, f"The inference service failed to start: {exc}"


class StreamingConsumer(AsyncWebsocketConsumer):
    """A stream's socket. Subclasses set `endpoint`, encode events in `deliver` and handle `receive`."""

    endpoint: str = Endpoint.WS_TRANSCRIBE
    required_scope = Scope.STREAM

    async def connect(self) -> None:
        self.lease = StreamLease(self.scope, endpoint=self.endpoint, required_scope=self.required_scope)
        # A temporary token offered as a subprotocol (`token, <token>`): the handshake answers its name.
        await self.accept(subprotocol=self.scope.get("ws_subprotocol"))
        refusal = await self.lease.admit()
        if refusal is not None:
            await self.send_error(refusal.code, refusal.message, where="connect")
            await self.close(refusal.close_code)
            return
        registry.track(self)
        await self.on_admitted()

    async def on_admitted(self) -> None:
        """Create the session row and start the idle watch; subclasses add their greeting."""
        await self.lease.open(client_info=self.client_info())
        self.touch()
        self.lease.spawn(self._watch_idle(self.lease.base_options.idle_timeout_s))

    def touch(self) -> None:
        """Audio or a keepalive arrived: the stream is not idle."""
        self.last_activity = time.monotonic()

    async def _watch_idle(self, timeout_s: float) -> None:
        while True:
            left = self.last_activity + timeout_s - time.monotonic()
            if left <= 0:
                message = f"No audio and no keepalive for {timeout_s:g} s; what was said is finalized."
                await self.close_for("idle_timeout", message, CLOSE_IDLE)
                return
            await asyncio.sleep(min(left, 1.0))

    def client_info(self) -> dict[str, Any]:
        headers = scope_headers(self.scope)
        client = self.scope.get("client") or ["", 0]
        return {
            "ip": client[0],
            "userAgent": headers.get("user-agent", "")[:300],
            "origin": headers.get("origin", ""),
        }

    async def start_session(self, options: SessionOptions) -> StreamingSession:
        return await self.lease.start_session(options, self)

    async def started_service(self):
        """The inference service, started; None (and the stream closed with 1013) if it cannot start."""
        service, failure = await inference_service()
        if service is None:
            await self.close_for(INFERENCE_UNAVAILABLE, failure, CLOSE_CAPACITY)
        return service

    async def start_or_close(self) -> bool:
        """Start the session on the stream's options now; close with 1013 if the service cannot start."""
        if await self.started_service() is None:
            return False
        await self.start_session(self.lease.base_options)
        return True

    @property
    def session(self) -> StreamingSession | None:
        return self.lease.session

    @property
    def db_session(self):
        return self.lease.db_session

    # -- events out ----------------------------------------------------------------------------

    async def emit(self, event: SessionEvent) -> None:
        """The session's events, in this protocol's wire format."""
        if not self.lease.closing:
            await self.deliver(event)

    async def deliver(self, event: SessionEvent) -> None:
        raise NotImplementedError

    async def send_json(self, payload: dict[str, Any]) -> None:
        if not self.lease.closing:
            await self.send(text_data=json.dumps(payload, separators=(",", ":")))

    async def send_error(self, code: str, message: str, *, where: str) -> None:
        telemetry.error_sent(code)
        await self.send_json({"type": "error", "code": code, "message": message, "where": where})

    # -- ending --------------------------------------------------------------------------------

    async def close_for(self, code: str, message: str, close_code: int) -> None:
        """Tell the client why, finish what can be (finals, bill, release), then close."""
        kind = "warning" if close_code in PLANNED_CLOSES else "error"
        if kind == "error":
            telemetry.error_sent(code)
        await self.send_json({"type": kind, "code": code, "message": message})
        await self.finish(end_reason=code)
        await self.close(close_code)

    async def refuse(self, refusal: Refusal) -> None:
        await self.close_for(refusal.code, refusal.message, refusal.close_code)

    async def finish(self, *, end_reason: str) -> None:
        registry.untrack(self)
        await self.lease.finish(end_reason=end_reason)

    async def feed_limited(self, packet: AudioPacket) -> bool:
        """Feed one packet within the stream's limits; False once the stream is closed for them."""
        refusal = await self.lease.packet_refusal(packet)
        if refusal is not None:
            await self.refuse(refusal)
            return False
        self.touch()
        self.lease.telemetry.audio.inc(packet.duration_s)
        self.lease.recording.feed(packet)  # stored audio (if kept): encoded off the loop
        await self.lease.session.feed_packet(packet)
        return True

    # -- messages in ----------------------------------------------------------------------------

    # Whether a message over STT_MAX_PACKET_BYTES closes the stream with 1009 before `receive` sees it
    # (AssemblyAI's endpoint has its own answer for a chunk too long).
    closes_oversized = True

    async def websocket_receive(self, message: dict) -> None:
        if self.closes_oversized and self._oversized(message) and self._admitted():
            limit = settings.STT_STREAM["MAX_PACKET_BYTES"]
            await self.close_for(
                MESSAGE_TOO_BIG,
                f"Messages are limited to {limit} bytes; what was said is finalized.",
                CLOSE_TOO_BIG,
            )
            return
        await super().websocket_receive(message)

    def _admitted(self) -> bool:
        lease = getattr(self, "lease", None)
        return lease is not None and lease.db_session is not None and not lease.finishing

    @staticmethod
    def _oversized(message: dict) -> bool:
        limit = settings.STT_STREAM["MAX_PACKET_BYTES"]
        data = message.get("bytes")
        if data is not None:
            return len(data) > limit
        text = message.get("text") or ""
        # A character is 1 to 4 bytes of UTF-8: encode only where the count could go either way.
        return len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8")) > limit)

    async def bad_message(self, code: str, message: str, *, where: str) -> None:
        """A malformed message: an error, or close 1008 after too many in a row."""
        if self.lease.errors.count():
            await self.refuse(TOO_MANY_ERRORS)
            return
        await self.send_error(code, message, where=where)

    async def inference_outage(self, reason: str) -> None:
        """The last inference worker went silent: finish what can be, tell the client, close with 1013."""
        await self.close_for(NO_INFERENCE_WORKER, reason, CLOSE_CAPACITY)

    async def shutdown(self) -> None:
        """Server shutdown: finalize and store what was spoken, then close with 1012."""
        await self.close_for(
            "server_shutdown",
            "The server is restarting; everything received so far is transcribed and saved.",
            CLOSE_SERVICE_RESTART,
        )

    async def dispatch(self, message: dict) -> None:
        """Every handler runs here: an unexpected exception becomes an `error` event (or, at connect
        and disconnect, a finished session), never a crashed consumer that keeps its stream's place."""
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            lease = getattr(self, "lease", None)
            log.exception("%s: handling %s failed", lease and lease.client_id, message.get("type"))
            await self._recover(message.get("type", ""))

    async def _recover(self, kind: str) -> None:
        if not hasattr(self, "lease"):
            raise StopConsumer()
        if kind == "websocket.disconnect":
            await attempt("finishing after a failed disconnect", self.finish(end_reason="internal_error"))
            raise StopConsumer()
        if kind == "websocket.connect" or self.lease.db_session is None:
            await attempt("finishing after a failed connect", self.finish(end_reason="internal_error"))
            await attempt("closing", self.close(CLOSE_INTERNAL_ERROR))
            return
        if self.lease.finishing:
            return
        if self.lease.errors.count():
            await attempt(
                "closing", self.refuse(Refusal("too_many_errors", "Too many failed messages.", 1008))
            )
            return
        message = "The server could not process that message; the stream goes on."
        await attempt("reporting", self.send_error("internal_error", message, where="server"))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "lease"):
            reason = "client_disconnected" if code in (1000, 1001, 1005) else f"closed_{code}"
            await self.finish(end_reason=reason)
