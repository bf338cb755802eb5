"""Topics: YAKE key phrases of a read paragraph, confidences, mentions, and the session accumulator."""

from __future__ import annotations

import re

import pytest

from speech.enrich.topics import SessionTopics, Topic, confidence_from_score, extract_topics


@pytest.fixture(scope="module")
def lj_segments(corpus):
    """The LJSpeech references (LJ001-0001..0020, a paragraph on printing) as numbered segments."""
    names = sorted(n for n in corpus.manifest() if n.startswith("ljspeech_LJ001-"))
    return [(i, corpus.manifest()[n].reference) for i, n in enumerate(names)]


def _segments_with_word(segments, word):
    pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
    return [i for i, text in segments if pattern.search(text)]


def test_confidence_is_monotone_in_score_and_grows_with_text():
    scores = [0.0, 0.001, 0.01, 0.05, 0.1, 0.5, 2.0, 50.0]
    values = [confidence_from_score(s, 300) for s in scores]
    assert values == sorted(values, reverse=True)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert confidence_from_score(0.1, 10_000) == pytest.approx(0.5)
    assert (
        confidence_from_score(0.02, 25) < confidence_from_score(0.02, 100) < confidence_from_score(0.02, 400)
    )
    assert confidence_from_score(0.02, 0) == 0.0


def test_paragraph_on_printing_gives_plausible_key_phrases(lj_segments):
    topics = extract_topics(lj_segments)
    assert 1 <= len(topics) <= 8
    phrases = [t.topic.lower() for t in topics]
    assert "middle ages" in phrases
    assert "movable types" in phrases
    assert any("print" in p for p in phrases)  # "Printing", "printed letters"
    words = {w for p in phrases for w in p.split()}
    assert {"printing", "letters"} <= words
    # Best first, all in 0..1, the top ones in the plausible band for a read paragraph.
    confidences = [t.confidence for t in topics]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 < c <= 1.0 for c in confidences)
    assert 0.6 <= confidences[0] <= 0.95
    assert all(isinstance(t, Topic) for t in topics)


def test_mentions_are_the_segments_containing_the_phrase(lj_segments):
    topics = {t.topic.lower(): t for t in extract_topics(lj_segments, max_topics=12)}
    # Whole words only: "arts" in LJ001-0001 is no mention of "art", "printed" none of "printing".
    assert topics["printing"].mentions == _segments_with_word(lj_segments, "printing")
    assert topics["books"].mentions == _segments_with_word(lj_segments, "books")
    assert topics["middle ages"].mentions == _segments_with_word(lj_segments, "middle ages")
    for topic in topics.values():
        assert topic.mentions == sorted(topic.mentions)
        for index in topic.mentions:
            text = dict(lj_segments)[index]
            assert (
                topic.topic.split()[0].lower() in text.lower()
                or topic.topic.split()[-1].lower() in text.lower()
            )


def test_a_phrase_split_across_two_segments_is_a_mention_in_both():
    segments = [
        (0, "Printing in the Middle"),
        (1, "Ages was slow, said the printer of the Middle Ages."),
        (2, "Printing presses changed that."),
        (3, "Nothing else here."),
    ]
    topics = {t.topic.lower(): t for t in extract_topics(segments)}
    assert topics["middle ages"].mentions == [0, 1]
    assert topics["printing"].mentions == [0, 2]


def test_min_confidence_and_max_topics_are_honoured(lj_segments):
    everything = extract_topics(lj_segments, max_topics=12)
    assert len(everything) == 12
    assert len(extract_topics(lj_segments, max_topics=3)) == 3
    threshold = everything[5].confidence
    kept = extract_topics(lj_segments, max_topics=12, min_confidence=threshold)
    assert kept == [t for t in everything if t.confidence >= threshold]
    assert extract_topics(lj_segments, min_confidence=1.01) == []
    assert extract_topics(lj_segments, max_topics=0) == []


def test_short_texts_get_low_confidence(corpus):
    jfk = corpus.manifest()["jfk.wav"].reference
    topics = extract_topics([(0, jfk)])
    assert topics and topics[0].topic == "fellow Americans"
    assert all(t.confidence < 0.3 for t in topics)


def test_all_capitals_text_is_read_as_lower_case(corpus):
    stew = corpus.manifest()["librispeech_1089-134686-0000.wav"].reference
    topics = extract_topics([(7, stew)])
    assert topics
    assert all(t.topic == t.topic.lower() for t in topics)
    assert all(t.mentions == [7] for t in topics)
    assert all(t.confidence < 0.5 for t in topics)


