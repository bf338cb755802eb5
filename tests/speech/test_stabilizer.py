"""Stable/unstable split of interim hypotheses by local agreement."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from speech.stabilizer import Stabilizer, StableSplit

HYPOTHESES = [
    "and so",
    "and so my",
    "And so, my fellow",
    "and so my fellow americans",
    "and so my fellow Americans ask",
    "and so my fellow Americans, ask not",
    "And so, my fellow Americans, ask not what your",
]


def test_a_word_becomes_stable_when_two_consecutive_hypotheses_agree():
    s = Stabilizer()
    assert s.update("and so") == StableSplit("", "and so", "and so")
    second = s.update("and so my")
    assert (second.stable, second.unstable) == ("and so", "my")
    # Rewrites a stable word (kept as it was) but agrees on "my", which becomes stable too.
    third = s.update("and sew my fellow")
    assert (third.stable, third.unstable, third.text) == ("and so my", "fellow", "and so my fellow")
    fourth = s.update("and so my yellow")
    assert (fourth.stable, fourth.unstable) == ("and so my", "yellow")


def test_stable_prefix_grows_monotonically_over_a_real_sequence():
    s = Stabilizer()
    stables = [s.update(h).stable for h in HYPOTHESES]
    for a, b in itertools.pairwise(stables):
        assert b.startswith(a)
    assert stables[-1].lower().split() == "and so my fellow americans ask not".split()


def test_stable_text_never_retracts_when_a_hypothesis_rewrites_it():
    s = Stabilizer()
    s.update("the quick brown fox")
    s.update("the quick brown fox jumps")
    rewritten = s.update("a quick brown fox jumps over")
    assert rewritten.stable == "the quick brown fox jumps"
    assert rewritten.unstable == "over"
    assert s.update("").stable == rewritten.stable


def test_reset_starts_a_new_segment():
    s = Stabilizer()
    s.update("hello world")
    s.update("hello world again")
    assert s.stable
    s.reset()
    assert s.stable == ""
    assert s.update("new words") == StableSplit("", "new words", "new words")


words = st.sampled_from(["a", "b", "c", "the", "The,", "fox"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(words, max_size=8).map(" ".join), max_size=12))
def test_stable_prefix_never_retracts_for_any_hypothesis_sequence(hypotheses):
    s = Stabilizer()
    previous = ""
    for h in hypotheses:
        split = s.update(h)
        assert split.stable.startswith(previous)
        assert split.text == f"{split.stable} {split.unstable}".strip()
        previous = split.stable
