"""GET /v3/token: AssemblyAI's temporary streaming token, minted for a key (raw `Authorization`) or a
signed-in browser, good for one /v3/ws stream.

Errors are AssemblyAI's: HTTP 400 or 401 with `{"error": "..."}` (429 and Retry-After after too many
failed key checks).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from accounts.models import Scope
from accounts.services import ApiKeyError, RateLimited, api_key_from_headers
from accounts.tokens import TokenError, stream_token_mint

EXPIRES_IN_S = (1, 600)  # AssemblyAI's bounds for expires_in_seconds
MAX_SESSION_S = (60, 10800)  # and for max_session_duration_seconds


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _integer(request: HttpRequest, name: str, bounds: tuple[int, int]) -> int | None:
    """The query parameter as an integer within `bounds`, None when absent; ValueError with the message."""
    raw = request.GET.get(name)
    if raw is None or raw.strip() == "":
        return None
    low, high = bounds
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be an integer between {low} and {high}.") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high} seconds.")
    return value


def _owner(request: HttpRequest):
    """(user, api key or None) of the request, or the 401 response."""
    try:
        key = api_key_from_headers(
            request.headers.items(), scope=Scope.STREAM, address=request.META.get("REMOTE_ADDR")
        )
    except RateLimited as exc:
        response = _error(exc.message, 429)
        response["Retry-After"] = str(exc.retry_after_s)
        return response
    except ApiKeyError as exc:  # a ScopeError too: AssemblyAI answers both with a 401
        return _error(f"Authentication error: {exc.message}", 401)
    if key is not None:
        return key.owner, key
    if request.user.is_authenticated:
        return request.user, None
    return _error("Authentication error, API key missing.", 401)


def streaming_token(request: HttpRequest) -> JsonResponse:
    if request.method != "GET":
        return _error("Method not allowed; use GET /v3/token?expires_in_seconds=N.", 405)
    owner = _owner(request)
    if isinstance(owner, JsonResponse):
        return owner
    user, key = owner
    try:
        expires_in = _integer(request, "expires_in_seconds", EXPIRES_IN_S)
        max_session = _integer(request, "max_session_duration_seconds", MAX_SESSION_S)
    except ValueError as exc:
        return _error(str(exc), 400)
    if expires_in is None:
        low, high = EXPIRES_IN_S
        return _error(f"expires_in_seconds is required: an integer between {low} and {high}.", 400)
    try:
        minted = stream_token_mint(user=user, api_key=key, ttl_s=expires_in, max_session_s=max_session)
    except TokenError as exc:
        return _error(exc.message, 400)
    return JsonResponse({"token": minted.token, "expires_in_seconds": minted.ttl_s})
