"""Temporary tokens on every streaming endpoint: a good one opens a stream there; a used, expired,
tampered or wrong-scope one, or a key in the URL, opens nothing anywhere (fake engine).

Each endpoint refuses in its own form (an error then close 4001 on ours; the close codes and
messages the cloud APIs use on theirs); what they share is that no stream, no session row and no
bill come of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import jwt
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts import tokens
from accounts.models import StreamToken
from accounts.services import api_key_create
from accounts.tokens import stream_token_mint
from sttproject.asgi import application
from transcription.models import TranscriptionSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]


@dataclass(frozen=True)
class Endpoint:
    path: str  # with the query string a client needs (the token is appended)
    stored_as: str  # TranscriptionSession.endpoint of an accepted stream
    refused: tuple[int, ...]  # the close codes its auth refusals use


ENDPOINTS = [
    Endpoint("/ws/transcribe", "ws_transcribe", (4001,)),
    Endpoint("/api/v1/ws", "api_v1_ws", (4001,)),
    Endpoint("/stt/v3/stream", "stt_v3", (4001,)),
    Endpoint("/v1/stream/control?client_id=c1&session_id=s1", "v1_stream", (4001,)),
    # Deepgram: an Error message, then 4001. AssemblyAI: its Error, then 1008 "Unauthorized Connection".
    Endpoint("/v1/listen?encoding=linear16&sample_rate=16000", "deepgram_listen", (4001,)),
    Endpoint("/v3/ws?sample_rate=16000", "assemblyai_streaming", (1008,)),
]


def with_token(path: str, name: str, value: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{name}={value}"


async def outcome(path: str, **kwargs) -> tuple[bool, int | None]:
    """(accepted and kept open for a moment, the close code if it was closed)."""
    comm = WebsocketCommunicator(application, path, **kwargs)
    connected, subprotocol = await comm.connect(timeout=10)
    if connected and kwargs.get("subprotocols"):
        assert subprotocol == "token", subprotocol  # the browser's handshake needs its name back
    if not connected:
        return False, None
    try:
        async with asyncio.timeout(2.0):
            while True:
                message = await comm.receive_output(2.0)
                if message["type"] == "websocket.close":
                    return False, message.get("code")
    except TimeoutError:
        pass
    await comm.disconnect()
    return True, None


def bad_tokens(user) -> dict[str, str]:
    used = stream_token_mint(user=user).token
    tokens.stream_token_redeem(raw=used)
    expired = stream_token_mint(user=user)
    claims = jwt.decode(expired.token, options={"verify_signature": False})
    StreamToken.objects.filter(jti=claims["jti"]).update(expires_at=timezone.now() - dt.timedelta(minutes=5))
    past = jwt.encode({**claims, "exp": claims["exp"] - 600}, tokens._signing_key(), algorithm="HS256")
    good = stream_token_mint(user=user).token
    head, body, signature = good.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    _, key = api_key_create(owner=user, scopes=["stream"])
    return {
        "used": used,
        "expired": past,
        "tampered": f"{head}.{body}.{signature[:5]}{flipped}{signature[6:]}",
        "wrong scope": stream_token_mint(user=user, scope="history:read").token,
        "a valid key": key,
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.stored_as)
async def test_a_good_token_opens_a_stream_and_bad_ones_open_nothing(endpoint, alice):
    good = (await database_sync_to_async(stream_token_mint)(user=alice)).token
    accepted, code = await outcome(with_token(endpoint.path, "token", good))
    assert accepted, f"a fresh token was refused on {endpoint.path} with {code}"
    # Deepgram's browser form: the subprotocols `token, <token>`.
    other = (await database_sync_to_async(stream_token_mint)(user=alice)).token
    accepted, code = await outcome(endpoint.path, subprotocols=["token", other])
    assert accepted, f"a fresh token in the subprotocols was refused on {endpoint.path} with {code}"
    stored = await database_sync_to_async(
        lambda: list(TranscriptionSession.objects.filter(endpoint=endpoint.stored_as, user=alice))
    )()
    assert len(stored) == 2

    refusals = await database_sync_to_async(bad_tokens)(alice)
    for what, value in refusals.items():
        for form in ("query", "subprotocol"):
            if form == "query":
                accepted, code = await outcome(with_token(endpoint.path, "token", value))
            else:
                accepted, code = await outcome(endpoint.path, subprotocols=["token", value])
            assert not accepted and code in (*endpoint.refused, None), (what, form, code)
    count = await database_sync_to_async(TranscriptionSession.objects.filter(user=alice).count)()
    assert count == 2, "a refused credential made a session"
