"""Credentials out of the logs: Daphne's access log and every log record (settings.LOGGING).

API keys are refused in URLs, and temporary and resume tokens belong in one only for a WebSocket's
handshake, but a client may still put any of them there (`GET /api/v1/sessions/?api_key=stt_…`), and
Daphne's access log writes each request line in full. `redact` masks the value of every query
parameter named like a credential, and anything shaped like an API key (`stt_<prefix>_<secret>`: the
prefix, which admins see, is kept) or a JWT wherever it appears. The path and the other parameters
stay as they were. deploy/nginx's access log leaves query strings out altogether.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

MASK = "[redacted]"
# Query parameters (lower case, "-" read as "_") whose value is a secret.
SECRET_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "x_api_key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "auth",
        "bearer",
        "jwt",
        "password",
        "secret",
        "client_secret",
        "resume",
        "resume_token",
        "sig",
        "signature",
    }
)
_PAIR = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s\"']+)=(?P<value>[^&;#\s\"']*)")
# This project's keys: `<API_KEY_PREFIX>_<10 letters or digits>_<secret>` (accounts/services.py).
_API_KEY = re.compile(r"\b(?P<keep>[A-Za-z][A-Za-z0-9]{1,15}_[A-Za-z0-9]{10}_)[A-Za-z0-9_-]{20,}")
# A JWT: three base64url parts, the first a JSON header (`{"` is `eyJ`).
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")


def _pair(match: re.Match) -> str:
    name = unquote_plus(match["name"]).strip().lower().replace("-", "_")
    if name not in SECRET_PARAMS or not match["value"]:
        return match[0]
    return f"{match['lead']}{match['name']}={MASK}"


def redact(text: str) -> str:
    """`text` (a request line, a path with its query, a log message) with its credentials masked."""
    if "=" in text:
        text = _PAIR.sub(_pair, text)
    text = _API_KEY.sub(lambda m: m["keep"] + MASK, text)
    return _JWT.sub(MASK, text)


class RedactCredentials(logging.Filter):
    """A handler filter: the record's message with its credentials masked (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error handling
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
