"""Cuts a long 16 kHz recording into speech chunks of at most 30 s, cutting at pauses (no Django)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.vad import FRAME_SAMPLES, VadFrame, VoiceActivityDetector, longest_pause


class FrameDetector(Protocol):
    """What the chunker needs from a voice activity detector (one VadFrame per 512 samples)."""

    def process(self, audio: np.ndarray) -> list[VadFrame]: ...


@dataclass(frozen=True)
class AudioChunk:
    """A piece of the recording to transcribe; `start_s` is its offset in the whole recording."""

    index: int
    start_s: float
    audio: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


class SpeechChunker:
    """Feed audio of any size; get chunks holding speech, each at most `max_s` long.

    A chunk grows until it would pass `max_s`, then it is cut in the longest pause of its last
    `search_s` seconds (or at the quietest frame when nobody pauses). Silence before and after
    the speech of a chunk is trimmed to `pad_s`, and a chunk without speech is not returned, so
    the engine never sees long silences (where Whisper makes text up).
    """

    def __init__(
        self,
        *,
        max_s: float = 30.0,
        search_s: float = 8.0,
        pad_s: float = 0.4,
        pause_cut_s: float | None = None,
        detector: FrameDetector | None = None,
    ) -> None:
        """`pause_cut_s`: also cut at every pause at least this long (a chunk per utterance, so a
        chunk rarely holds two voices: used when speakers are labelled)."""
        if not 2.0 <= max_s <= 30.0:
            raise ValueError("max_s must be in 2..30 (Whisper's window is 30 s)")
        self.max_frames = int(max_s * SAMPLE_RATE) // FRAME_SAMPLES
        self.search_frames = max(1, min(self.max_frames // 2, int(search_s * SAMPLE_RATE) // FRAME_SAMPLES))
        self.pad_frames = int(pad_s * SAMPLE_RATE) // FRAME_SAMPLES
        self.pause_frames = 0 if not pause_cut_s else max(1, int(pause_cut_s * SAMPLE_RATE) // FRAME_SAMPLES)
        self.detector = detector if detector is not None else VoiceActivityDetector()
        self._audio = np.zeros(0, dtype=np.float32)  # from sample self._start
        self._start = 0
        self._speech: list[bool] = []  # one flag per complete frame of self._audio
        self._peaks: list[float] = []
        self._count = 0

    def feed(self, audio: np.ndarray) -> list[AudioChunk]:
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, audio]) if len(self._audio) else audio.copy()
        for frame in self.detector.process(audio):
            self._speech.append(frame.speech)
            self._peaks.append(frame.peak)
        self._drop_leading_silence()
        chunks = []
        while True:
            cut = self._pause_cut()
            if cut is None and len(self._speech) >= self.max_frames:
                cut = self._cut_frame()
            if cut is None:
                return chunks
            chunk = self._cut(cut)
            if chunk is not None:
                chunks.append(chunk)
            self._drop_leading_silence()

    def _pause_cut(self) -> int | None:
        """The middle of the first long enough pause after speech (pause cutting on), or None."""
        if not self.pause_frames:
            return None
        run, spoken = 0, False
        for i, speech in enumerate(self._speech[: self.max_frames]):
            if speech:
                spoken, run = True, 0
            elif spoken:
                run += 1
                if run >= self.pause_frames:
                    return i + 1 - run // 2
        return None

    def finish(self) -> list[AudioChunk]:
        """The last chunk (the audio after the last complete frame counts as its tail)."""
        chunk = self._cut(len(self._speech), tail=True)
        return [chunk] if chunk is not None else []

    def _drop_leading_silence(self) -> None:
        """A chunk's 30 s start at its speech (less the padding), not at the silence before it."""
        first = next((i for i, s in enumerate(self._speech) if s), len(self._speech))
        drop = max(0, first - self.pad_frames)
        if drop:
            self._audio = self._audio[drop * FRAME_SAMPLES :]
            self._start += drop * FRAME_SAMPLES
            del self._speech[:drop], self._peaks[:drop]

    def _cut_frame(self) -> int:
        lo, hi = self.max_frames - self.search_frames, self.max_frames
        start, length = longest_pause([not speech for speech in self._speech[lo:hi]])
        if length:
            return lo + start + length // 2
        return lo + int(np.argmin(self._peaks[lo:hi])) + 1

    def _cut(self, frames: int, *, tail: bool = False) -> AudioChunk | None:
        samples = len(self._audio) if tail else frames * FRAME_SAMPLES
        speech = [i for i in range(frames) if self._speech[i]]
        chunk = None
        if speech:
            first = max(0, speech[0] - self.pad_frames) * FRAME_SAMPLES
            last = min(samples, (speech[-1] + 1 + self.pad_frames) * FRAME_SAMPLES)
            if tail and speech[-1] + 1 + self.pad_frames >= frames:
                last = samples
            chunk = AudioChunk(
                index=self._count,
                start_s=(self._start + first) / SAMPLE_RATE,
                audio=self._audio[first:last].copy(),
            )
            self._count += 1
        self._audio = self._audio[samples:]
        self._start += samples
        del self._speech[:frames], self._peaks[:frames]
        return chunk


def chunk_stream(blocks: Iterable[np.ndarray], chunker: SpeechChunker) -> Iterator[AudioChunk]:
    """Chunks of a recording given as consecutive 16 kHz float32 blocks."""
    for block in blocks:
        yield from chunker.feed(block)
    yield from chunker.finish()
