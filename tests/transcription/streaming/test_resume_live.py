"""Resume on a real Daphne with the real model: a socket cut mid-sentence (a proxy resets it, no close
frame) comes back with its token, re-sends what the server lacks, and the session has every word once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator

import numpy as np
import pytest

from bench.packets import packets
from tests.live_server import daphne_server, manage
from tests.transcription.web.proxy import TcpProxy

pytestmark = pytest.mark.slow

RATE = 16000
PACKET_S = 0.04
WINDOW_S = 6  # short, so that the expiry can be waited for


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, dict, dict, object]]:
    folder = tmp_path_factory.mktemp("resume-live")
    with daphne_server(folder, {"STT_RESUME_WINDOW_S": str(WINDOW_S)}, wait_ready=True) as (base, env, _):
        create = ("apikey", "create", "--create-user", "--scopes", "stream", "--user")
        keys = {user: manage(env, *create, user).strip() for user in ("ann", "ben")}
        yield base, env, keys, folder / "live.sqlite3"


@pytest.fixture
def proxy(server) -> Iterator[TcpProxy]:
    port = int(server[0].rsplit(":", 1)[1])
    proxy = TcpProxy(("127.0.0.1", port))
    try:
        yield proxy
    finally:
        proxy.close()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


class Client:
    """One side of a stream: its events and the connection they came on."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.events: list[dict] = []
        self.ws = None
        self._reader: asyncio.Task | None = None

    async def open(self, query: str = "") -> dict:
        import websockets

        self.ws = await websockets.connect(
            self.url + query, additional_headers={"X-API-Key": self.key}, open_timeout=60
        )
        first = json.loads(await self.ws.recv())
        self.events.append(first)
        self._reader = asyncio.ensure_future(self._read(self.ws))
        return first

    async def _read(self, ws) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                self.events.append(json.loads(raw))

    async def until(self, test, timeout_s: float = 60.0) -> dict:
        async with asyncio.timeout(timeout_s):
            while True:
                found = next((e for e in self.events if test(e)), None)
                if found is not None:
                    return found
                await asyncio.sleep(0.05)

    async def lost(self) -> None:
        """The connection is gone (after the proxy cut it)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 10)
        with contextlib.suppress(Exception):
            await self.ws.close()

    def acknowledged(self) -> float:
        return max((e["audioReceivedS"] for e in self.events if "audioReceivedS" in e), default=0.0)


async def send_in_real_time(ws, chunk: list[bytes]) -> None:
    start = time.monotonic()
    for i, packet in enumerate(chunk):
        await ws.send(packet)
        await asyncio.sleep(max(0.0, start + (i + 1) * PACKET_S - time.monotonic()))


async def test_a_stream_cut_mid_sentence_resumes_into_one_session_with_every_word_once(server, proxy, corpus):
    _, _, keys, database = server
    reference = corpus.manifest()["jfk.wav"].reference
    audio = np.concatenate([corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), np.zeros(RATE)])
    chunk = list(packets(audio, packet_ms=int(PACKET_S * 1000)))
    url = f"ws://127.0.0.1:{proxy.port}/ws/transcribe"
    client = Client(url, keys["ann"])
    hello = await client.open()
    token = hello["resume"]["token"]
    cut = int(5.0 / PACKET_S)  # "... ask not what your country can do for you": mid-sentence
    await send_in_real_time(client.ws, chunk[:cut])
    acknowledged = client.acknowledged()
    assert proxy.drop_all() >= 2  # both sides reset: no close frame
    await client.lost()
    await asyncio.sleep(1.0)  # a client's first backoff

    last = max((e["segmentId"] for e in client.events if e["type"] == "final"), default=0)
    again = await client.open(f"?resume={token}&lastSegment={last}")
    assert again["type"] == "hello" and again["resumed"] is True and again["sessionId"] == hello["sessionId"]
    received = again["audioReceivedS"]
    assert acknowledged <= received <= cut * PACKET_S + 1e-6
    first = round(received / PACKET_S)
    assert abs(first * PACKET_S - received) < 1e-3  # the figure falls on a packet boundary
    print(f"acknowledged {acknowledged:.2f} s, cut at {cut * PACKET_S:.2f} s, server had {received:.2f} s")
    await send_in_real_time(client.ws, chunk[first:])
    await client.ws.send(json.dumps({"type": "stop"}))
    await client.until(lambda e: e["type"] == "status" and e["state"] == "idle" and e is client.events[-1])
    await client.ws.close()

    finals = [e for e in client.events if e["type"] == "final"]
    keys_seen = [f["segmentKey"] for f in finals]
    assert len(keys_seen) == len(set(keys_seen)), "a final came twice"
    live_text = " ".join(f["text"] for f in finals)
    db = sqlite3.connect(database)
    # The normal close ends the session on the server a moment later.
    for _ in range(100):
        query = "SELECT COUNT(*) FROM transcription_transcriptionsession WHERE ended_at IS NULL"
        if not db.execute(query).fetchone()[0]:
            break
        await asyncio.sleep(0.1)
    rows = db.execute(
        "SELECT s.id, s.audio_seconds, s.status, t.text FROM transcription_transcriptionsession s"
        " JOIN transcription_transcript t ON t.session_id = s.id JOIN auth_user u ON u.id = s.user_id"
        " WHERE u.username = 'ann'"
    ).fetchall()
    assert len(rows) == 1, rows
    session_id, audio_seconds, status, transcript = rows[0]
    assert session_id.replace("-", "") == hello["sessionId"].replace("-", "") and status == "completed"
    wer = corpus.wer([reference], [transcript])
    print(f"transcript: {transcript!r}; WER {wer:.3f}; live: {live_text!r}")
    assert wer <= 0.15 and words(live_text) == words(transcript)
    counts, expected = collections.Counter(words(transcript)), collections.Counter(words(reference))
    repeated = {w: n for w, n in counts.items() if n > max(1, expected[w])}
    assert not repeated, repeated
    total_s = len(chunk) * PACKET_S
    streamed = db.execute(
        "SELECT g.audio_seconds_streamed FROM accounts_usage g JOIN auth_user u ON u.id = g.user_id"
        " WHERE u.username = 'ann'"
    ).fetchone()[0]
    assert audio_seconds == pytest.approx(total_s, abs=0.5) and streamed == pytest.approx(total_s, abs=0.5)


async def test_after_the_window_or_with_another_users_token_nothing_is_started(server, proxy, corpus):
    _, _, keys, database = server
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)[: RATE * 3]
    url = f"ws://127.0.0.1:{proxy.port}/ws/transcribe"
    client = Client(url, keys["ann"])
    hello = await client.open()
    await send_in_real_time(client.ws, list(packets(audio)))
    assert proxy.drop_all() >= 2
    await client.lost()
    dropped_at = time.monotonic()

    async def refusal(key: str) -> tuple[dict, int]:
        other = Client(url, key)
        error = await other.open(f"?resume={hello['resume']['token']}")
        await other.lost()
        return error, other.ws.close_code

    # Within the window, but another user: told only that there is nothing to resume.
    error, code = await refusal(keys["ben"])
    assert (error["type"], error["code"], code) == ("error", "resume_not_found", 4404)
    await asyncio.sleep(max(0.0, dropped_at + WINDOW_S + 2.0 - time.monotonic()))
    error, code = await refusal(keys["ann"])
    assert (error["type"], error["code"], code) == ("error", "resume_expired", 4410)
    db = sqlite3.connect(database)
    ended = db.execute(
        "SELECT end_reason, ended_at, audio_seconds FROM transcription_transcriptionsession WHERE id = ?",
        (hello["sessionId"].replace("-", ""),),
    ).fetchone()
    assert ended[0] == "closed_1006" and ended[1] and ended[2] == pytest.approx(3.0, abs=0.1)
    owners = db.execute(
        "SELECT u.username, COUNT(*) FROM transcription_transcriptionsession s"
        " JOIN auth_user u ON u.id = s.user_id GROUP BY u.username"
    ).fetchall()
    assert "ben" not in dict(owners)  # the refusals started nothing
    assert db.execute("SELECT COUNT(*) FROM accounts_activestream").fetchone()[0] == 0
