"""Per-session speech segmenter: pre-roll, start, end on silence, max-length cuts at pauses."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from speech.turns import COMPLETE, INCOMPLETE
from speech.vad import FRAME_SAMPLES, SAMPLE_RATE, VadFrame, VoiceActivityDetector, longest_pause
from speech.wake.gate import WakeEvent, WakeGate

SILENCE = "silence"
MAX_LENGTH = "max_length"
STOP = "stop"
CLEAR = "clear"
PAUSE = "pause"
FINALIZE = "finalize"
PAUSE_QUIET = 2 * FRAME_SAMPLES  # this much silence holds back interim audio


@dataclass(frozen=True)
class SegmenterConfig:
    """The reference server's knobs (RealtimeSTT names), in seconds."""

    pre_recording_buffer_duration: float = 0.75
    post_speech_silence_duration: float = 0.55
    min_length_of_recording: float = 0.2
    min_gap_between_recordings: float = 0.0
    early_transcription_on_silence: float = 0.0  # 0 = off
    max_segment_duration: float = 30.0
    # A max-length cut goes in the longest pause within this many seconds before the limit.
    max_length_search_window: float = 5.0
    # How far before the confirming frame to look for where the voice really began.
    onset_lookback: float = 0.3
    interim_interval: float = 0.0  # >0: emit SegmentAudio at most this often (seconds of audio)
    first_interim_after: float = 0.0  # >0: the first SegmentAudio this long after the voice began
    # End of turn (see `judge_turn`): a segment judged complete closes after this much silence,
    # one judged incomplete after max_turn_silence; unjudged or unsure ones after
    # post_speech_silence_duration. 0 = off: the fixed silence rule alone.
    end_of_turn_silence: float = 0.0
    max_turn_silence: float = 1.2

    def __post_init__(self) -> None:
        if self.max_segment_duration <= self.max_length_search_window:
            raise ValueError("max_segment_duration must exceed max_length_search_window")
        if self.pre_recording_buffer_duration < 0 or self.post_speech_silence_duration <= 0:
            raise ValueError("pre-roll must be >= 0 and post-speech silence > 0")
        if self.end_of_turn_silence < 0 or self.max_turn_silence < self.end_of_turn_silence:
            raise ValueError("end-of-turn silence must be >= 0 and at most the turn silence ceiling")


@dataclass(frozen=True)
class SpeechStarted:
    index: int
    start_s: float  # where the segment's audio begins (first voiced minus pre-roll)
    pre_roll_s: float
    first_voiced_s: float | None  # None for a max-length continuation not yet voiced
    continued: bool = False  # True when this continues a segment cut at max length
    wake_word: str | None = None  # the wake word that opened it (wake-word mode)
    probe: bool = False  # wake-word mode, transcript backend: transcribed to look for the phrase


@dataclass(frozen=True, eq=False)  # numpy audio: compare by identity
class SegmentAudio:
    """The open segment's audio so far, for interim transcription."""

    index: int
    audio: np.ndarray
    start_s: float
    end_s: float


@dataclass(frozen=True, eq=False)  # numpy audio: compare by identity
class EarlyTranscription:
    """Speech paused long enough that the caller may start the final transcription now."""

    index: int
    audio: np.ndarray
    start_s: float
    end_s: float
    silence_s: float


@dataclass(frozen=True)
class EarlyTranscriptionCancelled:
    """Speech resumed after an EarlyTranscription: discard that early result."""

    index: int


@dataclass(frozen=True, eq=False)  # numpy audio: compare by identity
class SegmentClosed:
    index: int
    audio: np.ndarray
    start_s: float
    end_s: float
    end_reason: str  # silence, max_length, stop, clear, pause, finalize
    pre_roll_s: float
    first_voiced_s: float | None
    last_voiced_s: float | None
    turn: str | None = None  # the end-of-turn verdict in force when it closed, if any

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


Event = (
    SpeechStarted
    | SegmentAudio
    | EarlyTranscription
    | EarlyTranscriptionCancelled
    | SegmentClosed
    | WakeEvent
)


