"""Which `model` names this API accepts: OpenAI's transcription models and our own labels.

Every name runs the server's configured final model; the name is only checked, never switched on.
`gpt-4o-transcribe-diarize` is not accepted: it promises speaker-labelled `diarized_json`.
"""

from __future__ import annotations

import time

from transcription.speech_models import model_display_name, model_label

OPENAI_TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-transcribe",
)
# `created` of the listed models: when this process started serving them.
_LOADED_AT = int(time.time())
OWNER = "system"


def accepted_models() -> list[str]:
    """OpenAI's names first, then the configured model's label and its short name (`tiny.en`)."""
    label = model_label("final")
    names = [*OPENAI_TRANSCRIPTION_MODELS, label, model_display_name(label)]
    return list(dict.fromkeys(names))


def is_accepted(name: str) -> bool:
    return name in accepted_models()


def model_object(name: str) -> dict:
    return {"id": name, "object": "model", "created": _LOADED_AT, "owned_by": OWNER}
