"""Enrichment at the edges: the server's settings as defaults and limits, a client's options read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.conf import settings

from speech.enrich.options import (
    EnrichAvailability,
    EnrichmentError,
    EnrichOptions,
    parse_enrichment,
    parse_redact,
)

__all__ = ["EnrichmentError", "enrich_defaults", "enrich_from_client"]

_DEFAULT_STAGES = ("speakers", "sentiment", "topics", "profanity_filter")


def _availability() -> EnrichAvailability:
    cfg = settings.STT_ENRICHMENT
    return EnrichAvailability(
        speakers=cfg["SPEAKERS"], sentiment=cfg["SENTIMENT"], topics=cfg["TOPICS"], filters=cfg["FILTERS"]
    )


def _always_redacted() -> frozenset[str]:
    return parse_redact(settings.STT_ENRICHMENT["REDACT_ALWAYS"] or None)


def enrich_defaults() -> EnrichOptions:
    """What a session runs when its client says nothing (STT_ENRICH_DEFAULT, STT_REDACT_ALWAYS)."""
    cfg = settings.STT_ENRICHMENT
    available = _availability()
    on = {stage for stage in cfg["DEFAULT"] if stage in _DEFAULT_STAGES}
    return EnrichOptions(
        speakers="speakers" in on and available.speakers,
        sentiment="sentiment" in on and available.sentiment,
        topics="topics" in on and available.topics,
        profanity_filter="profanity_filter" in on and available.filters,
        redact=_always_redacted(),
        speaker_threshold=cfg["SPEAKER_THRESHOLD"] or None,
    )


def enrich_from_client(raw: Any, base: EnrichOptions | None = None) -> EnrichOptions:
    """A client's enrichment object over the defaults (EnrichmentError with a code when invalid);
    kinds the server always redacts stay redacted."""
    options = parse_enrichment(raw, base or enrich_defaults(), _availability())
    return replace(options, redact=options.redact | _always_redacted())
