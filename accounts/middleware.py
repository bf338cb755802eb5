"""Channels middleware: authentication by API key or temporary token, and an origin check that lets
credentialed clients in."""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain

from accounts.keys import Presented, credential_from_asgi_scope, scope_headers
from accounts.services import ApiKeyError, api_key_authenticate
from accounts.tokens import TokenError, looks_like_token, stream_token_check

KEY_IN_URL = TokenError(
    "key_not_allowed_here",
    "API keys are accepted only in a header; in a URL or a subprotocol, use a temporary token "
    "(POST /api/v1/tokens).",
)


@database_sync_to_async
def _authenticate(presented: Presented):
    """(user, api key or None, token row or None, error or None) for what the client presented."""
    if looks_like_token(presented.value):
        try:
            token = stream_token_check(raw=presented.value)  # consumed once the stream is admitted
        except TokenError as exc:
            return None, None, None, exc
        return token.user, None, token, None
    if presented.in_url:
        return None, None, None, KEY_IN_URL
    try:
        key = api_key_authenticate(raw_key=presented.value)
    except ApiKeyError as exc:
        return None, None, None, exc
    return key.owner, key, None, None


class ApiKeyMiddleware:
    """Sets scope["user"], scope["api_key"] and scope["stream_token"] from what the client presented.

    Sits inside AuthMiddlewareStack so a key or token, when presented, wins over the cookie. A bad
    one leaves scope["auth_error"] (`.code`, `.message`) for the consumer to close with 4001 in its
    protocol's form; scope checks (4003) belong to each endpoint. A token offered as a subprotocol
    leaves scope["ws_subprotocol"], the name the server must answer the handshake with.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            scope = dict(scope)
            scope["api_key"] = None
            scope["stream_token"] = None
            presented = credential_from_asgi_scope(scope)
            if presented is not None:
                scope["ws_subprotocol"] = presented.subprotocol
                user, key, token, error = await _authenticate(presented)
                if error is None:
                    scope["user"], scope["api_key"], scope["stream_token"] = user, key, token
                else:
                    scope["auth_error"] = error
                    scope["user"] = None
        return await self.app(scope, receive, send)


def origin_allowed(origin: str, allowed_hosts: list[str]) -> bool:
    host = urlsplit(origin).hostname
    if not host:
        return False
    if "*" in allowed_hosts:
        return True
    return any(is_same_domain(host, pattern) for pattern in allowed_hosts)


class BrowserOriginValidator:
    """A connection riding on a cookie must come from an allowed host.

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
            if origin is None or not origin_allowed(origin, settings.ALLOWED_HOSTS):
                return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)
