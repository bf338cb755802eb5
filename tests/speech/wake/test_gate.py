"""The wake-word gate's state machine on synthetic frames (a fake spotter), and its options."""

from __future__ import annotations

import numpy as np
import pytest

from speech.vad import VadFrame
from speech.wake import gate as g
from speech.wake.options import WakeOptions, WakeWordError, parse_words, wake_options
from speech.wake.phrases import PhraseSpotter


class Spotter:
    """Says `word` on the frames listed in `hits` (by their start sample); counts what it saw."""

    def __init__(self, hits: dict[int, str]) -> None:
        self.hits = hits
        self.seen: list[int] = []
        self.closed = False

    def process(self, pcm: np.ndarray) -> str | None:
        assert pcm.dtype == np.int16 and len(pcm) == g.FRAME
        start = int(pcm[0])  # the test writes each frame's start (in frames) into its first sample
        self.seen.append(start)
        return self.hits.get(start)

    def close(self) -> None:
        self.closed = True


def frame(i: int, voiced: bool) -> tuple[VadFrame, np.ndarray]:
    audio = np.zeros(g.FRAME, np.float32)
    audio[0] = i / 32768.0
    return VadFrame(i * g.FRAME, 0.9 if voiced else 0.0, voiced, voiced, 0.5 if voiced else 0.0), audio


def run(gate: g.WakeGate, voiced: list[bool]) -> list[tuple[int, str]]:
    out = []
    for i, v in enumerate(voiced):
        f, audio = frame(i, v)
        out += [(i, e.kind) for e in gate.frame(f, audio)]
    return out


SECOND = 16000 // g.FRAME  # frames per second, near enough (31)


def test_porcupine_runs_only_where_voice_is_and_replays_the_frames_before_it():
    spotter = Spotter({})
    gate = g.WakeGate(WakeOptions("pvporcupine", ("jarvis",)), spotter)
    voiced = [False] * 60 + [True] * 10 + [False] * 60
    run(gate, voiced)
    # 10 replayed + 10 voiced + the hangover; none of the long silences before.
    assert spotter.seen == list(range(50, 70 + g.HANGOVER_FRAMES))


def test_a_detection_opens_the_next_voice_and_a_segment_closing_waits_again():
    spotter = Spotter({20: "jarvis"})
    gate = g.WakeGate(WakeOptions("pvporcupine", ("jarvis",), timeout_s=5.0), spotter)
    assert gate.started() == [g.WakeEvent(g.WAIT_STARTED, 0.0)]
    first, _ = frame(5, True)
    assert not gate.may_open(first)  # waiting: nothing opens
    assert run(gate, [True] * 21) == [(20, g.WAKE_DETECTED)]
    assert gate.state == g.DETECTED and gate.floor == 21 * g.FRAME
    word, events = gate.opened(22 * g.FRAME)
    assert word == "jarvis" and [e.kind for e in events] == [g.WAIT_ENDED]
    assert [e.kind for e in gate.closed(80 * g.FRAME)] == [g.WAIT_STARTED] and gate.state == g.WAITING
    gate.close()
    assert spotter.closed


def test_the_wake_words_own_voice_does_not_open_the_segment_but_voice_that_goes_on_does():
    gate = g.WakeGate(WakeOptions("pvporcupine", ("jarvis",)), Spotter({10: "jarvis"}))
    run(gate, [True] * 11)
    right_after, _ = frame(11, True)
    assert not gate.may_open(right_after)
    went_on, _ = frame(11 + int(g.FRESH_ONSET_S * 16000 / g.FRAME) + 1, True)
    assert gate.may_open(went_on)
    gate2 = g.WakeGate(WakeOptions("pvporcupine", ("jarvis",)), Spotter({10: "jarvis"}))
    run(gate2, [True] * 11 + [False])
    assert gate2.may_open(frame(13, True)[0])  # a fresh onset after a pause


def test_no_voice_within_the_timeout_goes_back_to_waiting():
    gate = g.WakeGate(WakeOptions("pvporcupine", ("jarvis",), timeout_s=1.0), Spotter({3: "jarvis"}))
    events = run(gate, [True] * 4 + [False] * (2 * SECOND))
    assert [k for _, k in events] == [g.WAKE_DETECTED, g.TIMEOUT, g.WAIT_STARTED]
    detected, timeout = events[0][0], events[1][0]
    assert (timeout - detected) * g.FRAME == pytest.approx(16000, abs=g.FRAME)
    assert gate.state == g.WAITING


