"""Everything this project does to Daphne, in one place: registered close codes, its message limit,
handshake refusals with an HTTP status, the underscore-header allow-list of `manage.py serve`, and the
hooks that run once its reactor runs. `install()` (from the app's ready(), so under plain `daphne` too)
puts the first three in place.

Underscore headers: Daphne drops every request header whose name has an underscore (its guard
against CVE-2015-0219: behind a WSGI-style adapter `X_Auth_User` and `X-Auth-User` collapse into one
variable, so a client could spoof a header a proxy sets). /stt/v3/stream clients send their language
as `lang_code`; only the names in settings.STT_UNDERSCORE_HEADERS are passed on, under their own
name, and every other underscore header is still dropped.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from sttproject.redact import redact

# Codes an endpoint may send (1004-1006 and 1015 are reserved and never sent on the wire).
REGISTERED = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def close_codes_install() -> None:
    """Close frames as the consumer asked for them: its code and its reason.

    Autobahn's `sendClose` accepts only 1000 and 3000-4999 and raises on anything else, so a consumer
    closing with 1013 ("try again later") or 1008 ("policy violation") would crash instead of closing.
    RFC 6455 section 7.4.1 defines these codes for endpoints to send. And Daphne passes only the code
    of an ASGI `websocket.close` on, dropping its `reason`, which /api/v1/ws (its only way to say why)
    and Deepgram's `/v1/listen` (`NET-0001: ...`) rely on. Such frames are written directly, with the
    reason cut to the 123 bytes a close frame may hold. Other closes keep Daphne's behaviour.
    """
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # another ASGI server
        return
    original_close = WebSocketProtocol.serverClose
    if getattr(original_close, "registered_codes", False):
        return
    original_reply = WebSocketProtocol.handle_reply

    def server_close(self, code=None, reason=None):
        if code in REGISTERED or (reason and code is not None):
            reason_utf8 = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode() if reason else None
            self.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)
        else:
            original_close(self, code)

    def handle_reply(self, message):
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            self.serverClose(code=message.get("code"), reason=message.get("reason") or None)
        else:
            original_reply(self, message)

    server_close.registered_codes = True
    WebSocketProtocol.serverClose = server_close
    WebSocketProtocol.handle_reply = handle_reply


def install() -> None:
    """Everything done to Daphne's WebSocket protocol, once per process (a no-op without Daphne)."""
    close_codes_install()
    message_limit_install()
    denial_responses_install()
    access_log_redaction_install()


# -- Daphne's message limit: our 1009 rather than a dropped connection -----------------------------

LIMIT_OPTIONS = ("maxMessagePayloadSize", "maxFramePayloadSize")


def raised_limits(options: dict[str, Any], limit: int) -> dict[str, Any]:
    """Daphne's WebSocket factory options with its message and frame limits raised to `limit` (a 0,
    no limit, stays), and a connection failed with a close frame rather than dropped."""
    raised = {**options, "failByDrop": False}
    for name in LIMIT_OPTIONS:
        if raised.get(name) and raised[name] < limit:
            raised[name] = limit
    return raised


def message_limit_install() -> None:
    """Daphne's own message limit (`--websocket-max-message-size`, 1 MiB) raised to
    settings.STT_STREAM["WS_MAX_MESSAGE_BYTES"] (STT_WS_MAX_MESSAGE_BYTES, above STT_MAX_PACKET_BYTES).

    Autobahn fails a message over Daphne's limit by dropping the TCP connection: the client sees no
    close frame (1006) and the session ends `closed_1006`, although every endpoint promises 1009 for
    a message over STT_MAX_PACKET_BYTES, which is 1 MiB too. With Daphne's limit above ours the
    consumer gets the message and closes with 1009 `message_too_big` after finalizing what was said.
    Past the raised limit autobahn still fails the connection, but with a close frame (1009).
    """
    try:
        from daphne.ws_protocol import WebSocketFactory
    except ImportError:  # another ASGI server
        return
    original = WebSocketFactory.setProtocolOptions
    if getattr(original, "raised_limits", False):
        return

    def set_protocol_options(self, **options):
        if any(name in options for name in LIMIT_OPTIONS):  # Daphne's call, as its server starts
            from django.conf import settings

            options = raised_limits(options, settings.STT_STREAM["WS_MAX_MESSAGE_BYTES"])
        original(self, **options)

    set_protocol_options.raised_limits = True
    WebSocketFactory.setProtocolOptions = set_protocol_options


