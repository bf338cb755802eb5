"""The settings contract of /api/config: which settings exist, their bucket, validation, overrides.

Buckets (as in the reference server): `activeSessionSafe` settings apply at once, also
to open sessions; `newSessionOnly` ones apply to sessions started afterwards;
`startupOnly` ones (engines, models, devices) cannot change while the process runs.
Overrides live in the database so every Daphne process sees them.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from speech.wake.options import BOUNDS as WAKE_BOUNDS
from transcription.speech_models import model_label, model_languages

ACTIVE = "activeSessionSafe"
NEW_SESSION = "newSessionOnly"
STARTUP = "startupOnly"


@dataclass(frozen=True)
class Spec:
    name: str
    bucket: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    public: bool = True


def _specs() -> list[Spec]:
    inf = settings.STT_INFERENCE
    stream = settings.STT_STREAM
    wake = settings.STT_WAKE
    return [
        # Apply at once.
        Spec("max_sessions", ACTIVE, int, stream["MAX_SESSIONS"], 1, 100000),
        Spec("max_active_speakers", ACTIVE, int, stream["MAX_ACTIVE_SPEAKERS"], 1, 100000),
        Spec("realtime_interval_ms", ACTIVE, int, stream["REALTIME_INTERVAL_MS"], 100, 10000),
        Spec("max_realtime_queue_age_ms", ACTIVE, int, inf["MAX_REALTIME_QUEUE_AGE_MS"], 100, 60000),
        # Apply to sessions started afterwards.
        Spec("language", NEW_SESSION, str, stream["LANGUAGE"]),
        Spec("interim_results", NEW_SESSION, bool, stream["INTERIM_RESULTS"]),
        Spec("word_timestamps", NEW_SESSION, bool, stream["WORD_TIMESTAMPS"]),
        Spec("beam_size", NEW_SESSION, int, inf["BEAM_SIZE"], 1, 10),
        Spec("beam_size_realtime", NEW_SESSION, int, inf["BEAM_SIZE_REALTIME"], 1, 10),
        Spec("webrtc_sensitivity", NEW_SESSION, int, stream["WEBRTC_SENSITIVITY"], 0, 3),
        Spec("silero_sensitivity", NEW_SESSION, float, stream["SILERO_SENSITIVITY"], 0.05, 0.95),
        Spec("pre_recording_buffer_duration", NEW_SESSION, float, stream["PRE_RECORDING_BUFFER_S"], 0.0, 3.0),
        Spec("post_speech_silence_duration", NEW_SESSION, float, stream["POST_SPEECH_SILENCE_S"], 0.1, 5.0),
        Spec("min_length_of_recording", NEW_SESSION, float, stream["MIN_RECORDING_S"], 0.0, 10.0),
        Spec("min_gap_between_recordings", NEW_SESSION, float, stream["MIN_GAP_S"], 0.0, 10.0),
        Spec("early_transcription_on_silence", NEW_SESSION, float, stream["EARLY_TRANSCRIPTION_S"], 0.0, 5.0),
        Spec("max_segment_seconds", NEW_SESSION, float, stream["MAX_SEGMENT_S"], 2.0, 30.0),
        Spec("end_of_turn_silence", NEW_SESSION, float, stream["END_OF_TURN_SILENCE_S"], 0.0, 3.0),
        Spec("max_turn_silence", NEW_SESSION, float, stream["MAX_TURN_SILENCE_S"], 0.1, 5.0),
        Spec("end_of_turn_threshold", NEW_SESSION, float, stream["END_OF_TURN_THRESHOLD"], 0.0, 1.0),
        Spec("first_interim_ms", NEW_SESSION, int, stream["FIRST_INTERIM_MS"], 0, 5000),
        Spec("idle_timeout_s", NEW_SESSION, float, stream["IDLE_TIMEOUT_S"], 1.0, 3600.0),
        # Wake words (as in the reference server, all for new sessions; checked together below).
        Spec("wakeword_backend", NEW_SESSION, str, wake["wakeword_backend"]),
        Spec("wake_words", NEW_SESSION, str, wake["wake_words"]),
        *(Spec(name, NEW_SESSION, float, wake[name], lo, hi) for name, (_, lo, hi) in WAKE_BOUNDS.items()),
        # Fixed for the life of the process.
        Spec("inference_backend", STARTUP, str, inf["BACKEND"]),
        Spec("engine", STARTUP, str, inf["ENGINE"]),
        Spec("model", STARTUP, str, model_label("final")),
        Spec("realtime_model", STARTUP, str, model_label("realtime")),
        Spec("use_main_model_for_realtime", STARTUP, bool, inf["USE_MAIN_MODEL_FOR_REALTIME"]),
        Spec("device", STARTUP, str, inf["DEVICE"]),
        Spec("compute_type", STARTUP, str, inf["COMPUTE_TYPE"]),
        Spec("max_batch_size", STARTUP, int, inf["MAX_BATCH_SIZE"]),
        Spec("end_of_turn_model", STARTUP, bool, stream["END_OF_TURN_MODEL"]),
    ]


def specs() -> dict[str, Spec]:
    return {spec.name: spec for spec in _specs()}


_CACHE: dict[str, Any] = {"at": 0.0, "values": {}}
_CACHE_TTL_S = 2.0


def _overrides() -> dict[str, Any]:
    """DB overrides, re-read at most every couple of seconds (sync; call off the event loop)."""
    from transcription.models import RuntimeSetting

    now = time.monotonic()
    if now - _CACHE["at"] > _CACHE_TTL_S:
        _CACHE["values"] = dict(RuntimeSetting.objects.values_list("name", "value"))
        _CACHE["at"] = now
    return _CACHE["values"]


def invalidate() -> None:
    _CACHE["at"] = 0.0


def current() -> dict[str, Any]:
    """Effective values of every setting (defaults from settings, then overrides)."""
    table = specs()
    values = {name: spec.default for name, spec in table.items()}
    for name, value in _overrides().items():
        if name in table and table[name].bucket != STARTUP:
            values[name] = value
    return values


def contract() -> dict[str, dict[str, Any]]:
    values = current()
    buckets: dict[str, dict[str, Any]] = {ACTIVE: {}, NEW_SESSION: {}, STARTUP: {}}
    for name, spec in specs().items():
        entry = {"value": values[name], "type": spec.kind.__name__}
        if spec.minimum is not None:
            entry["min"], entry["max"] = spec.minimum, spec.maximum
        buckets[spec.bucket][name] = entry
    return buckets


def validate_value(spec: Spec, value: Any, *, languages: list[str] | None = None) -> tuple[Any, str | None]:
    """The value coerced to the spec's type, or an error reason (never an exception).

    `languages`: those the model produces (`speech_models.model_languages` of the running service);
    by default, what the configured model's name says."""
    if spec.kind is bool:
        if not isinstance(value, bool):
            return None, "must be true or false"
        return value, None
    if spec.kind in (int, float):
        return _number(spec, value)
    if not isinstance(value, str):
        return None, "must be a string"
    if spec.name == "language":
        return _language(value, model_languages() if languages is None else languages)
    return value, None


