"""Wake words at the edges: the server's settings (and /api/config overrides) as defaults, a
client's options read, the start-up check and what the live page offers."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from speech.wake import porcupine
from speech.wake.options import PORCUPINE, WakeOptions, WakeWordError, wake_options

__all__ = ["NAMES", "WakeWordError", "wake_check", "wake_defaults", "wake_from_client", "wake_offer"]

NAMES = tuple(settings.STT_WAKE)  # the reference's setting names, in order


def wake_check(options: WakeOptions) -> WakeOptions:
    """`options` when their backend can run them; WakeWordError naming the setting otherwise."""
    if options.enabled and options.backend == PORCUPINE:
        porcupine.check(options.words)  # loads Porcupine: its failure names wakeword_backend
    return options


def wake_defaults(values: dict[str, Any] | None = None) -> WakeOptions:
    """The server's wake-word options: STT_WAKE with the runtime overrides in `values` (by name)."""
    raw = dict(settings.STT_WAKE)
    if values:
        raw.update({name: values[name] for name in NAMES if name in values})
    return wake_options(raw)


def wake_from_client(raw: dict[str, Any], base: WakeOptions) -> WakeOptions:
    """A client's settings (reference names) over `base`; WakeWordError with a code and the setting."""
    return wake_check(wake_options(raw, base))


def startup_error() -> str | None:
    """Why the configured wake-word settings cannot run (stops start-up), or None."""
    try:
        wake_check(wake_defaults())
    except WakeWordError as exc:
        return f"STT_WAKE ({exc.setting}): {exc.message}"
    return None


def wake_offer(values: dict[str, Any]) -> dict[str, Any]:
    """What the live page offers: the server's words and settings, and Porcupine's keywords."""
    try:
        keywords = porcupine.keywords()
    except WakeWordError:
        keywords = []
    try:
        defaults = wake_defaults(values)
    except WakeWordError:
        defaults = WakeOptions()
    return {**defaults.public(), "porcupine_keywords": keywords}
