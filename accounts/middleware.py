"""Channels middleware: API-key authentication and an origin check that lets key clients in."""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain

from accounts.keys import key_from_asgi_scope, scope_headers
from accounts.services import ApiKeyError, api_key_authenticate


@database_sync_to_async
def _authenticate(raw_key: str):
    try:
        return api_key_authenticate(raw_key=raw_key), None
    except ApiKeyError as exc:
        return None, exc


class ApiKeyMiddleware:
    """Sets scope["api_key"] and scope["user"] from an API key header.

    Sits inside AuthMiddlewareStack so a key, when presented, wins over the cookie.
    An invalid key leaves scope["auth_error"] for the consumer to close with 4001;
    scope checks (4003) belong to each endpoint.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            scope = dict(scope)
            scope["api_key"] = None
            raw_key = key_from_asgi_scope(scope)
            if raw_key is not None:
                key, error = await _authenticate(raw_key)
                if key is not None:
                    scope["api_key"] = key
                    scope["user"] = key.owner
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
    """Browsers (which always send Origin) must come from an allowed host.

    API clients authenticate with a key header and usually send no Origin; they are let
    in without one (Channels' AllowedHostsOriginValidator would refuse them). A
    connection with neither an Origin nor a key is refused: it could only be riding on
    a cookie, which is exactly what the origin check protects.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origin = scope_headers(scope).get("origin")
            if origin is None:
                if key_from_asgi_scope(scope) is None:
                    return await WebsocketDenier()(scope, receive, send)
            elif not origin_allowed(origin, settings.ALLOWED_HOSTS):
                return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)
