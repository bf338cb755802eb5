"""The brute-force limits through real Daphne processes (fake engine): a WebSocket closed 4429 after bad
keys, the client address taken from X-Forwarded-For under --proxy-headers, and, on Redis, one count
shared by two processes."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.live_server import daphne_server, manage

pytestmark = pytest.mark.slow

LIMIT = 4


def live_env(**extra: str) -> dict[str, str]:
    return {
        "STT_ENGINE": "speech.inference.fake.FakeEngine",
        "STT_PRELOAD_MODELS": "false",
        "STT_AUTH_FAILURE_LIMIT": str(LIMIT),
        # Counters and channels of their own: in the PostgreSQL+Redis pass both live in the shared Redis.
        "CACHE_KEY_PREFIX": f"stt-test-{uuid.uuid4().hex[:10]}",
        "CHANNEL_PREFIX": f"stt-test-{uuid.uuid4().hex[:10]}",
        **extra,
    }


def new_key(env: dict, username: str) -> str:
    return manage(env, "apikey", "create", "--user", username, "--create-user").strip()


def get(base: str, key: str, **headers: str) -> tuple[int, dict, dict]:
    request = Request(base + "/api/v1/sessions/", headers={"Authorization": f"Bearer {key}", **headers})
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


async def ws_refusal(ws_url: str, key: str, **headers: str) -> tuple[int, dict | None]:
    """Open /ws/transcribe with `key`; the close code and the error message before it."""
    error = None
    async with websockets.connect(
        ws_url + "/ws/transcribe", additional_headers={"X-API-Key": key, **headers}, open_timeout=30
    ) as ws:
        try:
            async with asyncio.timeout(30):
                async for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "error":
                        error = message
        except ConnectionClosed:
            pass
    return ws.close_code, error


def bad(n: int) -> str:
    """A wrong key with a prefix of its own: only the address's count trips."""
    return f"stt_{n:010d}_not-the-secret"


def test_bad_keys_close_the_websocket_4429_and_the_right_key_is_refused_over_http_too(tmp_path):
    with daphne_server(tmp_path, live_env(), serve=True) as (base, env, _):
        ws = base.replace("http://", "ws://")
        good = new_key(env, "live-ratelimit")
        for n in range(LIMIT):
            code, error = asyncio.run(ws_refusal(ws, bad(n)))
            assert code == 4001 and error["code"] == "invalid_key", (code, error)
        code, error = asyncio.run(ws_refusal(ws, good))
        assert code == 4429 and error["code"] == "rate_limited", (code, error)
        status, headers, body = get(base, good)
        assert status == 429 and body["code"] == "rate_limited" and 0 < int(headers["Retry-After"]) <= 60


def test_behind_the_proxy_each_forwarded_address_counts_on_its_own(tmp_path):
    # deploy/: nginx sets X-Forwarded-For to the client's address, Daphne runs with --proxy-headers.
    with daphne_server(tmp_path, live_env(), serve=True, daphne_args=("--proxy-headers",)) as (base, env, _):
        good = new_key(env, "live-proxied")
        for n in range(LIMIT):
            assert get(base, bad(n), **{"X-Forwarded-For": "198.51.100.7"})[0] == 401
        assert get(base, good, **{"X-Forwarded-For": "198.51.100.7"})[0] == 429
        assert get(base, good, **{"X-Forwarded-For": "198.51.100.8"})[0] == 200
        ws = base.replace("http://", "ws://")
        code, _ = asyncio.run(ws_refusal(ws, good, **{"X-Forwarded-For": "198.51.100.7"}))
        assert code == 4429
        events = manage(env, "shell", "-c", LOCKOUTS).strip().splitlines()[-1]
        assert json.loads(events) == [["API keys from 198.51.100.7", "198.51.100.7"]]


LOCKOUTS = (
    "import json; from audit.models import AuditEvent; "
    "print(json.dumps([[e.target, e.address] for e in AuditEvent.objects.filter(action='lockout')]))"
)


def test_two_processes_on_redis_share_one_count(tmp_path, redis_url):
    shared = live_env(REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{tmp_path / 'shared.sqlite3'}")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        daphne_server(tmp_path / "a", shared) as (base_a, env, _),
        daphne_server(tmp_path / "b", shared, migrate=False) as (base_b, _, _),
    ):
        good = new_key(env, "live-shared")
        for n in range(LIMIT):
            assert get(base_a if n % 2 else base_b, bad(n))[0] == 401
        assert get(base_a, good)[0] == 429
        code, error = asyncio.run(ws_refusal(base_b.replace("http://", "ws://"), good))
        assert code == 4429 and error["code"] == "rate_limited"
