"""Reads of vocabularies: always one owner's own."""

from __future__ import annotations

from django.db.models import QuerySet

from vocabularies.models import Vocabulary


def vocabulary_list(*, user) -> QuerySet[Vocabulary]:
    """The user's vocabularies, by name."""
    return Vocabulary.objects.filter(owner=user).order_by("name")


def vocabulary_get(*, user, name: str) -> Vocabulary | None:
    """The user's vocabulary of that name; None for a missing one or another user's."""
    return Vocabulary.objects.filter(owner=user, name=name).first()
