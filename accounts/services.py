"""Writes for accounts: API keys, usage accounting and stream admission."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
import string

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts import ratelimit
from accounts.keys import key_from_headers
from accounts.models import ALL_SCOPES, ActiveStream, ApiKey, Quota, Usage
from accounts.selectors import (
    month_start,
    quota_for_user,
    stream_active_cutoff,
    usage_remaining_seconds,
)
from audit.models import Action
from audit.services import Origin, audit_record

_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_LENGTH = 10
# last_used_at is informative; writing it on every request would turn reads into writes.
_LAST_USED_RESOLUTION = dt.timedelta(seconds=60)
# Any constant 64-hex string: compared against when the prefix is unknown so that
# unknown and wrong keys take the same time.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


class ApiKeyError(Exception):
    """A presented key is not valid. `code` is stable and safe to show to the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ScopeError(ApiKeyError):
    """The key is valid but lacks the scope the endpoint needs."""


CLOSE_RATE_LIMITED = 4429


class RateLimited(ApiKeyError):
    """Too many failed credential checks from this address or for this key (accounts/ratelimit.py),
    or too many new WebSocket connections: refused unchecked for `retry_after_s`."""

    close_code = CLOSE_RATE_LIMITED

    def __init__(self, retry_after_s: int, message: str = ""):
        super().__init__(
            "rate_limited",
            message or f"Too many failed authentication attempts; retry in {retry_after_s} s.",
        )
        self.retry_after_s = retry_after_s


def auth_guard(*, address: str | None, prefix: str | None) -> None:
    """Raise RateLimited while `address` (or the key `prefix`) is locked for failed checks."""
    blocked = ratelimit.auth_blocked(address=address, prefix=prefix)
    if blocked is not None:
        raise RateLimited(blocked.retry_after_s)


def connect_guard(*, address: str | None) -> None:
    """Count a new WebSocket connection; RateLimited past STT_WS_CONNECT_LIMIT in its window."""
    blocked = ratelimit.connect_blocked(address=address)
    if blocked is not None:
        raise RateLimited(
            blocked.retry_after_s,
            f"Too many new connections from this address; retry in {blocked.retry_after_s} s.",
        )


@dataclasses.dataclass
class AdmissionDenied(Exception):
    """A stream cannot start now; `close_code` is the WebSocket close code to use."""

    code: str
    message: str
    close_code: int

    def __str__(self) -> str:
        return self.message


