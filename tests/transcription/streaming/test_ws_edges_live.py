"""End to end through a real Daphne (`manage.py serve`, the bundled model): the WebSocket edges.

- a message over STT_MAX_PACKET_BYTES closes with 1009 `message_too_big` on every protocol (Daphne's
  own limit no longer drops the connection first), after finalizing and storing what was said;
- a cookie connection must come from the server's own origin (scheme, host and port);
- a path with no WebSocket endpoint is refused with HTTP 404, and nothing is logged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import numpy as np
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.packets import float_to_int16, packets
from bench.server import streaming_key
from tests.live_server import daphne_server, manage

pytestmark = pytest.mark.slow

BIG = 2 * 1024 * 1024  # twice STT_MAX_PACKET_BYTES (and twice Daphne's own default limit)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edges")
    # A fixed SECRET_KEY: a session made by `manage.py shell` must be valid in the server process.
    secret = {"SECRET_KEY": "edges-test-secret-key-" + "x" * 32}
    with daphne_server(tmp, secret, serve=True, wait_ready=True) as (base, env, _proc):
        key = streaming_key(lambda *args: manage(env, *args), max_streams=10, user="edges")
        yield {"base": base, "ws": base.replace("http://", "ws://"), "env": env, "key": key, "tmp": tmp}


def rows(server, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(server["tmp"] / "live.sqlite3") as db:
        return db.execute(sql, args).fetchall()


def last_session(server, endpoint: str) -> tuple[str, str]:
    [(session_id, reason)] = rows(
        server,
        "SELECT id, end_reason FROM transcription_transcriptionsession WHERE endpoint = ? "
        "ORDER BY started_at DESC LIMIT 1",
        endpoint,
    )
    return str(session_id), reason


async def until_closed(ws, seen: list) -> int:
    """Messages (kept in `seen`) until the server closes; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(60):
            async for raw in ws:
                seen.append(json.loads(raw) if isinstance(raw, str) and raw.startswith("{") else raw)
    assert closed.value.rcvd is not None, "no close frame: the connection was dropped"
    return closed.value.rcvd.code


async def test_a_2_mib_message_closes_1009_after_the_final_of_what_was_said(server, corpus):
    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    url, headers = server["ws"] + "/ws/transcribe", {"X-API-Key": server["key"]}
    seen: list = []
    async with websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "start"}))
        for packet in packets(jfk[: 16000 * 4]):  # ends inside "ask not what your country..."
            await ws.send(packet)
        await ws.send(b"\x00" * BIG)
        code = await until_closed(ws, seen)
    assert code == 1009
    events = [e for e in seen if isinstance(e, dict)]
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["message_too_big"], errors
    finals = [e for e in events if e["type"] == "final" and e["text"]]
    assert finals and "fellow americans" in corpus.normalize(" ".join(f["text"] for f in finals))
    session_id, reason = last_session(server, "ws_transcribe")
    assert reason == "message_too_big"
    stored = rows(
        server, "SELECT text FROM transcription_segment WHERE session_id = ? ORDER BY id", session_id
    )
    assert [text for (text,) in stored] == [f["text"] for f in finals]


@pytest.mark.parametrize(
    ("path", "headers", "endpoint"),
    [
        ("/api/v1/ws", lambda key: {"X-API-Key": key}, "api_v1_ws"),
        ("/stt/v3/stream", lambda key: {"x-api-key-id": key}, "stt_v3"),
        ("/v1/listen?encoding=linear16&sample_rate=16000", lambda key: {"Authorization": f"Token {key}"},
         "deepgram_listen"),
    ],
)  # fmt: skip
async def test_a_2_mib_binary_message_closes_1009_on_every_protocol(server, path, headers, endpoint):
    seen: list = []
    async with websockets.connect(
        server["ws"] + path, additional_headers=headers(server["key"]), max_size=None, open_timeout=60
    ) as ws:
        await ws.send(float_to_int16(np.zeros(512, np.float32)).tobytes())  # one 1024-byte frame
        await ws.send(b"\x00" * BIG)
        assert await until_closed(ws, seen) == 1009
    assert last_session(server, endpoint)[1] == "message_too_big"


async def test_a_2_mib_text_command_closes_1009_on_the_control_socket(server):
    url = server["ws"] + "/v1/stream/control?client_id=big&session_id=text"
    seen: list = []
    headers = {"Authorization": f"Bearer {server['key']}"}
    async with websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"command": "start_stream", "pad": "x" * BIG}))
        assert await until_closed(ws, seen) == 1009
    assert last_session(server, "v1_stream")[1] == "message_too_big"


async def test_assemblyai_keeps_its_own_close_for_a_chunk_too_long(server):
    url = server["ws"] + "/v3/ws?sample_rate=16000"
    seen: list = []
    async with websockets.connect(
        url, additional_headers={"Authorization": server["key"]}, max_size=None, open_timeout=60
    ) as ws:
        await ws.send(b"\x00" * BIG)
        assert await until_closed(ws, seen) == 3007  # AssemblyAI's "Input Duration Violation"


# -- the origin of cookie connections ----------------------------------------------------------


@pytest.fixture(scope="module")
def cookie(server) -> str:
    script = (
        "from django.contrib.auth import get_user_model; from django.test import Client; "
        "user = get_user_model().objects.create_user('browser', password='pw-browser-123'); "
        "client = Client(); client.force_login(user); print(client.cookies['sessionid'].value)"
    )
    return "sessionid=" + manage(server["env"], "shell", "-c", script).strip().splitlines()[-1]


async def test_a_cookie_connection_from_another_port_is_refused(server, cookie):
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(
            server["ws"] + "/ws/transcribe", origin="http://localhost:9999",
            additional_headers={"Cookie": cookie}, open_timeout=30,
        )  # fmt: skip
    assert refused.value.response.status_code == 403
    port = server["base"].rsplit(":", 1)[1]
    for foreign in (f"http://localhost:{port}", f"https://127.0.0.1:{port}", "null"):
        with pytest.raises(InvalidStatus):
            await websockets.connect(
                server["ws"] + "/ws/transcribe", origin=foreign, additional_headers={"Cookie": cookie}
            )


async def test_a_cookie_connection_from_the_same_origin_is_accepted(server, cookie):
    async with websockets.connect(
        server["ws"] + "/ws/transcribe", origin=server["base"], additional_headers={"Cookie": cookie},
        open_timeout=30,
    ) as ws:  # fmt: skip
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["sessionId"], hello


async def test_a_key_connection_needs_no_origin_and_may_come_from_anywhere(server):
    for origin in (None, "http://localhost:9999"):
        async with websockets.connect(
            server["ws"] + "/ws/transcribe", origin=origin, additional_headers={"X-API-Key": server["key"]}
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"


# -- paths with no endpoint --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/nope", "/", "/api/v1/ws/extra", "/v1/stream"])
async def test_a_websocket_to_a_path_with_no_endpoint_is_refused_404_and_nothing_is_logged(server, path):
    for headers in ({}, {"X-API-Key": server["key"]}):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(server["ws"] + path, additional_headers=headers, open_timeout=30)
        assert refused.value.response.status_code == 404
    log = (server["tmp"] / "daphne.log").read_text()
    assert "Traceback" not in log and "No route found" not in log, log[-3000:]
