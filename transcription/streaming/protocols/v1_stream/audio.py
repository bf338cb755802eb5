"""/v1/stream/audio (seeds/003): binary PCM16 chunks, forwarded to the control socket of the same ids.

This socket holds no stream: admission, limits, billing and results belong to its control socket.
It only authenticates, pairs with the control socket and hands the audio over in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.models import Scope
from transcription.streaming import registry, telemetry
from transcription.streaming.lifecycle import (
    CLOSE_CAPACITY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_SERVICE_RESTART,
    NO_INFERENCE_WORKER,
    PLANNED_CLOSES,
    TOKEN_USED,
    TOO_MANY_ERRORS,
    ErrorCounter,
    attempt,
    identity_refusal,
    inference_outage,
    token_consume,
)
from transcription.streaming.protocols.v1_stream import wire as proto
from transcription.streaming.protocols.v1_stream.wire import parse_ids

log = logging.getLogger(__name__)

PAIR_TIMEOUT_S = 3.0
PAIR_RETRY_S = 0.2  # the hello is repeated this often until the control socket answers
# Chunks that arrive on the audio socket before its control socket has answered (a few ms).
PREPAIR_BUFFER_BYTES = 256 * 1024
SEND_RETRY_S = 10.0
# The audio socket waits at most this long for the audio it had received to be handed over.
DRAIN_TIMEOUT_S = 10.0


class InboxConsumer(AsyncWebsocketConsumer):
    """A consumer with an input queue of its own between the server and its handlers, so that a flush
    can tell when every message already received has been handed over (the server's queue is not ours
    to read). Subclasses set `control` and `_tasks` and mark `_forwarding` while a chunk is sent."""

    async def __call__(self, scope, receive, send):
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._forwarding = False
        pump = asyncio.ensure_future(self._pump(receive))
        try:
            return await super().__call__(scope, self._inbox.get, send)
        finally:
            pump.cancel()

    async def _pump(self, receive) -> None:
        while True:
            message = await receive()
            await self._inbox.put(message)
            if message.get("type") == "websocket.disconnect":
                return

    async def v1stream_flush(self, message: dict[str, Any]) -> None:
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.ensure_future(self._flushed_when_drained(message["token"])))

    def _drained(self) -> bool:
        return not self._forwarding and self._inbox.empty()

    async def _flushed_when_drained(self, token: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT_S
        while loop.time() < deadline:
            if self._drained():
                # A message already taken off the queue is dispatched within a loop turn or two.
                await asyncio.sleep(0.02)
                if self._drained():
                    break
            else:
                await asyncio.sleep(0.005)
        if self.control is not None:
            await self.channel_layer.send(self.control, {"type": "v1stream.flushed", "token": token})


class V1StreamAudioConsumer(InboxConsumer):
    """Pairs with its control socket, then forwards each chunk to it in order."""

    async def connect(self) -> None:
        self.control: str | None = None
        self.finishing = False
        self.errors = ErrorCounter()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._told_dropped = False
        self._tasks: list[asyncio.Task] = []
        await self.accept(subprotocol=self.scope.get("ws_subprotocol"))  # a token's, if it came in one
        refusal = identity_refusal(self.scope, Scope.STREAM)
        if refusal is not None:
            await self.send_error(refusal.code, refusal.message, where="connect")
            await self.close(refusal.close_code)
            return
        outage = await inference_outage()
        if outage is not None:
            await self.send_error(NO_INFERENCE_WORKER, outage, where="connect")
            await self.close(CLOSE_CAPACITY)
            return
        if not await token_consume(self.scope):
            await self.send_error(TOKEN_USED.code, TOKEN_USED.message, where="connect")
            await self.close(TOKEN_USED.close_code)
            return
        registry.track(self)
        if not await parse_ids(self):
            return
        self._tasks.append(asyncio.ensure_future(self._pair()))

    async def send_json(self, payload: dict[str, Any]) -> None:
        if not self.finishing:
            await self.send(text_data=json.dumps(proto.enveloped(payload), separators=(",", ":")))

    async def send_error(self, code: str, message: str, *, where: str = "audio") -> None:
        telemetry.error_sent(code)
        await self.send_json({"type": "error", "code": code, "message": message, "where": where})

    async def close_for(self, code: str, message: str, close_code: int) -> None:
        kind = "warning" if close_code in PLANNED_CLOSES else "error"
        if kind == "error":
            telemetry.error_sent(code)
        await self.send_json({"type": kind, "code": code, "message": message})
        self._stop()
        await self.close(close_code)

    def _stop(self) -> None:
        self.finishing = True
        registry.untrack(self)
        for task in getattr(self, "_tasks", []):
            task.cancel()

    async def shutdown(self) -> None:
        """Server shutdown: the control socket finalizes the stream; this one says so and closes."""
        message = "The server is restarting; everything received so far is transcribed and saved."
        await self.close_for("server_shutdown", message, CLOSE_SERVICE_RESTART)

    async def inference_outage(self, reason: str) -> None:
        """No inference worker is left: the control socket finalizes the stream; this one is told too."""
        await self.close_for(NO_INFERENCE_WORKER, reason, CLOSE_CAPACITY)

    async def dispatch(self, message: dict) -> None:
        """A failed handler (Redis gone, say) closes this socket with 1011 and frees its control socket
        for a new audio socket, instead of a dead consumer the control socket still counts as paired."""
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            log.exception("/v1/stream/audio: handling %s failed", message.get("type"))
            self._stop()
            await attempt("unpairing", self._unpair())
            await attempt("closing", self.close(CLOSE_INTERNAL_ERROR))

    async def _pair(self) -> None:
        """Say hello to the control socket's group until it answers, for PAIR_TIMEOUT_S at most.

        The hello is repeated: a control socket on another process may still be being admitted (it
        joins its group only then) when a client opens the audio socket right after it. A control
        socket answers a repeated hello from the same audio socket the same way, and the first
        answer wins."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PAIR_TIMEOUT_S
        while self.control is None and not self.finishing and loop.time() < deadline:
            await self.channel_layer.group_send(
                self.group, {"type": "v1stream.hello", "reply": self.channel_name}
            )
            await asyncio.sleep(min(PAIR_RETRY_S, max(0.0, deadline - loop.time())))
        if self.control is None and not self.finishing:
            await self.close_for(
                "no_control_socket",
                "No /v1/stream/control socket is open for this client_id and session_id; open it first.",
                proto.CLOSE_NO_CONTROL,
            )

    async def v1stream_paired(self, message: dict[str, Any]) -> None:
        if self.finishing or self.control is not None:
            return
        if not message["ok"]:
            await self.close_for(
                "audio_already_connected",
                "The control socket for these ids already has an audio socket.",
                proto.CLOSE_AUDIO_TAKEN,
            )
            return
        self.control = message["control"]
        pending, self._pending = self._pending, []
        for chunk in pending:
            if not await self._forward(chunk):
                return

    async def v1stream_control_gone(self, message: dict[str, Any]) -> None:
        if not self.finishing:
            await self.close_for("control_closed", "The control socket closed.", 1000)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.finishing or not hasattr(self, "group"):
            return
        if bytes_data is None or len(bytes_data) > proto.MAX_CHUNK_BYTES:
            if self.errors.count():
                await self.close_for(
                    TOO_MANY_ERRORS.code, TOO_MANY_ERRORS.message, TOO_MANY_ERRORS.close_code
                )
            elif bytes_data is None:
                await self.send_error("unexpected_text", "The audio socket takes binary PCM16 only.")
            else:
                limit = proto.MAX_CHUNK_BYTES
                await self.send_error(
                    "chunk_too_large", f"Audio chunks are limited to {limit} bytes; this one was dropped."
                )
            return
        self.errors.reset()
        if self.control is not None:
            await self._forward(bytes_data)
        elif self._pending_bytes + len(bytes_data) <= PREPAIR_BUFFER_BYTES:
            self._pending.append(bytes_data)
            self._pending_bytes += len(bytes_data)
        elif not self._told_dropped:
            self._told_dropped = True
            await self.send_error(
                "audio_dropped",
                "The control socket has not answered yet; audio beyond the first "
                f"{PREPAIR_BUFFER_BYTES} bytes is dropped until it does.",
            )

    async def _forward(self, pcm: bytes) -> bool:
        message = {"type": "v1stream.audio", "reply": self.channel_name, "pcm": pcm}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SEND_RETRY_S
        self._forwarding = True
        try:
            while True:
                try:
                    await self.channel_layer.send(self.control, message)
                    return True
                except ChannelFull:
                    # Back-pressure: the control socket is behind; wait rather than drop audio.
                    if loop.time() > deadline:
                        break
                    await asyncio.sleep(0.02)
        finally:
            self._forwarding = False
        await self.close_for("control_busy", "The control socket is not keeping up.", CLOSE_CAPACITY)
        return False

    async def disconnect(self, code: int) -> None:
        self._stop()
        await self._unpair()

    async def _unpair(self) -> None:
        control, self.control = getattr(self, "control", None), None
        if control:
            await self.channel_layer.send(control, {"type": "v1stream.gone", "reply": self.channel_name})
