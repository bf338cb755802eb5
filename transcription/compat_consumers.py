"""Consumers of /api/v1/ws (seeds/001) and /stt/v3/stream (seeds/002) over the shared session core."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from django.conf import settings

from speech.audio import AudioPacketError, decode_pcm16
from transcription.consumers import (
    CLOSE_ABUSE,
    CLOSE_CAPACITY,
    CLOSE_TOO_BIG,
    StreamingConsumer,
)
from transcription.models import Endpoint
from transcription.protocols import api_v1, stt_v3
from transcription.protocols.common import header, model_languages
from transcription.protocols.reference import ProtocolError
from transcription.streaming.service import get_service, model_label

log = logging.getLogger(__name__)


class CompatConsumer(StreamingConsumer):
    """What the compatibility endpoints share: limits per packet, recording the audio format."""

    async def start_or_close(self) -> bool:
        """Start the streaming session now (loads the model on first use); close with 1013 if it cannot."""
        try:
            await self.start_session(self.base_options)
        except Exception as exc:
            log.exception("inference service failed to start")
            await self.close_for(
                "inference_unavailable", f"The inference service failed to start: {exc}", CLOSE_CAPACITY
            )
            return False
        return True

    @property
    def accepting(self) -> bool:
        return not self.finishing and self.session is not None


class ApiV1Consumer(CompatConsumer):
    """/api/v1/ws: binary PCM16 16 kHz mono in; each final transcript back as one text message."""

    endpoint = Endpoint.API_V1_WS

    async def on_admitted(self) -> None:
        self._pcm = api_v1.PcmStream()
        # Finals only: this protocol has no interim messages, so no interim inference either.
        self.base_options = replace(self.base_options, interim_results=False)
        await super().on_admitted()
        await self.record_format(api_v1.SAMPLE_RATE)
        await self.start_or_close()

    async def send_json(self, payload: dict[str, Any]) -> None:
        # Every text message is a transcript here: an error is only remembered, for the close reason.
        if payload.get("type") == "error" or payload.get("type") == "warning":
            self._close_reason = api_v1.close_reason(
                str(payload.get("code")), str(payload.get("message", ""))
            )
            log.info("/api/v1/ws %s: %s", self.client_id, self._close_reason)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        await super().close(code, reason or getattr(self, "_close_reason", None))

    async def deliver(self, event: dict[str, Any]) -> None:
        if event["type"] == "final" and event["text"] and not self._closing:
            await self.send(text_data=event["text"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.accepting:
            return
        if bytes_data is None:
            await self.close_for(
                "binary_only", "/api/v1/ws accepts binary PCM16 audio only.", api_v1.CLOSE_UNSUPPORTED_DATA
            )
            return
        if len(bytes_data) > settings.STT_STREAM["MAX_PACKET_BYTES"]:
            await self.close_for("message_too_big", "Audio messages are limited in size.", CLOSE_TOO_BIG)
            return
        pcm = self._pcm.push(bytes_data)
        if pcm:
            # The odd byte carried over may take a message one byte past the size checked above.
            limit = settings.STT_STREAM["MAX_PACKET_BYTES"] + 1
            packet = decode_pcm16(pcm, sample_rate=api_v1.SAMPLE_RATE, max_payload_bytes=limit)
            await self.feed_limited(packet)


class SttV3Consumer(CompatConsumer):
    """/stt/v3/stream: header configuration, 1024-byte frames, `processing` and `transcript` messages."""

    endpoint = Endpoint.STT_V3

    async def on_admitted(self) -> None:
        self._timings: dict[str, dict[str, Any]] = {}
        try:
            self.selection = stt_v3.parse_lang_code(header(self.scope, "lang_code", "lang-code"))
            self.sample_rate = stt_v3.parse_sample_rate(header(self.scope, "x-sample-rate"))
        except ProtocolError as exc:
            await self.close_for(exc.code, exc.message, stt_v3.CLOSE_BAD_REQUEST)
            return
        try:
            service = await get_service()
        except Exception as exc:
            log.exception("inference service failed to start")
            await self.close_for(
                "inference_unavailable", f"The inference service failed to start: {exc}", CLOSE_CAPACITY
            )
            return
        try:
            stt_v3.check_model_languages(self.selection, model_languages(service))
        except ProtocolError as exc:
            await self.close_for(exc.code, exc.message, stt_v3.CLOSE_BAD_REQUEST)
            return
        self.base_options = replace(
            self.base_options, language=self.selection.session_language, interim_results=False
        )
        await super().on_admitted()
        await self.record_format(self.sample_rate)
        if await self.start_or_close():
            await self.send_json(
                stt_v3.connected_message(
                    session_id=str(self.db_session.pk),
                    selection=self.selection,
                    sample_rate=self.sample_rate,
                    model=model_label(),
                )
            )

    def _client_info(self) -> dict[str, Any]:
        return {**super()._client_info(), "langCode": self.selection.header, "sampleRate": self.sample_rate}

    async def send_json(self, payload: dict[str, Any]) -> None:
        if "timestamp" not in payload:
            payload = stt_v3.message(payload["type"], **{k: v for k, v in payload.items() if k != "type"})
        await super().send_json(payload)

    async def deliver(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "timeline":
            if event["event"] == "recording_ended":
                self._timings[event["segmentId"]] = event["segment"]
            elif event["event"] == "transcription_started":
                segment_id = event["segmentId"]
                await self.send_json(stt_v3.processing_message(segment_id, self._timings.get(segment_id)))
        elif kind == "final":
            self._timings.pop(event["segmentId"], None)
            await self.send_json(stt_v3.transcript_message(event, self.selection))
        elif kind in ("error", "warning"):
            await self.send_json({k: v for k, v in event.items() if k != "segmentId"})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.accepting:
            return
        try:
            if bytes_data is None:
                raise ProtocolError(
                    "unsupported_message",
                    "Send audio as binary frames; this endpoint takes no text messages.",
                )
            stt_v3.check_frame(bytes_data)
            packet = decode_pcm16(bytes_data, sample_rate=self.sample_rate)
        except (ProtocolError, AudioPacketError) as exc:
            if self.count_error():
                await self.close_for("too_many_errors", "Too many malformed messages in a row.", CLOSE_ABUSE)
                return
            await self.send_error(exc.code, exc.message, where="audio")
            return
        self._errors_in_a_row = 0
        await self.feed_limited(packet)
