"""Stable/unstable split of interim transcripts by local agreement of consecutive hypotheses."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_EDGE_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")
_ANCHOR_WORDS = 3  # how many trailing stable words locate the stable text in a new hypothesis


@dataclass(frozen=True)
class StableSplit:
    stable: str  # never shrinks within a segment
    unstable: str  # the latest hypothesis beyond the stable words; may change freely
    text: str  # stable + unstable, what a client shows


def _key(word: str) -> str:
    # Agreement ignores case and edge punctuation: "country," and "Country" are the same word.
    return _EDGE_PUNCT.sub("", unicodedata.normalize("NFKC", word).casefold())


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if _key(x) != _key(y):
            break
        n += 1
    return n


class Stabilizer:
    """One per open segment (call `reset()` when a segment closes).

    A word becomes stable once two consecutive hypotheses agree on it and on every word before
    it (LocalAgreement-2, as in whisper_streaming). Stable words are kept verbatim even if a
    later hypothesis rewrites them; the later hypothesis only supplies the unstable tail.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._stable: list[str] = []
        self._previous_tail: list[str] | None = None

    @property
    def stable(self) -> str:
        return " ".join(self._stable)

    def update(self, text: str) -> StableSplit:
        words = text.split()
        tail = words[self._tail_start(words) :]
        if self._previous_tail is not None:
            agreed = _common_prefix(self._previous_tail, tail)
            self._stable.extend(tail[:agreed])
            tail = tail[agreed:]
        self._previous_tail = tail
        stable, unstable = " ".join(self._stable), " ".join(tail)
        return StableSplit(stable, unstable, f"{stable} {unstable}".strip())

    def _tail_start(self, words: list[str]) -> int:
        """Where the words after the stable text begin in a new hypothesis."""
        n = len(self._stable)
        if n == 0:
            return 0
        if _common_prefix(self._stable, words) == n:
            return n
        # The hypothesis rewrote part of the stable text: anchor on the last stable words and
        # take what follows the occurrence nearest the stable length, so the tail neither repeats
        # nor skips words.
        m = min(_ANCHOR_WORDS, n)
        anchor = [_key(w) for w in self._stable[-m:]]
        keys = [_key(w) for w in words]
        ends = sorted(range(m, len(keys) + 1), key=lambda end: abs(end - n))
        for end in ends:
            if keys[end - m : end] == anchor:
                return end
        return min(n, len(words))
