"""/v1/stream/control and /v1/stream/audio (seeds/003): two sockets that meet over the channel layer.

The control socket owns the session (row, admission, billing, results); the audio socket may land
on another Daphne process, so it finds its control socket through a channel-layer group named
from (user, client_id, session_id) and then sends it the audio chunks directly.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from dataclasses import replace
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull

from speech.audio import AudioPacketError, decode_pcm16
from transcription import services
from transcription.compat_consumers import CompatConsumer
from transcription.consumers import CLOSE_ABUSE, CLOSE_CAPACITY, StreamingConsumer
from transcription.models import Endpoint
from transcription.protocols import v1_stream as proto
from transcription.protocols.common import iso, model_languages, parse_iso, query_params
from transcription.protocols.reference import ProtocolError
from transcription.streaming.service import get_service

log = logging.getLogger(__name__)

BARRIER_COMMANDS = ("pause_stream", "stop_stream")
PAIR_TIMEOUT_S = 3.0
# Chunks that arrive on the audio socket before its control socket has answered (a few ms).
PREPAIR_BUFFER_BYTES = 256 * 1024
SEND_RETRY_S = 10.0
# A command waits for the audio socket to hand over the audio it had already received: at most
# this long without any audio arriving (a control socket working through a backlog keeps waiting),
# and the audio socket waits at most DRAIN_TIMEOUT_S for its own queue to empty.
FLUSH_TIMEOUT_S = 3.0
DRAIN_TIMEOUT_S = 10.0


class State(enum.StrEnum):
    IDLE = "idle"
    STREAMING = "streaming"
    PAUSED = "paused"


class _V1Socket:
    """What both sockets share: the stream ids, the document's message envelope, background tasks."""

    async def send_json(self, payload: dict[str, Any]) -> None:
        # Every message in the document's envelope: {"type", "data": {..., "timestamp"}}.
        if "data" not in payload:
            payload = proto.envelope(payload["type"], {k: v for k, v in payload.items() if k != "type"})
        await super().send_json(payload)

    def spawn(self, coro) -> None:
        """A task cancelled when the socket finishes."""
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.ensure_future(coro))

    async def parse_ids(self) -> bool:
        try:
            self.stream_client_id, self.stream_session_id = proto.stream_ids(query_params(self.scope))
        except ProtocolError as exc:
            await self.close_for(exc.code, exc.message, proto.CLOSE_BAD_REQUEST)
            return False
        self.group = proto.group_name(self.scope["user"].pk, self.stream_client_id, self.stream_session_id)
        return True


