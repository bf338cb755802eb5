"""Writes of vocabularies: every save goes through the model's validation (name, terms)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from vocabularies.models import Vocabulary


class VocabularyNameTaken(Exception):
    """The owner already has a vocabulary of that name."""

    code = "name_taken"

    def __init__(self, name: str) -> None:
        self.message = f"You already have a vocabulary named {name!r}."
        super().__init__(self.message)


def _name_taken(vocabulary: Vocabulary) -> bool:
    others = Vocabulary.objects.filter(owner_id=vocabulary.owner_id, name=vocabulary.name)
    if vocabulary.pk is not None:
        others = others.exclude(pk=vocabulary.pk)
    return others.exists()


def _save(vocabulary: Vocabulary) -> Vocabulary:
    """Validate (django ValidationError: name, terms) and save; VocabularyNameTaken for a used name."""
    vocabulary.full_clean(validate_constraints=False)
    if _name_taken(vocabulary):
        raise VocabularyNameTaken(vocabulary.name)
    try:
        with transaction.atomic():
            vocabulary.save()
    except IntegrityError:
        if _name_taken(vocabulary):  # a concurrent save took the name between the check and ours
            raise VocabularyNameTaken(vocabulary.name) from None
        raise
    return vocabulary


def vocabulary_create(*, owner, name: str, terms: Iterable[str] = ()) -> Vocabulary:
    return _save(Vocabulary(owner=owner, name=name, terms=list(terms)))


def vocabulary_update(
    *, vocabulary: Vocabulary, name: str | None = None, terms: Iterable[str] | None = None
) -> Vocabulary:
    """Rename and/or replace the terms (None leaves a value as it is)."""
    if name is not None:
        vocabulary.name = name
    if terms is not None:
        vocabulary.terms = list(terms)
    return _save(vocabulary)


def vocabulary_delete(*, vocabulary: Vocabulary) -> None:
    vocabulary.delete()
