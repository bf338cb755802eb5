"""The multipart fields of POST /v1/audio/transcriptions, checked as OpenAI checks them.

`transcription_form(data, files)` returns what the view needs or raises `OpenAIError` naming the
field (`param`) at fault. Field names follow the `openai` SDK: lists are sent as `name[]`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from speech.keyterms import KeytermError, clean_keyterms
from transcription.compat.openai import errors
from transcription.compat.openai.languages import WHISPER_NAMES
from transcription.compat.openai.model_names import is_accepted
from transcription.speech_models import languages_for_model, model_display_name, model_label
from transcription.uploads.accept import FileOptions

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
STREAMABLE_FORMATS = ("json", "text")
GRANULARITIES = ("segment", "word")
MAX_PROMPT_CHARS = 4000
_ISO_639_1 = re.compile(r"[a-z]{2}")
_TRUE = ("true", "1")
_FALSE = ("false", "0", "")


@dataclass(frozen=True)
class TranscriptionForm:
    upload: Any  # the UploadedFile
    model: str
    options: FileOptions
    response_format: str
    granularities: frozenset[str]
    temperature: float
    stream: bool

    @property
    def words(self) -> bool:
        """Word timings are given (and so computed) only in verbose_json, as OpenAI gives them."""
        return self.options.word_timestamps

    @property
    def segments(self) -> bool:
        return not self.granularities or "segment" in self.granularities


def _values(data: Any, name: str) -> list[str]:
    """A list field, as `name[]` (the SDK) or a repeated `name` (curl -F)."""
    return [*data.getlist(f"{name}[]"), *data.getlist(name)]


def _language(value: str, param: str = "language") -> str:
    code = value.strip().lower()
    if not _ISO_639_1.fullmatch(code):
        raise errors.invalid(
            param,
            f"Invalid language '{value}'. Language parameter must be specified in ISO-639-1 format.",
            "invalid_language_format",
        )
    model = model_label("final")
    producible = languages_for_model(settings.STT_INFERENCE["MODEL"]) or sorted(WHISPER_NAMES)
    if code not in producible or code not in WHISPER_NAMES:
        raise errors.invalid(
            param,
            f"Language '{code}' is not supported by this server's model ({model_display_name(model)}). "
            f"Supported values are: {', '.join(producible)}.",
            "unsupported_language",
        )
    return code


def _chosen_language(data: Any) -> str | None:
    """None: the server's default language; "": detect it among several."""
    language = str(data.get("language") or "").strip()
    if language:
        return _language(language)
    candidates = [_language(v, "languages") for v in _values(data, "languages") if v.strip()]
    if not candidates:
        return None
    return candidates[0] if len(set(candidates)) == 1 else ""


def _temperature(data: Any) -> float:
    raw = str(data.get("temperature") or "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise errors.invalid("temperature", f"Invalid temperature {raw!r}: it must be a number from 0 to 1.")
    return value


def _boolean(data: Any, name: str) -> bool:
    raw = str(data.get(name) or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise errors.invalid(name, f"Invalid value for '{name}': {raw!r} (expected true or false).")


def _response_format(data: Any) -> str:
    value = str(data.get("response_format") or "json").strip()
    if value == "diarized_json":
        raise errors.invalid(
            "response_format",
            "response_format 'diarized_json' is not supported by this server.",
            "unsupported_value",
        )
    if value not in RESPONSE_FORMATS:
        raise errors.invalid(
            "response_format",
            f"Invalid value for 'response_format': {value!r}. "
            f"Supported values are: {', '.join(RESPONSE_FORMATS)}.",
        )
    return value


def _granularities(data: Any) -> frozenset[str]:
    values = [v.strip() for v in _values(data, "timestamp_granularities")]
    unknown = [v for v in values if v not in GRANULARITIES]
    if unknown:
        raise errors.invalid(
            "timestamp_granularities",
            f"Invalid value for 'timestamp_granularities': {unknown[0]!r}. "
            "Supported values are: segment, word.",
        )
    return frozenset(values)


def _keyterms(data: Any) -> tuple[str, ...]:
    try:
        return clean_keyterms([v for v in _values(data, "keywords") if v.strip()])
    except KeytermError as exc:
        raise errors.invalid("keywords", exc.message, exc.code) from None


def _refuse_unsupported(data: Any) -> None:
    include = [v for v in _values(data, "include") if v.strip()]
    if include:
        raise errors.invalid(
            "include", f"include {include!r} is not supported by this server.", "unsupported_value"
        )
    if _values(data, "known_speaker_names") or _values(data, "known_speaker_references"):
        raise errors.invalid(
            "known_speaker_names",
            "Known speakers (diarization) are not supported by this server.",
            "unsupported_value",
        )
    chunking = str(data.get("chunking_strategy") or "").strip()
    if chunking and chunking != "auto":
        # "auto" is what every file gets here: cut at pauses found by voice activity detection.
        raise errors.invalid(
            "chunking_strategy",
            "Only chunking_strategy 'auto' is supported by this server.",
            "unsupported_value",
        )


def transcription_form(data: Any, files: Any) -> TranscriptionForm:
    """Checks in OpenAI's order: the file, the model, then the options."""
    upload = files.get("file")
    if upload is None:
        raise errors.missing("file")
    model = str(data.get("model") or "").strip()
    if not model:
        raise errors.missing("model")
    if not is_accepted(model):
        raise errors.model_not_found(model)
    response_format = _response_format(data)
    granularities = _granularities(data)
    stream = _boolean(data, "stream")
    if stream and response_format not in STREAMABLE_FORMATS:
        raise errors.invalid(
            "stream",
            f"Streaming is not supported with response_format '{response_format}'.",
            "unsupported_value",
        )
    prompt = str(data.get("prompt") or "")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise errors.invalid("prompt", f"The prompt is longer than {MAX_PROMPT_CHARS} characters.")
    _refuse_unsupported(data)
    language = _chosen_language(data)
    temperature = _temperature(data)
    keyterms = _keyterms(data)
    word_timestamps = response_format == "verbose_json" and "word" in granularities
    return TranscriptionForm(
        upload=upload,
        model=model,
        options=FileOptions(
            language=language, prompt=prompt.strip(), keyterms=keyterms, word_timestamps=word_timestamps
        ),
        response_format=response_format,
        granularities=granularities,
        temperature=temperature,
        stream=stream,
    )
