"""Vocabulary: a named list of key terms owned by one user (names are unique per owner)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from speech.keyterms import KeytermError, clean_keyterms

NAME_MAX_LENGTH = 64
# Lower-case letters, digits, `-` and `_`, starting with a letter or digit: safe in a URL path and
# in a stream's start options, and never two names that differ only in case.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*\Z"
NAME_HELP = "Lower-case letters, digits, - and _ (starting with a letter or digit), at most 64 characters."

validate_name = RegexValidator(NAME_PATTERN, message=f"Not a valid name. {NAME_HELP}", code="invalid_name")


def validate_terms(value: object) -> list[str]:
    """The terms as stored (trimmed, duplicates dropped), or ValidationError with the key-term code.

    Stored terms are a JSON list: any other iterable (a mapping, a set) is refused too.
    """
    if not isinstance(value, list | tuple):
        raise ValidationError("terms must be a list of strings.", code="invalid_keyterms")
    try:
        return list(clean_keyterms(value))
    except KeytermError as exc:
        raise ValidationError(exc.message, code=exc.code) from None


class Vocabulary(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vocabularies")
    name = models.CharField(max_length=NAME_MAX_LENGTH, help_text=NAME_HELP)
    terms = models.JSONField(default=list, blank=True, help_text="The key terms, a list of strings")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "vocabularies"
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"],
                name="vocabulary_name_unique_per_owner",
                violation_error_code="name_taken",
                violation_error_message="You already have a vocabulary with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The name's pattern and the terms (the key-term rule; stored normalized).

        An empty or over-long name is left to the field's own checks (clean_fields), so full_clean
        reports one message per problem.
        """
        super().clean()
        errors = {}
        if self.name and len(self.name) <= NAME_MAX_LENGTH:
            try:
                validate_name(self.name)
            except ValidationError as exc:
                errors["name"] = exc
        try:
            self.terms = validate_terms(self.terms)
        except ValidationError as exc:
            errors["terms"] = exc
        if errors:
            raise ValidationError(errors)
