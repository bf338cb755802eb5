"""Thin Channels consumers: auth, admission, framing; the pipeline lives in session.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.models import Scope
from accounts.selectors import quota_for_user, usage_remaining_seconds
from accounts.services import (
    AdmissionDenied,
    stream_admission_check,
    stream_heartbeat,
    stream_release,
    stream_speaking_set,
)
from speech.audio import AudioPacket, AudioPacketError, decode_packet
from speech.session import FinalSegment, SessionOptions, StreamingSession
from transcription import runtime_config, services, shutdown
from transcription.models import Endpoint
from transcription.protocols.common import model_languages
from transcription.protocols.reference import ProtocolError, options_from_start, parse_command
from transcription.streaming.service import get_service, model_label

log = logging.getLogger(__name__)

SERVER_ID = f"{socket.gethostname()}:{os.getpid()}"

CLOSE_NOT_AUTHENTICATED = 4001
CLOSE_QUOTA = 4002
CLOSE_SCOPE = 4003
CLOSE_TOO_MANY_STREAMS = 4029
CLOSE_CAPACITY = 1013
CLOSE_ABUSE = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVICE_RESTART = 1012
CLOSE_INTERNAL_ERROR = 1011
NO_INFERENCE_WORKER = "no_inference_worker"


def default_options() -> SessionOptions:
    """Server defaults for a new session, with runtime overrides applied (sync)."""
    cfg = runtime_config.current()
    return SessionOptions(
        language=cfg["language"] or None,
        interim_results=cfg["interim_results"],
        word_timestamps=cfg["word_timestamps"],
        beam_size=cfg["beam_size"],
        realtime_interval_s=cfg["realtime_interval_ms"] / 1000.0,
        webrtc_sensitivity=cfg["webrtc_sensitivity"],
        silero_sensitivity=cfg["silero_sensitivity"],
        pre_recording_buffer_duration=cfg["pre_recording_buffer_duration"],
        post_speech_silence_duration=cfg["post_speech_silence_duration"],
        min_length_of_recording=cfg["min_length_of_recording"],
        min_gap_between_recordings=cfg["min_gap_between_recordings"],
        early_transcription_on_silence=cfg["early_transcription_on_silence"],
        max_segment_seconds=cfg["max_segment_seconds"],
    )


class _Sink:
    def __init__(self, consumer: StreamingConsumer):
        self.consumer = consumer

    async def emit(self, event: dict[str, Any]) -> None:
        await self.consumer.deliver(event)

    async def store_final(self, segment: FinalSegment) -> None:
        await database_sync_to_async(services.segment_finalize)(
            session=self.consumer.db_session, **segment.stored_fields()
        )


class StreamingConsumer(AsyncWebsocketConsumer):
    """Connection lifecycle shared by every streaming endpoint.

    Subclasses set `endpoint` and implement `deliver` (wire format of events) and the
    message handlers.
    """

    endpoint: str = Endpoint.WS_TRANSCRIBE
    required_scope = Scope.STREAM

    async def connect(self) -> None:
        self.session: StreamingSession | None = None
        self.db_session = None
        self.stream = None
        self._closing = False
        self._finishing: asyncio.Future | None = None
        self._finish_callers: set[asyncio.Task | None] = set()
        self._tasks: list[asyncio.Task] = []
        self._errors_in_a_row = 0
        self._first_audio_at: float | None = None
        self._billed_seconds = 0.0
        self.client_id = uuid.uuid4().hex[:12]
        await self.accept()
        denial = await self._admit()
        if denial is not None:
            code, message, close_code = denial
            await self.send_error(code, message, where="connect")
            await self.close(close_code)
            return
        shutdown.track(self)
        await self.on_admitted()

    async def _admit(self) -> tuple[str, str, int] | None:
        if shutdown.draining():
            return "server_shutting_down", "The server is restarting; reconnect.", CLOSE_SERVICE_RESTART
        outage = await _inference_outage()
        if outage is not None:
            return NO_INFERENCE_WORKER, outage, CLOSE_CAPACITY
        scope = self.scope
        error = scope.get("auth_error")
        if error is not None:
            return error.code, error.message, CLOSE_NOT_AUTHENTICATED
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            return "not_authenticated", "Sign in or send an API key header.", CLOSE_NOT_AUTHENTICATED
        key = scope.get("api_key")
        if key is not None and not key.has_scope(self.required_scope):
            return "missing_scope", f"This API key lacks the '{self.required_scope}' scope.", CLOSE_SCOPE
        try:
            self.stream, self.limits, self.remaining_s, self.base_options = await database_sync_to_async(
                self._admit_sync
            )(user)
        except AdmissionDenied as denied:
            return denied.code, denied.message, denied.close_code
        return None

    def _admit_sync(self, user):
        cfg = runtime_config.current()
        stream = stream_admission_check(
            user=user, endpoint=self.endpoint, server=SERVER_ID, max_sessions=cfg["max_sessions"]
        )
        return stream, quota_for_user(user=user), usage_remaining_seconds(user=user), default_options()

    async def on_admitted(self) -> None:
        """Create the session row and tell the client; subclasses add their greeting."""
        self.db_session = await database_sync_to_async(services.session_start)(
            user=self.scope["user"],
            api_key=self.scope.get("api_key"),
            endpoint=self.endpoint,
            sample_rate=None,
            language=self.base_options.language or "",
            models_used={"final": model_label("final"), "realtime": model_label("realtime")},
            options=self.base_options.public(),
            client_info=self._client_info(),
        )
        self._tasks.append(asyncio.ensure_future(self._heartbeat()))

    def _client_info(self) -> dict[str, Any]:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.scope.get("headers", [])}
        client = self.scope.get("client") or ["", 0]
        return {
            "ip": client[0],
            "userAgent": headers.get("user-agent", "")[:300],
            "origin": headers.get("origin", ""),
        }

    async def start_session(self, options: SessionOptions) -> StreamingSession:
        service = await get_service()
        self.service = service
        self.session = StreamingSession(
            session_id=str(self.db_session.pk),
            service=service,
            sink=_Sink(self),
            options=options,
            speaker_gate=self._speaker_gate,
        )
        return self.session

    async def _speaker_gate(self, speaking: bool) -> bool:
        """Claim (or give back) one of the server-wide active-speaker places."""
        if self.stream is None:
            return True
        return await database_sync_to_async(self._speaker_gate_sync)(speaking)

    def _speaker_gate_sync(self, speaking: bool) -> bool:
        limit = runtime_config.current()["max_active_speakers"] if speaking else None
        return stream_speaking_set(stream_id=self.stream.pk, speaking=speaking, max_active_speakers=limit)

    # -- events out --------------------------------------------------------------------------

    async def deliver(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    async def send_json(self, payload: dict[str, Any]) -> None:
        if not self._closing:
            await self.send(text_data=json.dumps(payload, separators=(",", ":")))

    async def send_error(self, code: str, message: str, *, where: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, "where": where})

    # -- audio in ------------------------------------------------------------------------------

    def count_error(self) -> bool:
        """Count a bad message; True when the client should be closed for abuse."""
        self._errors_in_a_row += 1
        return self._errors_in_a_row > settings.STT_STREAM["MAX_CONSECUTIVE_ERRORS"]

    def too_fast(self, received_s: float) -> bool:
        """Audio arriving much faster than real time, for long, is abuse (not a burst after a stall)."""
        now = time.monotonic()
        if self._first_audio_at is None:
            self._first_audio_at = now
        elapsed = now - self._first_audio_at
        return received_s > 30.0 + elapsed * settings.STT_STREAM["MAX_REALTIME_FACTOR"]

    async def close_for(self, code: str, message: str, close_code: int) -> None:
        await self.send_json(
            {
                "type": "warning" if close_code in (CLOSE_QUOTA, CLOSE_SERVICE_RESTART, 1000) else "error",
                "code": code,
                "message": message,
            }
        )
        await self.finish(end_reason=code)
        await self.close(close_code)

    async def feed_limited(self, packet: AudioPacket) -> bool:
        """Feed one packet within the abuse, quota and session-length limits; False once closed.

        Every endpoint feeds audio through here, so the limits are the same on each wire protocol.
        """
        session = self.session
        if self.too_fast(session.audio_seconds + packet.duration_s):
            await self.close_for("too_fast", "Audio is arriving much faster than real time.", CLOSE_ABUSE)
            return False
        if session.audio_seconds >= self.remaining_s:
            await self.close_for("quota_exhausted", "Monthly audio quota exhausted.", CLOSE_QUOTA)
            return False
        if session.audio_seconds >= self.limits.max_session_seconds:
            limit = self.limits.max_session_seconds
            await self.close_for("max_session_length", f"Sessions are limited to {limit} s of audio.", 1000)
            return False
        await session.feed_packet(packet)
        return True

    async def record_format(self, sample_rate: int, channels: int = 1) -> None:
        self.db_session.sample_rate = sample_rate
        self.db_session.channels = channels
        await database_sync_to_async(self.db_session.save)(update_fields=["sample_rate", "channels"])

    # -- lifecycle -----------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        # Limits are checked per packet; this only keeps the stream alive and bills periodically
        # (and `finish` bills the rest), so a vanished client's audio is still counted.
        while True:
            await asyncio.sleep(settings.STT_STREAM["HEARTBEAT_S"])
            try:
                await self.account()
                if self.stream is not None:
                    await database_sync_to_async(stream_heartbeat)(stream_id=self.stream.pk)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed for %s", self.client_id)

    async def account(self) -> None:
        """Bill audio received since the last call (usage survives a vanished client)."""
        if self.session is None or self.db_session is None:
            return
        delta = self.session.audio_seconds - self._billed_seconds
        if delta > 0:
            self._billed_seconds += delta
            await database_sync_to_async(services.session_usage_add)(session=self.db_session, seconds=delta)

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

    @property
    def finishing(self) -> bool:
        return self._finishing is not None

    async def finish(self, *, end_reason: str) -> None:
        """Finalize spoken audio, store the transcript, bill and release.

        Idempotent: a second caller (a disconnect during a server shutdown, say) waits for the first.
        """
        self._finish_callers.add(asyncio.current_task())
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._finish(end_reason))
        await asyncio.shield(self._finishing)

    async def _finish(self, end_reason: str) -> None:
        # Each step runs even when an earlier one failed: a lost final must not also cost the
        # billing, the session's end or the stream's place (and its heartbeat must stop).
        shutdown.untrack(self)
        if self.session is not None:
            await _attempt("finalizing the session", self.session.close(shutdown.grace_s()))
        self._closing = True
        for task in self._tasks:
            if task not in self._finish_callers:
                task.cancel()
        await _attempt("billing", self.account())
        if self.db_session is not None:
            await _attempt(
                "ending the session",
                database_sync_to_async(services.session_end)(session=self.db_session, end_reason=end_reason),
            )
        if self.stream is not None:
            await _attempt(
                "releasing the stream", database_sync_to_async(stream_release)(stream_id=self.stream.pk)
            )
            self.stream = None

    async def dispatch(self, message: dict) -> None:
        """Every handler runs here: an unexpected exception becomes an `error` event (or, at connect
        and disconnect, a finished session), never a crashed consumer that keeps its stream's place."""
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            log.exception("%s: handling %s failed", getattr(self, "client_id", "?"), message.get("type"))
            await self._recover(message.get("type", ""))

    async def _recover(self, kind: str) -> None:
        if kind == "websocket.disconnect":
            await _attempt("finishing after a failed disconnect", self.finish(end_reason="internal_error"))
            raise StopConsumer()
        if kind == "websocket.connect" or self.db_session is None:
            await _attempt("finishing after a failed connect", self.finish(end_reason="internal_error"))
            await _attempt("closing", self.close(CLOSE_INTERNAL_ERROR))
            return
        if self.finishing:
            return
        if self.count_error():
            await _attempt(
                "closing", self.close_for("too_many_errors", "Too many failed messages.", CLOSE_ABUSE)
            )
            return
        await _attempt(
            "reporting",
            self.send_error(
                "internal_error",
                "The server could not process that message; the stream goes on.",
                where="server",
            ),
        )

    async def disconnect(self, code: int) -> None:
        await self.finish(
            end_reason="client_disconnected" if code in (1000, 1001, 1005) else f"closed_{code}"
        )


