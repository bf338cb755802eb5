"""Key terms: words a client names so recognition leans toward them (Whisper's hotwords prompt).

Validation lives here so every protocol, the upload API and named vocabularies share one rule.
"""

from __future__ import annotations

from collections.abc import Iterable

# Whisper's prompt holds at most 223 tokens; these limits keep a full list well inside it.
MAX_KEYTERMS = 50
MAX_KEYTERM_CHARS = 50
MAX_KEYTERMS_TOTAL_CHARS = 600


class KeytermError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def clean_keyterms(value: object) -> tuple[str, ...]:
    """A validated tuple of key terms (trimmed, duplicates dropped) or KeytermError."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise KeytermError("invalid_keyterms", "keyterms must be a list of strings.")
    terms: list[str] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise KeytermError("invalid_keyterms", "keyterms must be a list of strings.")
        term = " ".join(item.split())
        if not term:
            raise KeytermError("invalid_keyterms", "A key term must not be empty.")
        if len(term) > MAX_KEYTERM_CHARS:
            raise KeytermError(
                "keyterm_too_long", f"A key term is at most {MAX_KEYTERM_CHARS} characters: {term[:20]!r}..."
            )
        if term.casefold() not in seen:
            seen.add(term.casefold())
            terms.append(term)
    if len(terms) > MAX_KEYTERMS:
        raise KeytermError("too_many_keyterms", f"At most {MAX_KEYTERMS} key terms.")
    if sum(len(t) for t in terms) > MAX_KEYTERMS_TOTAL_CHARS:
        raise KeytermError(
            "too_many_keyterms", f"Key terms are at most {MAX_KEYTERMS_TOTAL_CHARS} characters in all."
        )
    return tuple(terms)


def hotwords(keyterms: Iterable[str]) -> str | None:
    """The text Whisper is primed with (None when there are no key terms)."""
    terms = [t for t in keyterms if t]
    return ", ".join(terms) if terms else None


def limits() -> dict[str, int]:
    return {
        "maxKeyterms": MAX_KEYTERMS,
        "maxKeytermChars": MAX_KEYTERM_CHARS,
        "maxKeytermsTotalChars": MAX_KEYTERMS_TOTAL_CHARS,
    }
