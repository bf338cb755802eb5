"""bench.endpointing: cuts between finals, judged against hand-made references (no server, no model)."""

from __future__ import annotations

import pytest

from bench import corpus
from bench.endpointing import (
    BREATH,
    COMMA,
    SENTENCE,
    CutReport,
    classify_cuts,
    reference_words,
    summarize_cuts,
    token_boundary,
)

JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
TWO = (
    "The horizon seems extremely distant. He began a confused complaint against the wizard, who had vanished."
)


def simple(text: str) -> str:
    """A stand-in normalizer (lower case, letters and digits only), so the counts do not depend on
    the Whisper normalizer's rules."""
    return " ".join("".join(c for c in w.lower() if c.isalnum()) for w in text.split()).strip()


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("country.", SENTENCE),
        ("why?", SENTENCE),
        ("now!", SENTENCE),
        ("letters;", SENTENCE),
        ('Bible."', SENTENCE),
        ("Americans,", COMMA),
        ("follows:", COMMA),
        ("word—", COMMA),
        ('"lower-case",', COMMA),
        ("(aside)", COMMA),
        ("word", None),
        ("lower-case", None),
        ("i.e.", None),
        ("Mr.", None),
        ("U.S.", None),
    ],
)
def test_token_boundary(token, expected):
    assert token_boundary(token) == expected


def test_reference_words_marks_punctuation_and_the_end():
    ref = reference_words(TWO, simple)
    marked = {w: b for w, b in zip(ref.words, ref.boundaries, strict=True) if b}
    assert marked == {"distant": SENTENCE, "wizard": COMMA, "vanished": SENTENCE}
    assert len(ref.words) == 16
    # Unpunctuated (LibriSpeech-style): only the end.
    ref = reference_words("STUFF IT INTO YOU HIS BELLY COUNSELLED HIM", simple)
    assert ref.boundaries == [None] * 7 + [SENTENCE]


def test_reference_words_with_the_wer_normalizer_keeps_positions():
    text = 'the Gutenberg, or "forty-two line Bible" of about fourteen fifty-five,'
    ref = reference_words(text, corpus.normalize)
    assert ref.words == ["the", "gutenberg", "or", "42", "line", "bible", "of", "about", "1455"]
    assert ref.boundaries == [None, COMMA, None, None, None, None, None, None, SENTENCE]


def test_one_final_has_no_cuts():
    report = classify_cuts(JFK, [JFK.lower()], simple)
    assert (report.finals, report.cuts, report.mid_sentence) == (1, 0, 0)


def test_empty_finals_are_not_counted():
    report = classify_cuts(JFK, ["", "  ", JFK, "..."], simple)
    assert (report.finals, report.cuts) == (1, 0)


def test_cut_at_a_sentence_end_is_not_mid_sentence():
    report = classify_cuts(TWO, ["The horizon seems extremely distant.", "He began a confused complaint "
                                 "against the wizard, who had vanished."], simple)  # fmt: skip
    assert report.kinds == [SENTENCE]
    assert (report.cuts, report.mid_sentence, report.comma, report.breath) == (1, 0, 0, 0)


def test_comma_and_breath_cuts():
    finals = [
        "and so my fellow americans",  # cut after "Americans," -> comma
        "ask not what your country",  # cut after "country" (no punctuation) -> breath
        "can do for you ask what you",  # "you," is inside this final; cut after "you" -> breath
        "can do for your country",
    ]
    report = classify_cuts(JFK, finals, simple)
    assert report.kinds == [COMMA, BREATH, BREATH]
    assert (report.finals, report.cuts, report.mid_sentence, report.comma, report.breath) == (4, 3, 3, 1, 2)
    assert report.places[0] == "comma: ...my fellow americans | ask not..."


def test_alignment_survives_recognition_errors():
    # "fellow" misrecognized, "so" dropped, a word inserted: the cut after "Americans," is still found.
    finals = ["and my yellow americans um", "ask knot what your country can do for you", "ask what you can "
              "do for your country"]  # fmt: skip
    report = classify_cuts(JFK, finals, simple)
    assert report.kinds == [COMMA, COMMA]


def test_cut_where_reference_words_were_dropped_takes_the_sentence_end_nearby():
    # "distant" is missing from both finals: the cut lies after "extremely" or after "distant."
    report = classify_cuts(TWO, ["the horizon seems extremely", "he began a confused complaint against "
                                 "the wizard who had vanished"], simple)  # fmt: skip
    assert report.kinds == [SENTENCE]


def test_a_hallucinated_final_after_the_speech_is_not_mid_sentence():
    report = classify_cuts(TWO, [TWO, "thank you"], simple)
    assert report.kinds == [SENTENCE]


def test_unpunctuated_reference_makes_every_inner_cut_a_breath_cut():
    report = classify_cuts("HE HOPED THERE WOULD BE STEW FOR DINNER", ["he hoped there", "would be stew",
                           "for dinner"], simple)  # fmt: skip
    assert report.kinds == [BREATH, BREATH]


def test_with_the_wer_normalizer():
    ref = (
        "the earliest book printed with movable types, the Gutenberg, "
        'or "forty-two line Bible" of about fourteen fifty-five,'
    )
    finals = ["The earliest book printed with movable types,", "the Gutenberg or forty-two line Bible",
              "of about 1455."]  # fmt: skip
    report = classify_cuts(ref, finals, corpus.normalize)
    assert report.kinds == [COMMA, BREATH]


def test_summarize_cuts():
    reports = [
        CutReport(finals=1),
        CutReport(finals=3, kinds=[COMMA, SENTENCE]),
        CutReport(finals=2, kinds=[BREATH]),
        CutReport(finals=0),
    ]
    s = summarize_cuts(reports)
    assert (s.utterances, s.finals, s.cuts) == (4, 6, 3)
    assert (s.mid_sentence_cuts, s.comma_cuts, s.breath_cuts) == (2, 1, 1)
    assert s.finals_per_utterance == 1.5
    assert summarize_cuts([]).finals_per_utterance != summarize_cuts([]).finals_per_utterance  # nan
