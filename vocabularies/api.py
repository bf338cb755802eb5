"""Vocabulary API under /api/v1/vocabularies: list, create, retrieve, replace, patch, delete.

Authentication, scopes, pagination and the error shape are those of the history API
(`transcription.api.base`). Bodies are JSON. A user only ever reaches their own vocabularies:
another user's name answers 404, as a missing one does.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, generics, serializers, status
from rest_framework.fields import get_error_detail
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Scope
from speech.keyterms import MAX_KEYTERM_CHARS, MAX_KEYTERMS, MAX_KEYTERMS_TOTAL_CHARS
from transcription.api.base import READ_WRITE_SCOPES, ApiMixin, error_responses
from transcription.api.parsers import StrictJSONParser
from vocabularies import selectors, services
from vocabularies.models import NAME_HELP, NAME_MAX_LENGTH, Vocabulary, validate_name, validate_terms

SCOPES = {**READ_WRITE_SCOPES, "PUT": Scope.HISTORY_WRITE, "PATCH": Scope.HISTORY_WRITE}
# NAME_PATTERN in the schema's (ECMA) spelling, with the length bound.
SCHEMA_NAME_PATTERN = rf"^[a-z0-9][a-z0-9_-]{{0,{NAME_MAX_LENGTH - 1}}}$"
TERMS_DESCRIPTION = (
    f"Key terms: at most {MAX_KEYTERMS}, each up to {MAX_KEYTERM_CHARS} characters and not only spaces, "
    f"{MAX_KEYTERMS_TOTAL_CHARS} characters in all. Stored with spaces collapsed and trimmed; repeats "
    "(ignoring case) are kept once."
)
NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=SCHEMA_NAME_PATTERN, description=NAME_HELP
)


# A character that is not whitespace as Python's str.split() sees it (the key-term rule trims with
# it): ECMA's `\S` would call the separators U+001C..U+001F and U+0085 text.
NOT_ONLY_SPACES = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEYTERM_CHARS,
            "pattern": NOT_ONLY_SPACES,
        },
        "maxItems": MAX_KEYTERMS,
        "description": TERMS_DESCRIPTION,
    }
)
class TermsField(serializers.Field):
    """A JSON list of strings, cleaned by the key-term rule (its codes: `invalid_keyterms`, ...).

    The counts hold for the list as sent, too (the schema's `maxItems` and `maxLength`): 51 items
    are refused even when repeats would leave 50, and so is a term that is short only once its
    spaces are collapsed.
    """

    def to_internal_value(self, data) -> list[str]:
        if isinstance(data, list) and len(data) > MAX_KEYTERMS:
            raise serializers.ValidationError(f"At most {MAX_KEYTERMS} key terms.", code="too_many_keyterms")
        if isinstance(data, list) and any(isinstance(t, str) and len(t) > MAX_KEYTERM_CHARS for t in data):
            raise serializers.ValidationError(
                f"A key term is at most {MAX_KEYTERM_CHARS} characters.", code="keyterm_too_long"
            )
        return validate_terms(data)

    def to_representation(self, value) -> list[str]:
        return list(value)


class NameField(serializers.CharField):
    """A name exactly as sent: a JSON string (no number turned into one), not trimmed."""

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def name_field(**kwargs) -> serializers.CharField:
    return NameField(
        max_length=NAME_MAX_LENGTH,
        trim_whitespace=False,
        validators=[validate_name],
        help_text=NAME_HELP,
        **kwargs,
    )


class VocabularySerializer(serializers.ModelSerializer):
    terms = serializers.ListField(child=serializers.CharField(), help_text="The key terms, in order")

    class Meta:
        model = Vocabulary
        fields = ["name", "terms", "created_at", "updated_at"]
        read_only_fields = fields


class VocabularyCreateSerializer(serializers.Serializer):
    name = name_field()
    terms = TermsField(required=False, default=list)


class VocabularyReplaceSerializer(serializers.Serializer):
    """PUT: the whole vocabulary; `name` renames it (default: keep the name)."""

    name = name_field(required=False)
    terms = TermsField()


class VocabularyPatchSerializer(serializers.Serializer):
    name = name_field(required=False)
    terms = TermsField(required=False)


def _name_taken(exc: services.VocabularyNameTaken) -> Response:
    return Response({"code": exc.code, "detail": exc.message}, status=status.HTTP_409_CONFLICT)


def _invalid(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A model validation error (normally caught by the serializer first) in the API's 400 shape."""
    return exceptions.ValidationError(get_error_detail(exc))


class _VocabularyMixin(ApiMixin):
    required_scopes = SCOPES
    parser_classes = [StrictJSONParser]


class VocabularyListView(_VocabularyMixin, generics.ListAPIView):
    serializer_class = VocabularySerializer

    def get_queryset(self):
        return selectors.vocabulary_list(user=self.request.user)

    @extend_schema(
        operation_id="vocabularies_list",
        responses={200: VocabularySerializer(many=True), **error_responses(400, 401, 403, 404)},
        description="The caller's vocabularies, by name.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="vocabularies_create",
        request=VocabularyCreateSerializer,
        responses={201: VocabularySerializer, **error_responses(400, 401, 403, 409, 415)},
        description="Create a vocabulary. 409 `name_taken` when the caller already has one of that name.",
    )
    def post(self, request: Request) -> Response:
        form = VocabularyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            vocabulary = services.vocabulary_create(owner=request.user, **form.validated_data)
        except services.VocabularyNameTaken as exc:
            return _name_taken(exc)
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        return Response(VocabularySerializer(vocabulary).data, status=status.HTTP_201_CREATED)


class VocabularyDetailView(_VocabularyMixin, APIView):
    def _own(self, request: Request, name: str) -> Vocabulary:
        vocabulary = selectors.vocabulary_get(user=request.user, name=name)
        if vocabulary is None:
            raise exceptions.NotFound("No such vocabulary.")
        return vocabulary

    def _update(self, request: Request, name: str, form_class: type[serializers.Serializer]) -> Response:
        vocabulary = self._own(request, name)
        form = form_class(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            services.vocabulary_update(vocabulary=vocabulary, **form.validated_data)
        except services.VocabularyNameTaken as exc:
            return _name_taken(exc)
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        return Response(VocabularySerializer(vocabulary).data)

    @extend_schema(
        operation_id="vocabularies_retrieve",
        parameters=[NAME],
        responses={200: VocabularySerializer, **error_responses(401, 403, 404)},
        description="One of the caller's vocabularies.",
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(VocabularySerializer(self._own(request, name)).data)

    @extend_schema(
        operation_id="vocabularies_update",
        parameters=[NAME],
        request=VocabularyReplaceSerializer,
        responses={200: VocabularySerializer, **error_responses(400, 401, 403, 404, 409, 415)},
        description="Replace the terms (and rename with `name`; 409 `name_taken` if that name is used).",
    )
    def put(self, request: Request, name: str) -> Response:
        return self._update(request, name, VocabularyReplaceSerializer)

    @extend_schema(
        operation_id="vocabularies_partial_update",
        parameters=[NAME],
        request=VocabularyPatchSerializer,
        responses={200: VocabularySerializer, **error_responses(400, 401, 403, 404, 409, 415)},
        description="Change the name, the terms, or both.",
    )
    def patch(self, request: Request, name: str) -> Response:
        return self._update(request, name, VocabularyPatchSerializer)

    @extend_schema(
        operation_id="vocabularies_destroy",
        parameters=[NAME],
        responses={204: OpenApiResponse(description="Deleted"), **error_responses(401, 403, 404)},
        description="Delete one of the caller's vocabularies.",
    )
    def delete(self, request: Request, name: str) -> Response:
        services.vocabulary_delete(vocabulary=self._own(request, name))
        return Response(status=status.HTTP_204_NO_CONTENT)