def _hash_secret(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is as strong as a slow one.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def api_key_create(
    *,
    owner,
    name: str = "",
    scopes: list[str] | None = None,
    expires_at: dt.datetime | None = None,
    origin: Origin | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the full secret, which is never retrievable again.
    Recorded in the audit log, as made by `origin` (who asked, from where)."""
    scopes = list(dict.fromkeys(scopes if scopes is not None else ALL_SCOPES))
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; valid: {ALL_SCOPES}")
    while True:
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LENGTH))
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = secrets.token_urlsafe(32)
    raw_key = f"{settings.API_KEY_PREFIX}_{prefix}_{secret}"
    with transaction.atomic():  # the key and its audit event, or neither
        key = ApiKey.objects.create(
            owner=owner,
            name=name,
            prefix=prefix,
            secret_hash=_hash_secret(raw_key),
            scopes=scopes,
            expires_at=expires_at,
        )
        details = {"owner": owner.get_username(), "name": name, "scopes": scopes, "expires_at": expires_at}
        audit_record(Action.KEY_CREATED, target=_key_label(key), origin=origin, details=details)
    return key, raw_key


def _key_label(key: ApiKey) -> str:
    return f"API key {key.prefix} of {key.owner.get_username()}"


def _split_key(raw_key: str) -> str | None:
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != settings.API_KEY_PREFIX or len(parts[1]) != _PREFIX_LENGTH:
        return None
    return parts[1]


def api_key_authenticate(*, raw_key: str, scope: str | None = None, address: str | None = None) -> ApiKey:
    """The active key matching `raw_key`; raises ApiKeyError (or ScopeError) otherwise.

    `address`, the client's, is what failures are counted under besides the key's prefix: while
    either is locked (accounts/ratelimit.py) every key is refused unchecked with RateLimited."""
    raw_key = (raw_key or "").strip()
    prefix = _split_key(raw_key)
    auth_guard(address=address, prefix=prefix)
    try:
        key = _api_key_check(raw_key, prefix)
    except ApiKeyError:
        ratelimit.auth_failed(address=address, prefix=prefix, via="api_key")
        raise
    if scope is not None and not key.has_scope(scope):
        raise ScopeError("missing_scope", f"This API key lacks the '{scope}' scope.")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def _api_key_check(raw_key: str, prefix: str | None) -> ApiKey:
    key = ApiKey.objects.select_related("owner").filter(prefix=prefix).first() if prefix else None
    presented = _hash_secret(raw_key)
    if not hmac.compare_digest(presented, key.secret_hash if key else _DUMMY_HASH) or key is None:
        raise ApiKeyError("invalid_key", "Invalid API key.")
    now = timezone.now()
    if key.is_revoked:
        raise ApiKeyError("key_revoked", "This API key has been revoked.")
    if key.is_expired(now):
        raise ApiKeyError("key_expired", "This API key has expired.")
    if not key.owner.is_active:
        raise ApiKeyError("user_inactive", "The owner of this API key is inactive.")
    return key


def api_key_from_headers(headers, *, scope: str | None = None, address: str | None = None) -> ApiKey | None:
    """The key a request presents in its headers, None when it presents none (then a browser session
    may stand in); ApiKeyError when it is not valid, ScopeError when it lacks `scope`, RateLimited
    while the client `address` (REMOTE_ADDR) or the key is locked for failed checks."""
    raw = key_from_headers(headers)
    return None if raw is None else api_key_authenticate(raw_key=raw, scope=scope, address=address)


def api_key_revoke(*, key: ApiKey, origin: Origin | None = None) -> ApiKey:
    """Revoke the key (idempotent: revoking a revoked key changes and records nothing)."""
    if key.revoked_at is None:
        with transaction.atomic():
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(Action.KEY_REVOKED, target=_key_label(key), origin=origin)
    return key


def quota_set(*, user, origin: Origin | None = None, **limits: int) -> Quota:
    """Create or update the user's quota; unspecified limits keep their current (or default) value.
    A change is recorded in the audit log (`quota_changed`, each limit's old and new value)."""
    before = quota_for_user(user=user).as_dict()
    unknown = set(limits) - set(before)
    if unknown:
        raise ValueError(f"unknown quota fields {sorted(unknown)}")
    current = {**before, **{k: v for k, v in limits.items() if v is not None}}
    with transaction.atomic():
        quota, created = Quota.objects.update_or_create(user=user, defaults=current)
        quota_change_record(user=user, before=before, after=current, created=created, origin=origin)
    return quota


def quota_change_record(
    *, user, before: dict, after: dict | None, created: bool = False, origin=None
) -> None:
    """Record a quota change (`after` None: the row was removed, the defaults apply); nothing when
    no limit changed and no row was created."""
    after_values = after if after is not None else dict(settings.STT_DEFAULT_QUOTA)
    changes = {k: [before.get(k), v] for k, v in after_values.items() if before.get(k) != v}
    if not changes and not created and after is not None:
        return
    audit_record(
        Action.QUOTA_CHANGED,
        target=f"quota of {user.get_username()}",
        origin=origin,
        details={"user": user.get_username(), "changes": changes, "removed": after is None},
    )


def usage_add(
    *,
    user,
    streamed_seconds: float = 0.0,
    uploaded_seconds: float = 0.0,
    sessions: int = 0,
    when: dt.datetime | None = None,
) -> None:
    """Add usage atomically (F() update, safe under concurrent writers)."""
    month = month_start(when)
    updates = {
        "audio_seconds_streamed": F("audio_seconds_streamed") + float(streamed_seconds),
        "audio_seconds_uploaded": F("audio_seconds_uploaded") + float(uploaded_seconds),
        "sessions": F("sessions") + int(sessions),
        "updated_at": timezone.now(),
    }
    if Usage.objects.filter(user=user, month=month).update(**updates):
        return
    with transaction.atomic():
        Usage.objects.get_or_create(user=user, month=month)
        Usage.objects.filter(user=user, month=month).update(**updates)


_ADMISSION_LOCK = 0x5717
_SPEAKERS_LOCK = 0x5718
_QUOTA_LOCK = 0x5719  # with the user's id: one user's reservations and bills, one at a time


def _serialize(lock_id: int, key: int | None = None) -> None:
    """Serialize a check-then-write so concurrent callers cannot both take the last place (`key`:
    one such lock per key, e.g. per user).

    On PostgreSQL a transaction-scoped advisory lock does it across every Daphne process;
    SQLite transactions here are IMMEDIATE, so the write lock is already held.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if key is None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])
            else:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [lock_id, int(key)])


def quota_lock(*, user_id: int) -> None:
    """Serialize the user's reservations and bills until the transaction ends."""
    _serialize(_QUOTA_LOCK, user_id)


def _reservation_grant(*, user, limits, seconds: float) -> float:
    """Seconds that may be reserved now (at most `seconds`): the allowance less use and holdings."""
    left = usage_remaining_seconds(user=user, limits=limits)
    return max(0.0, min(float(seconds), left))


def stream_reserve(*, stream_id, user, seconds: float) -> float:
    """Draw up to `seconds` more from the user's monthly allowance for a live stream; returns what
    was granted (0.0 once the allowance is spent). Atomic per user, on every database."""
    with transaction.atomic():
        quota_lock(user_id=user.pk)
        granted = _reservation_grant(user=user, limits=quota_for_user(user=user), seconds=seconds)
        if granted > 0:
            ActiveStream.objects.filter(pk=stream_id).update(reserved_seconds=F("reserved_seconds") + granted)
        return granted


def stream_billed_add(*, stream_id, seconds: float) -> None:
    """Record audio billed against a stream's reservation (inside the caller's `quota_lock`)."""
    ActiveStream.objects.filter(pk=stream_id).update(billed_seconds=F("billed_seconds") + float(seconds))


def stream_admission_create(
    *,
    user,
    endpoint: str,
    server: str = "",
    max_sessions: int | None = None,
) -> ActiveStream:
    """Admit a new stream for `user` or raise AdmissionDenied; registers it as active."""
    with transaction.atomic():
        _serialize(_ADMISSION_LOCK)
        cutoff = stream_active_cutoff()
        ActiveStream.objects.filter(heartbeat_at__lt=cutoff).delete()
        if max_sessions is not None and ActiveStream.objects.count() >= max_sessions:
            raise AdmissionDenied("server_at_capacity", "The server is at capacity; try again later.", 1013)
        limits = quota_for_user(user=user)
        if ActiveStream.objects.filter(user=user).count() >= limits.max_concurrent_streams:
            raise AdmissionDenied(
                "too_many_streams",
                f"Too many concurrent streams (limit {limits.max_concurrent_streams}).",
                4029,
            )
        quota_lock(user_id=user.pk)
        granted = _reservation_grant(
            user=user, limits=limits, seconds=settings.STT_STREAM["QUOTA_RESERVATION_S"]
        )
        if granted <= 0:
            raise AdmissionDenied("quota_exhausted", "Monthly audio quota exhausted.", 4002)
        return ActiveStream.objects.create(
            user=user, endpoint=endpoint, server=server, reserved_seconds=granted
        )


def stream_heartbeat(*, stream_id) -> bool:
    """Keep an admitted stream alive; False if it had already expired and was removed."""
    return bool(ActiveStream.objects.filter(pk=stream_id).update(heartbeat_at=timezone.now()))


def stream_speaking_set(*, stream_id, speaking: bool, max_active_speakers: int | None = None) -> bool:
    """Mark a stream as speaking (if a place is free) or silent; returns whether it is speaking."""
    if not speaking:
        ActiveStream.objects.filter(pk=stream_id).update(speaking=False)
        return False
    with transaction.atomic():
        _serialize(_SPEAKERS_LOCK)
        cutoff = stream_active_cutoff()
        busy = ActiveStream.objects.filter(speaking=True, heartbeat_at__gte=cutoff).exclude(pk=stream_id)
        if max_active_speakers is not None and busy.count() >= max_active_speakers:
            return False
        ActiveStream.objects.filter(pk=stream_id).update(speaking=True, heartbeat_at=timezone.now())
    return True


def stream_release(*, stream_id) -> None:
    ActiveStream.objects.filter(pk=stream_id).delete()
