"""/ws/transcribe, the reference server's protocol: commands, start options, event encoding, consumer."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

from django.conf import settings

from speech import events
from speech.audio import AudioPacketError, decode_packet
from speech.keyterms import KeytermError, clean_keyterms
from speech.options import SessionOptions
from transcription.enrichment import EnrichmentError, enrich_from_client
from transcription.models import Endpoint
from transcription.streaming import registry, resume, telemetry
from transcription.streaming.consumer import INFERENCE_UNAVAILABLE, StreamingConsumer, inference_service
from transcription.streaming.lifecycle import (
    TOKEN_USED,
    Refusal,
    identity_refusal,
    token_consume,
)
from transcription.streaming.protocols.common import (
    ProtocolError,
    check_language,
    loads_command,
    model_languages,
    query_params,
)
from transcription.streaming.protocols.reference_dialect import (
    ReferenceWire,
    reference_settings,
    runtime_settings,
    stamped,
    wire_segment_id,
)
from transcription.streaming.service import get_service
from transcription.wake import NAMES as WAKE_NAMES
from transcription.wake import WakeWordError, wake_from_client

COMMANDS = ("start", "stop", "clear", "ping", "metrics", "finalize", "keepalive", "configure")
ACK_EVERY_S = 1.0  # while audio flows, a `status` this often says how much the server has

# Client option name -> (SessionOptions field, type, min, max). Bounds are the server's limits.
START_OPTIONS: dict[str, tuple[str, type, float | None, float | None]] = {
    "language": ("language", str, None, None),
    "interimResults": ("interim_results", bool, None, None),
    "wordTimestamps": ("word_timestamps", bool, None, None),
    "realtimeIntervalMs": ("realtime_interval_s", int, 200, 5000),
    "webrtcSensitivity": ("webrtc_sensitivity", int, 0, 3),
    "sileroSensitivity": ("silero_sensitivity", float, 0.05, 0.95),
    "preRecordingBufferDuration": ("pre_recording_buffer_duration", float, 0.0, 2.0),
    "postSpeechSilenceDuration": ("post_speech_silence_duration", float, 0.2, 3.0),
    "minLengthOfRecording": ("min_length_of_recording", float, 0.0, 5.0),
    "minGapBetweenRecordings": ("min_gap_between_recordings", float, 0.0, 5.0),
    "earlyTranscriptionOnSilence": ("early_transcription_on_silence", float, 0.0, 2.0),
    "maxSegmentSeconds": ("max_segment_seconds", float, 6.0, 30.0),
    "endOfTurnSilence": ("end_of_turn_silence", float, 0.0, 3.0),
    "maxTurnSilence": ("max_turn_silence", float, 0.1, 5.0),
    "endOfTurnThreshold": ("end_of_turn_threshold", float, 0.0, 1.0),
    "firstInterimMs": ("first_interim_s", int, 0, 5000),
    "keyterms": ("keyterms", list, None, None),
    "enrichment": ("enrich", dict, None, None),
}
# Wake-word start options: ours (camelCase) and the reference's names, which are also accepted.
WAKE_START_OPTIONS = {
    "wakewordBackend": "wakeword_backend",
    "wakeWords": "wake_words",
    "wakeWordsSensitivity": "wake_words_sensitivity",
    "wakeWordTimeout": "wake_word_timeout",
    "wakeWordFollowupWindow": "wake_word_followup_window",
    "wakeWordActivationDelay": "wake_word_activation_delay",
    **{name: name for name in WAKE_NAMES},
}
# What `configure` may change mid-stream (the rest shapes the VAD and buffers, fixed at start).
CONFIGURABLE = (
    "keyterms",
    "language",
    "interimResults",
    "realtimeIntervalMs",
    "postSpeechSilenceDuration",
    "minLengthOfRecording",
    "earlyTranscriptionOnSilence",
    "endOfTurnSilence",
    "maxTurnSilence",
    "endOfTurnThreshold",
)


def parse_command(text: str) -> dict[str, Any]:
    command = loads_command(text, hint='Commands must be JSON objects like {"type": "start"}.')
    if not isinstance(command, dict):
        raise ProtocolError("invalid_command", 'A command must be a JSON object with a "type".')
    kind = command.get("type")
    if kind not in COMMANDS:
        raise ProtocolError(
            "unknown_command", f"Unknown command {kind!r}; expected one of {', '.join(COMMANDS)}."
        )
    return command


def command_options(command: dict[str, Any]) -> dict[str, Any]:
    """A command's options: under "options", or at its top level."""
    raw = command.get("options", command)
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_options", '"options" must be a JSON object.')
    return raw


