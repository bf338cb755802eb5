"""Which speech models are configured, as sessions record them and pages show them (from settings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BUNDLED_MODEL = "bundled:tiny.en"


def model_label(lane: str = "final", config: Mapping[str, Any] | None = None) -> str:
    """The model a lane runs, as stored with sessions: its configured name, or the bundled tiny.en.

    The realtime lane names REALTIME_MODEL when one is set (as `engine_for_lane` loads it). `config`
    defaults to settings.STT_INFERENCE.
    """
    if config is None:
        from django.conf import settings

        config = settings.STT_INFERENCE
    model = config.get("MODEL") or ""
    if lane == "realtime" and config.get("REALTIME_MODEL"):
        model = config["REALTIME_MODEL"]
    return model or BUNDLED_MODEL


def model_display_name(model: str) -> str:
    """A model as people read it: `tiny.en` for the bundled one, the last part of a name or path."""
    if model.startswith("bundled:"):
        return model.removeprefix("bundled:")
    return model.rstrip("/").rsplit("/", 1)[-1] or model


def languages_for_model(model: str) -> list[str] | None:
    """English-only for the bundled model and `*.en` names; None (let workers decide) otherwise."""
    if not model or model.rstrip("/").endswith(".en"):
        return ["en"]
    return None


def whisper_languages() -> list[str]:
    """Every language code a multilingual Whisper model produces (faster-whisper's tokenizer list)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return list(_LANGUAGE_CODES)


def model_languages(service: Any = None) -> list[str]:
    """The language codes the configured model produces: what a session's or a file's language may be.

    A running inference service's own list (the engine's), given its `service`; before one has
    started, an English-only model is known by its name and any other is taken for a multilingual
    Whisper.
    """
    if service is not None and getattr(service, "ready", False):
        codes = list(getattr(service, "supported_languages", None) or [])
        if codes:
            return codes
    from django.conf import settings

    return languages_for_model(settings.STT_INFERENCE["MODEL"]) or whisper_languages()