def test_the_follow_up_window_opens_without_a_wake_word_until_it_passes():
    gate = g.WakeGate(WakeOptions("pvporcupine", ("jarvis",), followup_s=2.0), Spotter({1: "jarvis"}))
    run(gate, [True] * 2)
    gate.opened(3 * g.FRAME)
    closed = gate.closed(10 * g.FRAME)
    assert closed == [g.WakeEvent(g.FOLLOWUP_STARTED, 10 * g.FRAME / 16000, duration_s=2.0)]
    assert gate.may_open(frame(12, True)[0])
    word, events = gate.opened(12 * g.FRAME)
    assert word is None and not events  # a follow-up segment has no wake word
    gate.closed(20 * g.FRAME)
    events = []
    for i in range(20, 20 + 3 * SECOND):
        f, audio = frame(i, False)
        events += gate.frame(f, audio)
    assert [e.kind for e in events] == [g.FOLLOWUP_TIMEOUT, g.WAIT_STARTED]
    assert events[0].position_s == pytest.approx(20 * g.FRAME / 16000 + 2.0, abs=0.04)
    assert not gate.may_open(frame(200, True)[0])


def test_the_activation_delay_lets_the_first_seconds_through_then_waits():
    gate = g.WakeGate(WakeOptions("pvporcupine", ("jarvis",), activation_delay_s=1.0), Spotter({}))
    assert gate.started() == [] and gate.may_open(frame(1, True)[0])
    events = run(gate, [False] * (SECOND + 2))
    assert [k for _, k in events] == [g.WAIT_STARTED] and gate.state == g.WAITING


def test_the_transcript_backend_opens_probes_until_the_phrase_is_spotted():
    gate = g.WakeGate(WakeOptions("transcript", ("hey there",), followup_s=0.0))
    assert gate.may_open(frame(0, True)[0]) and gate.probing
    assert gate.opened(0) == (None, []) and gate.state == g.WAITING
    assert gate.closed(100) == []  # a probe's close changes nothing
    events = gate.spotted("hey there", 3200)
    assert [e.kind for e in events] == [g.WAKE_DETECTED, g.WAIT_ENDED] and gate.state == g.RECORDING
    assert [e.kind for e in gate.closed(4000)] == [g.WAIT_STARTED]


def test_phrases_match_whole_words_whatever_the_case_and_punctuation():
    spotter = PhraseSpotter(("hey jarvis", "computer"))
    found = spotter.spot("Well, hey, Jarvis! turn the lights on.")
    assert found.phrase == "hey jarvis" and found.rest == "Turn the lights on."
    assert spotter.spot("the computers are off") is None
    assert spotter.strip_leading("Computer, what time is it?") == "What time is it?"
    assert spotter.strip_leading("My computer is slow.") == "My computer is slow."
    words = [{"word": " Hey,"}, {"word": " Jarvis!"}, {"word": " turn"}, {"word": " on."}]
    text = "Hey, Jarvis! turn on."
    assert PhraseSpotter.words_after(words, text, spotter.strip(text)) == words[2:]


def test_options_are_read_in_the_reference_names_with_codes_for_bad_ones():
    options = wake_options({"wake_words": "Jarvis, computer ,jarvis", "wake_word_timeout": 3})
    assert options.backend == "pvporcupine" and options.words == ("jarvis", "computer")
    assert options.timeout_s == 3.0 and options.enabled
    assert options.public()["wake_words"] == "jarvis,computer"
    assert not wake_options({"wakeword_backend": "transcript"}).enabled  # no words: off
    assert parse_words(["a", "b"]) == ("a", "b")
    for raw, code in (
        ({"wakeword_backend": "snowboy"}, "invalid_option"),
        ({"wake_words_sensitivity": 1.5}, "option_out_of_range"),
        ({"wake_word_timeout": float("nan")}, "invalid_option"),
        ({"wake_words": 7}, "invalid_option"),
        ({"wake_words": ",".join(f"w{i}" for i in range(11))}, "option_out_of_range"),
    ):
        with pytest.raises(WakeWordError) as caught:
            wake_options(raw)
        assert caught.value.code == code and caught.value.setting in raw
