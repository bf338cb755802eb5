"""The origin check of cookie WebSocket connections: scheme, host and port (accounts/origins.py)."""

from __future__ import annotations

import pytest

from accounts.origins import origin_allowed, parse_origin, request_scheme


def scope(host: str | None = "127.0.0.1:8000", **headers: str) -> dict:
    found = {"host": host, **headers} if host is not None else headers
    return {
        "type": "websocket",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in found.items()],
    }


@pytest.fixture(autouse=True)
def hosts(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", ".example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.partner.test", "http://*.dev.test:8080"]
    settings.SECURE_PROXY_SSL_HEADER = None


def test_origins_are_scheme_host_and_port():
    assert parse_origin("http://LocalHost:8000") == ("http", "localhost", 8000)
    assert parse_origin("https://example.com") == ("https", "example.com", 443)
    assert parse_origin("http://[::1]:9") == ("http", "::1", 9)
    for bad in ("null", "file://", "http://", "ftp://example.com", "http://a:b@example.com",
                "http://example.com/path", "http://example.com:99999", "example.com"):  # fmt: skip
        assert parse_origin(bad) is None, bad


def test_the_servers_own_origin_is_allowed_and_another_port_is_not():
    assert origin_allowed("http://127.0.0.1:8000", scope("127.0.0.1:8000"))
    assert not origin_allowed("http://localhost:9999", scope("localhost:8000"))
    assert not origin_allowed("http://127.0.0.1:9999", scope("127.0.0.1:8000"))
    assert not origin_allowed("http://localhost:8000", scope("127.0.0.1:8000"))  # another host
    assert not origin_allowed("https://127.0.0.1:8000", scope("127.0.0.1:8000"))  # another scheme
    assert not origin_allowed("http://127.0.0.1:8000", scope(None))  # no Host: no own origin


def test_a_host_header_outside_allowed_hosts_makes_no_origin_its_own():
    assert not origin_allowed("http://rebound.evil:8000", scope("rebound.evil:8000"))


def test_allowed_hosts_on_the_default_port_of_the_requests_scheme():
    assert origin_allowed("http://localhost", scope("localhost:8000"))
    assert origin_allowed("http://api.example.com", scope("stt.example.com"))
    assert not origin_allowed("https://api.example.com", scope("stt.example.com"))  # the request is http
    assert not origin_allowed("http://evil.test", scope("stt.example.com"))
    assert origin_allowed("http://[::1]", scope("[::1]:8000"))


def test_tls_behind_a_trusted_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = scope("stt.example.com", x_forwarded_proto="https")
    assert request_scheme(proxied) == "https" and request_scheme(scope("stt.example.com")) == "http"
    assert origin_allowed("https://stt.example.com", proxied)
    assert not origin_allowed("http://stt.example.com", proxied)
    assert request_scheme({"type": "websocket", "scheme": "wss", "headers": []}) == "https"


def test_csrf_trusted_origins_exactly_and_with_djangos_subdomain_wildcard():
    assert origin_allowed("https://app.partner.test", scope("stt.example.com"))
    assert not origin_allowed("http://app.partner.test", scope("stt.example.com"))
    assert not origin_allowed("https://app.partner.test:444", scope("stt.example.com"))
    assert origin_allowed("http://a.dev.test:8080", scope("stt.example.com"))
    assert not origin_allowed("http://a.dev.test", scope("stt.example.com"))
    assert not origin_allowed("http://a.evil-dev.test:8080", scope("stt.example.com"))
