"""Channels middleware: authentication by API key or temporary token, and an origin check that lets
credentialed clients in."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier

from accounts import ratelimit
from accounts.keys import Presented, credential_from_asgi_scope, scope_headers
from accounts.origins import origin_allowed
from accounts.services import ApiKeyError, RateLimited, api_key_authenticate, auth_guard, connect_guard
from accounts.tokens import TokenError, looks_like_token, stream_token_check

KEY_IN_URL = TokenError(
    "key_not_allowed_here",
    "API keys are accepted only in a header; in a URL or a subprotocol, use a temporary token "
    "(POST /api/v1/tokens).",
)


def client_address(scope: dict) -> str | None:
    """The client's address: Daphne's scope["client"], which `--proxy-headers` (deploy/) takes from
    the X-Forwarded-For that nginx sets; None when unknown (a Unix socket, an in-process test)."""
    client = scope.get("client")
    return str(client[0]) if client else None


@database_sync_to_async
def _authenticate(presented: Presented, address: str | None):
    """(user, api key or None, token row or None, error or None) for what the client presented.

    Every credential is refused unchecked while the address is locked for failed checks (a forged
    token counts as one; a used or expired token, a key in a URL do not)."""
    try:
        connect_guard(address=address)
    except RateLimited as exc:
        return None, None, None, exc
    if looks_like_token(presented.value):
        try:
            auth_guard(address=address, prefix=None)
            token = stream_token_check(raw=presented.value)  # consumed once the stream is admitted
        except RateLimited as exc:
            return None, None, None, exc
        except TokenError as exc:
            if exc.code == "invalid_token":
                ratelimit.auth_failed(address=address, prefix=None, via="stream_token")
            return None, None, None, exc
        return token.user, None, token, None
    if presented.in_url:
        return None, None, None, KEY_IN_URL
    try:
        key = api_key_authenticate(raw_key=presented.value, address=address)
    except ApiKeyError as exc:  # RateLimited too: its close code is 4429
        return None, None, None, exc
    return key.owner, key, None, None


@database_sync_to_async
def _connect_refusal(address: str | None) -> RateLimited | None:
    try:
        connect_guard(address=address)
    except RateLimited as exc:
        return exc
    return None


class ApiKeyMiddleware:
    """Sets scope["user"], scope["api_key"] and scope["stream_token"] from what the client presented.

    Sits inside AuthMiddlewareStack so a key or token, when presented, wins over the cookie. A bad
    one leaves scope["auth_error"] (`.code`, `.message`) for the consumer to close with 4001 in its
    protocol's form; scope checks (4003) belong to each endpoint. A token offered as a subprotocol
    leaves scope["ws_subprotocol"], the name the server must answer the handshake with.

    New connections count per client address (STT_WS_CONNECT_LIMIT), and failed checks per address
    and key (accounts/ratelimit.py): past either limit scope["auth_error"] is a RateLimited, whose
    `close_code` is 4429, and the connection is not authenticated at all.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            scope = dict(scope)
            scope["api_key"] = None
            scope["stream_token"] = None
            presented = credential_from_asgi_scope(scope)
            address = client_address(scope)
            if presented is not None:
                scope["ws_subprotocol"] = presented.subprotocol
                user, key, token, error = await _authenticate(presented, address)
                if error is None:
                    scope["user"], scope["api_key"], scope["stream_token"] = user, key, token
                else:
                    scope["auth_error"] = error
                    scope["user"] = None
            else:
                refused = await _connect_refusal(address)  # a cookie session: counted all the same
                if refused is not None:
                    scope["auth_error"] = refused
                    scope["user"] = None
        return await self.app(scope, receive, send)


class BrowserOriginValidator:
    """A connection riding on a cookie must come from an allowed origin: scheme, host and port
    (accounts/origins.py: the server's own origin, ALLOWED_HOSTS on the default port, CSRF_TRUSTED_ORIGINS).

    The origin check protects the cookie: a page elsewhere must not open a stream in a signed-in
    user's name. A client that presents a credential (a key header, a temporary token) is who that
    credential says, wherever its page comes from, so it is let in with or without an Origin (a
    token is exactly how another site's page streams). A connection with neither an Origin nor a
    credential is refused: it could only be riding on a cookie.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and credential_from_asgi_scope(scope) is None:
            origin = scope_headers(scope).get("origin")
            if origin is None or not origin_allowed(origin, scope):
                return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)