def parse_option(name: str, value: Any, *, languages: list[str] | None) -> tuple[str, Any]:
    """(SessionOptions field, value) for one client option within server limits, or ProtocolError."""
    field, kind, low, high = START_OPTIONS[name]
    if kind is bool:
        if not isinstance(value, bool):
            raise ProtocolError("invalid_option", f"{name} must be true or false.")
    elif kind is str:
        if value is not None and not isinstance(value, str):
            raise ProtocolError("invalid_option", f"{name} must be a string.")
    elif kind is list:
        try:
            return field, clean_keyterms(value)
        except KeytermError as exc:
            raise ProtocolError(exc.code, exc.message) from None
    elif kind is dict:
        try:
            return field, enrich_from_client(value)
        except EnrichmentError as exc:
            raise ProtocolError(exc.code, exc.message) from None
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProtocolError("invalid_option", f"{name} must be a number.")
        if not low <= value <= high:
            raise ProtocolError("option_out_of_range", f"{name} must be between {low} and {high}.")
    if name in ("realtimeIntervalMs", "firstInterimMs"):
        return field, value / 1000.0
    if name == "language":
        value = (value or "").strip() or None
        if value is not None:
            check_language(value, languages)
        return field, value
    return field, kind(value) if kind in (int, float) else value


def options_from_start(
    command: dict[str, Any], base: SessionOptions, *, languages: list[str] | None
) -> SessionOptions:
    """Apply a start command's options (top level or under "options") within server limits."""
    raw = command_options(command)
    changes = dict(
        parse_option(name, value, languages=languages) for name, value in raw.items() if name in START_OPTIONS
    )
    wake = {WAKE_START_OPTIONS[name]: value for name, value in raw.items() if name in WAKE_START_OPTIONS}
    if wake:
        try:
            changes["wake"] = wake_from_client(wake, base.wake)
        except WakeWordError as exc:
            raise ProtocolError(exc.code, exc.message) from None
    return replace(base, **changes)


def store_audio_option(raw: dict[str, Any]) -> bool | None:
    """A start command's `storeAudio` (keep this session's audio): true, false, or absent (the defaults)."""
    value = raw.get("storeAudio")
    if value is not None and not isinstance(value, bool):
        raise ProtocolError("invalid_option", "storeAudio must be true or false.")
    return value


def configure(
    raw: dict[str, Any], current: SessionOptions, *, languages: list[str] | None
) -> tuple[SessionOptions, list[dict[str, str]]]:
    """A `configure` command's changes: (the options now in force, one error per rejected field)."""
    changes: dict[str, Any] = {}
    rejected: list[dict[str, str]] = []
    for name, value in raw.items():
        if name in ("type", "vocabulary"):
            continue
        if name not in CONFIGURABLE:
            fixed = name in START_OPTIONS or name in WAKE_START_OPTIONS
            why = "is fixed when the stream starts" if fixed else "is not an option"
            rejected.append({"field": name, "code": "not_configurable", "message": f"{name} {why}."})
            continue
        try:
            field, parsed = parse_option(name, value, languages=languages)
        except ProtocolError as exc:
            rejected.append({"field": name, "code": exc.code, "message": exc.message})
            continue
        changes[field] = parsed
    return replace(current, **changes), rejected


def _timing(t: events.SegmentTiming, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"index": t.index, "start": round(t.start_s, 3)}
    if t.end_s is not None:
        out.update(end=round(t.end_s, 3), duration=round(t.duration_s, 3))
    return {**out, "preRoll": round(t.pre_roll_s, 3), **extra}


def _with_segment(payload: dict[str, Any], segment_id: str | None) -> dict[str, Any]:
    return payload if segment_id is None else {**payload, "segmentId": segment_id}


