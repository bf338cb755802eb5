"""Where credentials are read from a request.

API keys come in headers only, never in a URL: `Authorization: Bearer|Token <key>`, a bare
`Authorization: <key>` (AssemblyAI's SDK sends it so), or `X-API-Key`. A browser cannot set headers
on a WebSocket, so a temporary stream token (accounts/tokens.py) may also come in the query string
(`token=`, `access_token=`) or as the subprotocols `token, <token>` / `bearer, <token>` (Deepgram's
browser form). Anything else found there, a key above all, is refused by the middleware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

# Header names (lower-case) that may carry a raw key, besides "Authorization".
KEY_HEADERS = ("x-api-key", "x-api-key-id")
# Query parameters and subprotocol names that may carry a temporary token.
TOKEN_QUERY_PARAMS = ("token", "access_token")
TOKEN_SUBPROTOCOLS = ("token", "bearer")


@dataclass(frozen=True)
class Presented:
    """A credential as the client presented it: `where` is header, query or subprotocol."""

    value: str
    where: str
    subprotocol: str | None = None  # the subprotocol to answer with, when it came in one

    @property
    def in_url(self) -> bool:
        return self.where != "header"


def key_from_headers(headers: Iterable[tuple[str, str]]) -> str | None:
    """The raw credential presented in headers, or None when the client presented none."""
    found: dict[str, str] = {}
    for name, value in headers:
        found.setdefault(name.lower(), value)
    auth = found.get("authorization", "").strip()
    scheme, _, credentials = auth.partition(" ")
    # "Token" too: Deepgram's clients (and seeds/003's) send `Authorization: Token <key>`.
    if scheme.lower() in ("bearer", "token") and credentials.strip():
        return credentials.strip()
    if auth and not credentials:
        return auth  # AssemblyAI: the key (or token) itself, no scheme
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


def _from_subprotocols(offered: Iterable[str]) -> Presented | None:
    offered = [value.strip() for value in offered]
    for index, name in enumerate(offered[:-1]):
        if name.lower() in TOKEN_SUBPROTOCOLS and offered[index + 1]:
            return Presented(offered[index + 1], "subprotocol", subprotocol=name)
    return None


def _from_query(scope: dict) -> Presented | None:
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name.lower() in TOKEN_QUERY_PARAMS and value.strip():
            return Presented(value.strip(), "query")
    return None


def credential_from_asgi_scope(scope: dict) -> Presented | None:
    """What a WebSocket client presented: a header first, then a subprotocol, then the query string."""
    in_header = key_from_asgi_scope(scope)
    if in_header is not None:
        return Presented(in_header, "header")
    return _from_subprotocols(scope.get("subprotocols") or ()) or _from_query(scope)
