"""The reference server's dialect on /ws/transcribe (KoljaB/RealtimeSTT example_fastapi_server).

Its own browser console reads these names, so every event carries them beside ours: per-session
integer segment ids (from 1), wall-clock segment times in epoch seconds, `timestamp` and
`timestampIso` on every event, the reference's public settings (snake_case), its status states
and counters, and interim text whose parts carry their own spacing.
"""

from __future__ import annotations

import datetime
import functools
import time
from typing import Any

from django.conf import settings

from speech import events
from speech.inference.engine import resolve_compute_type, resolve_device
from speech.options import SessionOptions
from speech.wake.options import WakeOptions
from transcription import runtime_config
from transcription.speech_models import model_display_name, model_label
from transcription.streaming.service import batch_size_for

IDLE, LISTENING, RECORDING, TRANSCRIBING = "idle", "listening", "recording", "transcribing"
WAKE_WAIT, WAKE_DETECTED, WAKE_TIMEOUT = "wakeword_wait", "wakeword_detected", "wakeword_timeout"
# The gate's state (speech.wake.gate) -> the status a waiting session shows.
_WAITING_STATUS = {"waiting": WAKE_WAIT, "detected": WAKE_DETECTED, "followup": WAKE_DETECTED}
# Timeline event -> (wakeWord.state, the time field it sets, the status that follows it).
_WAKE_TIMELINE = {
    events.WAKE_WAIT_STARTED: ("waiting_for_wake_word", "waitStartedAt", WAKE_WAIT),
    events.WAKE_WAIT_ENDED: ("wake_word_wait_ended", "waitEndedAt", None),
    events.WAKE_DETECTED: ("wake_word_detected_waiting_for_voice", "detectedAt", WAKE_DETECTED),
    events.WAKE_TIMEOUT: ("wake_word_timeout", "timeoutAt", WAKE_TIMEOUT),
    events.WAKE_FOLLOWUP_STARTED: (None, None, WAKE_DETECTED),
    events.WAKE_FOLLOWUP_TIMEOUT: (None, None, None),
}


def timestamp_iso(ts: float) -> str:
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stamped(payload: dict[str, Any], ts: float | None = None) -> dict[str, Any]:
    """The payload with `timestamp` (epoch seconds) and `timestampIso`, unless it has them."""
    if "timestamp" in payload:
        return payload
    ts = time.time() if ts is None else ts
    return {**payload, "timestamp": ts, "timestampIso": timestamp_iso(ts)}


def wire_segment_id(segment_id: str | None) -> int | None:
    """Our segment id as the reference's per-session integer `segmentId`."""
    return events.segment_number(segment_id)


def reference_settings(o: SessionOptions) -> dict[str, Any]:
    """The reference's public settings, filled from ours (the console's settings strip reads them)."""
    inference = settings.STT_INFERENCE
    final, realtime = model_label("final"), model_label("realtime")
    device, compute_type, batch = _hardware(
        inference["DEVICE"], inference["COMPUTE_TYPE"], inference["MAX_BATCH_SIZE"]
    )
    same = bool(inference["USE_MAIN_MODEL_FOR_REALTIME"])
    return {
        "tuning_profile": "custom",
        "model": model_display_name(final),
        "realtime_model": model_display_name(realtime),
        "language": o.language or "",
        "transcription_engine": "faster_whisper",
        "realtime_transcription_engine": None,
        "device": device,
        "compute_type": compute_type,
        "beam_size": o.beam_size,
        "beam_size_realtime": o.beam_size_realtime,
        "batch_size": batch,
        "realtime_batch_size": batch,
        "realtime_processing_pause": o.realtime_interval_s,
        "min_length_of_recording": o.min_length_of_recording,
        "min_gap_between_recordings": o.min_gap_between_recordings,
        "post_speech_silence_duration": o.post_speech_silence_duration,
        "pre_recording_buffer_duration": o.pre_recording_buffer_duration,
        "early_transcription_on_silence": o.early_transcription_on_silence,
        "silero_sensitivity": o.silero_sensitivity,
        "webrtc_sensitivity": o.webrtc_sensitivity,
        "initial_prompt": o.initial_prompt,
        "use_main_model_for_realtime": same,
        **{name: value for name, value in o.wake.public().items()},
        "max_audio_packet_bytes": settings.STT_STREAM["MAX_PACKET_BYTES"],
        "max_realtime_queue_age_ms": inference["MAX_REALTIME_QUEUE_AGE_MS"],
        "max_final_queue_depth_per_session": inference["MAX_FINAL_QUEUE_DEPTH_PER_SESSION"],
        "max_global_inference_queue_depth": inference["MAX_GLOBAL_QUEUE_DEPTH"],
    }