def encode(event: events.SessionEvent) -> list[dict[str, Any]]:
    """The messages one session event becomes on /ws/transcribe (the consumer adds `sessionId`)."""
    if isinstance(event, events.SpeechStarted):
        first = None if event.first_voiced_s is None else round(event.first_voiced_s, 3)
        segment = _timing(event.timing, firstVoiced=first, continued=event.continued)
        return [
            {
                "type": "timeline",
                "event": "recording_started",
                "segmentId": event.segment_id,
                "segment": segment,
            }
        ]
    if isinstance(event, events.SpeechEnded):
        segment = _timing(event.timing, endReason=event.end_reason)
        return [
            {
                "type": "timeline",
                "event": "recording_ended",
                "segmentId": event.segment_id,
                "segment": segment,
            }
        ]
    if isinstance(event, events.TranscriptionStarted):
        return [{"type": "timeline", "event": "transcription_started", "segmentId": event.segment_id}]
    if isinstance(event, events.Interim):
        return [
            {
                "type": "realtime",
                "segmentId": event.segment_id,
                "sequence": event.sequence,
                "text": event.text,
                "stableText": event.stable_text,
                "unstableText": event.unstable_text,
                "confidence": round(event.confidence, 4),
                **({"speaker": event.speaker} if event.speaker else {}),
            }
        ]
    if isinstance(event, events.Final):
        delivered = {"type": "timeline", "event": "final_transcript", "segmentId": event.segment_id}
        return [_final(event), {**delivered, "latencyMs": event.latency_ms}]
    if isinstance(event, events.WakeWord):
        wake = {"type": "timeline", "event": f"wakeword_{event.state}"}
        wake["position"] = round(event.position_s, 3)
        if event.duration_s is not None:
            wake["durationSeconds"] = event.duration_s
        return [wake]
    if isinstance(event, events.Turn):
        turn = {"type": "turn", "event": event.state, "segmentId": event.segment_id}
        return [{**turn, "reason": event.reason}]
    if isinstance(event, events.Notice):
        return [
            _with_segment({"type": "warning", "code": event.code, "message": event.message}, event.segment_id)
        ]
    if isinstance(event, events.Error):
        error = {"type": "error", "code": event.code, "message": event.message, "where": event.where}
        return [_with_segment(error, event.segment_id)]
    return []


def _final(event: events.Final) -> dict[str, Any]:
    t = event.timing
    final = {
        "type": "final",
        "segmentId": event.segment_id,
        "text": event.text,
        "start": round(t.start_s, 3),
        "end": round(t.end_s, 3),
        "duration": round(t.duration_s, 3),
        "confidence": None if event.confidence is None else round(event.confidence, 4),
        "language": event.language,
        "endReason": event.end_reason,
        "latencyMs": event.latency_ms,
        "segment": _timing(t),
    }
    if event.words is not None:
        final["words"] = event.words
    if event.speaker is not None or event.enrichment is not None:
        final["speaker"] = event.speaker
    if event.enrichment is not None:
        final["analysis"] = analysis(event.enrichment)
    return final


def analysis(e: events.Enrichment) -> dict[str, Any]:
    """A final's `analysis` (an addition to the reference protocol): the stages that are on."""
    fields = {
        "sentiment": e.sentiment,
        "sentences": e.sentences,
        "sessionSentiment": e.session_sentiment,
        "topics": e.topics,
        "speakers": None
        if e.speakers is None
        else [
            {"id": s["id"], "speakingTime": s["speaking_time"], "segments": s["segments"]} for s in e.speakers
        ],
        "profanity": None
        if e.profanity is None
        else {"detected": bool(e.profanity), "filteredWords": e.profanity},
        "redacted": e.redacted,
    }
    return {name: value for name, value in fields.items() if value is not None}


def last_segment(raw: str) -> int | None:
    """A resuming client's `lastSegment` (the highest final it got); anything but a plain number: None."""
    return int(raw) if raw.isascii() and raw.isdecimal() and len(raw) < 10 else None


