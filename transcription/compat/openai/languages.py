"""The languages OpenAI's transcription endpoint takes (ISO-639-1) and the names verbose_json gives.

OpenAI lists these 57 of Whisper's languages as supported; `verbose_json` names the language as
Whisper does ("english"). Which of them this server can produce depends on its model
(`transcription.speech_models.languages_for_model`).
"""

from __future__ import annotations

WHISPER_NAMES: dict[str, str] = {
    "af": "afrikaans",
    "ar": "arabic",
    "az": "azerbaijani",
    "be": "belarusian",
    "bg": "bulgarian",
    "bs": "bosnian",
    "ca": "catalan",
    "cs": "czech",
    "cy": "welsh",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "gl": "galician",
    "he": "hebrew",
    "hi": "hindi",
    "hr": "croatian",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "is": "icelandic",
    "it": "italian",
    "ja": "japanese",
    "kk": "kazakh",
    "kn": "kannada",
    "ko": "korean",
    "lt": "lithuanian",
    "lv": "latvian",
    "mi": "maori",
    "mk": "macedonian",
    "mr": "marathi",
    "ms": "malay",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sk": "slovak",
    "sl": "slovenian",
    "sr": "serbian",
    "sv": "swedish",
    "sw": "swahili",
    "ta": "tamil",
    "th": "thai",
    "tl": "tagalog",
    "tr": "turkish",
    "uk": "ukrainian",
    "ur": "urdu",
    "vi": "vietnamese",
    "zh": "chinese",
}


def language_name(code: str) -> str:
    """`english` for `en`; a code outside the list as it is."""
    base = (code or "").split("-")[0].lower()
    return WHISPER_NAMES.get(base, code or "")
