"""Temporary stream tokens: short-lived, single-use, signed credentials a browser can put in a URL.

A key must never reach a browser or a URL. A server holding a key (or a signed-in user) mints a
token instead (`POST /api/v1/tokens`, or AssemblyAI's `GET /v3/token`), and the page opens its
stream with it, in the query string or a WebSocket subprotocol, where no header can be set.

The token is a JWT (PyJWT, HS256, a key derived from SECRET_KEY): `sub` the user, `jti` the row of
`StreamToken`, `scope` (always `stream`), `exp`. Only the `jti` is stored. It is redeemed once: the
row's `used_at` is set by a single conditional update, so two connections racing with one token
get one stream; it is marked used once its stream is admitted (a refusal for capacity or quota
leaves it good for a retry). Tokens are only ever good for streaming; every other endpoint wants a key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.utils import timezone

from accounts.models import ApiKey, Scope, StreamToken

DEFAULT_TTL_S = 60
MAX_TTL_S = 600
AUDIENCE = "stt-stream"
ALGORITHM = "HS256"
_LEEWAY_S = 2
TOKEN_USED = "This temporary token was used already; mint one per stream."


class TokenError(Exception):
    """A token cannot be minted or used. `code` is stable and safe to show to the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires_at: dt.datetime
    ttl_s: int


def _signing_key() -> bytes:
    # Its own key, derived: a token's signature says nothing about the session cookies' key.
    return hashlib.sha256(b"accounts.stream-token:" + settings.SECRET_KEY.encode()).digest()


def looks_like_token(raw: str) -> bool:
    """Whether `raw` has a JWT's shape (three base64url parts), as opposed to an API key."""
    parts = raw.split(".")
    return len(parts) == 3 and raw.startswith("eyJ") and all(parts)


def stream_token_mint(
    *,
    user,
    api_key: ApiKey | None = None,
    ttl_s: int = DEFAULT_TTL_S,
    max_session_s: int | None = None,
    scope: str = Scope.STREAM,
) -> MintedToken:
    """A token for one stream of `user`, good for `ttl_s` seconds (1..600)."""
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S:
        raise TokenError("invalid_ttl", f"A token lives from 1 to {MAX_TTL_S} seconds.")
    now = timezone.now()
    expires_at = now + dt.timedelta(seconds=ttl_s)
    stream_tokens_purge()  # the rows of long-expired tokens go as new ones come (indexed, cheap)
    row = StreamToken.objects.create(
        jti=secrets.token_hex(16),
        user=user,
        api_key=api_key,
        scope=scope,
        created_at=now,
        expires_at=expires_at,
        max_session_seconds=max_session_s,
    )
    claims = {
        "sub": str(user.pk),
        "jti": row.jti,
        "scope": scope,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return MintedToken(jwt.encode(claims, _signing_key(), algorithm=ALGORITHM), expires_at, ttl_s)


def stream_token_check(*, raw: str, scope: str = Scope.STREAM) -> StreamToken:
    """The token's row if it may open a stream now (not used yet); TokenError if it is tampered,
    expired, used or not for `scope`. Nothing is marked: see `stream_token_consume`."""
    try:
        claims = jwt.decode(
            raw,
            _signing_key(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=_LEEWAY_S,
            options={"require": ["exp", "jti", "sub", "scope"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "This temporary token has expired; mint a new one.") from None
    except jwt.InvalidTokenError:
        raise TokenError("invalid_token", "Invalid temporary token.") from None
    if claims.get("scope") != scope:
        raise TokenError("wrong_scope", f"This temporary token is not for the '{scope}' scope.")
    row = StreamToken.objects.select_related("user", "api_key").filter(jti=str(claims["jti"])).first()
    if row is None or str(row.user_id) != str(claims["sub"]):
        raise TokenError("invalid_token", "Invalid temporary token.")
    now = timezone.now()
    if row.expires_at <= now - dt.timedelta(seconds=_LEEWAY_S):
        raise TokenError("token_expired", "This temporary token has expired; mint a new one.")
    if row.api_key is not None and not row.api_key.is_active(now):
        raise TokenError("key_revoked", "The API key that minted this token is no longer valid.")
    if not row.user.is_active:
        raise TokenError("user_inactive", "The owner of this token is inactive.")
    if row.used_at is not None:
        raise TokenError("token_used", TOKEN_USED)
    return row


def stream_token_consume(*, token: StreamToken) -> bool:
    """Mark the token used, once: False when another connection used it first (one conditional
    update, so two racing connections get one stream). Called once the stream is admitted, so a
    stream refused for capacity or quota leaves its token good for a retry."""
    now = timezone.now()
    if not StreamToken.objects.filter(pk=token.pk, used_at__isnull=True).update(used_at=now):
        return False
    token.used_at = now
    return True


def stream_token_redeem(*, raw: str, scope: str = Scope.STREAM) -> StreamToken:
    """Check and consume in one step (TokenError `token_used` when it was used already)."""
    row = stream_token_check(raw=raw, scope=scope)
    if not stream_token_consume(token=row):
        raise TokenError("token_used", TOKEN_USED)
    return row


def stream_tokens_purge(*, older_than_s: float = 86400.0) -> int:
    """Delete the rows of tokens that expired more than `older_than_s` ago (nothing refers to them)."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_s)
    deleted, _ = StreamToken.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
