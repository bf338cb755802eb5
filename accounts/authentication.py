"""DRF authentication by API key and scope-checking permissions."""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions

from accounts.keys import key_from_headers
from accounts.models import ApiKey
from accounts.services import ApiKeyError, RateLimited, api_key_authenticate
from accounts.tokens import looks_like_token


class AuthRateLimited(exceptions.Throttled):
    """429 `rate_limited` with Retry-After (DRF's handler sends `wait` as that header)."""

    default_code = "rate_limited"

    def __init__(self, exc: RateLimited):
        super().__init__(wait=exc.retry_after_s, detail=exc.message, code=exc.code)
        self.detail = exceptions.ErrorDetail(exc.message, code=exc.code)  # without DRF's "Expected ..."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`; None without a header.

    Failed checks count per client address (REMOTE_ADDR) and key: past the limit, 429 (see
    accounts/ratelimit.py)."""

    def authenticate(self, request):
        raw_key = key_from_headers(request.headers.items())
        if raw_key is None:
            return None
        if looks_like_token(raw_key):
            raise exceptions.AuthenticationFailed(
                "Temporary tokens open streams only; this endpoint needs an API key.", code="wrong_scope"
            )
        try:
            key = api_key_authenticate(raw_key=raw_key, address=request.META.get("REMOTE_ADDR"))
        except RateLimited as exc:
            raise AuthRateLimited(exc) from None
        except ApiKeyError as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return key.owner, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasScope(permissions.BasePermission):
    """Key-authenticated requests need the view's scope; browser sessions have every scope.

    Views set `required_scopes = {"GET": "history:read", "POST": "history:write", ...}`
    or `required_scope = "..."` for all methods. HEAD and OPTIONS need GET's scope where they are not
    mapped. Fails closed: a key's request with a method no scope is mapped for is refused (403), so a
    method a view gains later is never open to every key.
    """

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        scopes = getattr(view, "required_scopes", None) or {}
        scope = scopes.get(request.method) or getattr(view, "required_scope", None)
        if scope is None and request.method in ("HEAD", "OPTIONS"):
            scope = scopes.get("GET")
        if scope is None:
            self.message = f"This endpoint takes no {request.method[:20]} request with an API key."
            return False
        return request.auth.has_scope(scope)
