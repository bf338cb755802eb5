"""Key phrases (topics) of a session's transcript with YAKE, kept up to date as the text grows."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yake import KeywordExtractor

MAX_NGRAM = 2  # 3-grams mostly add near-copies ("Middle Ages brought") rather than new topics

# Confidence = SCORE_SCALE / (SCORE_SCALE + yake_score) * (1 - exp(-words / EVIDENCE_WORDS)).
# The first factor maps YAKE's score (0 = best, unbounded) monotonically onto 1..0: a score
# of 0.1 gives 0.5, the top phrases of a read paragraph (0.015-0.06) give 0.6-0.9. YAKE
# scores single sentences about as well as paragraphs, so the second factor, the same for
# every phrase of one text, discounts short texts: 25 words x0.22, 100 x0.63, 300 x0.95.
SCORE_SCALE = 0.1
EVIDENCE_WORDS = 100.0

# YAKE ranks more candidates than we return because our containment dedup drops some.
_CANDIDATES_PER_TOPIC = 3


@dataclass(frozen=True)
class Topic:
    topic: str
    confidence: float
    mentions: list[int]  # indices of the segments that mention the topic, ascending


class _DropTextPreviews(logging.Filter):
    # YAKE logs the first 100 characters of the text when extraction fails: transcript
    # text must not reach the logs, so that record is dropped (the failure still gives []).
    def filter(self, record: logging.LogRecord) -> bool:
        return "text preview" not in str(record.msg)


@cache
def _quiet_yake_logs() -> None:
    logging.getLogger("yake.core.yake").addFilter(_DropTextPreviews())


@cache
def _extractor(top: int) -> KeywordExtractor:
    # Imported and built on first use: yake pulls in networkx and numpy (~0.3 s to import).
    import yake

    _quiet_yake_logs()
    return yake.KeywordExtractor(lan="en", n=MAX_NGRAM, dedup_lim=0.9, top=top)


def confidence_from_score(score: float, words: int) -> float:
    """YAKE score (lower is better) of a phrase in a text of `words` words -> confidence in 0..1."""
    relevance = SCORE_SCALE / (SCORE_SCALE + max(0.0, float(score)))
    evidence = 1.0 - math.exp(-max(0, words) / EVIDENCE_WORDS)
    return round(relevance * evidence, 4)


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class _MentionIndex:
    """The segments mentioning one phrase, extended incrementally as segments arrive.

    A segment mentions the phrase when it contains it as whole words (case-insensitive).
    Segments split sentences anywhere, so a multi-word phrase found only across the
    boundary of two consecutive segments counts as a mention in both of them.
    """

    def __init__(self, phrase: str) -> None:
        self.pattern = _phrase_pattern(phrase)
        self.multiword = len(phrase.split()) > 1
        self.indices: list[int] = []
        self.scanned = 0  # how many segments (in order) have been looked at

    def scan(self, segments: list[tuple[int, str]]) -> list[int]:
        search = self.pattern.search
        # Segments are scanned in order, so indices stay ascending without sorting.
        for pos in range(self.scanned, len(segments)):
            index, text = segments[pos]
            found = search(text) is not None
            if self.multiword and pos > 0:
                prev_index, prev_text = segments[pos - 1]
                boundary = len(prev_text)
                joined = prev_text + " " + text
                if any(m.start() < boundary < m.end() for m in self.pattern.finditer(joined)):
                    if not self.indices or self.indices[-1] != prev_index:
                        self.indices.append(prev_index)
                    found = True
            if found:
                self.indices.append(index)
        self.scanned = len(segments)
        return list(self.indices)


def _stems(phrase: str) -> frozenset[str]:
    # Crude plural folding is enough here: "books" and "printed book" share "book".
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in phrase.lower().split())


def _dedup(candidates: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    # YAKE's own dedup keeps "middle" beside "Middle Ages" and "book printed" beside
    # "printed book": drop a phrase whose words contain, or are contained in, the words
    # of a better-ranked one.
    kept: list[tuple[str, float, frozenset[str]]] = []
    for phrase, score in candidates:
        stems = _stems(phrase)
        if not stems or any(stems <= other or other <= stems for _, _, other in kept):
            continue
        kept.append((phrase, score, stems))
    return [(phrase, score) for phrase, score, _ in kept]


def _rank(text: str, top: int) -> list[tuple[str, float]]:
    """(phrase, confidence) best first, at most `top`, for one text."""
    words = len(text.split())
    if words == 0:
        return []
    if text.isupper():
        # All-capitals text (some corpora) reads to YAKE as acronyms everywhere and every
        # phrase scores ~0; lower-casing restores its case feature.
        text = text.lower()
    ranked = _extractor(top * _CANDIDATES_PER_TOPIC).extract_keywords(text)
    return [(phrase, confidence_from_score(score, words)) for phrase, score in _dedup(ranked)][:top]


def extract_topics(
    segments: list[tuple[int, str]], *, max_topics: int = 8, min_confidence: float = 0.0
) -> list[Topic]:
    """Key phrases of the joined segments ((index, text) pairs, in order), best first.

    YAKE (English, up to 2-grams); confidence as in `confidence_from_score`; topics below
    `min_confidence` are left out; `mentions` lists the segments containing the phrase.
    """
    if max_topics <= 0:
        return []
    ordered = [(index, text) for index, text in segments if text.strip()]
    ranked = _rank(" ".join(text.strip() for _, text in ordered), max_topics)
    return [
        Topic(phrase, confidence, _MentionIndex(phrase).scan(ordered))
        for phrase, confidence in ranked
        if confidence >= min_confidence
    ]


class SessionTopics:
    """Topics of a growing transcript, recomputed only after enough new text.

    YAKE's cost grows with the text (~13 ms for 200 words, ~65 ms for 2,000, ~0.7 s for
    20,000 here), so two limits keep a long session cheap: only the last `window_words`
    words are ranked (the topics follow what is being talked about now; mentions still
    cover every segment), and a ranking is reused until the text added since reaches
    `new_text_ratio` of the ranked text, clamped to `min_new_chars`..`max_new_chars`, and
    `min_interval_s` has passed. In between, topics() returns the last ranking with
    mentions extended to the new segments (a few µs per segment and topic).

    add() and topics() may run in different threads: the state is read and written under
    a lock, but the ranking itself runs outside it, so add() never waits for YAKE.
    """

    def __init__(
        self,
        *,
        window_words: int = 3000,
        new_text_ratio: float = 0.1,
        min_new_chars: int = 200,
        max_new_chars: int = 2000,
        min_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_words = window_words
        self.new_text_ratio = new_text_ratio
        self.min_new_chars = min_new_chars
        self.max_new_chars = max_new_chars
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._segments: list[tuple[int, str]] = []
        self._positions: dict[int, int] = {}  # segment index -> position in _segments
        self._generation = 0  # bumped when a segment is replaced: mention indexes restart
        self._ranked: list[tuple[str, float]] | None = None
        self._ranked_top = 0
        self._ranked_chars = 0  # characters in the window that was ranked
        self._new_chars = 0  # characters added since the last ranking
        self._ranked_at = -math.inf
        self._mentions: dict[str, _MentionIndex] = {}
        self.recomputations = 0

    def add(self, index: int, text: str) -> None:
        """Adds segment `index` (a repeated index replaces that segment's text)."""
        text = text.strip()
        with self._lock:
            pos = self._positions.get(index)
            if pos is None:
                self._positions[index] = len(self._segments)
                self._segments.append((index, text))
            else:
                self._segments[pos] = (index, text)
                self._generation += 1
                self._mentions = {}  # an earlier segment changed: rescan mentions
            self._new_chars += len(text) + 1

    def _window(self) -> list[tuple[int, str]]:
        words = 0
        start = len(self._segments)
        while start > 0:
            words += len(self._segments[start - 1][1].split())
            if words > self.window_words and start < len(self._segments):
                break
            start -= 1
        return self._segments[start:]

    def _stale(self, max_topics: int) -> bool:
        if self._ranked is None or max_topics > self._ranked_top:
            return True
        threshold = self.new_text_ratio * self._ranked_chars
        threshold = min(max(threshold, self.min_new_chars), self.max_new_chars)
        due = self._clock() - self._ranked_at >= self.min_interval_s
        return self._new_chars >= threshold and due

    def topics(self, min_confidence: float = 0.0, max_topics: int = 8) -> list[Topic]:
        if max_topics <= 0:
            return []
        with self._lock:
            if not self._segments:
                return []
            stale = self._stale(max_topics)
            window = [(i, t) for i, t in self._window() if t] if stale else []
            pending = self._new_chars
            segments = [(i, t) for i, t in self._segments if t]
            generation = self._generation
            ranked = self._ranked
        if stale:
            text = " ".join(t for _, t in window)
            # A few spare topics, so a caller asking for more does not force a recompute.
            top = max(max_topics, 8)
            ranked = _rank(text, top)
            with self._lock:
                self._ranked, self._ranked_top, self._ranked_chars = ranked, top, len(text)
                self._new_chars -= pending  # text added while ranking counts towards the next
                self._ranked_at = self._clock()
                self.recomputations += 1
        assert ranked is not None
        out: list[Topic] = []
        for phrase, confidence in ranked[:max_topics]:
            if confidence < min_confidence:
                continue
            with self._lock:  # an index is extended by one caller at a time
                index = self._mentions.get(phrase)
                if index is None:
                    index = _MentionIndex(phrase)
                    if generation == self._generation:
                        self._mentions[phrase] = index
                mentions = index.scan(segments)
            out.append(Topic(phrase, confidence, mentions))
        return out
