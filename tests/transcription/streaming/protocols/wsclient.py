"""Helpers for consumer tests of the compatibility endpoints (WebsocketCommunicator)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from bench.packets import float_to_int16
from sttproject.asgi import application
from transcription.models import TranscriptionSession


def communicator(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=list(headers or []))


async def next_output(comm: WebsocketCommunicator, wait_s: float = 20.0) -> dict:
    return await comm.receive_output(wait_s)


async def receive_json_until(
    comm: WebsocketCommunicator, kind: str, wait_s: float = 20.0
) -> tuple[dict, list]:
    seen: list[dict] = []
    async with asyncio.timeout(wait_s):
        while True:
            message = await comm.receive_output(wait_s)
            assert message["type"] == "websocket.send", (message, seen)
            event = json.loads(message["text"])
            seen.append(event)
            if event["type"] == kind:
                return event, seen


async def expect_close(comm: WebsocketCommunicator, code: int, wait_s: float = 10.0) -> list:
    """Messages sent before the close (text parsed as JSON when possible), asserting the close code."""
    seen: list = []
    async with asyncio.timeout(wait_s):
        while True:
            message = await comm.receive_output(wait_s)
            if message["type"] == "websocket.close":
                assert message.get("code") == code, (message, seen)
                return seen
            text = message.get("text")
            try:
                seen.append(json.loads(text) if text is not None else message.get("bytes"))
            except ValueError:
                seen.append(text)


def pcm16(audio: np.ndarray) -> bytes:
    return float_to_int16(audio).astype("<i2").tobytes()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def frames_1024(audio: np.ndarray) -> list[bytes]:
    """Exactly 1024-byte frames (the last one zero-padded)."""
    data = pcm16(audio)
    data += b"\x00" * (-len(data) % 1024)
    return chunks(data, 1024)


async def sessions(**filters) -> list[TranscriptionSession]:
    return await database_sync_to_async(
        lambda: list(TranscriptionSession.objects.filter(**filters).select_related("user", "transcript"))
    )()
