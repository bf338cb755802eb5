"""End to end: a real Daphne with the real model, a token minted over HTTP opening one stream from a
URL, the same token refused the second time, and no token in the server's log."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from urllib.request import Request, urlopen

import pytest
import websockets

from bench.packets import packets
from tests.live_server import daphne_server, manage

pytestmark = pytest.mark.slow


def mint(base: str, key: str) -> dict:
    request = Request(
        base + "/api/v1/tokens",
        data=json.dumps({"expires_in_seconds": 120}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())


async def test_a_token_in_the_url_streams_once_and_never_reaches_the_log(tmp_path, corpus):
    entry = corpus.manifest()["jfk.wav"]
    audio = corpus.read_mono_float(entry.path)
    # INFO: the access log (every connection, with its path) and the project's own log lines.
    with daphne_server(tmp_path, {"LOG_LEVEL": "INFO"}, serve=True, wait_ready=True) as (base, env, _):
        key = manage(env, "apikey", "create", "--user", "web", "--create-user", "--scopes", "stream").strip()
        token = mint(base, key)["token"]
        url = base.replace("http://", "ws://") + f"/ws/transcribe?token={token}"
        # From a page of another site: no key header, only the token in the URL.
        async with websockets.connect(url, origin="https://app.example", open_timeout=60) as ws:
            for packet in packets(audio):
                await ws.send(packet)
            await ws.send(json.dumps({"type": "stop"}))
            finals = []
            # The finals of the segments still being transcribed follow the stop's status.
            while True:
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 5.0))
                except TimeoutError:
                    break
                assert event["type"] != "error", event
                if event["type"] == "final":
                    finals.append(event["text"])
        wer = corpus.wer([entry.reference], [" ".join(finals)])
        print(f"wer={wer:.3f} finals={finals}")
        assert wer <= 0.15

        async with websockets.connect(url, open_timeout=60) as ws:
            refusal = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert refusal["code"] == "token_used" and closed.value.rcvd.code == 4001
        # /api/v1/ws says why only in the close frame's reason, which must survive Daphne.
        api_v1 = base.replace("http://", "ws://") + f"/api/v1/ws?token={token}"
        async with websockets.connect(api_v1, open_timeout=60) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd.code == 4001 and closed.value.rcvd.reason.startswith("token_used: ")

    log = (tmp_path / "daphne.log").read_text()
    assert "WSCONNECT /ws/transcribe" in log  # connections are logged, with their paths...
    assert token not in log and token.split(".")[2] not in log  # ...never their query strings
    db = sqlite3.connect(tmp_path / "live.sqlite3")
    rows = db.execute(
        "SELECT s.endpoint, u.username, k.prefix FROM transcription_transcriptionsession s "
        "JOIN auth_user u ON u.id = s.user_id JOIN accounts_apikey k ON k.id = s.api_key_id"
    ).fetchall()
    assert rows == [("ws_transcribe", "web", key.split("_")[1])]
