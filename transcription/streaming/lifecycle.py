"""One stream's life on the server: admission, per-packet limits, heartbeat, billing, speaker gate, finish.

Every streaming consumer holds a `StreamLease`; the consumers keep to connect, receive, disconnect
and their wire format. Nothing here writes to the socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.models import Scope
from accounts.selectors import quota_for_user, usage_remaining_seconds
from accounts.services import (
    AdmissionDenied,
    stream_admission_create,
    stream_heartbeat,
    stream_release,
    stream_reserve,
    stream_speaking_set,
)
from accounts.tokens import TOKEN_USED as TOKEN_USED_MESSAGE
from accounts.tokens import stream_token_consume
from speech.audio import AudioPacket
from speech.enrich.voice import shared_encoder
from speech.events import Error
from speech.finals import FinalSegment
from speech.options import SessionOptions
from speech.ports import SessionSink
from speech.session import StreamingSession
from transcription import runtime_config, services
from transcription.enrichment import enrich_defaults
from transcription.identity import SERVER_ID
from transcription.recordings.streams import StreamRecording
from transcription.speech_models import model_label
from transcription.streaming import registry, telemetry
from transcription.streaming.service import get_service, turn_model
from transcription.wake import wake_defaults
from vocabularies.lookup import keyterms_for

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_NOT_AUTHENTICATED = 4001
CLOSE_QUOTA = 4002
CLOSE_SCOPE = 4003
CLOSE_TOO_MANY_STREAMS = 4029
ADMISSION_RETRY_S = 0.1  # how often a stream at its user's limit looks again during the grace
CLOSE_CAPACITY = 1013
CLOSE_ABUSE = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVICE_RESTART = 1012
CLOSE_INTERNAL_ERROR = 1011
CLOSE_IDLE = 4408  # neither audio nor keepalive for the idle timeout (after finalizing)
# An auth error may carry its own close code: 4429 (accounts.services.CLOSE_RATE_LIMITED) for too
# many failed credential checks or new connections from this address (accounts/ratelimit.py).
# Closes that end a stream as planned: the client is warned, not told of an error.
PLANNED_CLOSES = (CLOSE_QUOTA, CLOSE_SERVICE_RESTART, CLOSE_NORMAL, CLOSE_IDLE)
NO_INFERENCE_WORKER = "no_inference_worker"


@dataclass(frozen=True)
class Refusal:
    """Why a stream is refused or ended: the error code and text the client gets, and the close code."""

    code: str
    message: str
    close_code: int


TOO_MANY_ERRORS = Refusal("too_many_errors", "Too many malformed messages in a row.", CLOSE_ABUSE)


class ErrorCounter:
    """Bad messages in a row: past STT_MAX_CONSECUTIVE_ERRORS the client is closed for abuse (1008)."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.total = 0

    def count(self) -> bool:
        """Count one; True when the client should be closed."""
        self.in_a_row += 1
        self.total += 1
        return self.in_a_row > settings.STT_STREAM["MAX_CONSECUTIVE_ERRORS"]

    def reset(self) -> None:
        self.in_a_row = 0


def default_options() -> SessionOptions:
    """Server defaults for a new session, with runtime overrides applied (sync)."""
    cfg = runtime_config.current()
    return SessionOptions(
        language=cfg["language"] or None,
        interim_results=cfg["interim_results"],
        word_timestamps=cfg["word_timestamps"],
        beam_size=cfg["beam_size"],
        beam_size_realtime=cfg["beam_size_realtime"],
        realtime_interval_s=cfg["realtime_interval_ms"] / 1000.0,
        webrtc_sensitivity=cfg["webrtc_sensitivity"],
        silero_sensitivity=cfg["silero_sensitivity"],
        pre_recording_buffer_duration=cfg["pre_recording_buffer_duration"],
        post_speech_silence_duration=cfg["post_speech_silence_duration"],
        min_length_of_recording=cfg["min_length_of_recording"],
        min_gap_between_recordings=cfg["min_gap_between_recordings"],
        early_transcription_on_silence=cfg["early_transcription_on_silence"],
        max_segment_seconds=cfg["max_segment_seconds"],
        end_of_turn_silence=cfg["end_of_turn_silence"],
        max_turn_silence=max(cfg["max_turn_silence"], cfg["end_of_turn_silence"]),
        end_of_turn_threshold=cfg["end_of_turn_threshold"],
        first_interim_s=cfg["first_interim_ms"] / 1000.0,
        idle_timeout_s=cfg["idle_timeout_s"],
        enrich=enrich_defaults(),
        wake=wake_defaults(cfg),
    )


