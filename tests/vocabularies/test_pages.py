"""The /vocabularies/ page through the Django test client: list, create, edit, delete, CSRF."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from vocabularies.models import Vocabulary

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/vocabularies/", "/vocabularies/medical/"])
def test_the_pages_need_a_signed_in_user(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == f"{reverse('login')}?next={path}"
    assert client.post("/vocabularies/medical/delete/").status_code == 302


def test_the_list_shows_only_your_vocabularies_and_the_nav_links_it(
    client, alice, alices_medical, bobs_legal
):
    html = signed_in(client, alice).get("/vocabularies/").content.decode()
    assert 'data-vocabulary="medical"' in html and "tachycardia" in html and "metoprolol" in html
    assert "legal" not in html and "habeas" not in html
    assert re.search(r'<a href="/vocabularies/" aria-current="page">', html)
    assert 'action="/vocabularies/medical/delete/"' in html


def test_the_empty_list_invites_to_create_one(client, alice):
    html = signed_in(client, alice).get("/vocabularies/").content.decode()
    assert "No vocabularies yet" in html and 'name="terms"' in html


def test_creating_one_term_per_line(client, alice):
    response = signed_in(client, alice).post(
        "/vocabularies/", {"name": "medical", "terms": "tachycardia\r\n\r\n  beta  blocker \nTachycardia\n"}
    )
    assert response.status_code == 302 and response["Location"] == "/vocabularies/"
    assert Vocabulary.objects.get(owner=alice, name="medical").terms == ["tachycardia", "beta blocker"]
    html = client.get("/vocabularies/").content.decode()
    assert "Vocabulary “medical” was created." in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Medical Terms", "terms": "a"}, "Not a valid name."),
        ({"name": "", "terms": "a"}, "This field is required."),
        ({"name": "medical", "terms": "x" * 51}, "A key term is at most 50 characters"),
        ({"name": "medical", "terms": "\n".join(f"t{i}" for i in range(51))}, "At most 50 key terms."),
    ],
)
def test_invalid_input_is_shown_at_its_field_and_nothing_is_stored(client, alice, data, message):
    response = signed_in(client, alice).post("/vocabularies/", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and 'aria-invalid="true"' in html
    assert data["terms"].split("\n")[0] in html  # what was typed is kept
    assert not Vocabulary.objects.exists()


def test_a_used_name_is_refused(client, alice, alices_medical):
    response = signed_in(client, alice).post("/vocabularies/", {"name": "medical", "terms": "x"})
    assert response.status_code == 400
    assert "You already have a vocabulary named &#x27;medical&#x27;." in response.content.decode()
    assert Vocabulary.objects.get().terms == ["tachycardia", "metoprolol"]


def test_editing_shows_the_terms_one_per_line_and_saves_a_rename(client, alice, alices_medical):
    page = signed_in(client, alice).get("/vocabularies/medical/")
    assert page.status_code == 200
    assert re.search(r"<textarea[^>]*>tachycardia\nmetoprolol</textarea>", page.content.decode())
    response = client.post("/vocabularies/medical/", {"name": "cardiology", "terms": "stent\necg"})
    assert response.status_code == 302 and response["Location"] == "/vocabularies/"
    stored = Vocabulary.objects.get()
    assert (stored.name, stored.terms) == ("cardiology", ["stent", "ecg"])
    assert client.get("/vocabularies/medical/").status_code == 404


def test_a_bad_edit_keeps_the_stored_vocabulary(client, alice, alices_medical):
    signed_in(client, alice)
    client.post("/vocabularies/", {"name": "legal", "terms": ""})
    response = client.post("/vocabularies/medical/", {"name": "legal", "terms": "stent"})
    assert response.status_code == 400 and "already have a vocabulary" in response.content.decode()
    assert "<h1>medical</h1>" in response.content.decode()
    assert Vocabulary.objects.get(name="medical").terms == ["tachycardia", "metoprolol"]


def test_deleting(client, alice, alices_medical):
    signed_in(client, alice)
    assert client.get("/vocabularies/medical/delete/").status_code == 405  # POST only
    response = client.post("/vocabularies/medical/delete/")
    assert response.status_code == 302 and not Vocabulary.objects.exists()
    assert "Vocabulary “medical” was deleted." in client.get("/vocabularies/").content.decode()


def test_another_users_vocabulary_is_404_on_every_page(client, alice, bobs_legal):
    signed_in(client, alice)
    assert client.get("/vocabularies/legal/").status_code == 404
    assert client.post("/vocabularies/legal/", {"name": "legal", "terms": "mine"}).status_code == 404
    assert client.post("/vocabularies/legal/delete/").status_code == 404
    assert Vocabulary.objects.get().terms == ["habeas corpus", "estoppel"]


def test_forms_are_csrf_protected(alice, alices_medical):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = client.get("/vocabularies/").content.decode()
    assert client.post("/vocabularies/", {"name": "legal", "terms": "x"}).status_code == 403
    assert client.post("/vocabularies/medical/delete/").status_code == 403
    assert client.post("/vocabularies/medical/", {"name": "medical", "terms": "x"}).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post("/vocabularies/", {"name": "legal", "terms": "x", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert sorted(Vocabulary.objects.values_list("name", flat=True)) == ["legal", "medical"]
    assert Vocabulary.objects.get(name="medical").terms == ["tachycardia", "metoprolol"]
