"""/v3/ws: AssemblyAI's Universal-Streaming WebSocket, as its SDK speaks it, over our session core.

Connect with the parameters in the query string and `Authorization: <key or token>` (or `token=` in
the query); binary audio chunks of 50..1000 ms; JSON `Terminate`, `ForceEndpoint`, `KeepAlive` and
`UpdateConfiguration`. Every failure is AssemblyAI's: an `Error` message, then its close code, after
what was said so far has been finalized and sent as Turns (and stored).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from accounts.services import CLOSE_RATE_LIMITED
from speech.audio import AudioPacketError
from speech.events import Error, Notice, SessionEvent
from transcription.compat.assemblyai import wire
from transcription.compat.assemblyai.audio import chunk_violation, decode_chunk
from transcription.compat.assemblyai.params import ParamError, StreamParams, parse_query, parse_update
from transcription.models import Endpoint
from transcription.streaming import registry
from transcription.streaming.consumer import StreamingConsumer
from transcription.streaming.lifecycle import (
    CLOSE_CAPACITY,
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_QUOTA,
    CLOSE_SCOPE,
    CLOSE_TOO_MANY_STREAMS,
    Refusal,
    StreamLease,
)
from transcription.streaming.protocols.common import (
    ProtocolError,
    loads_command,
    model_languages,
    query_params,
)

log = logging.getLogger(__name__)

MESSAGES = ("Terminate", "ForceEndpoint", "KeepAlive", "UpdateConfiguration")


def refusal_close(refusal: Refusal, *, received_s: float = 0.0, elapsed_s: float = 0.0) -> tuple[int, str]:
    """AssemblyAI's (close code, message) for one of our refusals."""
    code, close = refusal.code, refusal.close_code
    if close in (CLOSE_NOT_AUTHENTICATED, CLOSE_SCOPE, CLOSE_QUOTA, CLOSE_RATE_LIMITED):
        return wire.CLOSE_UNAUTHORIZED, f"Unauthorized Connection: {refusal.message}"
    if close == CLOSE_TOO_MANY_STREAMS:
        return wire.CLOSE_TOO_MANY_SESSIONS, "Unauthorized Connection: Too many concurrent sessions"
    if code == "max_session_length":
        return wire.CLOSE_SESSION_EXPIRED, wire.SESSION_EXPIRED
    if code == "idle_timeout":
        return wire.CLOSE_IDLE, wire.SESSION_IDLE
    if code == "too_fast":
        return (
            wire.CLOSE_AUDIO_DURATION,
            f"Audio Transmission Rate Exceeded: Received {received_s:.1f} sec. audio in {elapsed_s:.1f} sec",
        )
    if code == "message_too_big":
        return wire.CLOSE_AUDIO_DURATION, refusal.message
    if code == "too_many_errors":
        return wire.CLOSE_INPUT_INVALID, f"Invalid Message: {refusal.message}"
    if close == CLOSE_CAPACITY:
        return wire.CLOSE_TRY_LATER, refusal.message
    return wire.CLOSE_SERVER_ERROR, f"Session Cancelled: {refusal.message}"