def identity_refusal(scope: dict, required_scope: str) -> Refusal | None:
    """Why the connection's credentials cannot stream (draining server, no or bad credentials, scope)."""
    if registry.draining():
        return Refusal("server_shutting_down", "The server is restarting; reconnect.", CLOSE_SERVICE_RESTART)
    error = scope.get("auth_error")
    if error is not None:
        return Refusal(error.code, error.message, getattr(error, "close_code", CLOSE_NOT_AUTHENTICATED))
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return Refusal("not_authenticated", "Sign in or send an API key header.", CLOSE_NOT_AUTHENTICATED)
    key = scope.get("api_key")
    if key is not None and not key.has_scope(required_scope):
        return Refusal("missing_scope", f"This API key lacks the '{required_scope}' scope.", CLOSE_SCOPE)
    return None


TOKEN_USED = Refusal("token_used", TOKEN_USED_MESSAGE, CLOSE_NOT_AUTHENTICATED)


async def token_consume(scope: dict) -> bool:
    """Mark the connection's temporary token used, now that its stream is admitted (True without one).

    False: another connection used it in the meantime (the middleware only checked it)."""
    token = scope.get("stream_token")
    return token is None or await database_sync_to_async(stream_token_consume)(token=token)


async def inference_outage() -> str | None:
    """Why streams cannot be served now (scale-out with no live worker), or None."""
    if settings.STT_INFERENCE["BACKEND"] != "channels":
        return None
    try:
        service = await get_service()
    except Exception:
        return None  # reported by `ready` and /health; the stream learns it at its first job
    return service.outage()


