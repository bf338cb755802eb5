"""Sentiment of transcript text (VADER): per segment, per sentence and for a whole session."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

LABELS = ("neutral", "positive", "negative")  # also the tie-break order of overall()

# VADER's own recommended cut-offs on the compound score.
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


@dataclass(frozen=True)
class Sentiment:
    """A label (positive/negative/neutral) and the confidence of that label in 0..1.

    How `score` is derived from VADER's output (compound c in -1..1, proportions neg/neu/pos):

    * positive (c >= 0.05) or negative (c <= -0.05): score = 0.5 + 0.5 * |c|, so a label
      just over the threshold is a coin toss (~0.5) and a strongly worded one nears 1.
    * neutral: score = 0.5 + 0.5 * neu * (1 - |c| / 0.05): a text of only neutral words
      at c = 0 is 1.0; mixed positive and negative words that cancel out (low neu) or a
      compound near either threshold pull it towards 0.5.
    * no words at all: neutral with score 0.0 (no evidence).
    """

    label: str
    score: float


@dataclass(frozen=True)
class SentenceSentiment:
    text: str
    label: str
    score: float


@cache
def _analyser() -> SentimentIntensityAnalyzer:
    # Created once: VADER reads its ~7,500-entry lexicon (~30 ms) when constructed.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


_WORD = re.compile(r"\w")


def _from_scores(scores: dict[str, float]) -> Sentiment:
    compound = scores["compound"]
    if compound >= POSITIVE_THRESHOLD:
        return Sentiment("positive", round(0.5 + 0.5 * compound, 4))
    if compound <= NEGATIVE_THRESHOLD:
        return Sentiment("negative", round(0.5 - 0.5 * compound, 4))
    closeness = 1.0 - abs(compound) / POSITIVE_THRESHOLD
    return Sentiment("neutral", round(0.5 + 0.5 * scores["neu"] * closeness, 4))


def analyse(text: str) -> Sentiment:
    """The sentiment of a text as a whole (a segment, a sentence)."""
    if not _WORD.search(text):
        return Sentiment("neutral", 0.0)
    return _from_scores(_analyser().polarity_scores(text))


# --- Sentence splitting -----------------------------------------------------------------------

# Never end a sentence: titles and Latin abbreviations are followed by more of the sentence.
_NEVER_FINAL = frozenset(
    "mr mrs ms dr prof sr jr st mt vs e.g i.e cf approx dept fig gen gov lt col sgt capt rev".split()
)
# May end one: only when the next word starts with a capital ("at 5 p.m. Then we left").
_MAYBE_FINAL = frozenset(
    "etc a.m p.m u.s u.k inc ltd co corp no jan feb mar apr jun jul aug sep sept oct nov dec".split()
)

# Terminal punctuation, closing quotes/brackets, then whitespace: a candidate boundary.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")
_LAST_TOKEN = re.compile(r"[\w.]+$")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, split after . ? ! (and …) followed by whitespace.

    Decimals ("3.50") and dotted abbreviations ("Mr.", "e.g.", "U.S.", single-letter
    initials) do not end a sentence; "etc.", "p.m." and the like do when the next word
    is capitalised. Whitespace inside a sentence is kept; an empty text gives [].
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        punct = match.group()
        if punct[-1] in "\"'”’)]" and text[match.end() :].lstrip()[:1].islower():
            continue  # '"Really?" she asked.': the quote closes, the sentence goes on
        if punct.startswith(".") and not punct.startswith(".."):
            token_match = _LAST_TOKEN.search(text, start, match.start())
            token = token_match.group().lower().rstrip(".") if token_match else ""
            if token in _NEVER_FINAL or (len(token) == 1 and token.isalpha()):
                continue
            if token in _MAYBE_FINAL:
                rest = text[match.end() :].lstrip()
                if not rest[:1].isupper():
                    continue
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def by_sentence(text: str, *, min_confidence: float = 0.0) -> list[SentenceSentiment]:
    """The sentiment of each sentence of `text`, in order.

    Our reading of seed-003's `min_confidence`: a sentence whose score (the confidence of
    its own label) is below `min_confidence` is left out of the list, whatever its label;
    the remaining sentences keep their order.
    """
    out: list[SentenceSentiment] = []
    for sentence in split_sentences(text):
        result = analyse(sentence)
        if result.score >= min_confidence:
            out.append(SentenceSentiment(sentence, result.label, result.score))
    return out


# --- Aggregation ------------------------------------------------------------------------------


def _distribution(sentiment: Sentiment) -> dict[str, float]:
    # The label gets its score, the other two share the rest: a Sentiment read as a
    # probability over the three labels, which is what weighted averaging needs.
    other = (1.0 - sentiment.score) / 2.0
    return {label: (sentiment.score if label == sentiment.label else other) for label in LABELS}


def _from_totals(totals: dict[str, float], weight: float) -> Sentiment:
    if weight <= 0.0:
        return Sentiment("neutral", 0.0)
    label = max(LABELS, key=lambda name: totals[name])  # max keeps the first of equals
    return Sentiment(label, round(totals[label] / weight, 4))


def overall(parts: list[tuple[Sentiment, float]]) -> Sentiment:
    """One sentiment for many parts, each weighted (by words or seconds; weight <= 0 is ignored).

    Each part is read as a distribution over the labels (its label at its score, the other
    two sharing the remainder); the weighted mean distribution's most likely label wins
    (ties: neutral, then positive) and its probability is the score. So the overall of a
    single part is that part, and a long neutral stretch outweighs one short outburst.
    """
    totals = dict.fromkeys(LABELS, 0.0)
    total_weight = 0.0
    for sentiment, weight in parts:
        if weight <= 0.0:
            continue
        for label, p in _distribution(sentiment).items():
            totals[label] += p * weight
        total_weight += weight
    return _from_totals(totals, total_weight)


def _word_count(text: str) -> int:
    return len(text.split())


class SessionSentiment:
    """Accumulates the sentiment of a session's segments as they are finalised.

    add() may run in a worker thread while `overall` or sentences() are read from another:
    the running sums are replaced in one assignment, so a reader never sees half an update.
    """

    def __init__(self) -> None:
        self._sentences: list[list[SentenceSentiment]] = []
        # Running weighted sums per label and their total weight, so `overall` stays O(1).
        self._sums: tuple[dict[str, float], float] = (dict.fromkeys(LABELS, 0.0), 0.0)

    def add(
        self, text: str, weight: float | None = None, *, shown: Callable[[str], str] | None = None
    ) -> Sentiment:
        """Adds a segment and returns its sentiment; weight: its duration or words (default: word count).

        The text is analysed as spoken; `shown(sentence)` gives each sentence as it may be kept and
        shown (the filters' masking): only that form is kept.
        """
        result = analyse(text)
        if weight is None:
            weight = float(_word_count(text))
        if weight > 0.0:
            totals, total_weight = self._sums
            share = _distribution(result)
            self._sums = (
                {label: totals[label] + share[label] * weight for label in LABELS},
                total_weight + weight,
            )
        sentences = by_sentence(text)
        if shown is not None:
            sentences = [SentenceSentiment(shown(s.text), s.label, s.score) for s in sentences]
        self._sentences = [*self._sentences, sentences]
        return result

    @property
    def overall(self) -> Sentiment:
        totals, weight = self._sums
        return _from_totals(totals, weight)

    def latest(self, min_confidence: float = 0.0) -> list[SentenceSentiment]:
        """The sentences of the segment added last, filtered as in by_sentence()."""
        last = self._sentences[-1] if self._sentences else []
        return [s for s in last if s.score >= min_confidence]

    def sentences(self, min_confidence: float = 0.0) -> list[SentenceSentiment]:
        """Every sentence of the session so far (split per segment), filtered as in by_sentence()."""
        return [s for segment in self._sentences for s in segment if s.score >= min_confidence]

    def __len__(self) -> int:
        return len(self._sentences)