class V1StreamControlConsumer(_V1Socket, CompatConsumer):
    """/v1/stream/control: commands in, `partial_result` / `final_result` (and `status`, `error`) out."""

    endpoint = Endpoint.V1_STREAM

    async def on_admitted(self) -> None:
        self.state = State.IDLE
        self.config = proto.StreamConfig(interim_results=self.base_options.interim_results)
        self.clock: proto.StreamClock | None = None
        self.audio_channel: str | None = None
        self._segment_starts: dict[str, float] = {}
        self._told_not_started = False
        self._waiting: list[dict[str, Any]] | None = None
        self._flush_token: str | None = None
        self._audio_seen_at = 0.0
        if not await self.parse_ids():
            return
        await super().on_admitted()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json(self._status("connected"))

    def _client_info(self) -> dict[str, Any]:
        return {
            **super()._client_info(),
            "clientId": self.stream_client_id,
            "sessionId": self.stream_session_id,
        }

    def _status(self, state: str, **extra: Any) -> dict[str, Any]:
        return proto.envelope(
            "status",
            {
                "state": state,
                "client_id": self.stream_client_id,
                "session_id": self.stream_session_id,
                "server_session_id": str(self.db_session.pk),
                **extra,
            },
        )

    # -- commands ------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.finishing or self.db_session is None:
            return
        try:
            if text_data is None:
                raise ProtocolError(
                    "unexpected_binary", "Send audio on /v1/stream/audio; the control socket takes commands."
                )
            command = proto.parse_command(text_data)
        except ProtocolError as exc:
            await self.report(exc.code, exc.message, where="command")
            return
        if self._waiting is not None:
            self._waiting.append(command)
        elif self.audio_channel is not None and command["command"] in BARRIER_COMMANDS:
            # Audio and commands travel on two sockets: pause and stop take effect after the audio
            # the audio socket had already received, so nothing sent before them is lost. Start
            # and resume apply at once, so no audio sent after them is dropped.
            self._waiting, self._flush_token = [command], uuid.uuid4().hex
            await self.channel_layer.send(
                self.audio_channel, {"type": "v1stream.flush", "token": self._flush_token}
            )
            self.spawn(self._flush_deadline(self._flush_token))
        else:
            await self._run(command)

    async def _run(self, command: dict[str, Any]) -> None:
        try:
            await self._on_command(command)
        except ProtocolError as exc:
            await self.report(exc.code, exc.message, where="command")
            return
        self._errors_in_a_row = 0

    async def _release(self) -> None:
        waiting, self._waiting, self._flush_token = self._waiting or [], None, None
        for command in waiting:
            if self.finishing:
                return
            await self._run(command)

    async def _flush_deadline(self, token: str) -> None:
        loop = asyncio.get_running_loop()
        self._audio_seen_at = loop.time()
        while self._flush_token == token:
            left = self._audio_seen_at + FLUSH_TIMEOUT_S - loop.time()
            if left <= 0:
                log.warning("/v1/stream %s: audio socket did not confirm a flush", self.client_id)
                await self._release()
                return
            await asyncio.sleep(left)

    async def v1stream_flushed(self, message: dict[str, Any]) -> None:
        if message["token"] == self._flush_token:
            await self._release()

    async def report(self, code: str, message: str, *, where: str) -> None:
        """An error on this socket; too many in a row close it (1008)."""
        if self.count_error():
            await self.close_for("too_many_errors", "Too many malformed messages in a row.", CLOSE_ABUSE)
            return
        await self.send_error(code, message, where=where)

    async def _on_command(self, command: dict[str, Any]) -> None:
        name = command["command"]
        if name == "start_stream":
            await self._start(command)
            return
        if self.state is State.IDLE:
            raise ProtocolError("not_started", f"{name} needs a started stream; send start_stream first.")
        if name == "pause_stream":
            if self.state is State.PAUSED:
                raise ProtocolError("already_paused", "The stream is already paused.")
            self.state = State.PAUSED
            await self.session.pause()
            await self.send_json(self._status("paused"))
        elif name == "resume_stream":
            if self.state is State.STREAMING:
                raise ProtocolError("not_paused", "The stream is not paused.")
            self.session.resume()
            self.state = State.STREAMING
            await self.send_json(self._status("streaming"))
        elif name == "stop_stream":
            audio_end = parse_iso(command.get("audio_end"), "audio_end")
            await self._stop()
            extra = {"audio_end": iso(audio_end)} if audio_end is not None else {}
            await self.send_json(self._status("stopped", **extra))

    async def _start(self, command: dict[str, Any]) -> None:
        if self.state is not State.IDLE:
            raise ProtocolError("already_started", "The stream is already started; send stop_stream first.")
        try:
            service = await get_service()
        except Exception as exc:
            log.exception("inference service failed to start")
            raise ProtocolError(
                "inference_unavailable", f"The inference service failed to start: {exc}"
            ) from None
        config = proto.config_from_start(command, self.config, languages=model_languages(service))
        origin = proto.start_time(command)
        options = replace(
            self.base_options,
            language=config.language or self.base_options.language,
            interim_results=config.interim_results,
        )
        if self.session is None:
            await self.start_session(options)
            await self.record_format(config.sample_rate)
        else:
            # One StreamingSession per connection keeps segment numbering; new options apply from here.
            self.session.options = options
        self.config = config
        self.clock = proto.StreamClock(origin, base_s=self.session.position_s)
        self.state = State.STREAMING
        self._told_not_started = False
        await self.send_json(self._status("streaming", audio_start=iso(origin), config=config.public()))

    async def _stop(self) -> None:
        if self.state is State.PAUSED:
            self.session.resume()
        self.state = State.IDLE
        await self.session.stop()
        await self.account()
        await database_sync_to_async(services.transcript_assemble)(session=self.db_session)

    # -- audio from the audio socket ------------------------------------------------------------

    async def v1stream_hello(self, message: dict[str, Any]) -> None:
        reply = message["reply"]
        if self.finishing or self.db_session is None:
            return
        if self.audio_channel is not None and self.audio_channel != reply:
            await self.channel_layer.send(reply, {"type": "v1stream.paired", "ok": False})
            return
        self.audio_channel = reply
        await self.channel_layer.send(
            reply, {"type": "v1stream.paired", "ok": True, "control": self.channel_name}
        )

    async def v1stream_gone(self, message: dict[str, Any]) -> None:
        if message["reply"] == self.audio_channel:
            self.audio_channel = None
            if self._flush_token is not None:
                await self._release()

    async def v1stream_audio(self, message: dict[str, Any]) -> None:
        if message["reply"] != self.audio_channel or self.finishing:
            return
        self._audio_seen_at = asyncio.get_running_loop().time()
        if self.state is State.IDLE:
            await self._not_started()
            return
        try:
            packet = decode_pcm16(
                message["pcm"], sample_rate=self.config.sample_rate, max_payload_bytes=proto.MAX_CHUNK_BYTES
            )
        except AudioPacketError as exc:
            await self.report(exc.code, exc.message, where="audio")
            return
        if self.state is State.PAUSED:
            # Not transcribed and not billed: it never reaches the session.
            self.clock.skip(self.session.position_s, packet.duration_s)
            return
        self._errors_in_a_row = 0
        await self.feed_limited(packet)

    async def _not_started(self) -> None:
        if not self._told_not_started:
            self._told_not_started = True
            await self.send_error(
                "not_started", "Audio before start_stream (or after stop_stream) is dropped.", where="audio"
            )

    # -- results -------------------------------------------------------------------------------

    async def deliver(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "timeline" and event["event"] == "recording_started":
            self._segment_starts[event["segmentId"]] = event["segment"]["start"]
        elif kind == "realtime":
            if not self.config.interim_results or self.clock is None:
                return
            start = self._segment_starts.get(event["segmentId"], self.session.position_s)
            await self.send_json(
                proto.partial_result(
                    proto.format_text(event["text"], self.config, final=False),
                    confidence=event.get("confidence"),
                    clock=self.clock,
                    start_s=start,
                    current_s=self.session.position_s,
                )
            )
        elif kind == "final":
            self._segment_starts.pop(event["segmentId"], None)
            await self.send_json(
                proto.final_result(
                    proto.format_text(event["text"], self.config, final=True),
                    confidence=event.get("confidence"),
                    clock=self.clock,
                    start_s=event["start"],
                    end_s=event["end"],
                )
            )
        elif kind in ("error", "warning"):
            await self.send_json({"type": kind, "code": event.get("code"), "message": event.get("message")})

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if getattr(self, "group", None) and self.db_session is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "audio_channel", None):
            await self.channel_layer.send(self.audio_channel, {"type": "v1stream.control_gone"})


