"""The admin: the changelist (search, owner filter) and editing terms one per line, validated."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from vocabularies.models import Vocabulary

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin_user)
    return client


def test_the_changelist_lists_searches_and_filters_by_owner(staff_client, alice, alices_medical, bobs_legal):
    url = reverse("admin:vocabularies_vocabulary_changelist")
    html = staff_client.get(url).content.decode()
    assert "medical" in html and "legal" in html and "tachycardia, metoprolol" in html
    searched = staff_client.get(url, {"q": "bob"}).content.decode()
    assert "habeas corpus" in searched and "tachycardia" not in searched
    filtered = staff_client.get(url, {"owner__id__exact": alice.pk}).content.decode()
    assert "tachycardia" in filtered and "habeas corpus" not in filtered


def test_the_change_page_edits_terms_one_per_line(staff_client, alices_medical):
    url = reverse("admin:vocabularies_vocabulary_change", args=[alices_medical.pk])
    page = staff_client.get(url).content.decode()
    assert re.search(r"<textarea[^>]*name=\"terms\"[^>]*>\s*tachycardia\nmetoprolol</textarea>", page)
    data = {"owner": alices_medical.owner_id, "name": "medical", "terms": "stent\n\n  ecg \nSTENT"}
    response = staff_client.post(url, data)
    assert response.status_code == 302
    assert Vocabulary.objects.get(pk=alices_medical.pk).terms == ["stent", "ecg"]


def test_the_add_page_validates_name_terms_and_uniqueness(staff_client, alice, alices_medical):
    url = reverse("admin:vocabularies_vocabulary_add")
    assert staff_client.get(url).status_code == 200
    bad = staff_client.post(url, {"owner": alice.pk, "name": "Bad Name", "terms": "x" * 51})
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert errors["name"] and "at most 50 characters" in errors["terms"][0]
    taken = staff_client.post(url, {"owner": alice.pk, "name": "medical", "terms": "x"})
    assert "You already have a vocabulary with this name." in taken.content.decode()
    assert Vocabulary.objects.count() == 1
    created = staff_client.post(url, {"owner": alice.pk, "name": "legal", "terms": "tort\nlaches"})
    assert created.status_code == 302
    assert Vocabulary.objects.get(name="legal").terms == ["tort", "laches"]
