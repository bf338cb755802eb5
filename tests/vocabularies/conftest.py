"""Fixtures for vocabularies: a stored vocabulary per user."""

from __future__ import annotations

import pytest

from vocabularies.services import vocabulary_create


@pytest.fixture
def alices_medical(alice):
    return vocabulary_create(owner=alice, name="medical", terms=["tachycardia", "metoprolol"])


@pytest.fixture
def bobs_legal(bob):
    return vocabulary_create(owner=bob, name="legal", terms=["habeas corpus", "estoppel"])
