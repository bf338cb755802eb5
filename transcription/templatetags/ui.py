"""Template filters of the web UI: durations, clock times and byte sizes in words people read."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """1 h 05 min, 12 min 30 s, 42 s, 0.4 s."""
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    return f"{secs} s"


@register.filter
def minutes(seconds: float | None) -> str:
    """Whole minutes with a thousands separator (quota figures)."""
    if seconds is None:
        return "—"
    value = float(seconds) / 60.0
    if 0 < value < 10:
        return f"{value:.1f}"
    return f"{round(value):,}"


@register.filter
def clock(seconds: float | None) -> str:
    """An offset in the session's audio as m:ss.s (h:mm:ss.s past an hour)."""
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    hours, rest = divmod(seconds, 3600)
    mins, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(mins):02d}:{secs:04.1f}"
    return f"{int(mins)}:{secs:04.1f}"


@register.filter
def filesize(num: int | None) -> str:
    if num is None:
        return "—"
    size = float(num)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{size:.1f} GB"


SOURCE_LABELS = {
    "ws_transcribe": "Live stream",
    "api_v1_ws": "API stream (v1)",
    "stt_v3": "API stream (v3)",
    "v1_stream": "Control stream",
    "upload": "Upload",
}

END_REASONS = {
    "client_disconnected": "Stopped",
    "stop": "Stopped",
    "max_session_length": "Length limit reached",
    "quota_exhausted": "Monthly quota used up",
    "too_fast": "Audio too fast",
    "too_many_errors": "Too many bad messages",
    "message_too_big": "Packet too large",
    "server_shutdown": "Server restarted",
}


@register.filter
def source_label(endpoint: str) -> str:
    """A session's endpoint in words ("Live stream"), not as a path."""
    return SOURCE_LABELS.get(endpoint, endpoint or "—")


@register.filter
def end_reason(reason: str) -> str:
    if not reason:
        return "—"
    if reason in END_REASONS:
        return END_REASONS[reason]
    if reason.startswith("closed_"):
        return f"Connection closed ({reason.removeprefix('closed_')})"
    return reason.replace("_", " ").capitalize()


@register.filter
def pct(value: float | str | None) -> int:
    """A percentage as a whole number from 0 to 100: a bar's `pct-N` class (static/css/app.css),
    as the Content-Security-Policy allows no inline style."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return 0 if number != number else max(0, min(100, round(number)))


@register.filter
def sample_rate(hz: int | None) -> str:
    if not hz:
        return "—"
    return f"{hz / 1000:g} kHz"


# Names for the languages Whisper knows; a multilingual model offers all of them.
LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "de": "German", "es": "Spanish", "ru": "Russian", "ko": "Korean",
    "fr": "French", "ja": "Japanese", "pt": "Portuguese", "tr": "Turkish", "pl": "Polish",
    "ca": "Catalan", "nl": "Dutch", "ar": "Arabic", "sv": "Swedish", "it": "Italian",
    "id": "Indonesian", "hi": "Hindi", "fi": "Finnish", "vi": "Vietnamese", "he": "Hebrew",
    "uk": "Ukrainian", "el": "Greek", "ms": "Malay", "cs": "Czech", "ro": "Romanian", "da": "Danish",
    "hu": "Hungarian", "ta": "Tamil", "no": "Norwegian", "th": "Thai", "ur": "Urdu", "hr": "Croatian",
    "bg": "Bulgarian", "lt": "Lithuanian", "la": "Latin", "cy": "Welsh", "sk": "Slovak",
    "te": "Telugu", "fa": "Persian", "lv": "Latvian", "bn": "Bengali", "sr": "Serbian",
    "az": "Azerbaijani", "sl": "Slovenian", "et": "Estonian", "mk": "Macedonian", "is": "Icelandic",
    "hy": "Armenian", "ne": "Nepali", "mn": "Mongolian", "bs": "Bosnian", "kk": "Kazakh",
    "sq": "Albanian", "sw": "Swahili", "gl": "Galician", "mr": "Marathi", "pa": "Punjabi",
    "af": "Afrikaans", "ka": "Georgian", "be": "Belarusian", "tl": "Tagalog", "eu": "Basque",
}  # fmt: skip


@register.filter
def language_name(code: str) -> str:
    """ "de" -> "German"; unknown codes are shown as they are."""
    return LANGUAGE_NAMES.get(code, code) if code else "—"
