"""StreamingSession: audio -> resample -> VAD/segmenter -> inference -> events, one per connection.

Plain Python: persistence and delivery are injected (a `SessionSink`), so every wire
protocol shares this core and it can be tested without Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from speech import events
from speech.audio import SAMPLE_RATE, AudioNormalizer, AudioPacket
from speech.inference.jobs import (
    InferenceError,
    InferenceRejected,
    JobDropped,
    JobKind,
    ServiceWarning,
    TranscribeOptions,
    TranscriptionJob,
    TranscriptionResult,
)
from speech.segmenter import (
    CLEAR,
    EarlyTranscription,
    EarlyTranscriptionCancelled,
    SegmentAudio,
    SegmentClosed,
    Segmenter,
    SegmenterConfig,
    SpeechStarted,
)
from speech.stabilizer import Stabilizer
from speech.vad import VadConfig, VoiceActivityDetector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionOptions:
    """Per-session knobs (server defaults, possibly narrowed by the client's `start`)."""

    language: str | None = "en"
    interim_results: bool = True
    word_timestamps: bool = False
    beam_size: int = 1
    initial_prompt: str | None = None
    realtime_interval_s: float = 0.75
    webrtc_sensitivity: int = 2
    silero_sensitivity: float = 0.5
    pre_recording_buffer_duration: float = 0.75
    post_speech_silence_duration: float = 0.55
    min_length_of_recording: float = 0.2
    min_gap_between_recordings: float = 0.0
    early_transcription_on_silence: float = 0.2
    max_segment_seconds: float = 30.0

    def public(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "interimResults": self.interim_results,
            "wordTimestamps": self.word_timestamps,
            "realtimeIntervalMs": round(self.realtime_interval_s * 1000),
            "preRecordingBufferDuration": self.pre_recording_buffer_duration,
            "postSpeechSilenceDuration": self.post_speech_silence_duration,
            "minLengthOfRecording": self.min_length_of_recording,
            "minGapBetweenRecordings": self.min_gap_between_recordings,
            "earlyTranscriptionOnSilence": self.early_transcription_on_silence,
            "maxSegmentSeconds": self.max_segment_seconds,
            "webrtcSensitivity": self.webrtc_sensitivity,
            "sileroSensitivity": self.silero_sensitivity,
        }


@dataclass
class FinalSegment:
    """A finished segment, as stored and as sent."""

    index: int
    segment_id: str
    start_s: float
    end_s: float
    text: str
    confidence: float | None
    language: str
    words: list[dict]
    end_reason: str
    pre_roll_s: float
    latency_ms: float | None
    result: TranscriptionResult | None = field(default=None, repr=False)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def event(self, *, words: bool) -> events.Final:
        """The event that tells the client (`words`: with word timings)."""
        return events.Final(
            self.segment_id,
            events.SegmentTiming(self.index, self.start_s, self.end_s, self.pre_roll_s),
            self.text,
            self.confidence,
            self.language,
            self.end_reason,
            self.latency_ms,
            words=self.words if words else None,
        )

    def stored_fields(self) -> dict[str, Any]:
        """The fields a store persists (services.segment_finalize's keywords)."""
        return {
            "index": self.index,
            "segment_id": self.segment_id,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "confidence": self.confidence,
            "language": self.language,
            "words": self.words,
            "end_reason": self.end_reason,
            "latency_ms": self.latency_ms,
        }


class SessionSink(Protocol):
    """What a session needs from its endpoint."""

    async def emit(self, event: events.SessionEvent) -> None:
        """Deliver an event to this session's client (only this one)."""

    async def store_final(self, segment: FinalSegment) -> None:
        """Persist a final segment; returns once it is committed."""


class InferenceClient(Protocol):
    async def transcribe(self, job: TranscriptionJob, *, on_warning=None) -> TranscriptionResult: ...

    def segment_finalized(self, session_id: str, segment_id: str) -> None: ...

    def session_closed(self, session_id: str) -> None: ...


@dataclass
class _Open:
    index: int
    segment_id: str
    start_s: float
    pre_roll_s: float
    stabilizer: Stabilizer = field(default_factory=Stabilizer)
    sequence: int = 0
    realtime_task: asyncio.Task | None = None
    last_realtime_at: float = 0.0
    early_task: asyncio.Task | None = None
    early_samples: int = 0
    closed: bool = False
    interim: bool = True
    speaking: bool = False


class StreamingSession:
    """One client's stream. Call `feed_packet`/`feed_audio`, `stop`, `clear`, `close`."""

    def __init__(
        self,
        *,
        session_id: str,
        service: InferenceClient,
        sink: SessionSink,
        options: SessionOptions | None = None,
        vad_model=None,
        clock: Callable[[], float] = time.monotonic,
        speaker_gate: Callable[[bool], Awaitable[bool]] | None = None,
    ) -> None:
        """`speaker_gate(True)` asks for an active-speaker place when speech starts (False when
        refused: the segment then gets no interim work, its final is still transcribed);
        `speaker_gate(False)` gives the place back when the segment closes."""
        self.session_id = session_id
        self._speaker_gate = speaker_gate
        self.service = service
        self.sink = sink
        self.options = options or SessionOptions()
        self._clock = clock
        self._vad_model = vad_model
        self._normalizer = AudioNormalizer()
        self._segmenter = self._new_segmenter()
        self._open: _Open | None = None
        # Finals are emitted in segment order: each waits for the previous one's emission.
        self._final_chain: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        # (stream offset in seconds, wall clock) of recent packets, to date the end of speech.
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=2048)
        self.audio_seconds = 0.0
        self.segments_final = 0
        self.counters = {
            "realtime_sent": 0,
            "realtime_dropped": 0,
            "finals": 0,
            "empty_finals": 0,
            "early_reused": 0,
            "speaker_capacity_refused": 0,
        }

    # -- configuration ---------------------------------------------------------------------

    def _new_segmenter(self) -> Segmenter:
        o = self.options
        # RealtimeSTT semantics: Silero confirms speech above 1 - sensitivity.
        vad = VoiceActivityDetector(
            VadConfig(
                webrtc_aggressiveness=o.webrtc_sensitivity, silero_threshold=1.0 - o.silero_sensitivity
            ),
            model=self._vad_model,
        )
        config = SegmenterConfig(
            pre_recording_buffer_duration=o.pre_recording_buffer_duration,
            post_speech_silence_duration=o.post_speech_silence_duration,
            min_length_of_recording=o.min_length_of_recording,
            min_gap_between_recordings=o.min_gap_between_recordings,
            early_transcription_on_silence=o.early_transcription_on_silence,
            max_segment_duration=o.max_segment_seconds,
            max_length_search_window=min(5.0, o.max_segment_seconds / 3),
            interim_interval=o.realtime_interval_s if o.interim_results else 0.0,
        )
        return Segmenter(config, vad)

    def _transcribe_options(self) -> TranscribeOptions:
        o = self.options
        return TranscribeOptions(
            language=o.language,
            beam_size=o.beam_size,
            initial_prompt=o.initial_prompt,
            word_timestamps=o.word_timestamps,
        )

    # -- input -----------------------------------------------------------------------------

    @property
    def position_s(self) -> float:
        return self._segmenter.position_s

    @property
    def recording(self) -> bool:
        return self._open is not None

    async def feed_packet(self, packet: AudioPacket) -> None:
        self.audio_seconds += packet.frames / packet.sample_rate
        await self.feed_audio(self._normalizer.feed(packet))

    async def feed_audio(self, audio: np.ndarray) -> None:
        """16 kHz mono float32 (already normalized)."""
        if len(audio) == 0:
            return
        events = self._segmenter.feed(audio)
        self._arrivals.append((self._segmenter.position_s, self._clock()))
        for event in events:
            await self._on_event(event)

    async def stop(self) -> None:
        """Close the open segment with what was received and wait until its final is sent."""
        tail = self._normalizer.flush()
        if len(tail):
            await self.feed_audio(tail)
        for event in self._segmenter.stop():
            await self._on_event(event)
        await self.drain()

    async def clear(self) -> None:
        for event in self._segmenter.clear():
            await self._on_event(event)

    async def pause(self) -> None:
        for event in self._segmenter.pause():
            await self._on_event(event)

    def resume(self) -> None:
        self._segmenter.resume()

    async def drain(self) -> None:
        """Wait for every final in flight to be stored and sent."""
        if self._final_chain is not None:
            # A failed final was logged (and reported to the client) where it failed.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(self._final_chain)

    async def close(self, grace_s: float = 30.0) -> None:
        """Finalize what was spoken, then release inference resources."""
        try:
            await asyncio.wait_for(self.stop(), grace_s)
        except TimeoutError:
            log.warning("session %s: finals did not finish within %.0fs", self.session_id, grace_s)
        finally:
            for task in list(self._pending):
                task.cancel()
            self.service.session_closed(self.session_id)

    # -- segmenter events ------------------------------------------------------------------

    async def _on_event(self, event) -> None:
        if isinstance(event, SpeechStarted):
            await self._on_started(event)
        elif isinstance(event, SegmentAudio):
            self._maybe_realtime(event.audio)
        elif isinstance(event, EarlyTranscription):
            self._on_early(event)
        elif isinstance(event, EarlyTranscriptionCancelled):
            self._cancel_early()
        elif isinstance(event, SegmentClosed):
            await self._on_closed(event)

    async def _on_started(self, event: SpeechStarted) -> None:
        segment_id = f"{self.session_id[:8]}-{event.index}"
        self._open = _Open(event.index, segment_id, event.start_s, event.pre_roll_s)
        await self.sink.emit(
            events.SpeechStarted(
                segment_id,
                events.SegmentTiming(event.index, event.start_s, None, event.pre_roll_s),
                first_voiced_s=event.first_voiced_s,
                continued=event.continued,
            )
        )
        if self._speaker_gate is not None:
            seg = self._open
            seg.speaking = await self._gate(True)
            if seg.closed:  # closed (stop, shutdown) while the place was being claimed
                if seg.speaking:
                    seg.speaking = False
                    await self._gate(False)
                return
            if not seg.speaking:
                seg.interim = False
                self.counters["speaker_capacity_refused"] += 1
                await self.sink.emit(
                    events.Notice(
                        "speaker_capacity",
                        "The server is at its active-speaker capacity: this segment gets no "
                        "interim text; its final text is still transcribed.",
                        segment_id=seg.segment_id,
                    )
                )

    def _maybe_realtime(self, audio: np.ndarray) -> None:
        seg = self._open
        if seg is None or not self.options.interim_results or not seg.interim:
            return
        # Speech has paused and its final is already being transcribed: interim work now would
        # only delay that final on the same model.
        if seg.early_task is not None:
            return
        # One interim job in flight per session: interim text is paced to what a listener
        # can follow instead of re-transcribing back to back.
        if seg.realtime_task is not None and not seg.realtime_task.done():
            return
        if self._clock() - seg.last_realtime_at < self.options.realtime_interval_s * 0.5:
            return
        seg.last_realtime_at = self._clock()
        seg.realtime_task = self._spawn(self._run_realtime(seg, self._job(seg, "realtime", audio)))

    async def _run_realtime(self, seg: _Open, job: TranscriptionJob) -> None:
        try:
            result = await self.service.transcribe(job)
        except (JobDropped, InferenceRejected, InferenceError):
            self.counters["realtime_dropped"] += 1
            return
        if seg.closed or not result.text.strip():
            return
        split = seg.stabilizer.update(result.text.strip())
        self.counters["realtime_sent"] += 1
        await self.sink.emit(
            events.Interim(
                seg.segment_id, job.sequence, split.text, split.stable, split.unstable, result.confidence
            )
        )

    def _on_early(self, event: EarlyTranscription) -> None:
        seg = self._open
        if seg is None:
            return
        self._cancel_early()
        if seg.realtime_task is not None and not seg.realtime_task.done():
            seg.realtime_task.cancel()
        seg.early_samples = len(event.audio)
        job = self._job(seg, "final", event.audio)
        seg.early_task = self._spawn(self._transcribe_final(job))

    def _cancel_early(self) -> None:
        seg = self._open
        if seg is not None and seg.early_task is not None:
            seg.early_task.cancel()
            seg.early_task = None

    def _job(self, seg: _Open, kind: JobKind, audio: np.ndarray) -> TranscriptionJob:
        """The segment's next job; its sequence orders every job of the segment, interim or final."""
        seg.sequence += 1
        return TranscriptionJob(
            session_id=self.session_id,
            segment_id=seg.segment_id,
            sequence=seg.sequence,
            kind=kind,
            audio=audio,
            options=self._transcribe_options(),
        )

    async def _transcribe_final(self, job: TranscriptionJob) -> TranscriptionResult | None:
        try:
            return await self.service.transcribe(job, on_warning=self._on_service_warning)
        except (InferenceRejected, InferenceError) as exc:
            await self.sink.emit(
                events.Error(
                    getattr(exc, "code", "inference_failed"),
                    f"Transcription of segment {job.segment_id} failed: {exc}",
                    "inference",
                    segment_id=job.segment_id,
                )
            )
            return None

    async def _on_closed(self, event: SegmentClosed) -> None:
        seg, self._open = self._open, None
        if seg is None:
            return
        seg.closed = True
        if seg.realtime_task is not None and not seg.realtime_task.done():
            seg.realtime_task.cancel()
        if seg.speaking:
            seg.speaking = False
            await self._gate(False)
        ended_at = self._clock()
        await self.sink.emit(
            events.SpeechEnded(
                seg.segment_id,
                events.SegmentTiming(event.index, event.start_s, event.end_s, event.pre_roll_s),
                event.end_reason,
            )
        )
        if event.end_reason == CLEAR:
            if seg.early_task is not None:
                seg.early_task.cancel()
            self.service.segment_finalized(self.session_id, seg.segment_id)
            return
        # The early final covered everything voiced when only silence was added since.
        early = seg.early_task
        if early is not None and not early.cancelled() and _only_silence_added(seg.early_samples, event):
            result_task = early
            self.counters["early_reused"] += 1
        else:
            if early is not None:
                early.cancel()
            result_task = self._spawn(self._transcribe_final(self._job(seg, "final", event.audio)))
        await self.sink.emit(events.TranscriptionStarted(seg.segment_id))
        speech_end_wall = self._wall_at(
            event.last_voiced_s if event.last_voiced_s is not None else event.end_s
        )
        previous = self._final_chain
        self._final_chain = self._spawn(
            self._finish(seg, event, result_task, previous, speech_end_wall or ended_at)
        )

    async def _finish(
        self,
        seg: _Open,
        event: SegmentClosed,
        result_task: asyncio.Task,
        previous: asyncio.Task | None,
        speech_end_wall: float,
    ) -> None:
        try:
            result = await result_task
        except asyncio.CancelledError:
            result = None
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        self.service.segment_finalized(self.session_id, seg.segment_id)
        text = result.text.strip() if result is not None else ""
        final = FinalSegment(
            index=seg.index,
            segment_id=seg.segment_id,
            start_s=event.start_s,
            end_s=event.end_s,
            text=text,
            confidence=result.confidence if result is not None else None,
            language=(result.language if result is not None else "") or (self.options.language or ""),
            words=[w.to_dict() for w in result.words] if result is not None else [],
            end_reason=event.end_reason,
            pre_roll_s=event.pre_roll_s,
            latency_ms=round((self._clock() - speech_end_wall) * 1000, 1),
            result=result,
        )
        if text:
            try:
                await self.sink.store_final(final)
            except Exception:
                # Never show a final that is not stored; tell the client which segment was lost.
                log.exception("session %s: storing segment %s failed", self.session_id, seg.segment_id)
                await self.sink.emit(
                    events.Error(
                        "storage_failed",
                        f"Segment {seg.segment_id} could not be saved; the stream goes on.",
                        "storage",
                        segment_id=seg.segment_id,
                    )
                )
                return
            self.counters["finals"] += 1
        else:
            self.counters["empty_finals"] += 1
        self.segments_final += 1
        await self.sink.emit(final.event(words=self.options.word_timestamps))

    # -- helpers ---------------------------------------------------------------------------

    async def _gate(self, speaking: bool) -> bool:
        """The speaker gate, failing open: a database hiccup must not cost a segment its final."""
        try:
            return await self._speaker_gate(speaking)
        except Exception:
            log.exception("session %s: the active-speaker gate failed", self.session_id)
            return speaking

    def _on_service_warning(self, warning: ServiceWarning) -> None:
        """The service reports warnings synchronously; deliver them from a task."""
        self._spawn(self.sink.emit(events.Notice(warning.code, warning.message)))

    def _spawn(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session %s task failed", self.session_id, exc_info=task.exception())

    def _wall_at(self, offset_s: float) -> float | None:
        """Wall-clock time at which the audio at `offset_s` had arrived."""
        for position, wall in self._arrivals:
            if position >= offset_s:
                return wall
        return None

    def metrics(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "audioSeconds": round(self.audio_seconds, 3),
            "positionSeconds": round(self.position_s, 3),
            "recording": self.recording,
            "segmentsFinal": self.segments_final,
            **self.counters,
        }


def _only_silence_added(early_samples: int, event: SegmentClosed) -> bool:
    if event.last_voiced_s is None:
        return True
    voiced_samples = round((event.last_voiced_s - event.start_s) * SAMPLE_RATE)
    return voiced_samples <= early_samples
