"""WakeGate: one session's wake-word state machine, on the VAD's 32 ms grid, in stream samples.

States: waiting (no segment may open), detected (a wake word was heard: the next voice opens a
segment, for `timeout_s`), recording (a segment is open), follow-up (after a segment, voice within
`followup_s` opens the next one without a wake word) and free (the stream's first
`activation_delay_s`, before wake words are required).

With Porcupine the gate spots the words in the audio itself, on the frames the VAD's webrtcvad
stage hears voice in (plus a short hangover and a replay of the frames just before), so silence
costs nothing. With the transcript backend segments open while waiting as probes: the session
transcribes them and calls `spotted` when a phrase is in the text; a probe without one is dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from speech.wake.options import PORCUPINE, WakeOptions

SAMPLE_RATE = 16000
FRAME = 512
WAITING, DETECTED, RECORDING, FOLLOWUP, FREE = "waiting", "detected", "recording", "followup", "free"
# Timeline events (the reference's names without the "wakeword_" prefix).
WAIT_STARTED, WAIT_ENDED, WAKE_DETECTED, TIMEOUT = "wait_started", "wait_ended", "detected", "timeout"
FOLLOWUP_STARTED, FOLLOWUP_TIMEOUT = "followup_started", "followup_timeout"
HANGOVER_FRAMES = 12  # Porcupine fires at the end of the word, a few frames after the voice stops
REPLAY_FRAMES = 10  # the frames before webrtcvad heard the voice: the word's onset
FRESH_ONSET_S = 0.3  # after a detection, voice that simply goes on this long is the command


@dataclass(frozen=True)
class WakeEvent:
    kind: str  # one of the names above
    position_s: float  # where in the stream it happened
    word: str | None = None  # the wake word (detected, wait_ended)
    duration_s: float | None = None  # followup_started: the window


class WakeGate:
    def __init__(self, options: WakeOptions, spotter=None) -> None:
        """`spotter.process(int16 frame) -> word | None` (Porcupine); None: the transcript backend."""
        self.options = options
        self._spotter = spotter
        self._state = FREE if options.activation_delay_s > 0 else WAITING
        self._free_until = round(options.activation_delay_s * SAMPLE_RATE)
        self._floor = 0
        self._word: str | None = None
        self._detected_at = 0
        self._quiet_since_detection = False
        self._followup_until = 0
        self._since_voice = 1 << 30
        self._warm = False
        self._recent: deque[np.ndarray] = deque(maxlen=REPLAY_FRAMES)
        self.frames_spotted = 0  # frames Porcupine processed (for the benchmark)

    # -- what the segmenter asks -----------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def probing(self) -> bool:
        """Segments opening now are probes (transcript backend, waiting for the phrase)."""
        return self._spotter is None and self._state == WAITING

    @property
    def floor(self) -> int:
        """No segment starts before this sample (the end of the wake word)."""
        return self._floor

    def may_open(self, frame) -> bool:
        if self._state == WAITING:
            return self._spotter is None  # the transcript backend opens probes
        if self._state == DETECTED:
            # The wake word itself may still read as voice: open on a fresh onset, or once the
            # voice has simply gone on into the command.
            went_on = frame.start >= self._detected_at + FRESH_ONSET_S * SAMPLE_RATE
            return self._quiet_since_detection or went_on
        return True

    def started(self) -> list[WakeEvent]:
        return [WakeEvent(WAIT_STARTED, 0.0)] if self._state == WAITING else []

    def frame(self, frame, audio: np.ndarray) -> list[WakeEvent]:
        """One VAD frame (`audio`: its 512 float32 samples). Spots words and runs the clocks."""
        end = frame.start + FRAME
        voiced = frame.gate or frame.speech
        self._since_voice = 0 if voiced else self._since_voice + 1
        if self._state == DETECTED and not frame.speech:
            self._quiet_since_detection = True
        events: list[WakeEvent] = []
        if self._state == WAITING and self._spotter is not None:
            if self._since_voice <= HANGOVER_FRAMES:
                word = self._spot(audio)
                if word is not None:
                    return self._detect(word, end)
            else:
                self._warm = False
                self._recent.append(audio)
        elif self._state == DETECTED and end - self._detected_at >= self.options.timeout_s * SAMPLE_RATE:
            self._state = WAITING
            at = end / SAMPLE_RATE
            events += [WakeEvent(TIMEOUT, at), WakeEvent(WAIT_STARTED, at)]
        elif self._state == FOLLOWUP and end >= self._followup_until:
            self._state = WAITING
            at = end / SAMPLE_RATE
            events += [WakeEvent(FOLLOWUP_TIMEOUT, at), WakeEvent(WAIT_STARTED, at)]
        elif self._state == FREE and end >= self._free_until:
            self._state = WAITING
            events.append(WakeEvent(WAIT_STARTED, end / SAMPLE_RATE))
        return events

    def opened(self, start: int) -> tuple[str | None, list[WakeEvent]]:
        """A segment opened at sample `start`: (the wake word that opened it, events)."""
        if self._state == WAITING:  # a probe (transcript backend)
            return None, []
        word, events = None, []
        if self._state == DETECTED:
            word = self._word
            events.append(WakeEvent(WAIT_ENDED, start / SAMPLE_RATE, word))
        if self._state != FREE:
            self._state = RECORDING
        return word, events

    def closed(self, end: int) -> list[WakeEvent]:
        """The open segment closed at sample `end` (a probe's close changes nothing)."""
        if self._state != RECORDING:
            return []
        if self.options.followup_s > 0:
            self._state = FOLLOWUP
            self._followup_until = end + round(self.options.followup_s * SAMPLE_RATE)
            return [WakeEvent(FOLLOWUP_STARTED, end / SAMPLE_RATE, duration_s=self.options.followup_s)]
        self._state = WAITING
        return [WakeEvent(WAIT_STARTED, end / SAMPLE_RATE)]

    def spotted(self, word: str, position: int) -> list[WakeEvent]:
        """The transcript backend found `word` in a probe's text: it is recording (call `closed` when
        the probe had already closed)."""
        if self._state != WAITING:
            return []
        self._word = word
        at = position / SAMPLE_RATE
        self._state = RECORDING
        return [WakeEvent(WAKE_DETECTED, at, word), WakeEvent(WAIT_ENDED, at, word)]

    def reset_clock(self, position: int) -> None:
        """The stream restarted at `position` (stop, then start): waiting again from there."""
        if self._state in (DETECTED, FOLLOWUP, RECORDING):
            self._state = WAITING
        self._floor = max(self._floor, position)
        self._warm = False
        self._recent.clear()

    def close(self) -> None:
        if self._spotter is not None:
            self._spotter.close()

    # -- Porcupine -------------------------------------------------------------------------

    def _spot(self, audio: np.ndarray) -> str | None:
        frames = [audio]
        if not self._warm:
            # Porcupine's state went stale while the voice was away: replay the frames just
            # before it so the word's onset is heard.
            frames = [*self._recent, audio]
            self._recent.clear()
            self._warm = True
        word = None
        for chunk in frames:
            self.frames_spotted += 1
            found = self._spotter.process(np.clip(chunk * 32768.0, -32768, 32767).astype(np.int16))
            word = word or found
        return word

    def _detect(self, word: str, end: int) -> list[WakeEvent]:
        self._state = DETECTED
        self._word = word
        self._detected_at = end
        self._floor = end
        self._quiet_since_detection = False
        return [WakeEvent(WAKE_DETECTED, end / SAMPLE_RATE, word)]


def new_gate(options: WakeOptions) -> WakeGate | None:
    """The session's gate (None when wake words are off); WakeWordError when the backend cannot load."""
    if not options.enabled:
        return None
    if options.backend == PORCUPINE:
        from speech.wake.porcupine import PorcupineSpotter

        return WakeGate(options, PorcupineSpotter(options.words, options.sensitivity))
    return WakeGate(options)
