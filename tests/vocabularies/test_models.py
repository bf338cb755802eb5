"""The model: names are slugs unique per owner, terms follow the key-term rule and are stored cleaned."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from speech.keyterms import MAX_KEYTERM_CHARS, MAX_KEYTERMS
from vocabularies.models import Vocabulary
from vocabularies.services import VocabularyNameTaken, vocabulary_create, vocabulary_delete, vocabulary_update

pytestmark = pytest.mark.django_db


def _codes(exc: ValidationError) -> dict[str, list[str]]:
    return {field: [e.code for e in errors] for field, errors in exc.error_dict.items()}


def test_clean_normalizes_the_terms_as_the_key_term_rule_does(alice):
    vocabulary = Vocabulary(owner=alice, name="medical", terms=["  tachy   cardia ", "Tachy cardia", "beta"])
    vocabulary.full_clean()
    assert vocabulary.terms == ["tachy cardia", "beta"]


@pytest.mark.parametrize("name", ["Medical", "-medical", "_x", "with space", "café", "a/b", "a.b"])
def test_a_name_that_is_not_a_lowercase_slug_is_refused(alice, name):
    with pytest.raises(ValidationError) as caught:
        Vocabulary(owner=alice, name=name, terms=[]).full_clean()
    assert _codes(caught.value) == {"name": ["invalid_name"]}


@pytest.mark.parametrize("name", ["medical", "a", "icd-10_codes", "9lives", "x" * 64])
def test_lowercase_slugs_up_to_64_characters_are_names(alice, name):
    Vocabulary(owner=alice, name=name, terms=["a"]).full_clean()


def test_an_empty_or_over_long_name_gets_one_message(alice):
    with pytest.raises(ValidationError) as caught:
        Vocabulary(owner=alice, name="x" * 65).full_clean()
    assert _codes(caught.value) == {"name": ["max_length"]}
    with pytest.raises(ValidationError) as caught:
        Vocabulary(owner=alice, name="").full_clean()
    assert _codes(caught.value) == {"name": ["blank"]}


@pytest.mark.parametrize(
    ("terms", "code"),
    [
        ("tachycardia", "invalid_keyterms"),
        (["ok", 3], "invalid_keyterms"),
        (["ok", "   "], "invalid_keyterms"),
        ({"a": 1}, "invalid_keyterms"),
        (["x" * (MAX_KEYTERM_CHARS + 1)], "keyterm_too_long"),
        ([f"term{i}" for i in range(MAX_KEYTERMS + 1)], "too_many_keyterms"),
        ([f"{i:02d}" + "y" * 48 for i in range(13)], "too_many_keyterms"),  # 650 characters in all
    ],
)
def test_terms_that_break_the_key_term_rule_are_refused_with_its_code(alice, terms, code):
    vocabulary = Vocabulary(owner=alice, name="medical", terms=terms)
    with pytest.raises(ValidationError) as caught:
        vocabulary.clean()
    assert _codes(caught.value) == {"terms": [code]}


def test_names_are_unique_per_owner_not_across_owners(alice, bob):
    vocabulary_create(owner=alice, name="medical", terms=["a"])
    vocabulary_create(owner=bob, name="medical", terms=["b"])  # another owner may use the name
    with pytest.raises(VocabularyNameTaken):
        vocabulary_create(owner=alice, name="medical", terms=["c"])
    with pytest.raises(ValidationError) as caught:
        Vocabulary(owner=alice, name="medical").full_clean()
    assert _codes(caught.value) == {"__all__": ["name_taken"]}
    with pytest.raises(IntegrityError), transaction.atomic():
        Vocabulary.objects.create(owner=alice, name="medical")
    assert Vocabulary.objects.filter(name="medical").count() == 2


def test_services_validate_before_saving(alice):
    with pytest.raises(ValidationError):
        vocabulary_create(owner=alice, name="Bad Name", terms=["a"])
    vocabulary = vocabulary_create(owner=alice, name="medical", terms=[" a ", "A", "b"])
    assert Vocabulary.objects.get().terms == ["a", "b"]
    with pytest.raises(ValidationError):
        vocabulary_update(vocabulary=vocabulary, terms=["x" * 51])
    assert Vocabulary.objects.get().terms == ["a", "b"]


def test_update_renames_and_replaces_and_refuses_a_used_name(alice):
    first = vocabulary_create(owner=alice, name="medical", terms=["a"])
    vocabulary_create(owner=alice, name="legal", terms=["b"])
    vocabulary_update(vocabulary=first, name="cardiology", terms=["c", "d"])
    assert Vocabulary.objects.get(pk=first.pk).name == "cardiology"
    assert Vocabulary.objects.get(pk=first.pk).terms == ["c", "d"]
    vocabulary_update(vocabulary=first, name="cardiology")  # its own name is not "taken"
    with pytest.raises(VocabularyNameTaken):
        vocabulary_update(vocabulary=first, name="legal")
    assert sorted(Vocabulary.objects.values_list("name", flat=True)) == ["cardiology", "legal"]


def test_deleting_the_owner_deletes_their_vocabularies(alice, bob):
    vocabulary_create(owner=alice, name="medical")
    kept = vocabulary_create(owner=bob, name="legal")
    alice.delete()
    assert list(Vocabulary.objects.all()) == [kept]
    vocabulary_delete(vocabulary=kept)
    assert not Vocabulary.objects.exists()
