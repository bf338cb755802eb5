"""Limits on guessing credentials and on opening WebSockets, counted in the Django cache.

With REDIS_URL set the cache is Redis (settings.CACHES), so every Daphne process shares the counts;
embedded it is this process's memory (one process: the same thing). Counters are fixed windows: one
atomic `incr` on a key named after the window, which expires with it.

- Failed credential checks (a wrong, revoked or expired API key, a forged temporary token) count per
  client address and, separately, per key prefix. The failure that reaches the limit (settings
  STT_AUTH_LIMITS: FAILURE_LIMIT per address, KEY_FAILURE_LIMIT per key, in FAILURE_WINDOW_S) locks
  that address, or that key, for one window: while locked, whatever it presents is refused before it
  is checked, the right key too, so guessing gains nothing. A successful check counts nothing and
  resets nothing (a good key must not wipe the count of the guesses made beside it).
- New WebSocket connections count per address (WS_CONNECT_LIMIT per WS_CONNECT_WINDOW_S); past the
  limit they are refused until the window ends.

IPv4 addresses count one by one, IPv6 ones per /64 (what one host is given). A client with no known
address (a Unix socket without proxy headers, an in-process test) is limited per key only. A failing
cache never locks anyone out: the limiter logs it and lets the request through.

Not django-ratelimit: it limits views by their requests, while these counts are of failed checks (a
success must not count) made in DRF, in the compat views and in a Channels middleware on an ASGI
scope, and a lock must refuse the right key too; on the cache they are a few lines.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from audit.models import Action
from audit.services import Origin, audit_record

log = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit"  # of every cache key here (the tests give each test its own)
_PREFIX_SHAPE = re.compile(r"[a-z0-9]{10}")  # accounts.services' key prefixes
ADDRESS, KEY = "address", "key"


@dataclass(frozen=True)
class Blocked:
    """Refused for now: by which count (`address` or `key`), and for how many more seconds."""

    bucket: str
    retry_after_s: int


def _limits() -> dict[str, int]:
    return settings.STT_AUTH_LIMITS


def address_bucket(address: str | None) -> str | None:
    """What an address counts as: the IPv4 address, the IPv6 /64, or None when it is no IP."""
    try:
        ip = ipaddress.ip_address(str(address or "").strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def key_bucket(prefix: str | None) -> str | None:
    """A key prefix of the shape keys are made with, or None (nothing to count it under)."""
    return prefix if prefix and _PREFIX_SHAPE.fullmatch(prefix) else None


def _buckets(address: str | None, prefix: str | None) -> list[tuple[str, str, int]]:
    limits = _limits()
    found = [
        (ADDRESS, address_bucket(address), limits["FAILURE_LIMIT"]),
        (KEY, key_bucket(prefix), limits["KEY_FAILURE_LIMIT"]),
    ]
    return [(kind, ident, limit) for kind, ident, limit in found if ident and limit > 0]


def _incr(key: str, ttl_s: int) -> int:
    """Add one to the counter `key` (created with a lifetime of `ttl_s`); its new value."""
    cache.add(key, 0, timeout=ttl_s)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=ttl_s)
        return 1


def _cache_failed(exc: Exception) -> None:
    log.warning("rate limiter: the cache failed (%s: %s); not limiting", type(exc).__name__, exc)


def auth_blocked(*, address: str | None, prefix: str | None) -> Blocked | None:
    """Whether credentials from `address` (or for the key `prefix`) are refused now, unchecked."""
    buckets = _buckets(address, prefix)
    if not buckets:
        return None
    keys = {f"{KEY_PREFIX}:lock:{kind}:{ident}": kind for kind, ident, _ in buckets}
    try:
        locks = cache.get_many(list(keys))
    except Exception as exc:
        _cache_failed(exc)
        return None
    now = time.time()
    waits = [(until - now, keys[key]) for key, until in locks.items() if until > now]
    if not waits:
        return None
    wait, bucket = max(waits)
    return Blocked(bucket, max(1, math.ceil(wait)))


def auth_failed(*, address: str | None, prefix: str | None, via: str = "") -> None:
    """Count one failed check; the failure that reaches a limit locks its address or key."""
    window = _limits()["FAILURE_WINDOW_S"]
    now = time.time()
    index = int(now // window)
    for kind, ident, limit in _buckets(address, prefix):
        try:
            count = _incr(f"{KEY_PREFIX}:fail:{kind}:{ident}:{index}", window + 5)
            if count != limit:
                continue
            cache.set(f"{KEY_PREFIX}:lock:{kind}:{ident}", now + window, timeout=window)
        except Exception as exc:
            _cache_failed(exc)
            return
        _locked(kind, ident, address=address, prefix=prefix, failures=count, window_s=window, via=via)


def _locked(kind: str, ident: str, *, address, prefix, failures: int, window_s: int, via: str) -> None:
    what = f"API keys from {ident}" if kind == ADDRESS else f"API key {ident}"
    log.warning("rate limiter: %s locked for %d s after %d failed checks", what, window_s, failures)
    audit_record(
        Action.LOCKOUT,
        target=what,
        origin=Origin(address=address, via=via),
        details={
            "kind": "api_key",
            "bucket": kind,
            "key_prefix": key_bucket(prefix) or "",
            "failures": failures,
            "locked_s": window_s,
        },
    )


def connect_blocked(*, address: str | None) -> Blocked | None:
    """Count a new WebSocket connection from `address`; Blocked once past the window's limit."""
    limits = _limits()
    limit, window = limits["WS_CONNECT_LIMIT"], limits["WS_CONNECT_WINDOW_S"]
    bucket = address_bucket(address)
    if bucket is None or limit <= 0:
        return None
    now = time.time()
    index = int(now // window)
    try:
        count = _incr(f"{KEY_PREFIX}:ws:{bucket}:{index}", window + 5)
    except Exception as exc:
        _cache_failed(exc)
        return None
    if count <= limit:
        return None
    return Blocked(ADDRESS, max(1, math.ceil((index + 1) * window - now)))
