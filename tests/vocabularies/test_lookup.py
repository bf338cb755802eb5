"""keyterms_for: a stream's key terms from a named vocabulary and inline terms, within the limits."""

from __future__ import annotations

import subprocess
import sys

import pytest
from channels.db import database_sync_to_async

from speech.keyterms import MAX_KEYTERMS, KeytermError
from tests.test_project import ROOT
from vocabularies.lookup import keyterms_for
from vocabularies.services import vocabulary_create

pytestmark = pytest.mark.django_db


def test_without_a_vocabulary_the_inline_terms_are_cleaned(alice):
    assert keyterms_for(alice.pk, None, None) == ()
    assert keyterms_for(alice.pk, [" Kubernetes ", "kubernetes", "gRPC"], None) == ("Kubernetes", "gRPC")
    assert keyterms_for(alice.pk, ["gRPC"], "") == ("gRPC",)


def test_the_vocabulary_comes_first_then_new_inline_terms(alice, alices_medical):
    merged = keyterms_for(alice.pk, ["Metoprolol", "stent"], "medical")
    assert merged == ("tachycardia", "metoprolol", "stent")  # repeats (any case) kept once, first spelling
    assert keyterms_for(alice.pk, None, "medical") == ("tachycardia", "metoprolol")


@pytest.mark.parametrize("name", ["cardiology", "Medical", "legal"])
def test_an_unknown_name_or_another_users_is_unknown_vocabulary(alice, alices_medical, bobs_legal, name):
    with pytest.raises(KeytermError) as caught:
        keyterms_for(alice.pk, ["x"], name)
    assert caught.value.code == "unknown_vocabulary" and name in caught.value.message


def test_a_name_with_a_nul_is_unknown_vocabulary_not_a_database_error(alice, alices_medical):
    with pytest.raises(KeytermError) as caught:  # PostgreSQL refuses NUL in a query (found by bench.fuzz)
        keyterms_for(alice.pk, None, "medical\x00")
    assert caught.value.code == "unknown_vocabulary"


def test_a_name_that_is_not_a_string_is_unknown_vocabulary(alice, alices_medical):
    with pytest.raises(KeytermError) as caught:
        keyterms_for(alice.pk, None, ["medical"])  # type: ignore[arg-type]
    assert caught.value.code == "unknown_vocabulary"


def test_the_merged_list_still_obeys_the_limits(alice):
    vocabulary_create(owner=alice, name="big", terms=[f"term{i}" for i in range(MAX_KEYTERMS - 1)])
    assert len(keyterms_for(alice.pk, ["one more"], "big")) == MAX_KEYTERMS
    assert len(keyterms_for(alice.pk, ["term0", "TERM1"], "big")) == MAX_KEYTERMS - 1  # repeats are free
    with pytest.raises(KeytermError) as caught:
        keyterms_for(alice.pk, ["one more", "and another"], "big")
    assert caught.value.code == "too_many_keyterms"


@pytest.mark.parametrize(
    ("inline", "code"),
    [("a string", "invalid_keyterms"), (["x" * 51], "keyterm_too_long"), ([""], "invalid_keyterms")],
)
def test_bad_inline_terms_keep_their_code_with_or_without_a_vocabulary(alice, alices_medical, inline, code):
    for name in (None, "medical"):
        with pytest.raises(KeytermError) as caught:
            keyterms_for(alice.pk, inline, name)
        assert caught.value.code == code


@pytest.mark.django_db(transaction=True)
async def test_it_runs_wrapped_for_async_callers(alice):
    await database_sync_to_async(vocabulary_create)(owner=alice, name="medical", terms=["stent"])
    assert await database_sync_to_async(keyterms_for)(alice.pk, ["x"], "medical") == ("stent", "x")


def test_importing_it_needs_no_django_setup():
    code = (
        "import vocabularies.lookup as m, sys; print(callable(m.keyterms_for), 'django.apps' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]
