"""DRF authentication by API key and scope-checking permissions."""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions

from accounts.keys import key_from_headers
from accounts.models import ApiKey
from accounts.services import ApiKeyError, api_key_authenticate
from accounts.tokens import looks_like_token


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`; None without a header."""

    def authenticate(self, request):
        raw_key = key_from_headers(request.headers.items())
        if raw_key is None:
            return None
        if looks_like_token(raw_key):
            raise exceptions.AuthenticationFailed(
                "Temporary tokens open streams only; this endpoint needs an API key.", code="wrong_scope"
            )
        try:
            key = api_key_authenticate(raw_key=raw_key)
        except ApiKeyError as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return key.owner, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasScope(permissions.BasePermission):
    """Key-authenticated requests need the view's scope; browser sessions have every scope.

    Views set `required_scopes = {"GET": "history:read", "POST": "history:write", ...}`
    or `required_scope = "..."` for all methods.
    """

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        scopes = getattr(view, "required_scopes", None) or {}
        scope = scopes.get(request.method) or getattr(view, "required_scope", None)
        if scope is None and request.method in ("HEAD", "OPTIONS"):
            scope = scopes.get("GET")
        return scope is None or request.auth.has_scope(scope)
