"""Brute-force limits: sign-ins locked out by django-axes; API-key and token guesses counted per client
address and per key (429 with Retry-After, WebSocket close 4429); new WebSockets per address."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from axes.models import AccessAttempt
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from accounts import ratelimit
from accounts.services import api_key_create
from audit.models import Action, AuditEvent
from sttproject.asgi import application

LIMIT = 5
FORGED = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.bm9wZQ"  # a JWT's shape, signed by nobody


@pytest.fixture
def limits(settings):
    settings.STT_AUTH_LIMITS = {
        **settings.STT_AUTH_LIMITS,
        "FAILURE_LIMIT": LIMIT,
        "KEY_FAILURE_LIMIT": LIMIT,
        "FAILURE_WINDOW_S": 60,
    }
    return settings.STT_AUTH_LIMITS


class FakeTime:
    """The limiter's clock (the windows and lock-outs), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0 + 5  # a few seconds into a 60 s window

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def bad_key(n: int = 0) -> str:
    return f"stt_{'x' * 10}_wrong-secret-{n}"


def api(address: str, key: str | None, path: str = "/api/v1/sessions/"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return Client(REMOTE_ADDR=address).get(path, **headers)


# -- the limiter itself ------------------------------------------------------------------------------


def test_addresses_count_per_ipv4_address_and_per_ipv6_64():
    assert ratelimit.address_bucket("203.0.113.7") == "203.0.113.7"
    assert ratelimit.address_bucket("::ffff:203.0.113.7") == "203.0.113.7"
    assert ratelimit.address_bucket("2001:db8:1:2:aaaa::1") == ratelimit.address_bucket("2001:db8:1:2::9")
    assert ratelimit.address_bucket("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert ratelimit.address_bucket("2001:db8:1:3::1") != ratelimit.address_bucket("2001:db8:1:2::1")
    for nothing in (None, "", "unix:/run/stt.sock", "testclient"):
        assert ratelimit.address_bucket(nothing) is None
    assert ratelimit.key_bucket("abcdefgh12") == "abcdefgh12"
    assert ratelimit.key_bucket("ABC DEF 12") is None and ratelimit.key_bucket(None) is None


@pytest.mark.django_db
def test_the_failure_that_reaches_the_limit_locks_for_one_window_then_it_ends(limits, clock):
    for _ in range(LIMIT - 1):
        ratelimit.auth_failed(address="198.51.100.1", prefix=None)
    assert ratelimit.auth_blocked(address="198.51.100.1", prefix=None) is None
    ratelimit.auth_failed(address="198.51.100.1", prefix=None)
    blocked = ratelimit.auth_blocked(address="198.51.100.1", prefix=None)
    assert blocked == ratelimit.Blocked("address", 60)
    assert ratelimit.auth_blocked(address="198.51.100.2", prefix=None) is None
    clock.now += 59.5
    assert ratelimit.auth_blocked(address="198.51.100.1", prefix=None).retry_after_s == 1
    clock.now += 1
    assert ratelimit.auth_blocked(address="198.51.100.1", prefix=None) is None
    # One audit event for the lock-out, not one per failure.
    (event,) = AuditEvent.objects.filter(action=Action.LOCKOUT)
    assert event.target == "API keys from 198.51.100.1" and event.address == "198.51.100.1"
    assert event.details["kind"] == "api_key" and event.details["failures"] == LIMIT


@pytest.mark.django_db
def test_a_failing_cache_limits_nothing_and_breaks_nothing(limits, monkeypatch, caplog):
    class Broken:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("redis is down")

            return fail

    monkeypatch.setattr(ratelimit, "cache", Broken())
    for _ in range(LIMIT + 2):
        ratelimit.auth_failed(address="198.51.100.1", prefix="abcdefgh12")
    assert ratelimit.auth_blocked(address="198.51.100.1", prefix="abcdefgh12") is None
    assert ratelimit.connect_blocked(address="198.51.100.1") is None
    assert "the cache failed" in caplog.text


# -- sign-in: django-axes --------------------------------------------------------------------------


@pytest.mark.django_db
def test_wrong_passwords_lock_the_web_login_and_the_right_one_is_refused_until_the_cool_off_ends(
    alice, settings
):
    limit = settings.AXES_FAILURE_LIMIT
    browser = Client(REMOTE_ADDR="198.51.100.20")
    for attempt in range(1, limit):
        wrong = browser.post("/accounts/login/", {"username": "alice", "password": f"nope-{attempt}"})
        assert wrong.status_code == 200 and 'role="alert"' in wrong.content.decode()
    tripped = browser.post("/accounts/login/", {"username": "alice", "password": "nope-again"})
    assert tripped.status_code == 429
    right = browser.post("/accounts/login/", {"username": "alice", "password": "alice-pass-123", "next": "/"})
    assert right.status_code == 429, "locked: even the right password is refused"
    page = right.content.decode()
    assert "Too many sign-in attempts" in page and "Try again in 15 minutes" in page
    assert 0 < int(right["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()
    assert browser.get("/history/").status_code == 302, "not signed in"
    # The lock holds that user name from that address: alice elsewhere signs in.
    elsewhere = Client(REMOTE_ADDR="198.51.100.21")
    assert (
        elsewhere.post("/accounts/login/", {"username": "alice", "password": "alice-pass-123"}).status_code
        == 302
    )
    # Once the cool-off has passed since the last failure, the right password works again.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )
    again = browser.post(
        "/accounts/login/", {"username": "alice", "password": "alice-pass-123", "next": "/history/"}
    )
    assert again.status_code == 302 and again["Location"] == "/history/"
    assert browser.get("/history/").status_code == 200
    (event,) = AuditEvent.objects.filter(action=Action.LOCKOUT)
    assert event.details == {
        "kind": "login",
        "username": "alice",
        "failures": limit,
        "path": "/accounts/login/",
        "via": "login",
    }
    assert event.address == "198.51.100.20" and event.target == "login of alice"


@pytest.mark.django_db
def test_the_admin_login_is_locked_out_too(django_user_model, settings):
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    browser = Client(REMOTE_ADDR="198.51.100.30")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        browser.post("/admin/login/", {"username": "root", "password": f"wrong-{attempt}", "next": "/admin/"})
    refused = browser.post(
        "/admin/login/", {"username": "root", "password": "pw-root-123", "next": "/admin/"}
    )
    assert refused.status_code == 429 and "Too many sign-in attempts" in refused.content.decode()
    assert browser.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_a_successful_sign_in_clears_the_earlier_failures(alice, settings):
    browser = Client(REMOTE_ADDR="198.51.100.40")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        browser.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert (
        browser.post("/accounts/login/", {"username": "alice", "password": "alice-pass-123"}).status_code
        == 302
    )
    browser.post("/accounts/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert browser.post("/accounts/login/", {"username": "alice", "password": "nope"}).status_code == 200


# -- API keys over REST --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_keys_from_one_address_get_429_with_retry_after_and_then_even_the_right_key_is_refused(
    alice, limits, clock
):
    _, good = api_key_create(owner=alice)
    for n in range(LIMIT):
        assert api("203.0.113.5", bad_key(n)).status_code == 401
    refused = api("203.0.113.5", good)
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert refused.json() == {
        "code": "rate_limited",
        "detail": "Too many failed authentication attempts; retry in 60 s.",
    }
    assert api("203.0.113.5", bad_key()).status_code == 429
    assert api("203.0.113.6", good).status_code == 200, "another address is not locked"
    clock.now += 59
    assert api("203.0.113.5", good)["Retry-After"] == "1"
    clock.now += 1
    assert api("203.0.113.5", good).status_code == 200, "the lock lasts one window"


@pytest.mark.django_db
def test_guesses_at_one_key_from_many_addresses_lock_that_key_only(alice, limits, clock):
    key, good = api_key_create(owner=alice)
    _, other = api_key_create(owner=alice)
    for n in range(LIMIT):
        guess = f"stt_{key.prefix}_guess-{n}"
        assert api(f"203.0.113.{100 + n}", guess).status_code == 401
    refused = api("192.0.2.1", good)
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert api("192.0.2.1", other).status_code == 200
    (event,) = AuditEvent.objects.filter(action=Action.LOCKOUT)
    assert event.target == f"API key {key.prefix}" and event.details["bucket"] == "key"


@pytest.mark.django_db
def test_successful_checks_count_nothing(alice, limits, clock):
    _, good = api_key_create(owner=alice)
    for _ in range(3 * LIMIT):
        assert api("203.0.113.7", good).status_code == 200
    for n in range(LIMIT - 1):
        assert api("203.0.113.7", bad_key(n)).status_code == 401
    assert api("203.0.113.7", good).status_code == 200
    assert not AuditEvent.objects.filter(action=Action.LOCKOUT).exists()


@pytest.mark.django_db
def test_the_compat_endpoints_answer_429_in_their_own_envelopes(alice, limits, clock):
    _, good = api_key_create(owner=alice)
    for n in range(LIMIT):
        api("203.0.113.9", bad_key(n))
    browser = Client(REMOTE_ADDR="203.0.113.9")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {good}"}
    openai = browser.get("/v1/models", **auth)
    assert openai.status_code == 429 and openai["Retry-After"] == "60"
    assert openai.json()["error"]["code"] == "rate_limit_exceeded"
    deepgram = browser.post(
        "/v1/listen", data=b"RIFF", content_type="audio/wav", HTTP_AUTHORIZATION=f"Token {good}"
    )
    assert deepgram.status_code == 429 and deepgram["Retry-After"] == "60"
    assert deepgram.json()["err_code"] == "TOO_MANY_REQUESTS"
    assemblyai = browser.get("/v3/token?expires_in_seconds=60", HTTP_AUTHORIZATION=good)
    assert assemblyai.status_code == 429 and assemblyai["Retry-After"] == "60"
    assert "Too many failed authentication attempts" in assemblyai.json()["error"]


# -- WebSockets -----------------------------------------------------------------------------------------


def socket(address: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/transcribe", headers=headers)
    comm.scope["client"] = (address, 40000)  # what Daphne sets (from X-Forwarded-For with --proxy-headers)
    return comm


async def refusal(comm: WebsocketCommunicator) -> tuple[dict, int]:
    connected, _ = await comm.connect()
    assert connected, "refusals are accept-then-close, with the reason"
    error = json.loads(await comm.receive_from(10))
    closed = await comm.receive_output(10)
    assert closed["type"] == "websocket.close"
    return error, closed["code"]


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_is_closed_4429_after_bad_keys_even_with_the_right_key(alice, limits, clock):
    from channels.db import database_sync_to_async

    _, good = await database_sync_to_async(api_key_create)(owner=alice, scopes=["stream"])
    for n in range(LIMIT):
        error, code = await refusal(socket("203.0.113.11", [(b"x-api-key", bad_key(n).encode())]))
        assert code == 4001 and error["code"] == "invalid_key"
    error, code = await refusal(socket("203.0.113.11", [(b"x-api-key", good.encode())]))
    assert code == 4429 and error["code"] == "rate_limited" and "retry in 60 s" in error["message"]
    error, code = await refusal(socket("203.0.113.11", [(b"authorization", f"Bearer {FORGED}".encode())]))
    assert code == 4429, "nor a token"


@pytest.mark.django_db(transaction=True)
async def test_forged_tokens_count_as_failed_checks(limits, clock):
    for _ in range(LIMIT):
        error, code = await refusal(socket("203.0.113.12", [(b"authorization", f"Bearer {FORGED}".encode())]))
        assert code == 4001 and error["code"] == "invalid_token"
    error, code = await refusal(socket("203.0.113.12", [(b"authorization", f"Bearer {FORGED}".encode())]))
    assert code == 4429 and error["code"] == "rate_limited"


@pytest.mark.django_db(transaction=True)
async def test_new_connections_per_address_are_limited_with_4429(settings, clock):
    settings.STT_AUTH_LIMITS = {**settings.STT_AUTH_LIMITS, "WS_CONNECT_LIMIT": 3, "WS_CONNECT_WINDOW_S": 10}
    browser = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    for _ in range(3):
        error, code = await refusal(socket("203.0.113.13", browser))
        assert code == 4001 and error["code"] == "not_authenticated"
    error, code = await refusal(socket("203.0.113.13", browser))
    assert code == 4429 and error["code"] == "rate_limited" and "new connections" in error["message"]
    error, code = await refusal(socket("203.0.113.13", [(b"x-api-key", bad_key().encode())]))
    assert code == 4429, "a key does not get around it"
    error, code = await refusal(socket("203.0.113.14", browser))
    assert code == 4001, "another address has its own count"
    clock.now += 10
    error, code = await refusal(socket("203.0.113.13", browser))
    assert code == 4001, "the next window starts afresh"