def _number(spec: Spec, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"must be a number ({spec.kind.__name__})"
    if isinstance(value, float) and not math.isfinite(value):
        return None, "must be a finite number"
    if spec.kind is int and isinstance(value, float):
        if not value.is_integer():
            return None, "must be a whole number"
        value = int(value)
    if spec.minimum is not None and not (spec.minimum <= value <= spec.maximum):
        return None, f"must be between {spec.minimum} and {spec.maximum}"
    try:
        return spec.kind(value), None
    except OverflowError:  # an integer past a float's range, for a setting without bounds
        return None, "must be a finite number"


# A language code, with at most one region subtag (`en`, `haw`, `en-US`): the region is dropped.
_LANGUAGE = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{2,8})?")


def _language(value: str, supported: list[str]) -> tuple[str | None, str | None]:
    """A language the model produces (its base code, lower case), or "" for detection ("" or "auto")."""
    text = value.strip()
    if text.lower() in ("", "auto"):
        return "", None
    match = _LANGUAGE.fullmatch(text)
    code = match.group(1).lower() if match else None
    if code not in supported:
        shown = ", ".join(supported[:20]) + (", ..." if len(supported) > 20 else "")
        return None, (
            f"{value[:20]!r} is not a language the configured model produces (setting STT_MODEL); "
            f'use "" or "auto" to detect it, or one of: {shown}'
        )
    return code, None


def validate_patch(
    changes: dict[str, Any], *, languages: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split a PATCH into accepted values and rejected names with reasons (`languages`: as for
    `validate_value`)."""
    table = specs()
    accepted: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    for name, raw in changes.items():
        spec = table.get(name)
        if spec is None:
            rejected[name] = "unknown setting"
        elif spec.bucket == STARTUP:
            rejected[name] = "startup-only: the inference workers are already initialized; restart to change"
        else:
            value, error = validate_value(spec, raw, languages=languages)
            if error:
                rejected[name] = f"invalid: {error}"
            else:
                accepted[name] = value
    _check_wake(accepted, rejected)
    return accepted, rejected


def _check_wake(accepted: dict[str, Any], rejected: dict[str, str]) -> None:
    """The wake-word settings together (words the backend can spot, a backend that loads)."""
    from transcription.wake import NAMES, WakeWordError, wake_check, wake_defaults

    changed = [name for name in NAMES if name in accepted]
    if not changed:
        return
    try:
        wake_check(wake_defaults({**current(), **accepted}))
    except WakeWordError as exc:
        for name in changed:
            accepted.pop(name)
            rejected[name] = f"invalid: {exc.message}"


def apply(changes: dict[str, Any], *, user=None) -> None:
    from transcription.models import RuntimeSetting

    for name, value in changes.items():
        RuntimeSetting.objects.update_or_create(name=name, defaults={"value": value, "updated_by": user})
    invalidate()
