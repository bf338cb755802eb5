"""Deepgram's /v1/listen query parameters (live and pre-recorded), read into what this server runs.

Deepgram answers a parameter it cannot serve with `400 Bad Request`; here that is a `DeepgramError`
the live socket and the POST view each send in their own form. A feature Deepgram has and this
server lacks is refused, never silently ignored; flags that ask for nothing (`false`) are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from speech.enrich.options import EnrichmentError, EnrichOptions
from speech.keyterms import KeytermError, clean_keyterms
from transcription.enrichment import enrich_from_client

BAD_REQUEST = "Bad Request"
NO_SUCH_MODEL = "No such model/language/tier combination found."

LINEAR16 = "linear16"
# Deepgram's encodings (the SDK's ListenV1Encoding); only linear16 is decoded here.
DEEPGRAM_ENCODINGS = frozenset(
    ("linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus", "speex", "g729")
)
# Deepgram's model names (the SDK's ListenV1Model, without "custom"): each runs this server's model.
DEEPGRAM_MODELS = frozenset(
    (
        "nova-3",
        "nova-3-general",
        "nova-3-medical",
        "nova-2",
        "nova-2-general",
        "nova-2-meeting",
        "nova-2-finance",
        "nova-2-conversationalai",
        "nova-2-voicemail",
        "nova-2-video",
        "nova-2-medical",
        "nova-2-drivethru",
        "nova-2-automotive",
        "nova-2-phonecall",
        "nova-2-atc",
        "nova",
        "nova-general",
        "nova-phonecall",
        "nova-medical",
        "enhanced",
        "enhanced-general",
        "enhanced-meeting",
        "enhanced-phonecall",
        "enhanced-finance",
        "base",
        "general",
        "meeting",
        "phonecall",
        "finance",
        "conversationalai",
        "voicemail",
        "video",
    )
)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
MAX_CHANNELS = 8
# Our VAD cannot end a segment on less silence than this (Deepgram's default endpointing is 10 ms).
MIN_ENDPOINTING_MS = 100
MAX_ENDPOINTING_MS = 60_000

# Deepgram features this server does not have: asked for (true, or any value), they are refused.
LACKING_FLAGS = (
    "multichannel",
    "numerals",
    "dictation",
    "detect_entities",
    "filler_words",
    "measurements",
    "summarize",
    "topics",
    "intents",
    "sentiment",
    "paragraphs",
    "detect_language",
)
LACKING_VALUES = (
    "callback",
    "search",
    "replace",
    "custom_topic",
    "custom_intent",
    "language_hint",
    "diarize_model",
)
# Accepted and without effect here: bookkeeping fields of Deepgram's.
IGNORED = (
    "tag",
    "extra",
    "mip_opt_out",
    "version",
    "callback_method",
    "custom_topic_mode",
    "custom_intent_mode",
)


class DeepgramError(Exception):
    """A request Deepgram would refuse: `err_code` / `err_msg` and the HTTP status it would answer."""

    def __init__(self, err_msg: str, *, err_code: str = BAD_REQUEST, status: int = 400) -> None:
        super().__init__(err_msg)
        self.err_code = err_code
        self.err_msg = err_msg
        self.status = status


@dataclass(frozen=True)
class ListenParams:
    """The query parameters as this server runs them (None: not given, the server's default)."""

    model: str | None = None
    encoding: str | None = None  # None: a container (pre-recorded; live: a WAV header is read)
    sample_rate: int | None = None
    channels: int = 1
    language: str | None = None  # Whisper's language; "" = detect (language=multi); None: default
    language_tag: str | None = None  # as asked (BCP-47)
    interim_results: bool = False
    punctuate: bool = False
    smart_format: bool = False
    endpointing_ms: int | None = None
    endpointing_off: bool = False
    utterance_end_ms: int | None = None
    vad_events: bool = False
    diarize: bool = False
    utterances: bool = False
    utt_split_s: float = 0.8
    keyterms: tuple[str, ...] = ()
    enrich: EnrichOptions | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def punctuated(self) -> bool:
        """Deepgram's transcripts are lower-case and unpunctuated unless punctuate or smart_format."""
        return self.punctuate or self.smart_format


def query_pairs(query_string: bytes | str) -> list[tuple[str, str]]:
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return parse_qsl(text, keep_blank_values=True)


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", ""):
        return True
    if lowered in ("false", "0"):
        return False
    raise DeepgramError(f"Bad Request: {name} must be true or false, got {value!r:.40}.")


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise DeepgramError(f"Bad Request: {name} must be an integer in {low}..{high}, got {value!r:.40}.")
    return number


def _float(name: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise DeepgramError(f"Bad Request: {name} must be a number in {low:g}..{high:g}, got {value!r:.40}.")
    return number


def check_model(name: str, own_label: str) -> str:
    """`name` if it is one of Deepgram's models (all run this server's) or the server's own label."""
    if name in DEEPGRAM_MODELS or name == own_label:
        return name
    raise DeepgramError(
        f"{NO_SUCH_MODEL} Model {name!r:.40} is unknown; use a Deepgram model name such as nova-3 "
        f"(each runs this server's {own_label})."
    )


def check_language(params: ListenParams, supported: list[str] | None) -> ListenParams:
    """Refuse a language the configured model cannot produce (the bundled tiny.en is English-only)."""
    if params.language is None or supported is None:
        return params
    if params.language == "" and len(supported) < 2:
        raise DeepgramError(
            f"{NO_SUCH_MODEL} language=multi needs a multilingual model; this server's (setting "
            f"STT_MODEL) transcribes {', '.join(supported[:20])} only."
        )
    if params.language and params.language not in supported:
        raise DeepgramError(
            f"{NO_SUCH_MODEL} The model this server runs (setting STT_MODEL) cannot transcribe "
            f"{params.language_tag!r:.20}; it supports {', '.join(supported[:20])}."
        )
    return params


def _language(tag: str) -> str:
    tag = tag.strip()
    if tag.lower() == "multi":
        return ""
    base = tag.split("-")[0].lower()
    if not base.isalpha() or not 2 <= len(base) <= 3:
        raise DeepgramError(f"Bad Request: language {tag!r:.20} is not a BCP-47 language tag.")
    return base


def _endpointing(params: dict, value: str) -> None:
    if value.strip().lower() == "false":
        params["endpointing_off"] = True
        return
    if value.strip().lower() == "true":
        return  # Deepgram's default endpointing: the server's end-of-speech setting
    ms = _int("endpointing", value, 0, MAX_ENDPOINTING_MS)
    params["endpointing_ms"] = max(ms, MIN_ENDPOINTING_MS)


def _enrichment(pairs: dict[str, str]) -> EnrichOptions | None:
    raw: dict[str, object] = {}
    if _bool("diarize", pairs.get("diarize", "false")):
        raw["speaker_diarization"] = True
    if "profanity_filter" in pairs and _bool("profanity_filter", pairs["profanity_filter"]):
        raw["profanity_filter"] = True
    if not raw:
        return None
    try:
        return enrich_from_client(raw)
    except EnrichmentError as exc:
        raise DeepgramError(f"Bad Request: {exc.message}") from None


def parse_params(pairs: list[tuple[str, str]], *, own_model: str) -> ListenParams:
    """The request's query parameters, validated (DeepgramError when Deepgram's would be refused)."""
    single: dict[str, str] = {}
    keyterms: list[str] = []
    for name, value in pairs:
        if name in ("keyterm", "keywords"):
            # A keyword's intensifier (`term:2`) has no meaning for Whisper: the term alone is kept.
            keyterms.append(value.rsplit(":", 1)[0] if name == "keywords" and ":" in value else value)
        else:
            single[name] = value
    for name in LACKING_FLAGS:
        if name in single and _bool(name, single[name]):
            raise DeepgramError(f"Bad Request: {name} is not supported by this server.")
    for name in LACKING_VALUES:
        if single.get(name, "").strip():
            raise DeepgramError(f"Bad Request: {name} is not supported by this server.")
    if single.get("redact", "").strip().lower() not in ("", "false"):
        raise DeepgramError("Bad Request: redact is not supported by this server.")
    out: dict[str, object] = {}
    if "model" in single:
        out["model"] = check_model(single["model"].strip(), own_model)
    if "encoding" in single:
        encoding = single["encoding"].strip().lower()
        if encoding != LINEAR16:
            known = "is not supported by this server" if encoding in DEEPGRAM_ENCODINGS else "is unknown"
            raise DeepgramError(f"Bad Request: encoding {encoding!r:.20} {known}; send linear16.")
        out["encoding"] = encoding
        if "sample_rate" not in single:
            raise DeepgramError("Bad Request: sample_rate is required when encoding is given.")
    if "sample_rate" in single:
        out["sample_rate"] = _int("sample_rate", single["sample_rate"], MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    if "channels" in single:
        out["channels"] = _int("channels", single["channels"], 1, MAX_CHANNELS)
    if "language" in single and single["language"].strip():
        out["language"] = _language(single["language"])
        out["language_tag"] = single["language"].strip()
    for name in ("interim_results", "punctuate", "smart_format", "vad_events", "utterances"):
        if name in single:
            out[name] = _bool(name, single[name])
    out["diarize"] = _bool("diarize", single.get("diarize", "false"))
    if "endpointing" in single:
        _endpointing(out, single["endpointing"])
    if "utterance_end_ms" in single:
        out["utterance_end_ms"] = _int("utterance_end_ms", single["utterance_end_ms"], 1, MAX_ENDPOINTING_MS)
    if "utt_split" in single:
        out["utt_split_s"] = _float("utt_split", single["utt_split"], 0.0, 60.0)
    try:
        out["keyterms"] = clean_keyterms(keyterms)
    except KeytermError as exc:
        raise DeepgramError(f"Bad Request: keyterm: {exc.message}") from None
    out["enrich"] = _enrichment(single)
    out["extra"] = {name: single[name] for name in IGNORED if name in single}
    return ListenParams(**out)
