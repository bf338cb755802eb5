"""The transcript backend's phrase spotting: a configured phrase in a segment's text, and what follows."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRIM = " \t,.;:!?-–—…\"'"


@dataclass(frozen=True)
class Spotted:
    phrase: str
    start: int  # where in the text the phrase begins
    rest: str  # the text after the phrase (what the speaker said to the assistant)

    def leading(self, text: str) -> bool:
        """Nothing but punctuation comes before the phrase."""
        return not text[: self.start].strip(_TRIM)


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text)


class PhraseSpotter:
    """Whole-word, case- and punctuation-insensitive matches ("Hey, Jarvis!" matches "hey jarvis")."""

    def __init__(self, phrases: tuple[str, ...]) -> None:
        self.phrases = phrases
        self._patterns = [
            (phrase, re.compile(r"\b" + r"[\W_]+".join(map(re.escape, _tokens(phrase))) + r"\b", re.I))
            for phrase in phrases
            if _tokens(phrase)
        ]

    def spot(self, text: str) -> Spotted | None:
        """The earliest phrase in `text`, or None."""
        best: tuple[str, re.Match] | None = None
        for phrase, pattern in self._patterns:
            match = pattern.search(text)
            if match and (best is None or match.start() < best[1].start()):
                best = (phrase, match)
        if best is None:
            return None
        phrase, match = best
        rest = text[match.end() :].lstrip(_TRIM)
        return Spotted(phrase, match.start(), rest[:1].upper() + rest[1:])

    def strip(self, text: str) -> str:
        """`text` from after the phrase on, when a phrase is in it."""
        spotted = self.spot(text)
        return text if spotted is None else spotted.rest

    def strip_leading(self, text: str) -> str:
        """`text` without a phrase it begins with (Porcupine: the word's tail heard before the command)."""
        spotted = self.spot(text)
        return spotted.rest if spotted is not None and spotted.leading(text) else text

    @staticmethod
    def words_after(words: list[dict], text: str, rest: str) -> list[dict]:
        """The word timings of `rest`, the tail of `text`: the leading words that were cut are dropped."""
        cut = len(_tokens(text)) - len(_tokens(rest))
        kept, dropped = [], 0
        for word in words:
            if dropped < cut:
                dropped += len(_tokens(str(word.get("word", "")))) or 1
                continue
            kept.append(word)
        return kept