@functools.cache
def _hardware(device: str, compute_type: str, batch_size: int) -> tuple[str, str, int]:
    """The resolved device, compute type and batch size: asking CUDA once per process, not per hello."""
    resolved = resolve_device(device)
    config = {"DEVICE": resolved, "MAX_BATCH_SIZE": batch_size}
    return resolved, resolve_compute_type(compute_type, resolved), batch_size_for(config)


def runtime_settings() -> dict[str, list[str]]:
    """The names of each settings bucket, as the reference's hello lists them."""
    buckets: dict[str, list[str]] = {}
    for name, spec in runtime_config.specs().items():
        buckets.setdefault(spec.bucket, []).append(name)
    return {bucket: sorted(names) for bucket, names in buckets.items()}


class SegmentClock:
    """Each segment's wall-clock story (epoch seconds), as the reference's `segment` objects tell it."""

    def __init__(self, pre_roll_configured_s: float) -> None:
        self.configured = pre_roll_configured_s
        self._segments: dict[int, dict[str, Any]] = {}

    def started(
        self, wire_id: int, pre_roll_s: float, ts: float, wake: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        buffer = {
            "configuredSeconds": self.configured,
            "includedSeconds": round(pre_roll_s, 3),
            "startTimestamp": ts - pre_roll_s,
            "startTimestampIso": timestamp_iso(ts - pre_roll_s),
            "endTimestamp": ts,
            "endTimestampIso": timestamp_iso(ts),
            "exact": True,
        }
        self._segments[wire_id] = {
            "segmentId": wire_id,
            "recordingStartedAt": ts,
            "recordingStartedAtIso": timestamp_iso(ts),
            "preRecordingBuffer": buffer,
            **({"wakeWord": wake} if wake else {}),
        }
        return self.snapshot(wire_id)

    def ended(self, wire_id: int, duration_s: float, ts: float) -> dict[str, Any]:
        segment = self._segments.setdefault(wire_id, {"segmentId": wire_id})
        segment.update(
            recordingEndedAt=ts, recordingEndedAtIso=timestamp_iso(ts), durationSeconds=round(duration_s, 3)
        )
        return self.snapshot(wire_id)

    def snapshot(self, wire_id: int | None) -> dict[str, Any]:
        segment = self._segments.get(wire_id) if wire_id is not None else None
        if not segment:
            return {}
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in segment.items()}

    def forget(self, wire_id: int | None) -> None:
        self._segments.pop(wire_id, None)


def top_level(segment: dict[str, Any]) -> dict[str, Any]:
    """What the reference copies from a segment to the top of `realtime` and `final` messages."""
    keys = ("recordingStartedAt", "recordingStartedAtIso", "recordingEndedAt", "recordingEndedAtIso",
            "durationSeconds", "preRecordingBuffer", "wakeWord")  # fmt: skip
    return {k: segment[k] for k in keys if k in segment}


