"""Where the server cut an utterance into finals, judged against the punctuation of its reference.

An utterance streamed to the server comes back as one or more finals. The boundaries between
its consecutive non-empty finals (sorted by start) are its *cuts*. Each cut is located in the
reference by a word alignment of normalized words (the normalizer WER uses,
`bench.corpus.normalize`) and then classified by the reference punctuation at that place:

- ``sentence``: the reference word the earlier final ends on closes a sentence: its token ends
  in ``.``, ``?``, ``!``, ``;`` or ``…`` (closing quotes and brackets after it are looked
  through; abbreviations such as ``Mr.``/``Dr.``/``St.`` and dotted ones such as ``i.e.`` are
  not sentence ends). The very end of the reference (and its very start) counts as a sentence
  end: every corpus file is a whole utterance followed by silence.
- ``comma``: not a sentence end, but the token ends in clause punctuation: ``,``, ``:``, a dash
  (``-``, ``–``, ``—``) or a closing bracket. A *mid-sentence* cut, at a written pause.
- ``breath``: no punctuation there at all. A mid-sentence cut at a pause the text does not mark
  (a breath, or a cut by the maximum segment length).

``mid_sentence`` cuts are ``comma`` + ``breath``. References without punctuation (the
LibriSpeech ones are upper case, unpunctuated) make every inner cut a ``breath`` cut.

When the alignment leaves the place of a cut uncertain (reference words deleted between the
two finals, or hypothesis words inserted there), the cut may lie after any reference word in
the uncertain span; it takes the most favourable class found there (sentence, then comma).
Finals whose text normalizes to no words are not counted (not as finals, not as cuts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from bench import corpus

SENTENCE, COMMA, BREATH = "sentence", "comma", "breath"
MID_SENTENCE = (COMMA, BREATH)

SENTENCE_PUNCT = ".?!;…"
CLAUSE_PUNCT = ",:-–—)]}"
_CLOSERS = "\"'”’»)]}"
# Words that end in "." without ending a sentence (lower case, without the dot).
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "col", "capt", "lt"})
_STRENGTH = {None: 0, COMMA: 1, SENTENCE: 2}


def token_boundary(token: str) -> str | None:
    """The boundary a raw reference token ends on: SENTENCE, COMMA or None (no punctuation)."""
    stripped = token.rstrip(_CLOSERS)
    closed_bracket = len(stripped) < len(token) and any(c in ")]}" for c in token[len(stripped) :])
    if not stripped:
        return COMMA if closed_bracket else None
    last = stripped[-1]
    if last in SENTENCE_PUNCT:
        if last == ".":
            word = stripped[:-1].lstrip("\"'“‘«([{")
            if "." in word or word.lower() in ABBREVIATIONS:
                return COMMA if closed_bracket else None
        return SENTENCE
    if last in CLAUSE_PUNCT or closed_bracket:
        return COMMA
    return None


@dataclass(frozen=True)
class Reference:
    """A reference's normalized words and, per word, the boundary after it (SENTENCE/COMMA/None)."""

    words: list[str]
    boundaries: list[str | None]


def reference_words(text: str, normalize: Callable[[str], str] = corpus.normalize) -> Reference:
    """Normalize a reference phrase by phrase (a phrase ends at punctuation), keeping where its
    punctuation falls. The last word is always a SENTENCE boundary (the utterance ends there)."""
    words: list[str] = []
    boundaries: list[str | None] = []
    phrase: list[str] = []

    def close(boundary: str | None) -> None:
        new = normalize(" ".join(phrase)).split()
        words.extend(new)
        boundaries.extend([None] * len(new))
        phrase.clear()
        if words and _STRENGTH[boundary] > _STRENGTH[boundaries[-1]]:
            boundaries[-1] = boundary

    for token in text.split():
        phrase.append(token)
        boundary = token_boundary(token)
        if boundary is not None:
            close(boundary)
    close(None)
    if words:
        boundaries[-1] = SENTENCE
    return Reference(words, boundaries)