class _Buffer:
    """Audio kept from absolute sample `base` onwards, growing by doubling, trimmed from the front."""

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self._data = np.zeros(SAMPLE_RATE * 4, dtype=np.float32)
        self._len = 0

    @property
    def end(self) -> int:
        return self.base + self._len

    def append(self, chunk: np.ndarray) -> None:
        need = self._len + len(chunk)
        if need > len(self._data):
            grown = np.zeros(max(need, 2 * len(self._data)), dtype=np.float32)
            grown[: self._len] = self._data[: self._len]
            self._data = grown
        self._data[self._len : need] = chunk
        self._len = need

    def slice(self, start: int, end: int) -> np.ndarray:
        a = max(start, self.base) - self.base
        b = min(end, self.end) - self.base
        return self._data[a:b].copy() if b > a else np.zeros(0, dtype=np.float32)

    def trim(self, keep_from: int) -> None:
        drop = min(keep_from, self.end) - self.base
        # Compact only once a good share is dead, so trimming stays amortised O(1) per sample.
        if drop > 0 and drop >= self._len // 2:
            self._data[: self._len - drop] = self._data[drop : self._len]
            self._len -= drop
            self.base += drop


@dataclass
class _Open:
    index: int
    start: int
    pre_roll: int
    first_voiced: int | None
    last_voiced_end: int | None
    silence_from: int  # silence is measured from here (last voiced end, or the cut point)
    early_sent: bool = False
    next_interim: int = 0
    verdict: str | None = None  # end-of-turn verdict on the current pause