async def _inference_outage() -> str | None:
    """Why streams cannot be served now (scale-out with no live worker), or None."""
    if settings.STT_INFERENCE["BACKEND"] != "channels":
        return None
    try:
        service = await get_service()
    except Exception:
        return None  # reported by `ready` and /health; the stream learns it at its first job
    return service.outage()


async def _attempt(what: str, step) -> None:
    try:
        await step
    except Exception:
        log.exception("%s failed", what)


class TranscribeConsumer(StreamingConsumer):
    """/ws/transcribe: the reference protocol (binary packets + JSON commands)."""

    endpoint = Endpoint.WS_TRANSCRIBE
    listening = False

    async def on_admitted(self) -> None:
        await super().on_admitted()
        await self.send_json(
            {
                "type": "hello",
                "clientId": self.client_id,
                "sessionId": str(self.db_session.pk),
                "settings": self.base_options.public(),
                "limits": {
                    **self.limits.as_dict(),
                    "remainingMonthlySeconds": round(self.remaining_s, 1),
                    "maxPacketBytes": settings.STT_STREAM["MAX_PACKET_BYTES"],
                },
            }
        )
        self._tasks.append(asyncio.ensure_future(self._announce_ready()))

    async def _announce_ready(self) -> None:
        try:
            service = await get_service()
        except Exception as exc:
            log.exception("inference service failed to start")
            await self.send_error(
                "inference_unavailable", f"The inference service failed to start: {exc}", where="ready"
            )
            return
        self.service = service
        await self.send_json(
            {"type": "ready", "sessionId": str(self.db_session.pk), "lanes": _lanes(service)}
        )

    async def deliver(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "sessionId": str(self.db_session.pk)})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.finishing or self.db_session is None:
            return
        try:
            if bytes_data is not None:
                await self._on_audio(bytes_data)
            elif text_data is not None:
                await self._on_command(text_data)
        except (ProtocolError, AudioPacketError) as exc:
            if self.count_error():
                await self.close_for("too_many_errors", "Too many malformed messages in a row.", CLOSE_ABUSE)
                return
            await self.send_error(
                exc.code, exc.message, where="audio" if bytes_data is not None else "command"
            )

    async def _on_audio(self, data: bytes) -> None:
        if len(data) > settings.STT_STREAM["MAX_PACKET_BYTES"]:
            await self.close_for("message_too_big", "Audio packets are limited in size.", CLOSE_TOO_BIG)
            return
        packet = decode_packet(data, max_payload_bytes=settings.STT_STREAM["MAX_PACKET_BYTES"])
        self._errors_in_a_row = 0
        if self.session is None or not self.listening:
            # Audio before "start" (or after "stop") starts listening with the current options.
            await self._start(self.base_options)
        if self.db_session.sample_rate is None:
            await self.record_format(packet.sample_rate, packet.channels)
        await self.feed_limited(packet)

    async def _start(self, options: SessionOptions) -> None:
        # One StreamingSession per connection, so segment numbering continues after stop/start.
        session = self.session or await self.start_session(options)
        self.listening = True
        await self.send_json(
            {
                "type": "status",
                "sessionId": session.session_id,
                "state": "listening",
                "settings": options.public(),
            }
        )

    async def _on_command(self, text: str) -> None:
        command = parse_command(text)
        self._errors_in_a_row = 0
        kind = command["type"]
        if kind == "ping":
            await self.send_json({"type": "pong", "serverTime": time.time(), "echo": command.get("id")})
        elif kind == "start":
            if self.session is not None and self.listening:
                await self.send_json(
                    {"type": "warning", "code": "already_started", "message": "Already started."}
                )
                return
            languages = model_languages(await get_service())
            options = options_from_start(command, self.base_options, languages=languages)
            await self._start(options)
        elif kind == "stop":
            if self.session is not None and self.listening:
                self.listening = False
                await self.session.stop()
                await self.account()
                await database_sync_to_async(services.transcript_assemble)(session=self.db_session)
            await self.send_json({"type": "status", "sessionId": str(self.db_session.pk), "state": "stopped"})
        elif kind == "clear":
            if self.session is not None:
                await self.session.clear()
            await self.send_json({"type": "clear", "sessionId": str(self.db_session.pk)})
        elif kind == "metrics":
            await self.send_json(
                {
                    "type": "metrics",
                    "sessionId": str(self.db_session.pk),
                    "metrics": self.session.metrics() if self.session else {},
                }
            )


def _lanes(service) -> dict[str, Any]:
    lanes = getattr(service, "lanes", None)
    if isinstance(lanes, dict):
        return {name: {"ready": True} for name in lanes}
    return {"remote": {"ready": bool(getattr(service, "ready", False))}}
