"""StreamingSession: audio -> resample -> VAD/segmenter -> inference -> events, one per connection.

Plain Python: persistence and delivery are injected (a `SessionSink`), so every wire
protocol shares this core and it can be tested without Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speech import events, turns
from speech.audio import AudioNormalizer, AudioPacket
from speech.enrich.session import SessionEnricher
from speech.finals import ArrivalLog, FinalSegment, only_silence_added
from speech.inference.jobs import (
    InferenceError,
    InferenceRejected,
    JobDropped,
    JobKind,
    ServiceWarning,
    TranscriptionJob,
    TranscriptionResult,
)
from speech.options import SessionOptions, new_segmenter, segmenter_config, transcribe_options
from speech.ports import InferenceClient, SessionSink
from speech.segmenter import (
    CLEAR,
    FINALIZE,
    SILENCE,
    STOP,
    EarlyTranscription,
    EarlyTranscriptionCancelled,
    SegmentAudio,
    SegmentClosed,
    SpeechStarted,
)
from speech.stabilizer import Stabilizer
from speech.telemetry import final_latency
from speech.wake.gate import WakeEvent, new_gate
from speech.wake.options import PORCUPINE
from speech.wake.phrases import PhraseSpotter

log = logging.getLogger(__name__)


@dataclass
class _Open:
    index: int  # the segmenter's
    segment_id: str  # the public id (a probe's is its job id until it is accepted)
    start_s: float
    pre_roll_s: float
    number: int | None  # the public index (None: a probe not yet accepted)
    job_id: str  # what its inference jobs are filed under, for the segment's whole life
    stabilizer: Stabilizer = field(default_factory=Stabilizer)
    sequence: int = 0
    realtime_task: asyncio.Task | None = None
    last_realtime_at: float = 0.0
    early_task: asyncio.Task | None = None
    early_samples: int = 0
    closed: bool = False
    interim: bool = True
    speaking: bool = False
    eager: bool = False  # a turn eager_end was sent for the current pause
    speaker: str | None = None  # provisional speaker of the interim text (speakers enrichment)
    wake_word: str | None = None  # the wake word that opened it
    probe: bool = False  # wake-word mode, transcript backend: not shown unless the phrase is in it
    first_voiced_s: float | None = None


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
        turn_model=None,
    ) -> None:
        """`speaker_gate(True)` asks for an active-speaker place when speech starts (False when
        refused: the segment then gets no interim work, its final is still transcribed);
        `speaker_gate(False)` gives the place back when the segment closes. `turn_model`
        (`probability(audio) -> float`, e.g. speech.turn_model.SmartTurnModel) confirms the
        text's end-of-turn verdicts; without it the text decides alone."""
        self.session_id = session_id
        self._turn_model = turn_model
        self._speaker_gate = speaker_gate
        self.service = service
        self.sink = sink
        self.options = options or SessionOptions()
        self._clock = clock
        self._vad_model = vad_model
        self._normalizer = AudioNormalizer()
        # Wake words: the gate decides when segments may open (WakeWordError if it cannot load).
        self.wake = new_gate(self.options.wake)
        self._phrases = PhraseSpotter(self.options.wake.words) if self.wake is not None else None
        self._wake_started = False
        self._segmenter = new_segmenter(self.options, self._vad_model, self.wake)
        self._next_number = 0  # public segment numbers: probes that are dropped leave no gap
        self._open: _Open | None = None
        self.enricher = SessionEnricher(self.options.enrich) if self.options.enrich.any else None
        self._settled_after: int | None = None  # segments_final when the enrichment was last stored
        # Finals are emitted in segment order: each waits for the previous one's emission.
        self._final_chain: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        self._arrivals = ArrivalLog()  # to date the end of speech
        self.audio_seconds = 0.0
        self.segments_final = 0
        names = ("realtime_sent", "realtime_dropped", "finals", "empty_finals", "early_reused")
        self.counters = dict.fromkeys((*names, "speaker_capacity_refused", "wake_probes_dropped"), 0)

    # -- input -----------------------------------------------------------------------------

    @property
    def position_s(self) -> float:
        return self._segmenter.position_s

    @property
    def recording(self) -> bool:
        return self._open is not None

    @property
    def next_segment_index(self) -> int:
        """The index the next segment will get."""
        return self._next_number

    @property
    def wake_state(self) -> str | None:
        """The wake-word gate's state (waiting, detected, recording, followup, free), None when off."""
        return None if self.wake is None else self.wake.state

    @property
    def in_flight(self) -> int:
        """Transcription tasks of this session still running (interim and final)."""
        return len(self._pending)

    @property
    def open_segment_id(self) -> str | None:
        return None if self._open is None or self._open.probe else self._open.segment_id

    async def feed_packet(self, packet: AudioPacket) -> None:
        self.audio_seconds += packet.frames / packet.sample_rate
        await self.feed_audio(self._normalizer.feed(packet))

    async def feed_audio(self, audio: np.ndarray) -> None:
        """16 kHz mono float32 (already normalized)."""
        if len(audio) == 0:
            return
        if not self._wake_started and self.wake is not None:
            self._wake_started = True
            for event in self.wake.started():
                await self._on_event(event)
        events = self._segmenter.feed(audio)
        self._arrivals.add(self._segmenter.position_s, self._clock())
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
        await self._settle_enrichment()

    async def _settle_enrichment(self) -> None:
        """Store the session's final enrichment (topics brought up to date, every sentence)."""
        if self.enricher is None or self._settled_after == self.segments_final:
            return  # nothing new since the last stop
        self._settled_after = self.segments_final
        store = getattr(self.sink, "store_analysis", None)
        try:
            snapshot = await self.enricher.settle()
            if snapshot and store is not None:
                await store(snapshot)
        except Exception:
            log.exception("session %s: storing the enrichment failed", self.session_id)

    async def clear(self) -> None:
        for event in self._segmenter.clear():
            await self._on_event(event)

    async def pause(self) -> None:
        for event in self._segmenter.pause():
            await self._on_event(event)

    def resume(self) -> None:
        self._segmenter.resume()

    async def finalize(self) -> None:
        """Close the open segment now and transcribe it; the stream goes on (its final follows)."""
        for event in self._segmenter.finalize():
            await self._on_event(event)

    def reconfigure(self, options: SessionOptions) -> None:
        """New options from now on: later jobs use them, the open segment is judged by them."""
        self.options = options
        self._segmenter.reconfigure(segmenter_config(options))

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
            if self.enricher is not None:
                self.enricher.close()
            if self.wake is not None:
                self.wake.close()
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
            seg = self._open
            if seg is not None and seg.eager:
                seg.eager = False
                await self.sink.emit(events.Turn(seg.segment_id, events.TURN_RESUMED))
        elif isinstance(event, SegmentClosed):
            await self._on_closed(event)
        elif isinstance(event, WakeEvent):
            await self.sink.emit(events.WakeWord(event.kind, event.position_s, event.word, event.duration_s))

    async def _on_started(self, event: SpeechStarted) -> None:
        job_id = f"{self.session_id[:8]}-{'p' if event.probe else ''}{event.index}"
        seg = _Open(event.index, job_id, event.start_s, event.pre_roll_s, None, job_id)
        seg.first_voiced_s, seg.wake_word, seg.probe = event.first_voiced_s, event.wake_word, event.probe
        self._open = seg
        if seg.probe:
            return  # shown only if the phrase is in its text (`_accept`)
        self._number(seg)
        seg.job_id = seg.segment_id
        await self._emit_started(seg, event.continued)
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

    def _number(self, seg: _Open) -> None:
        seg.number = self._next_number
        self._next_number += 1
        seg.segment_id = f"{self.session_id[:8]}-{seg.number}"

    async def _emit_started(self, seg: _Open, continued: bool = False) -> None:
        await self.sink.emit(
            events.SpeechStarted(
                seg.segment_id,
                events.SegmentTiming(seg.number, seg.start_s, None, seg.pre_roll_s),
                first_voiced_s=seg.first_voiced_s,
                continued=continued,
                wake_word=seg.wake_word,
            )
        )

    async def _accept(self, seg: _Open, phrase: str) -> None:
        """A probe's text holds the wake phrase: it becomes a segment like any other."""
        # Numbered before anything is awaited: a close in the meantime already uses its public id.
        seg.probe, seg.wake_word = False, phrase
        self._number(seg)
        for event in self.wake.spotted(phrase, round(self.position_s * 16000)):
            await self._on_event(event)
        await self._emit_started(seg)

    def _wake_text(self, seg: _Open, text: str) -> str:
        """The text the speaker said after the wake word (the words themselves are not kept)."""
        if self._phrases is None or seg.wake_word is None:
            return text
        if self.options.wake.backend == PORCUPINE:
            return self._phrases.strip_leading(text)
        return self._phrases.strip(text)

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
        enricher = self.enricher
        # The voice is embedded once per segment, alongside its first interim job of a useful length.
        voice = enricher.voice(job.audio) if enricher and enricher.speakers and seg.speaker is None else None
        try:
            result = await self.service.transcribe(job)
        except (JobDropped, InferenceRejected, InferenceError):
            self.counters["realtime_dropped"] += 1
            if voice is not None:
                voice.cancel()
            return
        if voice is not None:
            seg.speaker = await enricher.interim_speaker(voice)
        if seg.closed or not result.text.strip():
            return
        raw = result.text.strip()
        if seg.probe:
            spotted = self._phrases.spot(raw)
            if spotted is None:
                return
            await self._accept(seg, spotted.phrase)
        raw = self._wake_text(seg, raw)
        if not raw:
            return
        split = seg.stabilizer.update(raw)
        text, stable, unstable = split.text, split.stable, split.unstable
        if enricher is not None:
            text, stable, unstable = enricher.mask_interim(text, stable, unstable)
        self.counters["realtime_sent"] += 1
        await self.sink.emit(
            events.Interim(
                seg.segment_id,
                job.sequence,
                text,
                stable,
                unstable,
                result.confidence,
                speaker=seg.speaker,
                wake_word=seg.wake_word,
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
        if self.options.end_of_turn_silence > 0:
            self._spawn(self._judge_turn(seg, seg.early_task, event.audio))

    async def _judge_turn(self, seg: _Open, early: asyncio.Task, audio: np.ndarray) -> None:
        """Read the early transcription (and the audio model) and tell the segmenter the verdict."""
        heard = None
        if self._turn_model is not None:
            heard = asyncio.ensure_future(asyncio.to_thread(self._turn_model.probability, audio))
        try:
            result = await early
        except asyncio.CancelledError:  # speech resumed: this pause is over
            result = None
        probability = None
        if heard is not None:
            try:
                probability = await heard
            except Exception:
                log.exception("session %s: the end-of-turn model failed", self.session_id)
        if result is None or seg is not self._open or seg.early_task is not early or seg.probe:
            return
        verdict = turns.verdict(
            result.text,
            probability,
            self.options.end_of_turn_threshold,
            punctuated=not self.options.keyterms,
        )
        if verdict == turns.COMPLETE:
            seg.eager = True
            await self.sink.emit(events.Turn(seg.segment_id, events.TURN_EAGER_END, verdict))
        for closed in self._segmenter.judge_turn(seg.index, verdict):
            await self._on_event(closed)

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
            segment_id=seg.job_id,
            sequence=seg.sequence,
            kind=kind,
            audio=audio,
            options=transcribe_options(self.options, kind),
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
        if not seg.probe:
            await self._emit_ended(seg, event)
        if event.end_reason == CLEAR:
            if seg.early_task is not None:
                seg.early_task.cancel()
            self.service.segment_finalized(self.session_id, seg.job_id)
            return
        # The early final covered everything voiced when only silence was added since.
        early = seg.early_task
        if early is not None and not early.cancelled() and only_silence_added(seg.early_samples, event):
            result_task = early
            self.counters["early_reused"] += 1
        else:
            if early is not None:
                early.cancel()
            result_task = self._spawn(self._transcribe_final(self._job(seg, "final", event.audio)))
        if not seg.probe:
            await self.sink.emit(events.TranscriptionStarted(seg.segment_id))
        speech_end_wall = self._arrivals.wall_at(
            event.last_voiced_s if event.last_voiced_s is not None else event.end_s
        )
        # The voice is embedded while the text is transcribed.
        voice = self.enricher.voice(event.audio) if self.enricher is not None else None
        previous = self._final_chain
        self._final_chain = self._spawn(
            self._finish(seg, event, result_task, previous, speech_end_wall or ended_at, voice)
        )

    async def _finish(
        self,
        seg: _Open,
        event: SegmentClosed,
        result_task: asyncio.Task,
        previous: asyncio.Task | None,
        speech_end_wall: float,
        voice: asyncio.Future | None = None,
    ) -> None:
        try:
            result = await result_task
        except asyncio.CancelledError:
            result = None
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        self.service.segment_finalized(self.session_id, seg.job_id)
        if seg.probe:
            spotted = self._phrases.spot(result.text) if result is not None else None
            if spotted is None:  # no wake phrase: nothing is shown or stored
                self.counters["wake_probes_dropped"] += 1
                if voice is not None:
                    voice.cancel()
                return
            await self._accept(seg, spotted.phrase)
            await self._emit_ended(seg, event)
            for wake_event in self.wake.closed(round(self.position_s * 16000)):
                await self._on_event(wake_event)
            await self.sink.emit(events.TranscriptionStarted(seg.segment_id))
        final = FinalSegment.of(seg.number, seg.segment_id, event, result, self.options.language, None)
        if seg.wake_word is not None:
            final.wake_word = seg.wake_word
            stripped = self._wake_text(seg, final.text)
            if stripped != final.text:
                final.words = self._phrases.words_after(final.words, final.text, stripped)
                final.text = stripped
        if self.enricher is not None:
            # In segment order (after the previous final), so speaker labels are stable.
            await self._enrich(final, voice)
        final.latency_ms = round((self._clock() - speech_end_wall) * 1000, 1)
        text = final.text
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
        lane = result.lane if result is not None and result.lane else "none"
        final_latency(lane).observe(self._clock() - speech_end_wall)
        if event.end_reason in (SILENCE, FINALIZE, STOP):
            reason = event.turn if event.end_reason == SILENCE and event.turn else event.end_reason
            await self.sink.emit(events.Turn(seg.segment_id, events.TURN_END, reason))

    async def _emit_ended(self, seg: _Open, event: SegmentClosed) -> None:
        await self.sink.emit(
            events.SpeechEnded(
                seg.segment_id,
                events.SegmentTiming(seg.number, event.start_s, event.end_s, event.pre_roll_s),
                event.end_reason,
            )
        )

    async def _enrich(self, final: FinalSegment, voice: asyncio.Future | None) -> None:
        try:
            await self.enricher.enrich(final, voice)
        except Exception:
            # The final is still stored and sent, but never with text a filter was meant to mask.
            log.exception("session %s: enrichment of segment %s failed", self.session_id, final.segment_id)
            if self.enricher.options.filters:
                try:
                    final.text, final.words = self.enricher.mask(final.text), []
                except Exception:  # a broken filter: better no text than unmasked text
                    final.text, final.words = "", []
            await self.sink.emit(
                events.Error(
                    "enrichment_failed",
                    f"Segment {final.segment_id} could not be enriched; its text is kept.",
                    "enrichment",
                    segment_id=final.segment_id,
                )
            )

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

    def metrics(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "audioSeconds": round(self.audio_seconds, 3),
            "positionSeconds": round(self.position_s, 3),
            "recording": self.recording,
            "segmentsFinal": self.segments_final,
            **self.counters,
        }