def test_no_text_no_topics():
    assert extract_topics([]) == []
    assert extract_topics([(0, ""), (1, "   ")]) == []


# --- SessionTopics ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_session_first_ranking_matches_extract_topics(lj_segments):
    session = SessionTopics()
    for index, text in lj_segments:
        session.add(index, text)
    assert session.topics() == extract_topics(lj_segments)
    assert session.recomputations == 1
    assert session.topics(min_confidence=0.7) == extract_topics(lj_segments, min_confidence=0.7)
    assert session.topics(max_topics=3) == extract_topics(lj_segments, max_topics=3)
    assert session.recomputations == 1  # served from the same ranking


def test_session_reuses_its_ranking_until_enough_new_text(lj_segments):
    session = SessionTopics(min_new_chars=200)
    for index, text in lj_segments:
        session.add(index, text)
    first = session.topics()
    # A short new segment: no new ranking, but mentions cover it at once.
    session.add(20, "Printing again.")
    again = session.topics()
    assert session.recomputations == 1
    assert [t.topic for t in again] == [t.topic for t in first]
    printing = next(t for t in again if t.topic == "Printing")
    assert printing.mentions[-1] == 20
    # Enough new text (10% of the ranked text, at least 200 characters): ranked again.
    session.add(21, "The printing press of Gutenberg used movable types and oil based inks. " * 4)
    session.topics()
    assert session.recomputations == 2


def test_session_min_interval(lj_segments):
    clock = FakeClock()
    session = SessionTopics(min_new_chars=10, min_interval_s=30.0, clock=clock)
    session.add(0, lj_segments[0][1])
    session.topics()
    session.add(1, lj_segments[1][1] + " " + lj_segments[2][1])
    clock.now = 10.0
    session.topics()
    assert session.recomputations == 1  # enough text, too soon
    clock.now = 31.0
    session.topics()
    assert session.recomputations == 2


def test_session_asking_for_more_topics_than_ranked_recomputes(lj_segments):
    session = SessionTopics()
    for index, text in lj_segments:
        session.add(index, text)
    session.topics(max_topics=8)
    assert len(session.topics(max_topics=12)) == 12
    assert session.recomputations == 2


def test_session_ranks_a_window_of_recent_words_but_mentions_cover_everything():
    session = SessionTopics(window_words=40, min_new_chars=1)
    session.add(0, "The budget for the harbour bridge was discussed by the city council at length today.")
    for i in range(1, 6):
        session.add(
            i, "Volcanic eruptions and volcanic ash clouds disrupted flights across the northern islands."
        )
    phrases = [t.topic.lower() for t in session.topics()]
    assert not any("harbour" in p or "budget" in p for p in phrases)  # outside the window
    session.add(6, "Back to the harbour bridge budget.")
    session.add(7, "The harbour bridge budget again, harbour bridge budget everywhere, harbour bridge.")
    topics = {t.topic.lower(): t for t in session.topics()}
    bridge = next(t for p, t in topics.items() if "harbour" in p or "bridge" in p)
    assert bridge.mentions[0] == 0  # the mention before the window still counts


def test_session_replacing_a_segment_updates_mentions(lj_segments):
    session = SessionTopics()
    for index, text in lj_segments:
        session.add(index, text)
    before = next(t for t in session.topics() if t.topic == "Printing")
    assert 0 in before.mentions
    session.add(0, "Something else entirely, said in the only sense.")
    after = next(t for t in session.topics() if t.topic == "Printing")
    assert 0 not in after.mentions


def test_a_long_session_does_not_rank_on_every_segment(lj_segments):
    words = " ".join(text for _, text in lj_segments).split()
    session = SessionTopics()
    segments = 200  # 4000 words in 20-word segments
    for i in range(segments):
        start = (i * 20) % (len(words) - 20)
        session.add(i, " ".join(words[start : start + 20]))
        session.topics()
    assert session.recomputations < segments / 4
    assert session.topics()


def test_session_add_and_topics_from_two_threads(lj_segments):
    import threading

    session = SessionTopics(min_new_chars=1)
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                for topic in session.topics():
                    assert topic.mentions == sorted(set(topic.mentions))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for index, text in lj_segments * 3:
        session.add(index + 100 * (index % 2), text)
    done.set()
    thread.join()
    assert not errors
    assert session.topics()


def test_a_failing_extraction_logs_no_transcript_text(monkeypatch, caplog):
    import logging

    import yake.core.yake as yake_core

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(yake_core, "DataCore", broken)
    caplog.set_level(logging.DEBUG)
    assert extract_topics([(0, "my secret plan for the harbour bridge")]) == []
    assert "secret" not in caplog.text
