"""Clients written only from seeds/001, 002 and 003 (the `websockets` library), for real-server tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass, field

import websockets

SPEED = 3.0  # times real time; the server tolerates bursts well beyond this


@dataclass
class Run:
    texts: list[str] = field(default_factory=list)
    messages: list = field(default_factory=list)
    close_code: int | None = None
    http_status: int | None = None  # a refused handshake


async def _paced(chunks: list[bytes], seconds_per_chunk: float, send, speed: float = SPEED) -> None:
    t0 = time.monotonic()
    for i, chunk in enumerate(chunks):
        delay = t0 + i * seconds_per_chunk / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(chunk)


def _split(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def api_v1(url: str, key: str, pcm16_16k: bytes, *, idle_s: float = 6.0) -> Run:
    """seeds/001: binary PCM16 16 kHz mono; every text message back is a transcript."""
    run = Run()
    async with websockets.connect(url, additional_headers={"X-API-Key": key}, open_timeout=60) as ws:
        reader = asyncio.ensure_future(_collect_text(ws, run))
        await _paced(_split(pcm16_16k, 3200), 0.1, ws.send)  # 100 ms messages
        await _idle(run, idle_s)
        reader.cancel()
    return run


async def _collect_text(ws, run: Run) -> None:
    async for message in ws:
        run.texts.append(message)
        run.messages.append((time.monotonic(), message))


async def _idle(run: Run, idle_s: float, limit_s: float = 90.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        last = run.messages[-1][0] if run.messages else start
        if time.monotonic() - max(last, start) >= idle_s:
            return
        await asyncio.sleep(0.1)


async def stt_v3(url: str, key: str, pcm16: bytes, *, rate: int, lang_code: str = "en-IN") -> Run:
    """seeds/002: header auth, `connected`, exact 1024-byte frames, `processing` then `transcript`."""
    run = Run()
    headers = {"x-api-key-id": key, "lang_code": lang_code, "x-sample-rate": str(rate)}
    async with websockets.connect(url, additional_headers=headers, open_timeout=60) as ws:
        connected = json.loads(await asyncio.wait_for(ws.recv(), 60))
        run.messages.append(connected)
        if connected["type"] != "connected":
            return run
        pcm16 += b"\x00" * (-len(pcm16) % 1024)
        reader = asyncio.ensure_future(_collect_json(ws, run))
        await _paced(_split(pcm16, 1024), 512 / rate, ws.send)
        start = time.monotonic()
        while time.monotonic() - start < 90:
            kinds = [m["type"] for m in run.messages]
            if kinds.count("transcript") >= kinds.count("processing") and time.monotonic() - start > 1.5:
                break
            await asyncio.sleep(0.1)
        reader.cancel()
    run.texts = [m["text"] for m in run.messages if m["type"] == "transcript"]
    return run


async def _collect_json(ws, run: Run) -> None:
    async for message in ws:
        run.messages.append(json.loads(message))


async def refused(url: str, headers: dict[str, str], send: str | bytes | None = None) -> Run:
    """Connect (optionally send one message) and read until the server closes (an error path)."""
    run = Run()
    try:
        ws = await websockets.connect(url, additional_headers=headers, open_timeout=60)
    except websockets.InvalidStatus as exc:
        run.http_status = exc.response.status_code
        return run
    async with ws:
        if send is not None:
            await ws.send(send)
        try:
            async for message in ws:
                run.messages.append(json.loads(message) if isinstance(message, str) else message)
        except websockets.ConnectionClosed:
            pass
    run.close_code = ws.close_code
    return run


async def v1_stream(
    base_ws: str,
    token: str,
    pcm16_16k: bytes,
    *,
    client_id: str,
    session_id: str,
    audio_base_ws: str | None = None,
    speed: float = SPEED,
    config: dict | None = None,
) -> Run:
    """seeds/003: a control and an audio socket for the same client_id/session_id; commands, results.

    `audio_base_ws` sends the audio socket to another server (behind a load balancer they may differ).
    """
    run = Run()
    query = f"?client_id={client_id}&session_id={session_id}"
    auth = {"Authorization": f"Token {token}"}
    audio_url = f"{audio_base_ws or base_ws}/v1/stream/audio{query}"
    async with websockets.connect(f"{base_ws}/v1/stream/control{query}", additional_headers=auth) as control:
        async with websockets.connect(audio_url, additional_headers=auth) as audio:
            reader = asyncio.ensure_future(_collect_json(control, run))
            audio_start = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            start = {"command": "start_stream", "audio_start": audio_start}
            await control.send(json.dumps({**start, **({"config": config} if config else {})}))
            await _paced(_split(pcm16_16k, 1024), 512 / 16000, audio.send, speed)
            audio_end = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            await control.send(json.dumps({"command": "stop_stream", "audio_end": audio_end}))
            start = time.monotonic()
            while time.monotonic() - start < 90:
                if any(m["type"] == "status" and m["data"]["state"] == "stopped" for m in run.messages):
                    break
                await asyncio.sleep(0.1)
            reader.cancel()
    run.texts = [m["data"]["text"] for m in run.messages if m["type"] == "final_result"]
    return run
