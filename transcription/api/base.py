"""Shared pieces of the REST API: error format, pagination, permissions and lookups."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.authentication import HasScope
from accounts.models import Scope

READ_WRITE_SCOPES = {
    "GET": Scope.HISTORY_READ,
    "HEAD": Scope.HISTORY_READ,
    "OPTIONS": Scope.HISTORY_READ,
    "POST": Scope.HISTORY_WRITE,
    "PUT": Scope.HISTORY_WRITE,
    "PATCH": Scope.HISTORY_WRITE,
    "DELETE": Scope.HISTORY_WRITE,
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


class ServiceUnavailable(exceptions.APIException):
    """503 with a Retry-After header (DRF's handler sends `wait` as Retry-After)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is unavailable; try again later."
    default_code = "service_unavailable"
    wait = 10


class ErrorSerializer(serializers.Serializer):
    """Every error answer: a stable `code`, a readable `detail`, and per-field messages for bad input."""

    code = serializers.CharField(help_text="Stable, machine-readable reason, e.g. `not_audio`, `not_found`")
    detail = serializers.CharField(help_text="What is wrong, for humans")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For invalid input: the messages of each field",
    )


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input",
        401: "Not authenticated (no or bad credentials)",
        403: "Not allowed (missing API-key scope, or not permitted)",
        404: "Not found (or not yours)",
        409: "Conflict with the resource's state",
        413: "Too large or too long",
        415: "Unsupported content type",
        503: "Temporarily unavailable (the server is restarting); retry after Retry-After seconds",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions[code]) for code in codes}


def _first_error(details: Any, path: str = "") -> tuple[str, str, str]:
    """(field path, message, code) of the first error in DRF's nested full details."""
    if isinstance(details, dict) and "message" in details and "code" in details:
        return path, str(details["message"]), str(details["code"])
    if isinstance(details, dict):
        for key, value in details.items():
            return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(details, list) and details:
        return _first_error(details[0], path)
    return path, "Invalid input.", "invalid"


def _field_messages(detail: Any) -> dict[str, list[str]]:
    if not isinstance(detail, dict):
        return {"non_field_errors": [str(m) for m in (detail if isinstance(detail, list) else [detail])]}
    return {
        str(field): [str(m) for m in (messages if isinstance(messages, list) else [messages])]
        for field, messages in detail.items()
    }


def api_exception_handler(exc: Exception, context: dict) -> Any:
    """DRF's handler, with every error body shaped as ErrorSerializer."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_error(exc.get_full_details())
        prefix = f"{field}: " if field and field != "non_field_errors" else ""
        response.data = {"code": code, "detail": prefix + message, "fields": _field_messages(exc.detail)}
    else:
        codes = exc.get_codes()
        response.data = {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    return response


class Pagination(PageNumberPagination):
    """`page` and `page_size` (at most 200); a malformed page or page size is a 400, not silently
    ignored."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters

    def get_page_size(self, request) -> int:
        errors = {}
        for name in (self.page_query_param, self.page_size_query_param):
            if len(request.query_params.getlist(name)) > 1:
                errors[name] = ["Give this parameter once."]
        page = request.query_params.get(self.page_query_param)
        if page is not None and page not in self.last_page_strings:
            if not (page.isascii() and page.isdecimal() and page.lstrip("0")):
                # An empty `page=` was read as the first page (count 0 then answered 200).
                errors[self.page_query_param] = ["A positive integer is required."]
        raw = request.query_params.get(self.page_size_query_param)
        size = self.page_size
        if raw is not None:
            digits = raw.lstrip("0")
            if not (raw.isascii() and raw.isdecimal() and digits):
                errors[self.page_size_query_param] = ["A positive integer is required."]
            else:
                size = self.max_page_size if len(digits) > 6 else min(int(digits), self.max_page_size)
        if errors:
            raise exceptions.ValidationError(errors, code="invalid")
        return size


class ApiMixin:
    """What every API view shares: error format, pagination, authentication plus API-key scopes."""

    permission_classes = [IsAuthenticated, HasScope]
    required_scopes = READ_WRITE_SCOPES
    pagination_class = Pagination

    def get_exception_handler(self):
        return api_exception_handler


def parse_uuid(value: str) -> uuid.UUID:
    """A path's UUID; anything else is simply not found (as Django's converter would answer)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound() from None


def target_user(request, username_or_id: str | None):
    """The user whose data a request reads: the caller, or for staff the `user` they name."""
    if not username_or_id:
        return request.user
    if not request.user.is_staff:
        raise exceptions.PermissionDenied("Only staff may look at another user's data.", code="staff_only")
    users = get_user_model().objects
    user = users.filter(username=username_or_id).first()
    if user is None and username_or_id.isdigit() and len(username_or_id) < 19:
        user = users.filter(pk=int(username_or_id)).first()
    if user is None:
        raise exceptions.ValidationError({"user": ["No such user."]}, code="unknown_user")
    return user


def both_slashes(route: str, view, name: str) -> list:
    """A route that answers with and without its trailing slash."""
    from django.urls import path

    return [path(f"{route}/", view, name=name), path(route, view)]
