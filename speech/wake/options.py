"""WakeOptions (per session, named as the reference server names them) and how they are read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PORCUPINE = "pvporcupine"
TRANSCRIPT = "transcript"
BACKENDS = (PORCUPINE, TRANSCRIPT)
# The reference's spellings of the Porcupine backend.
_ALIASES = {"pvp": PORCUPINE, "porcupine": PORCUPINE, PORCUPINE: PORCUPINE, TRANSCRIPT: TRANSCRIPT}
MAX_WORDS = 10
MAX_WORD_CHARS = 64
# (field, minimum, maximum) of the numeric settings, in the reference's names.
BOUNDS = {
    "wake_words_sensitivity": ("sensitivity", 0.0, 1.0),
    "wake_word_timeout": ("timeout_s", 0.5, 600.0),
    "wake_word_followup_window": ("followup_s", 0.0, 600.0),
    "wake_word_activation_delay": ("activation_delay_s", 0.0, 3600.0),
}


class WakeWordError(ValueError):
    """A wake-word setting that cannot be used; `setting` names it (the reference's name)."""

    def __init__(self, code: str, message: str, setting: str) -> None:
        super().__init__(message)
        self.code, self.message, self.setting = code, message, setting


@dataclass(frozen=True)
class WakeOptions:
    """Off unless both a backend and at least one word are set (the reference's wake_word_enabled)."""

    backend: str = ""
    words: tuple[str, ...] = ()
    sensitivity: float = 0.5
    timeout_s: float = 5.0  # after a detection, no voice this long: back to waiting
    followup_s: float = 0.0  # after a segment, voice this soon needs no new wake word (0 = off)
    activation_delay_s: float = 0.0  # the stream's first seconds need no wake word (0 = off)

    @property
    def enabled(self) -> bool:
        return bool(self.backend and self.words)

    @property
    def words_text(self) -> str:
        return ",".join(self.words)

    def public(self) -> dict[str, Any]:
        """The settings in the reference's names (its hello, ready and /api/config read these)."""
        return {
            "wakeword_backend": self.backend,
            "wake_words": self.words_text,
            "wake_words_sensitivity": self.sensitivity,
            "wake_word_timeout": self.timeout_s,
            "wake_word_followup_window": self.followup_s,
            "wake_word_activation_delay": self.activation_delay_s,
            "wake_word_enabled": self.enabled,
        }


def parse_words(value: Any, setting: str = "wake_words") -> tuple[str, ...]:
    """Comma-separated words (or a list), lower-cased and stripped, in order, without repeats."""
    if value is None:
        return ()
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise WakeWordError("invalid_option", f"{setting} must be a comma-separated string.", setting)
    words: list[str] = []
    for part in parts:
        word = " ".join(part.lower().split())
        if not word or word in words:
            continue
        if len(word) > MAX_WORD_CHARS:
            raise WakeWordError(
                "option_out_of_range", f"{setting}: at most {MAX_WORD_CHARS} characters a word.", setting
            )
        words.append(word)
    if len(words) > MAX_WORDS:
        raise WakeWordError("option_out_of_range", f"{setting}: at most {MAX_WORDS} wake words.", setting)
    return tuple(words)


def parse_backend(value: Any, setting: str = "wakeword_backend") -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or value.strip().lower() not in _ALIASES:
        raise WakeWordError(
            "invalid_option", f"{setting} must be one of {', '.join(BACKENDS)} (or empty: off).", setting
        )
    return _ALIASES[value.strip().lower()]


def parse_number(name: str, value: Any) -> float:
    _, low, high = BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WakeWordError("invalid_option", f"{name} must be a number.", name)
    if not low <= value <= high:
        raise WakeWordError("option_out_of_range", f"{name} must be between {low} and {high}.", name)
    return float(value)


def wake_options(raw: dict[str, Any], base: WakeOptions | None = None) -> WakeOptions:
    """Options from settings in the reference's names; absent ones keep `base`'s value.

    Words without a backend mean Porcupine (as in the reference); no words: off. WakeWordError
    names the setting.
    """
    base = base or WakeOptions()
    backend = parse_backend(raw["wakeword_backend"]) if "wakeword_backend" in raw else base.backend
    words = parse_words(raw["wake_words"]) if "wake_words" in raw else base.words
    if words and not backend:  # as in the reference: words alone mean Porcupine
        backend = PORCUPINE
    numbers = {BOUNDS[name][0]: parse_number(name, raw[name]) for name in BOUNDS if name in raw}
    base_numbers = {field: getattr(base, field) for field, _, _ in BOUNDS.values()}
    return WakeOptions(backend=backend, words=words, **{**base_numbers, **numbers})
