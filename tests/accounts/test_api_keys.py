"""API keys: hashing, authentication, revocation, expiry and scopes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from accounts.authentication import ApiKeyAuthentication
from accounts.keys import key_from_asgi_scope, key_from_headers
from accounts.models import ApiKey
from accounts.services import ApiKeyError, ScopeError, api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


def _all_text_in_database() -> str:
    """Every value of every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_plaintext_secret_never_reaches_the_database(user):
    key, secret = api_key_create(owner=user, name="ci")
    # stt_<prefix>_<secret>: the secret itself may contain "_" (token_urlsafe), so split from the left.
    secret_part = secret.split("_", 2)[2]
    dump = _all_text_in_database()
    assert key.prefix in dump
    assert secret not in dump
    assert secret_part[:20] not in dump
    assert len(ApiKey.objects.get(pk=key.pk).secret_hash) == 64


def test_valid_key_authenticates_and_records_last_use(user):
    key, secret = api_key_create(owner=user, scopes=["stream"])
    found = api_key_authenticate(raw_key=secret, scope="stream")
    assert found.pk == key.pk
    assert found.owner == user
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),
        lambda s: "",
        lambda s: "stt_unknownpre_" + s.rsplit("_", 1)[-1],
        lambda s: s.replace("stt_", "xyz_", 1),
        lambda s: "garbage",
    ],
)
def test_wrong_or_malformed_key_is_refused(user, mangle):
    _, secret = api_key_create(owner=user)
    with pytest.raises(ApiKeyError) as exc:
        api_key_authenticate(raw_key=mangle(secret))
    assert exc.value.code == "invalid_key"


def test_revoked_key_is_refused(user):
    key, secret = api_key_create(owner=user)
    api_key_revoke(key=key)
    with pytest.raises(ApiKeyError) as exc:
        api_key_authenticate(raw_key=secret)
    assert exc.value.code == "key_revoked"


def test_expired_key_is_refused(user):
    _, secret = api_key_create(owner=user, expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(ApiKeyError) as exc:
        api_key_authenticate(raw_key=secret)
    assert exc.value.code == "key_expired"


def test_key_of_inactive_user_is_refused(user):
    _, secret = api_key_create(owner=user)
    user.is_active = False
    user.save()
    with pytest.raises(ApiKeyError):
        api_key_authenticate(raw_key=secret)


def test_key_without_scope_is_refused_for_that_scope_only(user):
    _, secret = api_key_create(owner=user, scopes=["history:read"])
    assert api_key_authenticate(raw_key=secret, scope="history:read")
    with pytest.raises(ScopeError) as exc:
        api_key_authenticate(raw_key=secret, scope="stream")
    assert exc.value.code == "missing_scope"


def test_unknown_scope_cannot_be_granted(user):
    with pytest.raises(ValueError):
        api_key_create(owner=user, scopes=["admin:everything"])


def test_keys_are_read_from_headers_never_the_query_string():
    assert key_from_headers([("Authorization", "Bearer abc")]) == "abc"
    assert key_from_headers([("X-API-Key", "def")]) == "def"
    assert key_from_headers([("Authorization", "Basic xyz")]) is None
    scope = {"headers": [(b"x-api-key-id", b"ghi")], "query_string": b"api_key=zzz&token=zzz"}
    assert key_from_asgi_scope(scope) == "ghi"
    assert key_from_asgi_scope({"headers": [], "query_string": b"api_key=zzz"}) is None


def test_drf_authentication_none_without_header_and_raises_on_bad_one(user):
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.request import Request

    _, secret = api_key_create(owner=user)
    factory = APIRequestFactory()
    auth = ApiKeyAuthentication()
    assert auth.authenticate(Request(factory.get("/"))) is None
    got_user, got_key = auth.authenticate(Request(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {secret}")))
    assert got_user == user and got_key.owner == user
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(Request(factory.get("/", HTTP_X_API_KEY=secret + "x")))
