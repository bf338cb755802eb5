"""Who calls: an API key in `Authorization: Bearer <key>` (as the `openai` SDK sends it), else the
signed-in browser session (whose POSTs must pass Django's CSRF check, as the history API's do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from accounts.keys import key_from_headers
from accounts.models import ApiKey
from accounts.services import ApiKeyError, RateLimited, ScopeError, api_key_from_headers
from transcription.compat.openai import errors


@dataclass(frozen=True)
class Caller:
    user: Any
    key: ApiKey | None  # None: a browser session


def presented_key(request: HttpRequest) -> str | None:
    return key_from_headers(request.headers.items())


def caller_authenticate(request: HttpRequest, *, browser_user: Any, scope: str | None) -> Caller:
    """Sync. `browser_user` is `await request.auser()`, resolved by the async view when no key came.

    Raises OpenAIError: 401 `invalid_api_key` (no key, a bad one), 401 `insufficient_permissions`
    (a key without `scope`), 429 `rate_limit_exceeded` (too many failed key checks), 403 for a
    browser POST that fails the CSRF check.
    """
    try:
        key = api_key_from_headers(
            request.headers.items(), scope=scope, address=request.META.get("REMOTE_ADDR")
        )
    except ScopeError:
        raise errors.missing_scope(scope) from None
    except RateLimited as exc:
        raise errors.rate_limited(exc.message, exc.retry_after_s) from None
    except ApiKeyError as exc:
        raise errors.bad_key(exc.message) from None
    if key is not None:
        return Caller(user=key.owner, key=key)
    if browser_user is None or not browser_user.is_authenticated:
        raise errors.no_key()
    return Caller(user=browser_user, key=None)


def csrf_check(request: HttpRequest) -> None:
    """A browser session's unsafe request must carry the CSRF token (the view itself is csrf_exempt
    so that SDKs, which send keys and no cookies, are not asked for one)."""
    check = CsrfViewMiddleware(lambda _: None)  # type: ignore[arg-type]
    check.process_request(request)
    refused = check.process_view(request, None, (), {})  # type: ignore[arg-type]
    if refused is not None:
        raise errors.OpenAIError(
            403, "CSRF verification failed for this signed-in request.", code="csrf_failed"
        )
