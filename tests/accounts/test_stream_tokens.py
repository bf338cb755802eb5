"""Temporary stream tokens: minted by POST /api/v1/tokens, used once in a URL or a subprotocol.

The refusals on every streaming endpoint are in tests/transcription/compat/test_tokens_everywhere.py.
"""

from __future__ import annotations

import datetime as dt
import json

import jwt
import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts import tokens
from accounts.models import StreamToken
from accounts.services import api_key_create
from accounts.tokens import TokenError, looks_like_token, stream_token_mint, stream_token_redeem
from sttproject.asgi import application
from transcription.models import TranscriptionSession
from transcription.streaming.service import shutdown_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]


@pytest_asyncio.fixture
async def fake_inference(settings):
    """The fake engine and the in-memory layer, as the streaming tests use (tests/transcription)."""
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE": "speech.inference.fake.FakeEngine"}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield
    await shutdown_service()


def mint(client, key: str | None = None, **body):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post("/api/v1/tokens", data=json.dumps(body), content_type="application/json", **headers)


async def first_message(comm: WebsocketCommunicator) -> dict:
    message = await comm.receive_output(10)
    assert message["type"] == "websocket.send", message
    return json.loads(message["text"])


async def open_with(path: str, **kwargs) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, path, **kwargs)
    connected, subprotocol = await comm.connect()
    assert connected
    comm.accepted_subprotocol = subprotocol
    return comm


async def refused_with(path: str, code: str, **kwargs) -> None:
    """The stream is accepted only to say why (an `error` with `code`), then closed with 4001."""
    comm = await open_with(path, **kwargs)
    error = await first_message(comm)
    assert (error["type"], error["code"]) == ("error", code), error
    close = await comm.receive_output(10)
    assert close == {"type": "websocket.close", "code": 4001}, close
    await comm.disconnect()


def test_a_key_with_stream_mints_a_token_that_lives_60_s_by_default(client, alice):
    _, key = api_key_create(owner=alice, scopes=["stream"])
    response = mint(client, key)
    assert response.status_code == 201, response.content
    body = response.json()
    assert looks_like_token(body["token"]) and body["scope"] == "stream"
    assert body["expires_in_seconds"] == 60
    row = StreamToken.objects.get()
    assert row.user == alice and row.api_key.owner == alice and row.used_at is None
    assert abs((row.expires_at - timezone.now()).total_seconds() - 60) < 5
    # Only its id is stored, never the token.
    assert body["token"] not in json.dumps(list(StreamToken.objects.values()), default=str)


def test_a_signed_in_user_mints_one_and_the_lifetime_is_bounded(client, alice):
    client.force_login(alice)
    assert mint(client, expires_in_seconds=600).json()["expires_in_seconds"] == 600
    for bad in (0, 601, "soon"):
        response = mint(client, expires_in_seconds=bad)
        assert response.status_code == 400 and "expires_in_seconds" in response.json()["fields"], bad


def test_a_key_without_stream_and_no_credentials_cannot_mint(client, alice):
    _, reader = api_key_create(owner=alice, scopes=["history:read"])
    assert mint(client, reader).status_code == 403
    assert mint(client).status_code in (401, 403)
    assert StreamToken.objects.count() == 0


def test_a_token_cannot_mint_another_or_read_history(client, alice):
    token = stream_token_mint(user=alice).token
    for response in (
        mint(client, token),
        client.get("/api/v1/sessions", HTTP_AUTHORIZATION=f"Bearer {token}"),
    ):
        assert response.status_code == 401 and response.json()["code"] == "wrong_scope", response.content


def test_redeeming_marks_it_used_once(alice):
    token = stream_token_mint(user=alice).token
    assert stream_token_redeem(raw=token).user == alice
    with pytest.raises(TokenError) as used:
        stream_token_redeem(raw=token)
    assert used.value.code == "token_used"