def _anchors(ref: list[str], hyp: list[str]) -> list[int | None]:
    """For each hypothesis word, the index of the reference word it aligns to (None: inserted)."""
    anchors: list[int | None] = [None] * len(hyp)
    matcher = SequenceMatcher(None, ref, hyp, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(j2 - j1):
                anchors[j1 + k] = i1 + k
        elif tag == "replace":
            # Substitutions: spread the hypothesis span over the reference span, ends to ends.
            n_ref, n_hyp = i2 - i1, j2 - j1
            for k in range(n_hyp):
                anchors[j1 + k] = i1 + min(n_ref - 1, ((k + 1) * n_ref - 1) // n_hyp)
    return anchors


@dataclass
class CutReport:
    """The cuts of one utterance: `kinds` has one entry (SENTENCE/COMMA/BREATH) per cut."""

    finals: int = 0
    kinds: list[str] = field(default_factory=list)
    # Per cut: the reference words around it, for reading ("... for you, | ask ...").
    places: list[str] = field(default_factory=list)

    @property
    def cuts(self) -> int:
        return len(self.kinds)

    @property
    def mid_sentence(self) -> int:
        return sum(1 for k in self.kinds if k in MID_SENTENCE)

    @property
    def breath(self) -> int:
        return self.kinds.count(BREATH)

    @property
    def comma(self) -> int:
        return self.kinds.count(COMMA)


def classify_cuts(
    reference: str, final_texts: Iterable[str], normalize: Callable[[str], str] = corpus.normalize
) -> CutReport:
    """Classify the cuts between consecutive finals (texts in the order of their start)."""
    ref = reference_words(reference, normalize)
    pieces = [normalize(text).split() for text in final_texts]
    pieces = [p for p in pieces if p]
    report = CutReport(finals=len(pieces))
    if len(pieces) < 2:
        return report
    hyp = [w for p in pieces for w in p]
    anchors = _anchors(ref.words, hyp)
    n_ref = len(ref.words)
    end = 0
    for piece in pieces[:-1]:
        end += len(piece)  # the cut lies between hyp[end - 1] and hyp[end]
        lo = next((anchors[j] for j in range(end - 1, -1, -1) if anchors[j] is not None), -1)
        hi = next((anchors[j] for j in range(end, len(hyp)) if anchors[j] is not None), n_ref)
        # The cut is after reference word i for some i in [lo, hi - 1] (-1: before the first word).
        span = range(lo, max(lo, hi - 1) + 1)
        found = [SENTENCE if i < 0 or i >= n_ref else ref.boundaries[i] for i in span]
        if SENTENCE in found:
            kind = SENTENCE
        elif COMMA in found:
            kind = COMMA
        else:
            kind = BREATH
        report.kinds.append(kind)
        at = min(max(lo, 0), n_ref - 1) if n_ref else 0
        left = " ".join(ref.words[max(0, at - 2) : at + 1])
        right = " ".join(ref.words[at + 1 : at + 3])
        report.places.append(f"{kind}: ...{left} | {right}...")
    return report


@dataclass
class EndpointingSummary:
    utterances: int
    finals: int
    cuts: int
    mid_sentence_cuts: int
    comma_cuts: int
    breath_cuts: int

    @property
    def finals_per_utterance(self) -> float:
        return self.finals / self.utterances if self.utterances else float("nan")


def summarize_cuts(reports: Iterable[CutReport]) -> EndpointingSummary:
    reports = list(reports)
    return EndpointingSummary(
        utterances=len(reports),
        finals=sum(r.finals for r in reports),
        cuts=sum(r.cuts for r in reports),
        mid_sentence_cuts=sum(r.mid_sentence for r in reports),
        comma_cuts=sum(r.comma for r in reports),
        breath_cuts=sum(r.breath for r in reports),
    )
