"""OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}` with OpenAI's statuses.

Every refusal of this API goes through `OpenAIError`, so a client (the `openai` SDK maps the status
to its exception classes and reads the envelope into `.body`) sees the same shapes as from OpenAI.
"""

from __future__ import annotations

from django.http import JsonResponse

from transcription.uploads.accept import RETRY_AFTER_S
from transcription.uploads.decode import ACCEPTED_FORMATS, UploadError

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class OpenAIError(Exception):
    """A request this API refuses, as OpenAI words it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def error_response(exc: OpenAIError) -> JsonResponse:
    response = JsonResponse(exc.envelope(), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def invalid(param: str, message: str, code: str = "invalid_value") -> OpenAIError:
    """A 400 naming the form field at fault."""
    return OpenAIError(400, message, param=param, code=code)


def missing(param: str) -> OpenAIError:
    return OpenAIError(
        400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def no_key() -> OpenAIError:
    return OpenAIError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="invalid_api_key",
    )


def bad_key(reason: str) -> OpenAIError:
    return OpenAIError(401, f"Incorrect API key provided: {reason}", code="invalid_api_key")


def rate_limited(message: str, retry_after_s: int) -> OpenAIError:
    """Too many failed key checks from this address or for this key (accounts/ratelimit.py): OpenAI's
    429 for too many requests, which the SDK raises as RateLimitError (and retries after Retry-After)."""
    return OpenAIError(
        429, message, type="requests", code="rate_limit_exceeded", headers={"Retry-After": str(retry_after_s)}
    )


def missing_scope(scope: str) -> OpenAIError:
    # OpenAI answers a restricted key without the needed permission with a 401 of this wording.
    return OpenAIError(
        401,
        f"You have insufficient permissions for this operation. Missing scopes: {scope}. "
        "Use an API key that has this scope.",
        code="insufficient_permissions",
    )


def server_error(message: str) -> OpenAIError:
    return OpenAIError(500, message, type=SERVER_ERROR, code="server_error")


def from_upload_error(exc: UploadError) -> OpenAIError:
    """The shared upload checks' refusals (transcription.uploads.accept) in OpenAI's terms."""
    if exc.code == "quota_exceeded":
        return OpenAIError(
            429,
            f"You exceeded your current quota, please check your plan and billing details. ({exc.message})",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    if exc.status == 413:
        return OpenAIError(413, exc.message, param="file", code=exc.code)
    if exc.status == 500:
        return OpenAIError(500, exc.message, type=SERVER_ERROR, code="server_error")
    if exc.status == 503:
        return OpenAIError(
            503, exc.message, type=SERVER_ERROR, code=exc.code, headers={"Retry-After": str(RETRY_AFTER_S)}
        )
    if exc.code == "not_audio":
        return OpenAIError(
            400,
            f"Invalid file format. Supported formats: {ACCEPTED_FORMATS}. ({exc.message})",
            param="file",
            code="invalid_file_format",
        )
    return OpenAIError(
        exc.status if 400 <= exc.status < 500 else 400, exc.message, param="file", code=exc.code
    )
