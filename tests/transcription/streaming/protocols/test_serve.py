"""`manage.py serve`: the underscore-header allow-list, and the STT_PROVIDER start-up check."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from sttproject.daphne import allowed_underscore_headers, header_allow_list_server
from tests.live_server import ROOT


def test_only_allow_listed_underscore_headers_pass():
    raw = [("lang_code", ["hi-IN"]), ("x_user", ["admin"]), ("LANG_CODE", ["ta-IN"]), ("accept", ["*/*"])]
    picked = allowed_underscore_headers(raw, ["lang_code"])
    assert picked == [(b"lang_code", b"hi-IN"), (b"lang_code", b"ta-IN")]
    assert allowed_underscore_headers(raw, []) == []
    assert (
        allowed_underscore_headers([(b"lang-code", [b"x"])], ["lang-code"]) == []
    )  # no underscore: Daphne's


class FakeProtocol:
    """Stands for Daphne's protocol objects (hashable, like them)."""

    def __init__(self, **attributes) -> None:
        self.__dict__.update(attributes)


def _server(app):
    return header_allow_list_server()(
        application=app, endpoints=["tcp:port=0"], signal_handlers=False, underscore_headers=["lang_code"]
    )


async def test_websocket_scope_gets_lang_code_but_not_x_user():
    scopes = []

    async def app(scope, receive, send):
        scopes.append(scope)

    server = _server(app)
    # What Daphne's WebSocketProtocol hands over: the parsed handshake, and headers already cleaned of
    # every underscore name.
    protocol = FakeProtocol(
        request=SimpleNamespace(headers={"lang_code": "hi-IN", "x_user": "admin", "x-api-key-id": "k"})
    )
    server.connections = {protocol: {}}
    server.create_application(protocol, {"type": "websocket", "headers": [(b"x-api-key-id", b"k")]})
    await server.connections[protocol]["application_instance"]
    [scope] = scopes
    assert scope["headers"] == [(b"x-api-key-id", b"k"), (b"lang_code", b"hi-IN")]


async def test_http_scope_gets_the_allow_listed_headers_too():
    scopes = []

    async def app(scope, receive, send):
        scopes.append(scope)

    server = _server(app)
    raw = [(b"Lang_Code", [b"en-IN"]), (b"X_User", [b"admin"])]
    protocol = FakeProtocol(requestHeaders=SimpleNamespace(getAllRawHeaders=lambda: iter(raw)))
    server.connections = {protocol: {}}
    server.create_application(protocol, {"type": "http", "headers": []})
    await asyncio.wait_for(server.connections[protocol]["application_instance"], 5)
    assert scopes[0]["headers"] == [(b"lang_code", b"en-IN")]


@pytest.mark.parametrize("provider", ["bogus", "groq", "deepgram"])
def test_unsupported_stt_provider_stops_start_up_naming_the_setting(provider):
    env = {**os.environ, "STT_PROVIDER": provider}
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert f"STT_PROVIDER={provider!r} is not supported" in proc.stderr and "faster_whisper" in proc.stderr


def test_default_provider_starts():
    env = {k: v for k, v in os.environ.items() if k not in ("STT_PROVIDER", "DATABASE_URL")}
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_daphnes_message_limit_is_raised_above_ours_and_fails_with_a_close_frame():
    from sttproject.daphne import raised_limits

    mib = 1024 * 1024
    daphnes = {"autoPingTimeout": 20, "maxMessagePayloadSize": mib, "maxFramePayloadSize": mib}
    assert raised_limits(daphnes, 4 * mib) == {
        "autoPingTimeout": 20,
        "maxMessagePayloadSize": 4 * mib,
        "maxFramePayloadSize": 4 * mib,
        "failByDrop": False,
    }
    larger = {"maxMessagePayloadSize": 0, "maxFramePayloadSize": 8 * mib}  # 0: Daphne's "no limit"
    assert raised_limits(larger, 4 * mib) == {**larger, "failByDrop": False}


def test_the_websocket_message_limit_must_be_above_the_packet_limit():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(STT_MAX_PACKET_BYTES="4096", STT_WS_MAX_MESSAGE_BYTES="4096")
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "STT_WS_MAX_MESSAGE_BYTES must be >= 4097" in proc.stderr
