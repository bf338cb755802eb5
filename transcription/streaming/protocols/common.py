"""What the wire protocols share: their error, JSON commands, ISO-8601 times, headers, model languages."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from accounts.keys import scope_headers


class ProtocolError(Exception):
    """A client message this protocol cannot take: `code` and `message` go back to the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# A command is a small JSON object (the largest, a start with key terms, is a few KiB); these bound
# what a client can make the server parse, and how deep what it gets back nests.
MAX_COMMAND_CHARS = 64 * 1024
MAX_COMMAND_DEPTH = 32


def loads_command(text: str, *, hint: str) -> Any:
    """A client's JSON text command, parsed; ProtocolError `invalid_json` (with `hint` as its message, or
    naming the depth limit) or `command_too_large`, never RecursionError (json.loads raises it past
    ~1000 levels) or another exception, so nothing reaches the log."""
    if len(text) > MAX_COMMAND_CHARS:
        raise ProtocolError("command_too_large", f"Commands are at most {MAX_COMMAND_CHARS} characters.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise ProtocolError("invalid_json", hint) from None
    if _depth_over(value, MAX_COMMAND_DEPTH):
        raise ProtocolError("invalid_json", f"Commands nest at most {MAX_COMMAND_DEPTH} levels deep.")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether arrays and objects in `value` nest deeper than `limit` (iterative: no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    """`2024-03-20T10:30:45.123Z` (UTC, milliseconds), the form the source documents show."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def parse_iso(value: Any, field: str) -> dt.datetime | None:
    """A client's ISO-8601 time (naive means UTC); None when absent; ProtocolError when malformed."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError("invalid_timestamp", f"{field} must be an ISO-8601 string.")
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ProtocolError(
            "invalid_timestamp", f"{field} must be an ISO-8601 time like 2024-03-20T10:30:35.123Z."
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    # Times are shifted by offsets within the stream and shown in UTC: keep clear of the calendar's ends.
    if not EARLIEST <= moment <= LATEST:
        raise ProtocolError("invalid_timestamp", f"{field} must lie between the years 1970 and 2200.")
    return moment


def check_language(language: str, languages: list[str] | None) -> str:
    """`language` if the configured model can produce it (None `languages`: any); ProtocolError if not."""
    if languages is not None and language not in languages:
        raise ProtocolError(
            "unsupported_language",
            f"Language {language!r:.20} is not supported by the configured model (setting STT_MODEL); "
            f"supported: {', '.join(languages[:20])}.",
        )
    return language


def header(scope: dict, *names: str) -> str | None:
    """The first of `names` (lower-case) present in the ASGI scope's headers."""
    found = scope_headers(scope)
    return next((found[name] for name in names if name in found), None)


def query_params(scope: dict) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    return dict(parse_qsl(text, keep_blank_values=True))


def model_languages(service: Any) -> list[str] | None:
    """The languages the inference service's model can produce (None: unknown, accept any)."""
    value = getattr(service, "supported_languages", None)
    if callable(value):
        value = value()
    return list(value) if value else None


def unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
