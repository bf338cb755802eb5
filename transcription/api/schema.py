"""OpenAPI details: the API-key security scheme and one documented path per route."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>` (or `X-API-Key: <key>`). Scopes: `history:read` "
            "for reads, `history:write` for uploads, deletes and renaming speakers.",
        }


def drop_slashless_duplicates(endpoints: list) -> list:
    """Routes answer with and without a trailing slash; document only the slash form."""
    return [e for e in endpoints if not (e[0].startswith("/api/v1/") and not e[0].endswith("/"))]
