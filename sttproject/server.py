"""Daphne with an explicit allow-list of request headers whose names contain an underscore.

Daphne drops every such header (its guard against CVE-2015-0219: behind a WSGI-style adapter
`X_Auth_User` and `X-Auth-User` collapse into one variable, so a client could spoof a header a
proxy sets). /stt/v3/stream clients send their language as `lang_code`; only the names listed in
settings.STT_UNDERSCORE_HEADERS are passed on, under their own name, and every other underscore
header is still dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

RawHeaders = Iterable[tuple[bytes | str, Iterable[bytes | str]]]


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def allowed_underscore_headers(raw: RawHeaders, allowed: Iterable[str]) -> list[tuple[bytes, bytes]]:
    """The allow-listed underscore headers of a request, as ASGI (lower-case name, value) pairs."""
    names = {name.lower().encode("latin-1") for name in allowed if "_" in name}
    picked = []
    for name, values in raw:
        lowered = _bytes(name).lower()
        if lowered in names:
            picked.extend((lowered, _bytes(value)) for value in values)
    return picked


def _raw_headers(protocol: Any, scope: dict) -> RawHeaders:
    if scope["type"] == "websocket":
        # autobahn's parsed handshake: lower-case names, repeated headers joined with ", ".
        return ((name, [value]) for name, value in protocol.request.headers.items())
    return protocol.requestHeaders.getAllRawHeaders()


class HeaderAllowListServer(Server):
    """A Daphne server that adds the allow-listed underscore headers back into each scope."""

    def __init__(self, *args: Any, underscore_headers: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.underscore_headers = tuple(underscore_headers)

    def create_application(self, protocol: Any, scope: dict) -> Any:
        if self.underscore_headers and scope.get("type") in ("http", "websocket"):
            extra = allowed_underscore_headers(_raw_headers(protocol, scope), self.underscore_headers)
            if extra:
                scope = {**scope, "headers": [*scope["headers"], *extra]}
        return super().create_application(protocol, scope)


def run(argv: list[str], underscore_headers: Iterable[str]) -> None:
    """Daphne's command line (same arguments) with the allow-list server."""
    cli = CommandLineInterface()
    cli.server_class = functools.partial(HeaderAllowListServer, underscore_headers=tuple(underscore_headers))
    cli.run(argv)