def interim_text(stable: str, unstable: str, raw: str, previous_stable: str) -> dict[str, Any]:
    """The reference's interim text fields: the parts carry their spacing, so stable + unstable reads
    as the displayed text; `stableDelta` is what this update committed."""
    spaced = f" {unstable}" if stable and unstable else unstable
    delta = stable[len(previous_stable) :] if stable.startswith(previous_stable) else stable
    display = (stable + spaced).strip()
    return {
        "text": display,
        "rawText": raw,
        "displayText": display,
        "stableText": stable,
        "unstableText": spaced,
        "stableDelta": delta,
        "committedStableText": stable,
        "committedStableDelta": delta,
        "visualStableText": stable,
        "visualUnstableText": spaced,
        "isOutlier": False,
        "commitReason": "evidence-threshold" if delta else "none",
    }


def wake_payload(wake: WakeOptions, state: str | None, **times: Any) -> dict[str, Any]:
    """The reference's `wakeWord` object; `times` (epoch seconds) get their `...Iso` twins."""
    payload: dict[str, Any] = {
        "enabled": wake.enabled,
        "backend": wake.backend,
        "wakeWords": wake.words_text,
        "state": state,
    }
    for name, value in times.items():
        if value is None:
            continue
        payload[name] = value
        if isinstance(value, float):
            payload[f"{name}Iso"] = timestamp_iso(value)
    return payload


def status(
    state: str,
    *,
    session_id: str,
    streaming: bool,
    counters: dict[str, Any],
    wake: WakeOptions | None = None,
) -> dict[str, Any]:
    """A `status` event with the reference's counters."""
    wake = wake or WakeOptions()
    return stamped(
        {
            "type": "status",
            "sessionId": session_id,
            "state": state,
            "activeClientId": session_id if streaming else None,
            "queueDepth": counters.get("queueDepth", 0),
            "droppedChunks": counters.get("droppedChunks", 0),
            "coalescedRealtime": counters.get("coalescedRealtime", 0),
            "staleRealtimeDiscarded": 0,
            "activeSessions": counters.get("activeSessions", 0),
            "activeSpeakers": counters.get("activeSpeakers", 0),
            "wakeWordEnabled": wake.enabled,
            "wakeWord": wake_payload(wake, state if state.startswith("wakeword") else None),
            # Seconds of audio the server holds: a resuming client re-sends what came after.
            **({"audioReceivedS": counters["audioReceivedS"]} if "audioReceivedS" in counters else {}),
        }
    )


