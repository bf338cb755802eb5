"""Which enrichment stages a session runs, and how a client's `enrichment` option object is read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

MAX_SPEAKERS_LIMIT = 20


class EnrichmentError(ValueError):
    """A client's enrichment option is invalid or not offered by this server (`code` for the wire)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class EnrichOptions:
    """Per-session enrichment: every stage off by default (server defaults may turn some on)."""

    speakers: bool = False
    max_speakers: int | None = None
    sentiment: bool = False
    sentiment_min_confidence: float = 0.0
    topics: bool = False
    topics_min_confidence: float = 0.0
    profanity_filter: bool = False
    redact: frozenset[str] = field(default_factory=frozenset)
    speaker_threshold: float | None = None  # server setting (None: the measured default)

    @property
    def filters(self) -> bool:
        return self.profanity_filter or bool(self.redact)

    @property
    def any(self) -> bool:
        return self.speakers or self.sentiment or self.topics or self.filters

    def public(self) -> dict[str, Any]:
        """The options in force, as the `/ws/transcribe` wire spells them."""
        return {
            "speakers": self.speakers,
            "maxSpeakers": self.max_speakers,
            "sentiment": self.sentiment,
            "sentimentMinConfidence": self.sentiment_min_confidence,
            "topics": self.topics,
            "topicsMinConfidence": self.topics_min_confidence,
            "profanityFilter": self.profanity_filter,
            "redact": sorted(self.redact),
        }

    def stored(self) -> dict[str, Any]:
        """The options as a session row stores them (and an upload job reads them back)."""
        return {
            "speakers": self.speakers,
            "max_speakers": self.max_speakers,
            "sentiment": self.sentiment,
            "sentiment_min_confidence": self.sentiment_min_confidence,
            "topics": self.topics,
            "topics_min_confidence": self.topics_min_confidence,
            "profanity_filter": self.profanity_filter,
            "redact": sorted(self.redact),
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any] | None) -> EnrichOptions:
        data = data or {}
        return cls(
            speakers=bool(data.get("speakers")),
            max_speakers=data.get("max_speakers"),
            sentiment=bool(data.get("sentiment")),
            sentiment_min_confidence=float(data.get("sentiment_min_confidence") or 0.0),
            topics=bool(data.get("topics")),
            topics_min_confidence=float(data.get("topics_min_confidence") or 0.0),
            profanity_filter=bool(data.get("profanity_filter")),
            redact=frozenset(data.get("redact") or ()),
        )


@dataclass(frozen=True)
class EnrichAvailability:
    """What this server offers (settings): a stage that is off cannot be asked for."""

    speakers: bool = True
    sentiment: bool = True
    topics: bool = True
    filters: bool = True


# Wire name -> (EnrichOptions field, kind). Both the camelCase of /ws/transcribe and the
# snake_case of /v1/stream and uploads are accepted.
_FIELDS: dict[str, tuple[str, str]] = {
    "speakers": ("speakers", "bool"),
    "diarize": ("speakers", "bool"),
    "speakerDiarization": ("speakers", "bool"),
    "speaker_diarization": ("speakers", "bool"),
    "maxSpeakers": ("max_speakers", "speakers"),
    "max_speakers": ("max_speakers", "speakers"),
    "sentiment": ("sentiment", "bool"),
    "sentimentMinConfidence": ("sentiment_min_confidence", "confidence"),
    "sentiment_min_confidence": ("sentiment_min_confidence", "confidence"),
    "topics": ("topics", "bool"),
    "topicsMinConfidence": ("topics_min_confidence", "confidence"),
    "topics_min_confidence": ("topics_min_confidence", "confidence"),
    "profanityFilter": ("profanity_filter", "bool"),
    "profanity_filter": ("profanity_filter", "bool"),
    "redact": ("redact", "redact"),
}


def parse_redact(value: Any) -> frozenset[str]:
    """A client's `redact` (a kind, a comma-separated string or a list, Deepgram's aliases: see
    speech.enrich.filters.parse_redact); `false`/null: none."""
    if value is None or value is False or value == "false":
        return frozenset()
    if value is True:
        value = "true"
    if not isinstance(value, str | list | tuple):
        raise EnrichmentError("invalid_option", "redact must be a list of kinds or a comma-separated string.")
    from speech.enrich.filters import parse_redact as parse

    try:
        return parse(value)
    except ValueError as exc:
        raise EnrichmentError("invalid_option", f"redact: {exc}.") from None


def parse_enrichment(
    raw: Any, base: EnrichOptions, available: EnrichAvailability = EnrichAvailability()
) -> EnrichOptions:
    """A client's `enrichment` object applied to the server defaults, validated field by field."""
    if not isinstance(raw, dict):
        raise EnrichmentError("invalid_option", "enrichment must be a JSON object.")
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _FIELDS:
            raise EnrichmentError(
                "invalid_option",
                f"Unknown enrichment option {name!r}; expected one of {', '.join(sorted(_FIELDS))}.",
            )
        attr, kind = _FIELDS[name]
        changes[attr] = _value(name, kind, value)
    options = replace(base, **changes)
    _check_available(options, available)
    return options


def _value(name: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise EnrichmentError("invalid_option", f"{name} must be true or false.")
        return value
    if kind == "confidence":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise EnrichmentError("option_out_of_range", f"{name} must be a number between 0 and 1.")
        return float(value)
    if kind == "speakers":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPEAKERS_LIMIT:
            raise EnrichmentError(
                "option_out_of_range", f"{name} must be a whole number between 1 and {MAX_SPEAKERS_LIMIT}."
            )
        return value
    return parse_redact(value)


def _check_available(options: EnrichOptions, available: EnrichAvailability) -> None:
    asked = {
        "speakers": options.speakers and not available.speakers,
        "sentiment": options.sentiment and not available.sentiment,
        "topics": options.topics and not available.topics,
        "profanityFilter/redact": options.filters and not available.filters,
    }
    missing = [name for name, refused in asked.items() if refused]
    if missing:
        raise EnrichmentError(
            "enrichment_unavailable", f"This server does not offer {', '.join(missing)} (server settings)."
        )
