"""The end-of-turn text rule and how the audio model's probability confirms it."""

from __future__ import annotations

import pytest

from speech.turns import COMPLETE, INCOMPLETE, UNSURE, text_verdict, verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ask what you can do for your country.", COMPLETE),
        ("Is it raining?", COMPLETE),
        ('He said "stop!"', COMPLETE),
        ("And so my fellow Americans, ask not", INCOMPLETE),  # no punctuation at all
        ("what your country can do for you,", INCOMPLETE),
        ("and it was natural there for...", INCOMPLETE),
        ("I went to the.", INCOMPLETE),  # Whisper's period after a dangling article
        ("We talked about it and.", INCOMPLETE),
        ("It is of the first importance, in.", INCOMPLETE),
        ("", UNSURE),
        ("   ", UNSURE),
    ],
)
def test_text_verdicts(text, expected):
    assert text_verdict(text) == expected


def test_without_trusted_punctuation_a_missing_period_says_nothing_but_a_dangling_word_still_does():
    assert text_verdict("flour fattened sauce", punctuated=False) == UNSURE
    assert text_verdict("flour fattened sauce", punctuated=True) == INCOMPLETE
    assert text_verdict("the soup and", punctuated=False) == INCOMPLETE
    assert text_verdict("the soup,", punctuated=False) == INCOMPLETE


def test_the_audio_model_confirms_or_demotes_complete_but_never_overrides_incomplete():
    assert verdict("Done.", 0.9, 0.5) == COMPLETE
    assert verdict("Done.", 0.2, 0.5) == UNSURE
    assert verdict("Done.", None, 0.5) == COMPLETE  # no model: the text decides
    assert verdict("and then the", 0.99, 0.5) == INCOMPLETE
