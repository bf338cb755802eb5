"""Which browser origins may open a WebSocket on a session cookie: scheme, host and port, all three.

A page's origin is `scheme://host[:port]`; two pages share one only when all three match (a page on
`http://localhost:9999` is not the server on `http://localhost:8000`, and may not ride its cookie).
Allowed are the server's own origin (the Host header the browser sent, on the request's scheme, its
host in ALLOWED_HOSTS), every host of ALLOWED_HOSTS on the default port of the request's scheme, and
each entry of CSRF_TRUSTED_ORIGINS (`https://*.example.com` as Django reads it).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import is_same_domain, validate_host

from accounts.keys import scope_headers

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # (scheme, lower-case host, port)


def parse_origin(value: str) -> Origin | None:
    """An Origin header (or CSRF_TRUSTED_ORIGINS entry) as (scheme, host, port); None if it is no
    http(s) origin (`null`, a path, user info, a bad port)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def request_scheme(scope: dict) -> str:
    """`https` for a WebSocket over TLS, else `http`: the scope's scheme where the server sets it
    (Daphne does not), or the proxy's X-Forwarded-Proto where Django trusts it (TRUST_X_FORWARDED_PROTO)."""
    if scope.get("scheme") in ("wss", "https"):
        return "https"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, secure = proxy
        header = name.removeprefix("HTTP_").replace("_", "-").lower()
        if scope_headers(scope).get(header, "").split(",")[0].strip() == secure:
            return "https"
    return "http"


def _host_allowed(host: str) -> bool:
    return validate_host(f"[{host}]" if ":" in host else host, settings.ALLOWED_HOSTS)


def _trusted(origin: Origin) -> bool:
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "://*." in entry:  # Django's subdomain wildcard: https://*.example.com[:port]
            scheme, _, rest = entry.partition("://*.")
            trusted = parse_origin(f"{scheme}://{rest}")
            same_site = trusted and origin[0] == trusted[0] and origin[2] == trusted[2]
            if same_site and is_same_domain(origin[1], "." + trusted[1]):
                return True
        elif parse_origin(entry) == origin:
            return True
    return False


def origin_allowed(value: str, scope: dict) -> bool:
    """Whether a browser page of origin `value` may open this WebSocket (`scope`) on its cookie."""
    origin = parse_origin(value)
    if origin is None:
        return False
    if _trusted(origin):
        return True
    scheme, host, port = origin
    if scheme != request_scheme(scope) or not _host_allowed(host):
        return False
    if port == DEFAULT_PORTS[scheme]:
        return True
    # The server's own origin: the Host header the browser sent (host and port), on this scheme.
    return parse_origin(f"{scheme}://{scope_headers(scope).get('host', '')}") == origin
