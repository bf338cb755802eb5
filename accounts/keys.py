"""Where API keys are read from a request: headers only, never the query string."""

from __future__ import annotations

from collections.abc import Iterable

# Header names (lower-case) that may carry a raw key, besides "Authorization: Bearer".
KEY_HEADERS = ("x-api-key", "x-api-key-id")


def key_from_headers(headers: Iterable[tuple[str, str]]) -> str | None:
    """The raw key presented in headers, or None when the client presented none."""
    found: dict[str, str] = {}
    for name, value in headers:
        found.setdefault(name.lower(), value)
    auth = found.get("authorization", "")
    scheme, _, credentials = auth.partition(" ")
    # "Token" too: clients of the seeds/003 API (after Deepgram) send `Authorization: Token <key>`.
    if scheme.lower() in ("bearer", "token") and credentials.strip():
        return credentials.strip()
    for name in KEY_HEADERS:
        if found.get(name, "").strip():
            return found[name].strip()
    return None


def scope_headers(scope: dict) -> dict[str, str]:
    """An ASGI scope's request headers by lower-case name (the first of a repeated one)."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        found.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def key_from_asgi_scope(scope: dict) -> str | None:
    return key_from_headers(scope_headers(scope).items())