def test_expired_tampered_and_wrong_scope_tokens_are_refused(alice):
    expired = stream_token_mint(user=alice, ttl_s=1)
    claims = jwt.decode(expired.token, options={"verify_signature": False})
    StreamToken.objects.filter(jti=claims["jti"]).update(expires_at=timezone.now() - dt.timedelta(seconds=30))
    past = jwt.encode({**claims, "exp": claims["exp"] - 60}, tokens._signing_key(), algorithm="HS256")
    good = stream_token_mint(user=alice).token
    head, body, signature = good.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    other = stream_token_mint(user=alice, scope="history:read").token
    cases = {past: "token_expired", tampered: "invalid_token", other: "wrong_scope"}
    for raw, code in cases.items():
        with pytest.raises(TokenError) as refused:
            stream_token_redeem(raw=raw)
        assert refused.value.code == code
    # The good one is still unused: none of the refusals above touched it.
    assert stream_token_redeem(raw=good).user == alice


def test_a_token_minted_by_a_revoked_key_is_refused(alice):
    key, _ = api_key_create(owner=alice, scopes=["stream"])
    token = stream_token_mint(user=alice, api_key=key).token
    key.revoked_at = timezone.now()
    key.save()
    with pytest.raises(TokenError) as refused:
        stream_token_redeem(raw=token)
    assert refused.value.code == "key_revoked"


async def test_a_token_in_the_query_opens_one_stream_and_only_one(alice):
    key, _ = await database_sync_to_async(api_key_create)(owner=alice, scopes=["stream"])
    token = (await database_sync_to_async(stream_token_mint)(user=alice, api_key=key)).token
    # From another site's page: a token is who it says, whatever the Origin.
    comm = await open_with(f"/ws/transcribe?token={token}", headers=[(b"origin", b"https://app.example")])
    hello = await first_message(comm)
    assert hello["type"] == "hello", hello
    await comm.disconnect()
    session = await database_sync_to_async(TranscriptionSession.objects.get)(pk=hello["sessionId"])
    assert (session.user_id, session.api_key_id) == (alice.pk, key.pk)
    await refused_with(f"/ws/transcribe?token={token}", "token_used")


async def test_a_token_in_the_subprotocols_is_answered_with_its_name(alice):
    token = (await database_sync_to_async(stream_token_mint)(user=alice)).token
    comm = await open_with("/ws/transcribe", subprotocols=["token", token])
    assert comm.accepted_subprotocol == "token"
    assert (await first_message(comm))["type"] == "hello"
    await comm.disconnect()


async def test_a_key_in_a_url_or_a_subprotocol_is_refused_even_when_valid(alice):
    _, key = await database_sync_to_async(api_key_create)(owner=alice, scopes=["stream"])
    await refused_with(f"/ws/transcribe?token={key}", "key_not_allowed_here")
    await refused_with(f"/ws/transcribe?access_token={key}", "key_not_allowed_here")
    await refused_with("/ws/transcribe", "key_not_allowed_here", subprotocols=["token", key])


def test_rows_of_tokens_expired_a_day_ago_go_when_a_new_one_is_minted(alice):
    old = stream_token_mint(user=alice)
    recent = stream_token_mint(user=alice)
    day_ago = timezone.now() - dt.timedelta(days=1, seconds=5)
    first, second = StreamToken.objects.order_by("created_at")
    StreamToken.objects.filter(pk=first.pk).update(expires_at=day_ago)
    StreamToken.objects.filter(pk=second.pk).update(expires_at=timezone.now() - dt.timedelta(hours=1))
    stream_token_mint(user=alice)
    assert StreamToken.objects.count() == 2 and not StreamToken.objects.filter(pk=first.pk).exists()
    assert old.token != recent.token


async def test_a_stream_refused_for_capacity_leaves_its_token_good_for_a_retry(alice, django_user_model):
    from accounts.services import stream_admission_create, stream_release
    from transcription import runtime_config

    token = (await database_sync_to_async(stream_token_mint)(user=alice)).token
    other = await database_sync_to_async(django_user_model.objects.create_user)("someone")
    taken = await database_sync_to_async(stream_admission_create)(user=other, endpoint="ws_transcribe")
    await database_sync_to_async(runtime_config.apply)({"max_sessions": 1})
    comm = await open_with(f"/ws/transcribe?token={token}")
    refusal = await first_message(comm)
    assert refusal["code"] == "server_at_capacity", refusal
    await comm.disconnect()
    await database_sync_to_async(stream_release)(stream_id=taken.pk)
    comm = await open_with(f"/ws/transcribe?token={token}")
    assert (await first_message(comm))["type"] == "hello"
    await comm.disconnect()
    await refused_with(f"/ws/transcribe?token={token}", "token_used")