class AssemblyAIConsumer(StreamingConsumer):
    """/v3/ws: AssemblyAI's Universal-Streaming v3 protocol."""

    endpoint = Endpoint.ASSEMBLYAI_STREAMING
    # AssemblyAI answers a chunk over 1000 ms with 3007 (and bad JSON with 3006), whatever its size.
    closes_oversized = False
    params: StreamParams | None = None
    encoder: wire.TurnEncoder | None = None

    async def connect(self) -> None:
        # As StreamingConsumer.connect, with AssemblyAI's Error message and close code on a refusal.
        self.connected_at = time.monotonic()
        self.lease = StreamLease(self.scope, endpoint=self.endpoint, required_scope=self.required_scope)
        await self.accept(subprotocol=self.scope.get("ws_subprotocol"))
        refusal = await self.lease.admit()
        if refusal is not None:
            await self.fail(*refusal_close(refusal))
            return
        registry.track(self)
        await self.on_admitted()

    async def on_admitted(self) -> None:
        service = await self.started_service()
        if service is None:
            return
        try:
            self.params = parse_query(query_params(self.scope), supported=model_languages(service))
        except ParamError as exc:
            await self.fail(wire.CLOSE_INPUT_INVALID, exc.message)
            return
        self.encoder = wire.TurnEncoder(
            format_turns=self.params.format_turns, language_detection=self.params.language_detection
        )
        self.lease.base_options = self.params.options(self.lease.base_options)
        await super().on_admitted()
        await self.lease.record_format(self.params.sample_rate)
        if not await self.start_or_close():
            return
        max_session_s = getattr(self.lease, "max_session_s", None) or self.lease.limits.max_session_seconds
        await self.send_json(
            wire.begin(str(self.db_session.pk), int(time.time() + max_session_s), self.params.speech_model)
        )

    def client_info(self) -> dict[str, Any]:
        info = super().client_info()
        if self.params is not None:
            info.update(
                sampleRate=self.params.sample_rate,
                encoding=self.params.encoding,
                speechModel=self.params.speech_model,
                formatTurns=self.params.format_turns,
            )
        return info

    # -- out -----------------------------------------------------------------------------------

    async def deliver(self, event: SessionEvent) -> None:
        if isinstance(event, Error | Notice):
            # Our session's errors do not end the stream; AssemblyAI's Error always does: a Warning.
            await self.send_json(wire.warning(wire.CLOSE_SERVER_ERROR, event.message))
            return
        if self.encoder is None:
            return
        now_s = self.session.audio_seconds if self.session is not None else 0.0
        for message in self.encoder.encode(event, now_s=now_s):
            await self.send_json(message)

    async def send_error(self, code: str, message: str, *, where: str) -> None:
        """A failed message that does not end the stream (the base's internal_error): a Warning."""
        await self.send_json(wire.warning(wire.CLOSE_SERVER_ERROR, message))

    async def send_now(self, payload: dict[str, Any]) -> None:
        """Send even once the stream is finishing (Termination and Error come after the last Turn)."""
        try:
            await self.send(text_data=json.dumps(payload, separators=(",", ":")))
        except Exception:
            log.info("/v3/ws %s: the client is gone", self.lease.client_id)

    async def fail(self, code: int, message: str) -> None:
        """Finalize and send what was said, then AssemblyAI's Error message and close code."""
        await self.finish(end_reason=f"assemblyai_{code}")
        await self.send_now(wire.error(code, message))
        await self.close(code)

    async def close_for(self, code: str, message: str, close_code: int) -> None:
        received = self.session.audio_seconds if self.session is not None else 0.0
        elapsed = time.monotonic() - self.connected_at
        await self.fail(
            *refusal_close(Refusal(code, message, close_code), received_s=received, elapsed_s=elapsed)
        )

    async def terminate(self) -> None:
        await self.finish(end_reason="client_terminated")
        audio_s = self.session.audio_seconds if self.session is not None else 0.0
        await self.send_now(wire.termination(audio_s, time.monotonic() - self.connected_at))
        await self.close(wire.CLOSE_NORMAL)

    # -- in ------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.lease.finishing or self.session is None:
            return
        if bytes_data is not None:
            await self.on_audio(bytes_data)
        elif text_data is not None:
            await self.on_message(text_data)

    async def on_audio(self, data: bytes) -> None:
        params = self.params
        violation = chunk_violation(
            data, sample_rate=params.sample_rate, bytes_per_sample=params.bytes_per_sample
        )
        if violation is not None:
            await self.fail(wire.CLOSE_AUDIO_DURATION, violation)
            return
        try:
            packet = decode_chunk(data, sample_rate=params.sample_rate, encoding=params.encoding)
        except AudioPacketError as exc:
            await self.fail(wire.CLOSE_INPUT_INVALID, f"Invalid audio: {exc.message}")
            return
        await self.feed_limited(packet)

    async def on_message(self, text: str) -> None:
        try:
            message = loads_command(text, hint="")
        except ProtocolError:  # not JSON, nested too deep, too large
            await self.fail(wire.CLOSE_INPUT_INVALID, f"Invalid JSON: {text[:60]}")
            return
        if not isinstance(message, dict) or "type" not in message:
            await self.fail(wire.CLOSE_INPUT_INVALID, f"Invalid Message: {text[:60]}")
            return
        kind = message["type"]
        if kind not in MESSAGES:
            await self.fail(wire.CLOSE_INPUT_INVALID, f"Invalid Message Type: {str(kind)[:40]}")
            return
        self.touch()
        if kind == "Terminate":
            await self.terminate()
        elif kind == "ForceEndpoint":
            if self.session.open_segment_id is not None:
                await self.session.finalize()
        elif kind == "UpdateConfiguration":
            await self.update_configuration(message)

    async def update_configuration(self, message: dict[str, Any]) -> None:
        try:
            options, format_turns = parse_update(
                message, self.session.options, supported=model_languages(self.lease.service)
            )
        except ParamError as exc:
            await self.fail(wire.CLOSE_INPUT_INVALID, exc.message)
            return
        self.session.reconfigure(options)
        if format_turns is not None:
            self.encoder.format_turns = format_turns