class V1StreamAudioConsumer(_V1Socket, StreamingConsumer):
    """/v1/stream/audio: binary PCM16 chunks, forwarded to the control socket of the same ids."""

    endpoint = Endpoint.V1_STREAM

    async def __call__(self, scope, receive, send):
        # The server's input queue (Daphne's and the test communicator's are asyncio queues): a flush
        # waits until every message already received has been forwarded.
        owner = getattr(receive, "__self__", None)
        self._queued = owner.qsize if isinstance(owner, asyncio.Queue) else None
        self._forwarding = False
        return await super().__call__(scope, receive, send)

    def _admit_sync(self, user):
        # The control socket holds the stream's admission, limits and options; this socket only
        # authenticates (in the middleware), so it reaches its control socket without a query.
        return None, None, 0.0, None

    async def on_admitted(self) -> None:
        self.control: str | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._told_dropped = False
        if not await self.parse_ids():
            return
        await self.channel_layer.group_send(
            self.group, {"type": "v1stream.hello", "reply": self.channel_name}
        )
        self.spawn(self._pair_deadline())

    async def _pair_deadline(self) -> None:
        await asyncio.sleep(PAIR_TIMEOUT_S)
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

    async def v1stream_flush(self, message: dict[str, Any]) -> None:
        self.spawn(self._flushed_when_drained(message["token"]))

    def _drained(self) -> bool:
        return not self._forwarding and (self._queued is None or self._queued() == 0)

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

    async def v1stream_control_gone(self, message: dict[str, Any]) -> None:
        if not self.finishing:
            await self.close_for("control_closed", "The control socket closed.", 1000)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.finishing or not hasattr(self, "group"):
            return
        if bytes_data is None or len(bytes_data) > proto.MAX_CHUNK_BYTES:
            if self.count_error():
                await self.close_for("too_many_errors", "Too many malformed messages in a row.", CLOSE_ABUSE)
            elif bytes_data is None:
                await self.send_error(
                    "unexpected_text", "The audio socket takes binary PCM16 only.", where="audio"
                )
            else:
                await self.send_error(
                    "chunk_too_large",
                    f"Audio chunks are limited to {proto.MAX_CHUNK_BYTES} bytes; this one was dropped.",
                    where="audio",
                )
            return
        self._errors_in_a_row = 0
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
                where="audio",
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

    async def deliver(self, event: dict[str, Any]) -> None:
        return None

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if getattr(self, "control", None):
            await self.channel_layer.send(self.control, {"type": "v1stream.gone", "reply": self.channel_name})
