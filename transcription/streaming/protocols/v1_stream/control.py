"""/v1/stream/control (seeds/003): commands in, `partial_result` / `final_result` (and `status`) out.

The control socket owns the stream (row, admission, billing, results); its audio socket may land
on another Daphne process and finds it through a channel-layer group named from the stream's ids.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import replace
from typing import Any

from speech.audio import AudioPacketError, decode_pcm16
from speech.events import SessionEvent
from speech.keyterms import KeytermError
from speech.wake.options import WakeOptions
from transcription.models import Endpoint
from transcription.streaming.consumer import INFERENCE_UNAVAILABLE, StreamingConsumer, inference_service
from transcription.streaming.protocols.common import ProtocolError, iso, model_languages, parse_iso
from transcription.streaming.protocols.v1_stream import wire as proto
from transcription.streaming.protocols.v1_stream.link import AudioLink
from transcription.streaming.protocols.v1_stream.wire import parse_ids
from transcription.wake import WakeWordError, wake_from_client

log = logging.getLogger(__name__)


class State(enum.StrEnum):
    IDLE = "idle"
    STREAMING = "streaming"
    PAUSED = "paused"


class V1StreamControlConsumer(AudioLink, StreamingConsumer):
    """/v1/stream/control: commands in, `partial_result` / `final_result` (and `status`, `error`) out."""

    endpoint = Endpoint.V1_STREAM

    async def on_admitted(self) -> None:
        self.state = State.IDLE
        self.config = proto.StreamConfig(interim_results=self.lease.base_options.interim_results)
        self.clock: proto.StreamClock | None = None
        self.results = proto.ResultEncoder()
        self._told_not_started = False
        self.link_init()
        if not await parse_ids(self):
            return
        await super().on_admitted()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json(self._status("connected"))

    async def send_json(self, payload: dict[str, Any]) -> None:
        await super().send_json(proto.enveloped(payload))

    def client_info(self) -> dict[str, Any]:
        return {
            **super().client_info(),
            "clientId": self.stream_client_id,
            "sessionId": self.stream_session_id,
        }

    def _status(self, state: str, **extra: Any) -> dict[str, Any]:
        ids = (self.stream_client_id, self.stream_session_id, str(self.db_session.pk))
        return proto.status_message(state, *ids, **extra)

    # -- commands ------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.lease.finishing or self.db_session is None:
            return
        try:
            if text_data is None:
                raise ProtocolError(
                    "unexpected_binary", "Send audio on /v1/stream/audio; the control socket takes commands."
                )
            command = proto.parse_command(text_data)
        except ProtocolError as exc:
            await self.bad_message(exc.code, exc.message, where="command")
            return
        if not await self.after_the_audio(command):
            await self._run(command)

    async def _run(self, command: dict[str, Any]) -> None:
        try:
            await self._on_command(command)
        except ProtocolError as exc:
            await self.bad_message(exc.code, exc.message, where="command")
            return
        self.lease.errors.reset()

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
        service, failure = await inference_service()
        if service is None:
            raise ProtocolError(INFERENCE_UNAVAILABLE, failure)
        config = proto.config_from_start(command, self.config, languages=model_languages(service))
        keyterms = await self._keyterms(config)
        origin = proto.start_time(command)
        base = self.lease.base_options
        # The gate is built with the session: a restart keeps the first start's wake options.
        wake = self._wake(config, base.wake) if self.session is None else self.session.options.wake
        options = replace(
            base,
            language=config.language or base.language,
            interim_results=config.interim_results,
            initial_prompt=config.initial_prompt,
            keyterms=keyterms,
            enrich=config.enrich or base.enrich,
            wake=wake,
        )
        config = replace(config, wake=wake)
        if self.session is None:
            self.lease.recording.asked = config.store_audio
            await self.start_session(options)
            await self.lease.record_format(config.sample_rate)
        else:
            # One StreamingSession per connection keeps segment numbering; new options apply from here.
            self.session.options = options
        self.config = config
        self.clock = proto.StreamClock(origin, base_s=self.session.position_s)
        self.state = State.STREAMING
        self._told_not_started = False
        await self.send_json(
            self._status("streaming", audio_start=iso(origin), config=config.public(keyterms=keyterms))
        )

    @staticmethod
    def _wake(config: proto.StreamConfig, base: WakeOptions) -> WakeOptions:
        """The stream's wake-word options (fixed at its first start_stream, like its segmenter)."""
        if not config.wake_settings:
            return base
        try:
            return wake_from_client(config.wake_settings, base)
        except WakeWordError as exc:
            raise ProtocolError(exc.code, exc.message) from None

    async def _keyterms(self, config: proto.StreamConfig) -> tuple[str, ...]:
        """The stream's key terms: its named vocabulary's (looked up now), then the inline ones."""
        try:
            raw = await self.lease.with_vocabulary(
                {"keyterms": list(config.keyterms), "vocabulary": config.vocabulary}
            )
        except KeytermError as exc:
            raise ProtocolError(exc.code, exc.message) from None
        return tuple(raw["keyterms"])

    async def _stop(self) -> None:
        if self.state is State.PAUSED:
            self.session.resume()
        self.state = State.IDLE
        await self.lease.stop_listening()

    # -- audio from the audio socket ------------------------------------------------------------

    async def v1stream_audio(self, message: dict[str, Any]) -> None:
        if message["reply"] != self.audio_channel or self.lease.finishing:
            return
        self.audio_arrived()
        if self.state is State.IDLE:
            await self._not_started()
            return
        try:
            packet = decode_pcm16(
                message["pcm"], sample_rate=self.config.sample_rate, max_payload_bytes=proto.MAX_CHUNK_BYTES
            )
        except AudioPacketError as exc:
            await self.bad_message(exc.code, exc.message, where="audio")
            return
        if self.state is State.PAUSED:
            # Not transcribed and not billed: it never reaches the session.
            self.clock.skip(self.session.position_s, packet.duration_s)
            return
        self.lease.errors.reset()
        await self.feed_limited(packet)

    async def _not_started(self) -> None:
        if not self._told_not_started:
            self._told_not_started = True
            await self.send_error(
                "not_started", "Audio before start_stream (or after stop_stream) is dropped.", where="audio"
            )

    # -- results -------------------------------------------------------------------------------

    async def deliver(self, event: SessionEvent) -> None:
        message = self.results.encode(event, self.config, self.clock, self.session.position_s)
        if message is not None:
            await self.send_json(message)

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if getattr(self, "group", None) and self.db_session is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.unlink()