class TranscribeConsumer(StreamingConsumer):
    """/ws/transcribe: the reference protocol (binary packets + JSON commands)."""

    endpoint = Endpoint.WS_TRANSCRIBE
    listening = False
    resumable: resume.Resumable | None = None
    superseded = False  # a newer connection resumed this one's stream

    async def connect(self) -> None:
        token = query_params(self.scope).get("resume")
        if not token:
            await super().connect()
            return
        await self.accept(subprotocol=self.scope.get("ws_subprotocol"))
        user = self.scope.get("user")
        found = identity_refusal(self.scope, self.required_scope) or resume.claim(token, user.pk)
        if not isinstance(found, Refusal) and not await token_consume(self.scope):
            found = TOKEN_USED  # a temporary token resumes once, as it starts once
        if isinstance(found, Refusal):
            telemetry.refused(found.code).inc()
            telemetry.error_sent(found.code)
            error = {"type": "error", "code": found.code, "message": found.message, "where": "connect"}
            await self.send(text_data=json.dumps(stamped(error), separators=(",", ":")))
            await self.close(found.close_code)
            return
        await self._resume(found)

    async def on_admitted(self) -> None:
        await super().on_admitted()
        lease = self.lease
        self.wire = ReferenceWire(
            lease.base_options.pre_recording_buffer_duration, self._wire_state, lease.base_options.wake
        )
        self.resumable = resume.Resumable(lease, self) if resume.window_s() > 0 else None
        await self.send_json(self._hello())
        lease.spawn(self._announce_ready())
        lease.spawn(self._acknowledge())

    def _hello(self, **extra: Any) -> dict[str, Any]:
        lease = self.lease
        limits = {
            **lease.limits.as_dict(),
            "remainingMonthlySeconds": round(lease.remaining_s, 1),
            "maxPacketBytes": settings.STT_STREAM["MAX_PACKET_BYTES"],
        }
        hello = {
            "type": "hello",
            "clientId": lease.client_id,
            "sessionId": str(lease.db_session.pk),
            "settings": {**lease.base_options.public(), **reference_settings(lease.base_options)},
            "limits": limits,
            "supportedEngines": ["faster_whisper"],
            "runtimeSettings": runtime_settings(),
            "audioReceivedS": self._audio_received(),
        }
        if self.resumable is not None:
            hello["resume"] = {"token": self.resumable.token, "windowS": resume.window_s()}
        return {**hello, **extra}

    def _audio_received(self) -> float:
        return round(self.session.audio_seconds, 3) if self.session is not None else 0.0

    async def _resume(self, stream: resume.Resumable) -> None:
        """Attach to a parked stream (or take it from a connection whose drop was not noticed yet)."""
        previous = stream.consumer
        if previous is not None:
            previous.superseded = True
            registry.untrack(previous)
            stream.handoff = {"wire": previous.wire, "listening": previous.listening}
            stream.detach()
            await previous.close(resume.CLOSE_RESUMED_ELSEWHERE)
        self.lease, self.resumable = stream.lease, stream
        self.wire, self.listening = stream.handoff["wire"], stream.handoff["listening"]
        self.wire.rebind(self._wire_state)
        registry.track(self)
        self.touch()
        self.lease.spawn(self._watch_idle(self.lease.base_options.idle_timeout_s))
        await self.send_json(self._hello(resumed=True, listening=self.listening))
        await stream.attach(self, last_final=last_segment(query_params(self.scope).get("lastSegment", "")))
        await self.send_json(self.wire.waiting_status(str(self.db_session.pk)))
        self.lease.spawn(self._announce_ready())
        self.lease.spawn(self._acknowledge())

    async def _acknowledge(self) -> None:
        """While audio flows, a `status` each second carries `audioReceivedS`: a resume re-sends after it."""
        acknowledged = None
        while True:
            await asyncio.sleep(ACK_EVERY_S)
            received = self._audio_received()
            if self.listening and received != acknowledged:
                acknowledged = received
                recording = bool(self.session is not None and self.session.recording)
                await self.send_json(self.wire.current_status(str(self.db_session.pk), recording=recording))

    async def start_session(self, options: SessionOptions):
        # A resumable stream's events go through its Resumable, which follows the connection.
        return await self.lease.start_session(options, self.resumable or self)

    async def disconnect(self, code: int) -> None:
        if self.superseded:
            return  # the stream lives on in the connection that resumed it
        stream = self.resumable
        lease = getattr(self, "lease", None)
        if (
            stream is not None
            and stream.consumer is self
            and resume.parks_on(code)
            and self.listening
            and lease is not None
            and not lease.finishing
        ):
            registry.untrack(self)
            stream.park(end_reason=f"closed_{code}", handoff={"wire": self.wire, "listening": True})
            return
        await super().disconnect(code)

    async def finish(self, *, end_reason: str) -> None:
        if self.resumable is not None:
            resume.forget(self.resumable)
        await super().finish(end_reason=end_reason)

    async def _announce_ready(self) -> None:
        service, failure = await inference_service()
        if service is None:
            await self.send_error(INFERENCE_UNAVAILABLE, failure, where="ready")
            return
        options = self.lease.base_options
        await self.send_json(
            {
                "type": "ready",
                "lanes": _lanes(service),
                "ok": bool(getattr(service, "ready", True)),
                "settings": {**options.public(), **reference_settings(options)},
                "limits": self.lease.limits.as_dict(),
                "runtimeSettings": runtime_settings(),
            }
        )

    async def deliver(self, event: events.SessionEvent) -> None:
        for message in self.wire.messages(event, encode(event), str(self.db_session.pk)):
            await self.send_json(message)

    async def send_json(self, payload: dict[str, Any]) -> None:
        """Every message of this endpoint carries `sessionId` and the time it left (reference dialect)."""
        if self.db_session is not None and "sessionId" not in payload:
            payload = {"sessionId": str(self.db_session.pk), **payload}
        await super().send_json(stamped(payload))

    def _wire_state(self) -> tuple[bool, dict[str, int]]:
        session = self.session
        streams = registry.live_streams()
        counters = {
            "queueDepth": session.in_flight if session is not None else 0,
            "coalescedRealtime": session.counters["realtime_dropped"] if session is not None else 0,
            "droppedChunks": self.lease.errors.total,
            "activeSessions": len(streams),
            "activeSpeakers": sum(1 for s in streams if getattr(s, "session", None) and s.session.recording),
            "wakeState": session.wake_state if session is not None else None,
            "audioReceivedS": self._audio_received(),
        }
        return self.listening, counters

    def _admitted(self) -> bool:
        return not self.superseded and super()._admitted()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self._admitted():
            return
        try:
            if bytes_data is not None:
                await self._on_audio(bytes_data)
            elif text_data is not None:
                await self._on_command(text_data)
        except KeytermError as exc:
            await self.bad_message(exc.code, exc.message, where="command")
        except (ProtocolError, AudioPacketError) as exc:
            await self.bad_message(
                exc.code, exc.message, where="audio" if bytes_data is not None else "command"
            )

    async def _on_audio(self, data: bytes) -> None:
        # A message over STT_MAX_PACKET_BYTES never gets here: StreamingConsumer closes with 1009.
        packet = decode_packet(data, max_payload_bytes=settings.STT_STREAM["MAX_PACKET_BYTES"])
        self.lease.errors.reset()
        if self.session is None or not self.listening:
            # Audio before "start" (or after "stop") starts listening with the current options.
            await self._start(self.lease.base_options)
        if self.db_session.sample_rate is None:
            await self.lease.record_format(packet.sample_rate, packet.channels)
        await self.feed_limited(packet)

    async def _start(self, options: SessionOptions) -> None:
        # One StreamingSession per connection, so segment numbering continues after stop/start.
        session = self.session or await self.start_session(options)
        self.wire.wake = session.options.wake
        self.listening = True
        settings_now = {**options.public(), "storeAudio": self.lease.recording.enabled}
        await self.send_json({**self.wire.waiting_status(session.session_id), "settings": settings_now})

    async def _on_command(self, text: str) -> None:
        command = parse_command(text)
        self.lease.errors.reset()
        kind, session_id = command["type"], str(self.db_session.pk)
        if kind == "ping":
            await self.send_json({"type": "pong", "serverTime": time.time(), "echo": command.get("id")})
        elif kind == "start":
            if self.session is not None and self.listening:
                await self.send_json(
                    {"type": "warning", "code": "already_started", "message": "Already started."}
                )
                return
            raw = await self.lease.with_vocabulary(command_options(command))
            languages = model_languages(await get_service())
            options = options_from_start(raw, self.lease.base_options, languages=languages)
            self.lease.recording.asked = store_audio_option(raw)
            await self._start(options)
        elif kind == "stop":
            if self.session is not None and self.listening:
                self.listening = False
                await self.lease.stop_listening()
            await self.send_json(self.wire.waiting_status(session_id))
        elif kind == "clear":
            if self.session is not None:
                await self.session.clear()
            next_id = self.session.next_segment_index + 1 if self.session is not None else 1
            await self.send_json({"type": "clear", "sessionId": session_id, "nextSegmentId": next_id})
            await self.send_json(self.wire.waiting_status(session_id))
        elif kind == "metrics":
            metrics = self.session.metrics() if self.session else {}
            await self.send_json({"type": "metrics", "sessionId": session_id, "metrics": metrics})
        elif kind == "keepalive":
            self.touch()
        elif kind == "finalize":
            open_segment = self.session.open_segment_id if self.session is not None else None
            if open_segment is not None:
                await self.session.finalize()
            reply = {
                "type": "finalize",
                "segmentId": wire_segment_id(open_segment),
                "segmentKey": open_segment,
            }
            await self.send_json(reply)
        elif kind == "configure":
            await self._configure(command)

    async def _configure(self, command: dict[str, Any]) -> None:
        raw = await self.lease.with_vocabulary(command_options(command))
        current = self.session.options if self.session is not None else self.lease.base_options
        languages = model_languages(await get_service())
        options, rejected = configure(raw, current, languages=languages)
        if self.session is not None:
            self.session.reconfigure(options)
        else:
            self.lease.base_options = options
        for error in rejected:
            telemetry.error_sent(error["code"])
            await self.send_json({"type": "error", "where": "configure", **error})
        reply = {"type": "configured", "sessionId": str(self.db_session.pk), "settings": options.public()}
        await self.send_json({**reply, "rejected": rejected})


def _lanes(service) -> dict[str, Any]:
    lanes = getattr(service, "lanes", None)
    if isinstance(lanes, dict):
        return {name: {"ready": True} for name in lanes}
    return {"remote": {"ready": bool(getattr(service, "ready", False))}}