class Segmenter:
    """Feed 16 kHz mono float32 chunks of any size; get events. Offsets count samples fed so far.

    Decisions are made on the detector's fixed 32 ms grid, so the same audio gives the same
    segments however it is chunked. Silence and noise never open a segment: opening needs
    Silero's confirmation, not just energy or webrtcvad.
    """

    def __init__(
        self,
        config: SegmenterConfig | None = None,
        vad: VoiceActivityDetector | None = None,
        gate: WakeGate | None = None,
    ) -> None:
        """`gate` (wake-word mode) decides when a segment may open and where it may start."""
        self.vad = vad or VoiceActivityDetector()
        self.gate = gate
        self._frames: deque[VadFrame] = deque()
        self.reconfigure(config or SegmenterConfig())
        self._fed = 0
        self._buffer = _Buffer()
        self._open: _Open | None = None
        self._next_index = 0
        self._last_end: int | None = None
        self._paused = False
        self._finalized_at = 0  # the next segment starts no earlier than this

    def reconfigure(self, config: SegmenterConfig) -> None:
        """Apply new knobs; an open segment keeps its audio and is judged by the new ones from now."""
        self.config = c = config
        self._pre_roll = round(c.pre_recording_buffer_duration * SAMPLE_RATE)
        self._post = round(c.post_speech_silence_duration * SAMPLE_RATE)
        self._min_len = round(c.min_length_of_recording * SAMPLE_RATE)
        self._min_gap = round(c.min_gap_between_recordings * SAMPLE_RATE)
        self._early = round(c.early_transcription_on_silence * SAMPLE_RATE)
        self._max_len = round(c.max_segment_duration * SAMPLE_RATE)
        self._window = round(c.max_length_search_window * SAMPLE_RATE)
        self._lookback = math.ceil(c.onset_lookback * SAMPLE_RATE / FRAME_SAMPLES)
        self._interim = round(c.interim_interval * SAMPLE_RATE)
        self._first_interim = round(c.first_interim_after * SAMPLE_RATE)
        self._turn_short = round(c.end_of_turn_silence * SAMPLE_RATE)
        self._turn_ceiling = round(c.max_turn_silence * SAMPLE_RATE)
        history = math.ceil(
            (c.max_segment_duration + c.pre_recording_buffer_duration) * SAMPLE_RATE / FRAME_SAMPLES
        )
        self._frames = deque(self._frames, maxlen=history + 2)

    # -- public API ------------------------------------------------------------------------

    @property
    def position_s(self) -> float:
        """Seconds of 16 kHz audio fed so far (paused audio included)."""
        return self._fed / SAMPLE_RATE

    @property
    def recording(self) -> bool:
        return self._open is not None

    @property
    def next_index(self) -> int:
        return self._next_index

    @property
    def paused(self) -> bool:
        return self._paused

    def feed(self, chunk: np.ndarray) -> list[Event]:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self._paused:
            self._fed += len(chunk)
            return []
        self._buffer.append(chunk)
        self._fed += len(chunk)
        events: list[Event] = []
        for frame in self.vad.process(chunk):
            self._frames.append(frame)
            if self.gate is not None:
                audio = self._buffer.slice(frame.start, frame.start + FRAME_SAMPLES)
                events.extend(self.gate.frame(frame, audio))
            self._on_frame(frame, events)
        if self._open is None:
            # Idle: keep just enough for the pre-roll and the onset look-back.
            self._buffer.trim(self.vad.position - self._pre_roll - (self._lookback + 3) * FRAME_SAMPLES)
        return events

    def stop(self) -> list[Event]:
        """Close an open segment (reason "stop") with everything fed so far; VAD state resets."""
        events = self._close_open(STOP, self._fed)
        self._restart_vad()
        return events

    flush = stop

    def clear(self) -> list[Event]:
        """Drop the open segment: it is reported closed with reason "clear" and must not be transcribed."""
        events = self._close_open(CLEAR, self._fed)
        self._restart_vad()
        return events

    def pause(self) -> list[Event]:
        """Close an open segment (reason "pause"); audio fed while paused only advances the clock."""
        events = self._close_open(PAUSE, self._fed)
        self._paused = True
        return events

    def finalize(self) -> list[Event]:
        """Close an open segment now (reason "finalize"); listening goes on with the next word."""
        if self._open is None:
            return []
        self._finalized_at = self._fed
        return self._close_open(FINALIZE, self._fed)

    def judge_turn(self, index: int, verdict: str) -> list[Event]:
        """The end-of-turn verdict on segment `index`'s current pause (from its early transcription).

        Ignored once speech has resumed (the pause it judged is over) or when end of turn is off.
        Returns the segment's close when the pause is already long enough for the verdict.
        """
        seg = self._open
        if seg is None or seg.index != index or not seg.early_sent or not self._turn_short:
            return []
        seg.verdict = verdict
        end = self.vad.position
        if end - seg.silence_from >= self._closing_silence(seg):
            return self._close_open(SILENCE, end)
        return []

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._restart_vad()

    # -- state machine ---------------------------------------------------------------------

    def _restart_vad(self) -> None:
        self.vad.reset(position=self._fed)
        self._frames.clear()
        self._buffer = _Buffer(base=self._fed)

    def _on_frame(self, frame: VadFrame, events: list[Event]) -> None:
        end = frame.start + FRAME_SAMPLES
        seg = self._open
        if seg is None:
            if frame.speech and (self._last_end is None or frame.start >= self._last_end + self._min_gap):
                if self.gate is None or self.gate.may_open(frame):
                    self._start(frame, events)
            return
        if frame.speech or frame.prob >= self.vad.config.neg_threshold:
            # A rising probability below the confirm threshold is usually the next word's onset
            # (Silero confirms a frame or two late); treating it as silence would close the
            # segment with the start of that word at its tail.
            if frame.speech:
                if seg.first_voiced is None:
                    seg.first_voiced = frame.start
                seg.last_voiced_end = end
            seg.silence_from = end
            if seg.early_sent:
                seg.early_sent = False
                seg.verdict = None
                events.append(EarlyTranscriptionCancelled(seg.index))
        else:
            silence = end - seg.silence_from
            long_enough = seg.first_voiced is not None and end - seg.first_voiced >= self._min_len
            if self._early and not seg.early_sent and silence >= self._early and long_enough:
                seg.early_sent = True
                events.append(
                    EarlyTranscription(
                        seg.index,
                        self._buffer.slice(seg.start, end),
                        seg.start / SAMPLE_RATE,
                        end / SAMPLE_RATE,
                        silence / SAMPLE_RATE,
                    )
                )
            if silence >= self._closing_silence(seg) and (long_enough or seg.first_voiced is None):
                events.extend(self._close_open(SILENCE, end))
                return
        if end - seg.start >= self._max_len:
            self._cut(end, events)
            return
        # Not while speech pauses: an interim job started then would hold up the early (final)
        # transcription the pause may bring; a due interim waits for the voice to come back.
        if self._interim and end >= seg.next_interim and end - seg.silence_from < PAUSE_QUIET:
            seg.next_interim = end + self._interim
            events.append(
                SegmentAudio(
                    seg.index, self._buffer.slice(seg.start, end), seg.start / SAMPLE_RATE, end / SAMPLE_RATE
                )
            )

    def _start(self, frame: VadFrame, events: list[Event]) -> None:
        # Silero confirms a frame or two after the voice begins; walk back over the frames that
        # were already likely speech so the pre-roll is measured from the real onset.
        neg = self.vad.config.neg_threshold
        first = frame.start
        recent = list(self._frames)[-2 - self._lookback : -1]
        earliest = -1 if self._last_end is None else self._last_end + self._min_gap
        floor = 0 if self.gate is None else self.gate.floor  # never before the wake word's end
        earliest = max(earliest, floor)
        for prev in reversed(recent):
            if prev.start != first - FRAME_SAMPLES or prev.prob < neg or prev.start < earliest:
                break
            first = prev.start
        # One more frame: the onset may lie anywhere in the 32 ms frame before the first one
        # Silero scored as likely speech.
        # After a finalize the previous segment ended mid-speech: never reach back into it.
        first = max(first, floor)
        start = max(first - self._pre_roll - FRAME_SAMPLES, self._buffer.base, self._finalized_at, floor)
        probe = self.gate is not None and self.gate.probing
        wake_word = None
        if self.gate is not None:
            wake_word, wake_events = self.gate.opened(start)
            events.extend(wake_events)
        self._open = _Open(
            index=self._next_index,
            start=start,
            pre_roll=first - start,
            first_voiced=first,
            last_voiced_end=frame.start + FRAME_SAMPLES,
            silence_from=frame.start + FRAME_SAMPLES,
            next_interim=first + self._first_interim
            if self._first_interim
            else frame.start + FRAME_SAMPLES + self._interim,
        )
        self._next_index += 1
        events.append(
            SpeechStarted(
                self._open.index,
                start / SAMPLE_RATE,
                (first - start) / SAMPLE_RATE,
                first / SAMPLE_RATE,
                wake_word=wake_word,
                probe=probe,
            )
        )

    def _cut(self, end: int, events: list[Event]) -> None:
        """Close at the longest pause in the last few seconds and carry the rest into a new segment."""
        seg = self._open
        assert seg is not None
        lo = end - self._window
        frames = [
            f
            for f in self._frames
            if f.start >= lo and f.start >= seg.start and f.start + FRAME_SAMPLES <= end
        ]
        neg = self.vad.config.neg_threshold
        start, length = longest_pause([f.prob < neg and not f.speech for f in frames], latest=True)
        best_mid = frames[start].start + (length * FRAME_SAMPLES) // 2 if length else None
        if best_mid is None:
            # No pause at all: cut at the quietest frame rather than mid-syllable.
            quietest = min(frames, key=lambda f: f.peak)
            best_mid = quietest.start + FRAME_SAMPLES // 2
        cut = best_mid
        voiced_after = [f for f in frames if f.start >= cut and f.speech]
        last_before = [f for f in frames if f.start + FRAME_SAMPLES <= cut and f.speech]
        last_voiced = last_before[-1].start + FRAME_SAMPLES if last_before else seg.last_voiced_end
        events.append(self._closed(seg, MAX_LENGTH, cut, min(last_voiced or cut, cut)))
        self._open = None
        self._last_end = cut
        if voiced_after or self.vad.in_speech:
            first = voiced_after[0].start if voiced_after else None
            self._open = _Open(
                index=self._next_index,
                start=cut,
                pre_roll=0,
                first_voiced=first,
                last_voiced_end=(voiced_after[-1].start + FRAME_SAMPLES) if voiced_after else None,
                silence_from=(voiced_after[-1].start + FRAME_SAMPLES) if voiced_after else cut,
                next_interim=cut + self._interim,
            )
            self._next_index += 1
            events.append(
                SpeechStarted(
                    self._open.index,
                    cut / SAMPLE_RATE,
                    0.0,
                    None if first is None else first / SAMPLE_RATE,
                    True,
                    probe=self.gate is not None and self.gate.probing,
                )
            )
        else:
            self._buffer.trim(cut - self._pre_roll)

    def _closing_silence(self, seg: _Open) -> int:
        """Samples of silence that close `seg`: short once judged complete, long when incomplete."""
        if self._turn_short and seg.verdict == COMPLETE:
            return self._turn_short
        if self._turn_short and seg.verdict == INCOMPLETE:
            return self._turn_ceiling
        return self._post

    def _closed(self, seg: _Open, reason: str, end: int, last_voiced: int | None) -> SegmentClosed:
        return SegmentClosed(
            index=seg.index,
            audio=self._buffer.slice(seg.start, end),
            start_s=seg.start / SAMPLE_RATE,
            end_s=end / SAMPLE_RATE,
            end_reason=reason,
            pre_roll_s=seg.pre_roll / SAMPLE_RATE,
            first_voiced_s=None if seg.first_voiced is None else seg.first_voiced / SAMPLE_RATE,
            last_voiced_s=None if last_voiced is None else last_voiced / SAMPLE_RATE,
            turn=seg.verdict,
        )

    def _close_open(self, reason: str, end: int) -> list[Event]:
        seg = self._open
        if seg is None:
            return []
        self._open = None
        self._last_end = end
        closed: list[Event] = [self._closed(seg, reason, end, seg.last_voiced_end)]
        if self.gate is not None:
            closed.extend(self.gate.closed(end))
        return closed
