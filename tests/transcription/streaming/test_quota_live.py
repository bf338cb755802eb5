"""The monthly quota holds under concurrency: two real streams on one allowance, through a real Daphne
on PostgreSQL. Each reads a full allowance at admission; reservations keep them to it together."""

from __future__ import annotations

import asyncio
import json
import os
import time

import numpy as np
import psycopg
import pytest

from bench.packets import packets
from bench.scale_out import postgres_database
from tests.live_server import daphne_server, manage

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RESERVATION_S = 2.0
PACKET_S = 0.04


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        reason = "needs PostgreSQL (DATABASE_URL): runs in the PostgreSQL+Redis pass"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return url


async def _stream(url: str, key: str, seconds: float) -> dict:
    """Send `seconds` of quiet noise at 8x real time; what the server said and how it closed."""
    import websockets

    audio = (np.random.default_rng(7).standard_normal(int(16000 * seconds)) * 0.003).astype(np.float32)
    events: list[dict] = []
    async with websockets.connect(url, additional_headers={"X-API-Key": key}, open_timeout=60) as ws:

        async def read() -> None:
            try:
                async for raw in ws:
                    events.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass

        reader = asyncio.ensure_future(read())
        await ws.send(json.dumps({"type": "start", "options": {"interimResults": False}}))
        t0 = time.monotonic()
        try:
            for i, packet in enumerate(packets(audio, 16000, int(PACKET_S * 1000))):
                await asyncio.sleep(max(0.0, t0 + i * PACKET_S / 8 - time.monotonic()))
                await ws.send(packet)
            await ws.send(json.dumps({"type": "stop"}))
            await asyncio.sleep(1.0)
        except websockets.ConnectionClosed:
            pass
        await ws.close()
        await asyncio.wait_for(reader, 30)
        return {"events": events, "close": ws.close_code}


async def test_two_concurrent_streams_together_stay_within_one_allowance(tmp_path, postgres_url):
    env_extra = {"STT_QUOTA_RESERVATION_S": str(RESERVATION_S), "STT_HEARTBEAT_S": "1"}
    with postgres_database(postgres_url) as database:
        with daphne_server(tmp_path, {**env_extra, "DATABASE_URL": database}) as (base, env, _):
            key = manage(
                env, "apikey", "create", "--user", "q", "--create-user", "--scopes", "stream"
            ).strip()
            manage(env, "quota", "set", "--user", "q", "--monthly-minutes", "1", "--max-streams", "2")
            url = base.replace("http://", "ws://") + "/ws/transcribe"
            # Each asks for 45 s of a 60 s allowance: alone, either would be served to the end.
            results = await asyncio.gather(_stream(url, key, 45.0), _stream(url, key, 45.0))
            deadline = time.monotonic() + 30
            with psycopg.connect(database) as conn:
                while time.monotonic() < deadline:
                    sessions = conn.execute(
                        "SELECT audio_seconds, end_reason FROM transcription_transcriptionsession"
                    ).fetchall()
                    if len(sessions) == 2 and all(reason for _, reason in sessions):
                        break
                    await asyncio.sleep(0.2)
                (used,) = conn.execute(
                    "SELECT audio_seconds_streamed + audio_seconds_uploaded FROM accounts_usage"
                ).fetchone()
                (held,) = conn.execute("SELECT count(*) FROM accounts_activestream").fetchone()
    print(f"sessions {sessions}, usage {used:.2f} s of 60, closes {[r['close'] for r in results]}")
    assert len(sessions) == 2 and all(reason for _, reason in sessions), sessions
    billed = sum(seconds for seconds, _ in sessions)
    assert used == pytest.approx(billed, abs=1e-6)
    # Nothing beyond the allowance but the packet that crossed it on each stream, never a reservation.
    assert 60.0 - RESERVATION_S <= used <= 60.0 + 2 * PACKET_S + 1e-6, used
    exhausted = [r for r in results if r["close"] == 4002]
    assert exhausted, results
    for result in exhausted:
        said = [(e["type"], e.get("code")) for e in result["events"] if e["type"] in ("warning", "error")]
        assert said == [("warning", "quota_exhausted")], said  # a planned close: warned, not an error
    assert "quota_exhausted" in [reason for _, reason in sessions]
    assert held == 0  # both places released