class StreamLease:
    """An admitted stream: its ActiveStream place, its session row, its StreamingSession and its bill."""

    def __init__(self, scope: dict, *, endpoint: str, required_scope: str = Scope.STREAM) -> None:
        self.scope = scope
        self.endpoint = endpoint
        self.required_scope = required_scope
        self.client_id = uuid.uuid4().hex[:12]
        self.stream = None
        self.db_session = None
        self.session: StreamingSession | None = None
        self.service: Any = None
        self.limits = None
        self.max_session_s = 0
        self.remaining_s = 0.0  # of the monthly allowance, at admission (this stream's included)
        self.reserved_s = 0.0  # drawn from the allowance for this stream so far
        self.base_options = SessionOptions()
        self.closing = False  # set once the finals are out: nothing more is sent
        self.errors = ErrorCounter()
        self.telemetry = telemetry.StreamTelemetry(endpoint)
        self._first_audio_at: float | None = None
        self._billed_seconds = 0.0
        self._tasks: list[asyncio.Task] = []
        self._heartbeat_task: asyncio.Task | None = None
        self.recording = StreamRecording()  # the stored audio, if the session keeps it
        self._finishing: asyncio.Future | None = None
        self._reserving: asyncio.Future | None = None  # the next reservation, drawn ahead of need
        self._finish_callers: set[asyncio.Task | None] = set()

    # -- admission -----------------------------------------------------------------------------

    async def admit(self) -> Refusal | None:
        """None once the stream holds its place; else why it is refused (counted by its code)."""
        refusal = await self._admit()
        if refusal is None:
            self.telemetry.opened()
        else:
            telemetry.refused(refusal.code).inc()
        return refusal

    async def _admit(self) -> Refusal | None:
        refusal = identity_refusal(self.scope, self.required_scope)
        if refusal is not None:
            return refusal
        outage = await inference_outage()
        if outage is not None:
            return Refusal(NO_INFERENCE_WORKER, outage, CLOSE_CAPACITY)
        grace_ends = time.monotonic() + settings.STT_STREAM["ADMISSION_GRACE_S"]
        while True:
            try:
                self.stream, self.limits, self.remaining_s, self.base_options = await database_sync_to_async(
                    self._admit_sync
                )(self.scope["user"])
                break
            except AdmissionDenied as denied:
                # A client that closes a stream and opens the next at once, at its limit, would race
                # the release of the one it closed: it is given a moment to land.
                if denied.code != "too_many_streams" or time.monotonic() >= grace_ends:
                    return Refusal(denied.code, denied.message, denied.close_code)
            await asyncio.sleep(ADMISSION_RETRY_S)
        self.reserved_s = self.stream.reserved_seconds
        if not await token_consume(self.scope):
            await database_sync_to_async(stream_release)(stream_id=self.stream.pk)
            self.stream = None
            return TOKEN_USED
        self.max_session_s = self.limits.max_session_seconds
        token = self.scope.get("stream_token")
        if token is not None and token.max_session_seconds:
            # AssemblyAI's `max_session_duration_seconds`, given when the token was minted.
            self.max_session_s = min(self.max_session_s, token.max_session_seconds)
        return None

    @property
    def minting_key(self):
        """The API key the stream is on: the presented one, or the one that minted its token."""
        token = self.scope.get("stream_token")
        return self.scope.get("api_key") or (token.api_key if token is not None else None)

    async def with_vocabulary(self, options: dict[str, Any]) -> dict[str, Any]:
        """Client options with a named vocabulary's terms merged into "keyterms" (KeytermError if unknown)."""
        if not options.get("vocabulary"):
            return options
        user_id = self.scope["user"].pk
        terms = await database_sync_to_async(keyterms_for)(
            user_id, options.get("keyterms"), options["vocabulary"]
        )
        return {**options, "keyterms": list(terms)}

    def _admit_sync(self, user):
        cfg = runtime_config.current()
        stream = stream_admission_create(
            user=user, endpoint=self.endpoint, server=SERVER_ID, max_sessions=cfg["max_sessions"]
        )
        remaining = usage_remaining_seconds(user=user, exclude_stream_id=stream.pk)
        return stream, quota_for_user(user=user), remaining, default_options()

    async def open(self, *, client_info: dict[str, Any]) -> None:
        """Create the session row and start the heartbeat."""
        self.db_session = await database_sync_to_async(services.session_start)(
            user=self.scope["user"],
            api_key=self.minting_key,
            endpoint=self.endpoint,
            sample_rate=None,
            language=self.base_options.language or "",
            models_used={"final": model_label("final"), "realtime": model_label("realtime")},
            options=self.base_options.public(),
            client_info=client_info,
        )
        self._heartbeat_task = asyncio.ensure_future(self._heartbeat())
        self._tasks.append(self._heartbeat_task)

    async def start_session(self, options: SessionOptions, sink: SessionSink) -> StreamingSession:
        self.service = await get_service()
        if options.enrich.speakers:
            # Loaded once per process, here rather than inside the first final's enrichment.
            await asyncio.to_thread(shared_encoder)
        self.session = StreamingSession(
            session_id=str(self.db_session.pk),
            service=self.service,
            sink=_StoringSink(sink, self),
            options=options,
            speaker_gate=self._speaker_gate,
            turn_model=await asyncio.to_thread(turn_model) if options.end_of_turn_silence > 0 else None,
        )
        await self.recording.open(user=self.scope["user"])
        return self.session

    def spawn(self, coro: Awaitable) -> None:
        """A task of this stream's, cancelled when it finishes."""
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.ensure_future(coro))

    def cancel_spawned(self) -> None:
        """The connection that spawned tasks dropped (the stream waits for a resume): its tasks stop,
        the heartbeat goes on."""
        keep = self._heartbeat_task
        for task in self._tasks:
            if task is not keep and task is not asyncio.current_task():
                task.cancel()
        self._tasks = [keep] if keep is not None else []

    # -- per packet ----------------------------------------------------------------------------

    async def packet_refusal(self, packet: AudioPacket) -> Refusal | None:
        """Why `packet` must end the stream (abuse, quota, session length), or None to feed it.

        Every endpoint feeds audio through here, so the limits are the same on each wire protocol.
        """
        received_s = self.session.audio_seconds + packet.duration_s
        now = time.monotonic()
        if self._first_audio_at is None:
            self._first_audio_at = now
        # Much faster than real time, for long, is abuse (not a burst after a stall).
        if received_s > 30.0 + (now - self._first_audio_at) * settings.STT_STREAM["MAX_REALTIME_FACTOR"]:
            return Refusal("too_fast", "Audio is arriving much faster than real time.", CLOSE_ABUSE)
        if self.stream is not None and self._reserving is None:
            # Drawn once half the current reservation is used, so packets seldom wait on the database.
            if received_s > self.reserved_s - settings.STT_STREAM["QUOTA_RESERVATION_S"] / 2:
                self._reserving = asyncio.ensure_future(self._reserve_more())
        if received_s > self.reserved_s and self._reserving is not None:
            await asyncio.shield(self._reserving)
        if self.session.audio_seconds >= self.reserved_s:
            return Refusal("quota_exhausted", "Monthly audio quota exhausted.", CLOSE_QUOTA)
        limit = self.max_session_s
        if self.session.audio_seconds >= limit:
            return Refusal("max_session_length", f"Sessions are limited to {limit} s of audio.", CLOSE_NORMAL)
        return None

    async def _reserve_more(self) -> None:
        """Draw the next reservation from the monthly allowance; once nothing is granted (the
        allowance is spent) no more is asked for, and the stream ends where its reservations do."""
        try:
            granted = await database_sync_to_async(stream_reserve)(
                stream_id=self.stream.pk,
                user=self.scope["user"],
                seconds=settings.STT_STREAM["QUOTA_RESERVATION_S"],
            )
        except BaseException:
            self._reserving = None  # the next packet asks again
            raise
        self.reserved_s += granted
        if granted > 0:
            self._reserving = None

    async def record_format(self, sample_rate: int, channels: int = 1) -> None:
        self.db_session.sample_rate = sample_rate
        self.db_session.channels = channels
        await database_sync_to_async(self.db_session.save)(update_fields=["sample_rate", "channels"])

    async def stop_listening(self) -> None:
        """Finalize what was said so far, bill it and assemble the transcript; the stream stays open."""
        await self.session.stop()
        await self.account()
        await database_sync_to_async(services.transcript_assemble)(session=self.db_session)

    # -- speaker places, heartbeat, billing ----------------------------------------------------

    async def _speaker_gate(self, speaking: bool) -> bool:
        """Claim (or give back) one of the server-wide active-speaker places."""
        if self.stream is None:
            return True
        granted = await database_sync_to_async(self._speaker_gate_sync)(speaking)
        self.telemetry.speaking(granted)
        return granted

    def _speaker_gate_sync(self, speaking: bool) -> bool:
        limit = runtime_config.current()["max_active_speakers"] if speaking else None
        return stream_speaking_set(stream_id=self.stream.pk, speaking=speaking, max_active_speakers=limit)

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
            stream_id = self.stream.pk if self.stream is not None else None
            await database_sync_to_async(services.stream_usage_add)(
                session=self.db_session, stream_id=stream_id, seconds=delta
            )

    # -- finish --------------------------------------------------------------------------------

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
        if self.session is not None:
            await attempt("finalizing the session", self.session.close(registry.grace_s()))
        self.closing = True
        for task in self._tasks:
            if task not in self._finish_callers:
                task.cancel()
        await attempt("billing", self.account())
        # Before the session's end, so an ended session's audio is in place; bounded, since the
        # storage may be remote and a shutdown must still end the session and release its place.
        saving = asyncio.wait_for(self.recording.save(self.db_session), timeout=max(registry.grace_s(), 30.0))
        await attempt("saving the audio", saving)
        if self.db_session is not None:
            await attempt(
                "ending the session",
                database_sync_to_async(services.session_end)(session=self.db_session, end_reason=end_reason),
            )
        self.telemetry.closed()
        if self.stream is not None:
            await attempt(
                "releasing the stream", database_sync_to_async(stream_release)(stream_id=self.stream.pk)
            )
            self.stream = None


class _StoringSink:
    """The session's sink: finals are stored in the stream's session row; events go to the protocol."""

    def __init__(self, deliver: SessionSink, lease: StreamLease) -> None:
        self._deliver = deliver
        self._lease = lease

    async def emit(self, event) -> None:
        if isinstance(event, Error):  # every protocol's session errors pass here
            telemetry.error_sent(event.code)
        await self._deliver.emit(event)

    async def store_final(self, segment: FinalSegment) -> None:
        await database_sync_to_async(services.segment_finalize)(
            session=self._lease.db_session, **segment.stored_fields()
        )

    async def store_analysis(self, analysis: dict) -> None:
        await database_sync_to_async(services.session_analysis_store)(
            session=self._lease.db_session, analysis=analysis
        )


async def attempt(what: str, step) -> None:
    try:
        await step
    except Exception:
        log.exception("%s failed", what)
