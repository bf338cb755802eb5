"""Sentiment: labels and scores of clear sentences and corpus references, splitting, aggregation."""

from __future__ import annotations

import pytest

from speech.enrich.sentiment import (
    SentenceSentiment,
    Sentiment,
    SessionSentiment,
    analyse,
    by_sentence,
    overall,
    split_sentences,
)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love this, it is wonderful!", "positive"),
        ("Thank you so much, that was a great help.", "positive"),
        ("This is terrible, I hate it.", "negative"),
        ("The service was awful and the staff were rude.", "negative"),
        ("The meeting is at three in room four.", "neutral"),
        ("The horizon seems extremely distant.", "neutral"),
    ],
)
def test_clear_sentences_get_the_obvious_label_with_confidence(text, label):
    result = analyse(text)
    assert result.label == label
    assert 0.6 <= result.score <= 1.0


def test_stronger_wording_gives_a_higher_score():
    assert analyse("It is good.").score < analyse("It is absolutely wonderful, I love it!").score
    assert analyse("It is bad.").score < analyse("It is horrible, I hate it, the worst ever!").score


def test_empty_text_is_neutral_without_evidence():
    assert analyse("") == Sentiment("neutral", 0.0)
    assert analyse("  ...  ") == Sentiment("neutral", 0.0)


def test_corpus_references_are_plausible(corpus):
    refs = {name: u.reference for name, u in corpus.manifest().items()}
    # A call to service, and a book on printing: neutral, with confidence.
    assert analyse(refs["jfk.wav"]).label == "neutral"
    assert analyse(refs["ljspeech_LJ001-0001.wav"]) == Sentiment("neutral", 1.0)
    # "a confused complaint against the wizard, who had vanished": negative.
    assert analyse(refs["stereo_left.wav"]).label == "negative"
    # "he hoped there would be stew for dinner": mildly positive.
    assert analyse(refs["librispeech_1089-134686-0000.wav"]).label == "positive"
    # Beautiful letters against ugly ones: neither side wins by much.
    for name in ("ljspeech_LJ001-0012.wav", "ljspeech_LJ001-0013.wav"):
        assert 0.0 <= analyse(refs[name]).score <= 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you? I am fine!", ["Hello there.", "How are you?", "I am fine!"]),
        ("Mr. Smith paid $3.50 for it. He left.", ["Mr. Smith paid $3.50 for it.", "He left."]),
        ("The letter, i.e. the Gothic one. Next.", ["The letter, i.e. the Gothic one.", "Next."]),
        ("We met at 5 p.m. today. It rained.", ["We met at 5 p.m. today.", "It rained."]),
        ("We met at 5 p.m. Then it rained.", ["We met at 5 p.m.", "Then it rained."]),
        ("J. R. R. Tolkien wrote it. The U.S. is big.", ["J. R. R. Tolkien wrote it.", "The U.S. is big."]),
        ('"Really?" she asked. "Yes." Well...', ['"Really?" she asked.', '"Yes."', "Well..."]),
        ("Version 2.0 is out", ["Version 2.0 is out"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_on_a_corpus_paragraph(corpus):
    long = corpus.manifest()[corpus.LONG_FILE].reference
    sentences = split_sentences(long)
    assert len(sentences) == 5
    assert sentences[0].startswith("Printing, in the only sense")
    assert sentences[2].endswith("has never been surpassed.")


def test_by_sentence_labels_each_sentence_in_order():
    text = "I love this product. The box is brown. The delivery was terrible."
    result = by_sentence(text)
    assert [s.label for s in result] == ["positive", "neutral", "negative"]
    assert result[1] == SentenceSentiment("The box is brown.", "neutral", 1.0)


def test_by_sentence_leaves_out_sentences_below_min_confidence():
    text = "It is good. The box is brown. It is absolutely wonderful, I love it!"
    everything = by_sentence(text)
    assert len(everything) == 3
    threshold = 0.75
    kept = by_sentence(text, min_confidence=threshold)
    assert kept == [s for s in everything if s.score >= threshold]
    assert "It is good." not in [s.text for s in kept]
    assert by_sentence(text, min_confidence=1.01) == []


def test_overall_of_one_part_is_that_part():
    s = analyse("This is terrible, I hate it.")
    assert overall([(s, 3.0)]) == s


def test_overall_is_weighted():
    pos = Sentiment("positive", 0.9)
    neg = Sentiment("negative", 0.9)
    assert overall([(pos, 10.0), (neg, 1.0)]).label == "positive"
    assert overall([(pos, 1.0), (neg, 10.0)]).label == "negative"
    neutral = Sentiment("neutral", 1.0)
    # A long neutral stretch outweighs a short outburst.
    assert overall([(neutral, 50.0), (neg, 5.0)]).label == "neutral"
    result = overall([(pos, 1.0), (neg, 1.0), (neutral, 1.0)])
    assert 1 / 3 <= result.score <= 1.0


def test_overall_without_weight_is_neutral_without_evidence():
    assert overall([]) == Sentiment("neutral", 0.0)
    assert overall([(Sentiment("positive", 0.9), 0.0)]) == Sentiment("neutral", 0.0)


def test_session_accumulates_segments():
    session = SessionSentiment()
    first = session.add("I love this, it is wonderful!")
    assert first.label == "positive"
    assert session.overall == first
    session.add("The report lists the figures for the second quarter of the year in detail.", weight=14)
    session.add("The weather is grey and the train leaves at nine from platform two.", weight=14)
    assert session.overall.label == "neutral"
    assert session.add("This is terrible. I hate it.", weight=60).label == "negative"
    assert session.overall.label == "negative"
    assert len(session) == 4


def test_session_overall_matches_overall_of_its_parts():
    session = SessionSentiment()
    parts = []
    for text, weight in [("Great work, thank you!", 4.0), ("The file is on the desk.", 6.0), ("Awful.", 1.0)]:
        parts.append((session.add(text, weight), weight))
    assert session.overall == overall(parts)


def test_session_sentences_honour_min_confidence():
    session = SessionSentiment()
    session.add("I love this. The box is brown.")
    session.add("It is good. The delivery was terrible!")
    texts = [s.text for s in session.sentences()]
    assert texts == ["I love this.", "The box is brown.", "It is good.", "The delivery was terrible!"]
    strict = session.sentences(0.75)
    assert all(s.score >= 0.75 for s in strict)
    assert "It is good." not in [s.text for s in strict]
    assert session.sentences() == [
        *by_sentence("I love this. The box is brown."),
        *by_sentence("It is good. The delivery was terrible!"),
    ]