class ReferenceWire:
    """Turns one connection's encoded events into the reference's: ids, segment times, extra events.

    `state()` gives (listening?, status counters) when a status must follow an event.
    """

    def __init__(self, pre_roll_configured_s: float, state, wake: WakeOptions | None = None) -> None:
        self.clock = SegmentClock(pre_roll_configured_s)
        self._state = state
        self._stable: dict[int, str] = {}
        self.wake = wake or WakeOptions()  # the session's, once it starts
        self._wake_times: dict[str, float] = {}

    def messages(self, event, encoded: list[dict[str, Any]], session_id: str) -> list[dict[str, Any]]:
        now = time.time()
        out: list[dict[str, Any]] = []
        for message in encoded:
            key = message.get("segmentId")
            wire_id = wire_segment_id(key)
            message = {**message, "sessionId": session_id}
            if key is not None:
                message.update(segmentKey=key, segmentId=wire_id)
            out.append(stamped(self._decorate(event, message, wire_id, now), now))
        wire_id = wire_segment_id(getattr(event, "segment_id", None))
        if isinstance(event, events.Interim) and out:
            realtime = out[0]
            timeline = {"type": "timeline", "event": "realtime_transcript", "sessionId": session_id,
                        "segmentId": wire_id, "segmentKey": event.segment_id, "text": realtime["text"],
                        "sequence": event.sequence, "segment": self.clock.snapshot(wire_id)}  # fmt: skip
            out.append(stamped(timeline, now))
        if isinstance(event, events.WakeWord):
            follows = _WAKE_TIMELINE.get(event.state, (None, None, None))[2]
            if follows is not None:
                out.append(self._status(follows, session_id))
        elif isinstance(event, events.SpeechStarted):
            out.append(self._status(RECORDING, session_id))
        elif isinstance(event, events.TranscriptionStarted):
            out.append(self._status(TRANSCRIBING, session_id))
        elif isinstance(event, events.Final):
            self.clock.forget(wire_id)
            self._stable.pop(wire_id, None)
            out.append(self.waiting_status(session_id))
        return out

    def rebind(self, state) -> None:
        """A resumed stream's wire passes to the new connection, whose state the statuses now tell."""
        self._state = state

    def current_status(self, session_id: str, *, recording: bool) -> dict[str, Any]:
        """The status now (the periodic one that acknowledges audio): recording, or waiting."""
        return self._status(RECORDING, session_id) if recording else self.waiting_status(session_id)

    def waiting_status(self, session_id: str) -> dict[str, Any]:
        listening, counters = self._state()
        state = LISTENING if listening else IDLE
        if listening and self.wake.enabled:
            state = _WAITING_STATUS.get(counters.get("wakeState"), LISTENING)
        return self._status(state, session_id)

    def _status(self, state: str, session_id: str) -> dict[str, Any]:
        listening, counters = self._state()
        return status(state, session_id=session_id, streaming=listening, counters=counters, wake=self.wake)

    def _wake_timeline(self, event: events.WakeWord, message: dict[str, Any], now: float) -> None:
        state, field, _ = _WAKE_TIMELINE.get(event.state, (None, None, None))
        if event.state == events.WAKE_WAIT_STARTED:
            self._wake_times = {}
        if field is not None:
            self._wake_times[field] = now
        if state is None:
            return
        names = ("waitStartedAt", "waitEndedAt", "detectedAt", "timeoutAt")
        times = {name: self._wake_times.get(name) for name in names}
        message["wakeWord"] = {**wake_payload(self.wake, state, **times), "word": event.word}

    def _wake_segment(self, event: events.SpeechStarted) -> dict[str, Any]:
        """A wake-opened segment's `wakeWord` (the reference's, plus which word)."""
        detected = self._wake_times.get("detectedAt")
        return {**wake_payload(self.wake, "recording", detectedAt=detected), "word": event.wake_word}

    def _decorate(self, event, message: dict[str, Any], wire_id: int | None, now: float) -> dict[str, Any]:
        kind = message.get("type")
        if isinstance(event, events.WakeWord):
            self._wake_timeline(event, message, now)
        elif isinstance(event, events.SpeechStarted) and kind == "timeline":
            wake = self._wake_segment(event) if event.wake_word else None
            segment = self.clock.started(wire_id, event.timing.pre_roll_s, now, wake)
            message["segment"] = {**message.get("segment", {}), **segment}
            message["preRecordingBuffer"] = segment["preRecordingBuffer"]
        elif isinstance(event, events.SpeechEnded) and kind == "timeline":
            t = event.timing
            segment = self.clock.ended(wire_id, max(0.0, t.duration_s - t.pre_roll_s), now)
            message["segment"] = {**message.get("segment", {}), **segment}
            message.update(durationSeconds=segment["durationSeconds"], reason=event.end_reason)
        elif isinstance(event, events.Interim) and kind == "realtime":
            previous = self._stable.get(wire_id, "")
            message.update(interim_text(event.stable_text, event.unstable_text, event.text, previous))
            self._stable[wire_id] = event.stable_text
            segment = self.clock.snapshot(wire_id)
            message.update(segment=segment, recordingId=wire_id, **top_level(segment))
        elif isinstance(event, events.Final | events.TranscriptionStarted):
            segment = self.clock.snapshot(wire_id)
            if kind == "final":
                message["segment"] = {**message.get("segment", {}), **segment}
                message.update(top_level(segment))
            elif kind == "timeline":
                message["segment"] = {**message.get("segment", {}), **segment}
                if isinstance(event, events.Final):
                    message["text"] = event.text
        return message