# -- refusing a handshake with an HTTP status ------------------------------------------------------

DENIAL_EXTENSION = "websocket.http.response"  # ASGI's WebSocket Denial Response extension


def denial_responses_install() -> None:
    """Daphne takes `websocket.http.response.start` (the status; headers and body are not sent), so
    an application can refuse a handshake with 404 where Daphne only knows 403 (`websocket.close`)."""
    try:
        from autobahn.websocket.types import ConnectionDeny
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # another ASGI server
        return
    original_reply = WebSocketProtocol.handle_reply
    if getattr(original_reply, "denial_responses", False):
        return

    def handle_reply(self, message):
        kind = message.get("type")
        if kind == f"{DENIAL_EXTENSION}.start" and self.state == self.STATE_CONNECTING:
            self.denial_status = int(message.get("status", 403))
        elif kind == f"{DENIAL_EXTENSION}.body" and getattr(self, "denial_status", None):
            if not message.get("more_body") and hasattr(self, "handshake_deferred"):
                _deny(self, self.denial_status, ConnectionDeny)
        else:
            original_reply(self, message)

    handle_reply.denial_responses = True
    WebSocketProtocol.handle_reply = handle_reply


def _deny(protocol: Any, status: int, deny: type) -> None:
    """Daphne's serverReject, with `status` instead of 403."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Refused"
    protocol.handshake_deferred.errback(deny(code=status, reason=phrase))
    del protocol.handshake_deferred
    protocol.server.protocol_disconnected(protocol)
    address = protocol.client_addr
    client = f"{address[0]}:{address[1]}" if address else None
    protocol.server.log_action("websocket", "rejected", {"path": protocol.request.path, "client": client})


def denial_responses(scope: dict) -> bool:
    """Whether the server serving `scope` takes a `websocket.http.response.start`: it says so in the
    scope, or it is Daphne with the hook above."""
    if DENIAL_EXTENSION in (scope.get("extensions") or {}):
        return True
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return False
    hooked = getattr(WebSocketProtocol.handle_reply, "denial_responses", False)
    return hooked and running_reactor() is not None


def access_log_redaction_install() -> None:
    """Daphne's access log (stdout, or --access-log FILE) with credentials masked in each request's
    path and query string (sttproject.redact): `daphne` and `manage.py serve` both write it through
    AccessLogGenerator. Importing daphne.access installs no reactor."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # another ASGI server
        return
    original = AccessLogGenerator.__call__
    if getattr(original, "redacting", False):
        return

    def log_action(self, protocol, action, details):
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact(details["path"])}
        original(self, protocol, action, details)

    log_action.redacting = True
    AccessLogGenerator.__call__ = log_action


def running_reactor():
    """Daphne's Twisted reactor while it runs (None anywhere else: tests, commands, other servers)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    return reactor if reactor is not None and getattr(reactor, "running", False) else None


def when_serving(callback: Callable[[], None]) -> None:
    """Call `callback` inside the asyncio loop once Daphne's reactor runs (a no-op anywhere else)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or getattr(reactor, "running", False):
        return
    # callLater(0) runs inside the asyncio loop, after Twisted has installed its signal handlers.
    reactor.callWhenRunning(lambda: reactor.callLater(0, callback))


# -- manage.py serve: the underscore-header allow-list ---------------------------------------------

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


@functools.cache
def header_allow_list_server() -> type:
    """Daphne's Server, adding the allow-listed underscore headers back into each scope.

    Built on first use: importing daphne.server installs Twisted's reactor, which only `serve` wants.
    """
    from daphne.server import Server

    class HeaderAllowListServer(Server):
        def __init__(self, *args: Any, underscore_headers: Iterable[str] = (), **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.underscore_headers = tuple(underscore_headers)

        def create_application(self, protocol: Any, scope: dict) -> Any:
            if self.underscore_headers and scope.get("type") in ("http", "websocket"):
                extra = allowed_underscore_headers(_raw_headers(protocol, scope), self.underscore_headers)
                if extra:
                    scope = {**scope, "headers": [*scope["headers"], *extra]}
            return super().create_application(protocol, scope)

    return HeaderAllowListServer


def run(argv: list[str], underscore_headers: Iterable[str]) -> None:
    """Daphne's command line (same arguments) with the allow-list server."""
    from daphne.cli import CommandLineInterface

    cli = CommandLineInterface()
    server = header_allow_list_server()
    cli.server_class = functools.partial(server, underscore_headers=tuple(underscore_headers))
    cli.run(argv)
