"""Deepgram's live /v1/listen: linear16 (or a WAV stream) in, Results / SpeechStarted / UtteranceEnd /
Metadata out; KeepAlive, Finalize, CloseStream and Configure (key terms) from the client."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

from django.conf import settings

from speech.audio import AudioPacketError, decode_pcm16
from speech.events import Error, Final, Interim, SessionEvent, SpeechStarted
from speech.keyterms import KeytermError, clean_keyterms
from speech.options import SessionOptions
from speech.segmenter import FINALIZE, SILENCE
from transcription.compat.deepgram import wire
from transcription.compat.deepgram.params import (
    DeepgramError,
    ListenParams,
    check_language,
    parse_params,
    query_pairs,
)
from transcription.compat.deepgram.wav import WavError, WavHeader, read_wav_header
from transcription.models import Endpoint
from transcription.speech_models import model_label
from transcription.streaming import telemetry
from transcription.streaming.consumer import StreamingConsumer
from transcription.streaming.lifecycle import (
    CLOSE_ABUSE,
    CLOSE_IDLE,
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    TOO_MANY_ERRORS,
)
from transcription.streaming.protocols.common import ProtocolError, loads_command, model_languages

log = logging.getLogger(__name__)

# Deepgram closes a stream that sent neither audio nor a message for about 10 s (NET-0001).
IDLE_TIMEOUT_S = 10.0
BAD_REQUEST = "bad_request"
# A WAV header (and whatever precedes its data chunk) is read from at most this many bytes.
MAX_HEADER_BYTES = 64 * 1024


class DeepgramLiveConsumer(StreamingConsumer):
    """Deepgram's live transcription socket, on the shared stream lease and session."""

    endpoint = Endpoint.DEEPGRAM_LISTEN

    async def on_admitted(self) -> None:
        self.request_id: str | None = None
        self.created = wire.iso_now()
        self._sha = hashlib.sha256()
        self._carry = b""
        self._header = b""
        self._format: WavHeader | None = None
        self._starts: dict[str, float] = {}
        self._pending_end: float | None = None  # the last word's end, until its UtteranceEnd is sent
        self._ended = False
        self.model = model_label()
        self.params = ListenParams()
        try:
            self.params = parse_params(query_pairs(self.scope.get("query_string", b"")), own_model=self.model)
            service = await self.started_service()
            if service is None:
                return
            check_language(self.params, model_languages(service))
        except DeepgramError as exc:
            await self.close_for(BAD_REQUEST, exc.err_msg, CLOSE_ABUSE)
            return
        self.lease.base_options = self.session_options(self.lease.base_options)
        await super().on_admitted()
        self.request_id = str(self.lease.db_session.pk)
        if self.params.encoding is not None:
            await self._start(WavHeader(self.params.sample_rate, self.params.channels))

    def session_options(self, base: SessionOptions) -> SessionOptions:
        p = self.params
        changes: dict[str, Any] = {
            "interim_results": p.interim_results,
            "word_timestamps": True,
            "keyterms": p.keyterms,
            "idle_timeout_s": IDLE_TIMEOUT_S,
        }
        if p.language is not None:
            changes["language"] = p.language or None
        if p.endpointing_off:
            # No end of speech on silence: segments close at max length, Finalize or CloseStream.
            changes.update(post_speech_silence_duration=base.max_segment_seconds, end_of_turn_silence=0.0)
        elif p.endpointing_ms is not None:
            changes.update(post_speech_silence_duration=p.endpointing_ms / 1000, end_of_turn_silence=0.0)
        if p.enrich is not None:
            changes["enrich"] = p.enrich
        return replace(base, **changes)

    def client_info(self) -> dict[str, Any]:
        extra = {k: v for k, v in self.params.extra.items() if k == "tag"}
        return {**super().client_info(), "deepgramModel": self.params.model or "", **extra}

    async def _start(self, fmt: WavHeader) -> bool:
        self._format = fmt
        await self.lease.record_format(fmt.sample_rate, fmt.channels)
        return await self.start_or_close()

    @property
    def channels(self) -> int:
        return self._format.channels if self._format is not None else self.params.channels

    # -- out -----------------------------------------------------------------------------------

    async def send_raw(self, payload: dict[str, Any]) -> None:
        """Sent even while the stream finishes (the last Metadata, the reason it closes)."""
        await self.send(text_data=json.dumps(payload, separators=(",", ":")))

    async def send_error(self, code: str, message: str, *, where: str) -> None:
        telemetry.error_sent(code)
        await self.send_json(wire.error_message(code, message))

    async def deliver(self, event: SessionEvent) -> None:
        if isinstance(event, SpeechStarted):
            self._starts[event.segment_id] = event.timing.start_s
            voiced = event.first_voiced_s if event.first_voiced_s is not None else event.timing.start_s
            await self._utterance_end_if_gap(voiced)
            if self.params.vad_events and not event.continued:
                await self.send_json(wire.speech_started_message(voiced, self.channels))
        elif isinstance(event, Interim):
            if self.params.interim_results:
                await self.send_json(self._interim(event))
        elif isinstance(event, Final):
            await self._final(event)
        elif isinstance(event, Error):
            await self.send_json(wire.error_message(event.code, event.message))

    def _interim(self, event: Interim) -> dict[str, Any]:
        position = self.session.position_s if self.session is not None else 0.0
        start = self._starts.get(event.segment_id, position)
        return wire.results_message(
            request_id=self.request_id,
            model=self.model,
            start_s=start,
            duration_s=position - start,
            transcript=wire.transcript_out(event.text, self.params),
            confidence=event.confidence,
            words=[],
            is_final=False,
            speech_final=False,
            from_finalize=False,
            channels=self.channels,
        )

    async def _final(self, event: Final) -> None:
        self._starts.pop(event.segment_id, None)
        timing = event.timing
        words = wire.words_out(
            event.words, offset_s=timing.start_s, params=self.params, speaker=event.speaker
        )
        await self.send_json(
            wire.results_message(
                request_id=self.request_id,
                model=self.model,
                start_s=timing.start_s,
                duration_s=timing.duration_s,
                transcript=wire.transcript_out(event.text, self.params),
                confidence=event.confidence,
                words=words,
                is_final=True,
                speech_final=event.end_reason == SILENCE,
                from_finalize=event.end_reason == FINALIZE,
                channels=self.channels,
            )
        )
        if self.params.utterance_end_ms is not None and event.text:
            self._pending_end = words[-1]["end"] if words else (timing.end_s or timing.start_s)
            if self.session is not None and not self.session.recording:
                await self._utterance_end_if_gap(self.session.position_s)

    async def _utterance_end_if_gap(self, now_s: float) -> None:
        """UtteranceEnd once `utterance_end_ms` of the stream passed without a word after the last one."""
        if self._pending_end is None or self.params.utterance_end_ms is None:
            return
        if now_s - self._pending_end >= self.params.utterance_end_ms / 1000:
            last, self._pending_end = self._pending_end, None
            await self.send_json(wire.utterance_end_message(last, self.channels))

    async def _send_end(self) -> None:
        """After the last Results: a pending UtteranceEnd, then the stream's Metadata."""
        if self._ended or self.request_id is None:
            return
        self._ended = True
        if self._pending_end is not None:
            await self.send_raw(wire.utterance_end_message(self._pending_end, self.channels))
            self._pending_end = None
        await self.send_raw(
            wire.metadata_message(
                request_id=self.request_id,
                sha256=self._sha.hexdigest(),
                created=self.created,
                duration_s=self.session.audio_seconds if self.session is not None else 0.0,
                channels=self.channels,
                model=self.model,
            )
        )

    # -- ending --------------------------------------------------------------------------------

    async def close_for(self, code: str, message: str, close_code: int) -> None:
        """Finish what was said (its Results), say why, send the Metadata, close with Deepgram's code."""
        reason = None
        if close_code == CLOSE_IDLE:
            code, close_code, reason = wire.NET_0001, wire.CLOSE_NET, wire.NET_0001_REASON
        elif code == wire.DATA_0000:
            reason = wire.DATA_0000_REASON
        await self.finish(end_reason=code)
        # Daphne drops close reasons, so the reason also travels as an Error message (ListenV1Error).
        telemetry.error_sent(code)
        await self.send_raw(wire.error_message(code, message))
        await self._send_end()
        await self.close(close_code, reason or f"{code}: {message}".encode()[:123].decode("utf-8", "ignore"))

    async def close_stream(self) -> None:
        """CloseStream: transcribe everything received, send the last Results and Metadata, close 1000."""
        await self.finish(end_reason="close_stream")
        await self._send_end()
        await self.close(CLOSE_NORMAL)

    # -- in ------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.lease.finishing or self.db_session is None:
            return
        if bytes_data is not None:
            await self._audio(bytes_data)
        else:
            await self._message(text_data or "")

    async def _message(self, text: str) -> None:
        try:
            message = loads_command(text, hint="")
        except ProtocolError:  # not JSON, nested too deep, too large: Deepgram's SchemaError
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in ("KeepAlive", "Finalize", "CloseStream", "Configure"):
            await self._schema_error(text)
            return
        self.lease.errors.reset()
        self.touch()
        if kind == "Finalize":
            await self._finalize()
        elif kind == "CloseStream":
            await self.close_stream()
        elif kind == "Configure":
            await self._configure(message)

    async def _schema_error(self, text: str) -> None:
        if self.lease.errors.count():
            await self.refuse(TOO_MANY_ERRORS)
            return
        description = (
            "Could not parse the message: send KeepAlive, Finalize, CloseStream or Configure as "
            'JSON ({"type": "KeepAlive"}), and audio as binary messages.'
        )
        await self.send_json(wire.error_message("SchemaError", description, message=text[:1000]))

    async def _finalize(self) -> None:
        session = self.session
        if session is not None and session.open_segment_id is not None:
            await session.finalize()
            return
        # Nothing is being said: Deepgram still answers the Finalize, with an empty final.
        position = session.position_s if session is not None else 0.0
        await self.send_json(
            wire.results_message(
                request_id=self.request_id,
                model=self.model,
                start_s=position,
                duration_s=0.0,
                transcript="",
                confidence=0.0,
                words=[],
                is_final=True,
                speech_final=False,
                from_finalize=True,
                channels=self.channels,
            )
        )

    async def _configure(self, message: dict[str, Any]) -> None:
        """Configure: new key terms from here on (ConfigureSuccess), or ConfigureFailure."""
        failure = None
        try:
            if message.get("features"):
                raise KeytermError("CONFIGURE_INTERNAL_ERROR", "Configure features are not supported here.")
            terms = clean_keyterms(message.get("keyterms") or [])
        except KeytermError as exc:
            code = exc.code if exc.code.startswith("CONFIGURE_") else "CONFIGURE_KEYTERM_LIMIT_EXCEEDED"
            failure = {"code": code, "description": exc.message}
        if failure is not None:
            await self.send_json({"type": "ConfigureFailure", "request_id": self.request_id, **failure})
            return
        self.lease.base_options = replace(self.lease.base_options, keyterms=terms)
        if self.session is not None:
            self.session.reconfigure(replace(self.session.options, keyterms=terms))
        await self.send_json(
            {"type": "ConfigureSuccess", "request_id": self.request_id, "keyterms": list(terms)}
        )

    async def _audio(self, data: bytes) -> None:
        if not data:
            await self.close_stream()  # Deepgram's older clients end a stream with an empty message
            return
        limit = settings.STT_STREAM["MAX_PACKET_BYTES"]
        if len(data) > limit:
            await self.close_for("message_too_big", "Audio messages are limited in size.", CLOSE_TOO_BIG)
            return
        self._sha.update(data)
        self.touch()
        if self._format is None:
            data = await self._after_header(data)
            if not data:
                return
        frame = 2 * self.channels
        data = self._carry + data
        cut = len(data) - len(data) % frame
        self._carry, pcm = data[cut:], data[:cut]
        if not pcm:
            return
        try:
            packet = decode_pcm16(
                pcm,
                sample_rate=self._format.sample_rate,
                channels=self.channels,
                max_payload_bytes=limit + frame,
            )
        except AudioPacketError as exc:
            await self.close_for(wire.DATA_0000, exc.message, wire.CLOSE_DATA)
            return
        if await self.feed_limited(packet) and not self.session.recording:
            await self._utterance_end_if_gap(self.session.position_s)

    async def _after_header(self, data: bytes) -> bytes:
        """No `encoding`: the stream must be a WAV file (PCM16); its header sets the format."""
        self._header += data
        try:
            header = read_wav_header(self._header)
        except WavError as exc:
            await self.close_for(wire.DATA_0000, exc.message, wire.CLOSE_DATA)
            return b""
        if header is None:
            if len(self._header) > MAX_HEADER_BYTES:
                await self.close_for(
                    wire.DATA_0000, "No WAV data chunk in the first 64 KiB.", wire.CLOSE_DATA
                )
            return b""
        rest, self._header = self._header[header.data_offset :], b""
        if not await self._start(header):
            return b""
        return rest
