"""/api/v1/vocabularies: CRUD, isolation between users, errors in the API's shape, keys and scopes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from speech.keyterms import MAX_KEYTERMS
from tests.transcription.api.conftest import signed_in, with_key
from vocabularies.models import Vocabulary

pytestmark = pytest.mark.django_db

LIST = "/api/v1/vocabularies/"


def detail(name: str) -> str:
    return f"/api/v1/vocabularies/{name}/"


def test_create_then_read_it_back(alice):
    client = signed_in(alice)
    created = client.post(
        LIST, {"name": "medical", "terms": [" tachy  cardia", "Stent", "stent"]}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "medical" and body["terms"] == ["tachy cardia", "Stent"]
    assert set(body) == {"name", "terms", "created_at", "updated_at"}
    assert client.get(detail("medical")).json() == body
    assert Vocabulary.objects.get(owner=alice).terms == ["tachy cardia", "Stent"]


def test_terms_may_be_left_out_on_create(alice):
    response = signed_in(alice).post(LIST, {"name": "later"}, format="json")
    assert response.status_code == 201 and response.json()["terms"] == []


def test_the_list_is_the_callers_own_by_name_and_paginated(alice, bob, alices_medical, bobs_legal):
    client = signed_in(alice)
    client.post(LIST, {"name": "cardiology", "terms": ["stent"]}, format="json")
    page = client.get(LIST).json()
    assert page["count"] == 2 and page["previous"] is None
    assert [v["name"] for v in page["results"]] == ["cardiology", "medical"]
    first = client.get(LIST, {"page_size": 1}).json()
    assert [v["name"] for v in first["results"]] == ["cardiology"] and first["next"]
    assert client.get(LIST, {"page_size": "x"}).json()["code"] == "invalid"
    assert [v["name"] for v in signed_in(bob).get(LIST).json()["results"]] == ["legal"]


def test_the_routes_answer_without_their_trailing_slash(alice, alices_medical):
    client = signed_in(alice)
    assert client.get("/api/v1/vocabularies").json()["count"] == 1
    assert client.get("/api/v1/vocabularies/medical").json()["name"] == "medical"


def test_put_replaces_the_terms_and_may_rename(alice, alices_medical):
    client = signed_in(alice)
    replaced = client.put(detail("medical"), {"terms": ["stent"]}, format="json")
    assert replaced.status_code == 200 and replaced.json()["terms"] == ["stent"]
    assert replaced.json()["name"] == "medical"
    renamed = client.put(detail("medical"), {"name": "cardiology", "terms": ["stent", "ecg"]}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "cardiology"
    assert client.get(detail("medical")).status_code == 404
    assert client.get(detail("cardiology")).json()["terms"] == ["stent", "ecg"]


def test_put_needs_the_terms(alice, alices_medical):
    response = signed_in(alice).put(detail("medical"), {"name": "other"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "required",
        "detail": "terms: This field is required.",
        "fields": {"terms": ["This field is required."]},
    }
    assert Vocabulary.objects.get().name == "medical"


def test_patch_changes_only_what_it_names(alice, alices_medical):
    client = signed_in(alice)
    patched = client.patch(detail("medical"), {"terms": ["ecg"]}, format="json")
    assert patched.status_code == 200 and patched.json() == {
        **patched.json(),
        "name": "medical",
        "terms": ["ecg"],
    }
    renamed = client.patch(detail("medical"), {"name": "cardio"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["terms"] == ["ecg"]
    assert Vocabulary.objects.get().name == "cardio"


def test_delete(alice, alices_medical):
    client = signed_in(alice)
    assert client.delete(detail("medical")).status_code == 204
    assert not Vocabulary.objects.exists()
    missing = client.delete(detail("medical"))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("put", {"terms": ["mine now"]}), ("patch", {"terms": []}), ("delete", None)],
)
def test_another_users_vocabulary_answers_404_and_stays_as_it_was(alice, bobs_legal, method, body):
    client = signed_in(alice)
    response = getattr(client, method)(detail("legal"), body, format="json")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such vocabulary."}
    assert Vocabulary.objects.get(pk=bobs_legal.pk).terms == ["habeas corpus", "estoppel"]


def test_two_users_may_use_the_same_name(alice, bob, bobs_legal):
    response = signed_in(alice).post(LIST, {"name": "legal", "terms": ["tort"]}, format="json")
    assert response.status_code == 201
    assert signed_in(bob).get(detail("legal")).json()["terms"] == ["habeas corpus", "estoppel"]
    assert signed_in(alice).get(detail("legal")).json()["terms"] == ["tort"]


def test_a_used_name_is_409_name_taken_on_create_and_rename(alice, alices_medical):
    client = signed_in(alice)
    created = client.post(LIST, {"name": "medical", "terms": ["x"]}, format="json")
    assert created.status_code == 409 and created.json()["code"] == "name_taken"
    assert "medical" in created.json()["detail"]
    client.post(LIST, {"name": "legal"}, format="json")
    renamed = client.patch(detail("legal"), {"name": "medical"}, format="json")
    assert renamed.status_code == 409 and renamed.json()["code"] == "name_taken"
    assert sorted(Vocabulary.objects.values_list("name", flat=True)) == ["legal", "medical"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"name": "Medical"}, "name", "invalid_name"),
        ({"name": "with space"}, "name", "invalid_name"),
        ({"name": "x" * 65}, "name", "max_length"),
        ({"name": ""}, "name", "blank"),
        ({"name": " medical"}, "name", "invalid_name"),  # not trimmed into a valid one
        ({"name": 7}, "name", "invalid"),  # a string, not a number turned into one
        ({"terms": ["a"]}, "name", "required"),
        ({"name": "ok", "terms": ["same"] * (MAX_KEYTERMS + 1)}, "terms", "too_many_keyterms"),  # as sent
        ({"name": "ok", "terms": ["a" + " " * 60 + "b"]}, "terms", "keyterm_too_long"),  # as sent
        ({"name": "ok", "terms": "one, two"}, "terms", "invalid_keyterms"),
        ({"name": "ok", "terms": ["fine", 7]}, "terms", "invalid_keyterms"),
        ({"name": "ok", "terms": ["  "]}, "terms", "invalid_keyterms"),
        ({"name": "ok", "terms": None}, "terms", "null"),
        ({"name": "ok", "terms": ["x" * 51]}, "terms", "keyterm_too_long"),
        ({"name": "ok", "terms": [f"t{i}" for i in range(MAX_KEYTERMS + 1)]}, "terms", "too_many_keyterms"),
        ({"name": "ok", "terms": [f"{i:02d}" + "y" * 48 for i in range(13)]}, "terms", "too_many_keyterms"),
    ],
)
def test_invalid_input_is_a_400_with_a_code_and_the_field(alice, body, field, code):
    response = signed_in(alice).post(LIST, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == code
    assert error["detail"].startswith(f"{field}: ") and list(error["fields"]) == [field]
    assert not Vocabulary.objects.exists()


def test_a_bad_replacement_changes_nothing(alice, alices_medical):
    response = signed_in(alice).put(detail("medical"), {"name": "Bad", "terms": ["x" * 60]}, format="json")
    assert response.status_code == 400 and set(response.json()["fields"]) == {"name", "terms"}
    stored = Vocabulary.objects.get()
    assert (stored.name, stored.terms) == ("medical", ["tachycardia", "metoprolol"])


def test_bodies_are_json_only(alice):
    client = signed_in(alice)
    form = client.post(LIST, {"name": "medical", "terms": "a"}, format="multipart")
    assert form.status_code == 415 and form.json()["code"] == "unsupported_media_type"
    not_an_object = client.post(LIST, ["medical"], format="json")
    assert not_an_object.status_code == 400 and not_an_object.json()["code"] == "invalid"


def test_an_api_key_works_with_the_history_scopes(bob):
    writer = with_key(bob, ["history:write"])
    reader = with_key(bob, ["history:read"])
    streamer = with_key(bob, ["stream"])
    assert writer.post(LIST, {"name": "legal", "terms": ["tort"]}, format="json").status_code == 201
    assert reader.get(detail("legal")).json()["terms"] == ["tort"]
    assert reader.get(LIST).json()["count"] == 1
    for method, body in [
        ("post", {"name": "x"}),
        ("put", {"terms": []}),
        ("patch", {"terms": []}),
        ("delete", None),
    ]:
        path = LIST if method == "post" else detail("legal")
        denied = getattr(reader, method)(path, body, format="json")
        assert denied.status_code == 403 and denied.json()["code"] == "permission_denied", method
    denied = streamer.get(LIST)
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert writer.patch(detail("legal"), {"terms": ["estoppel"]}, format="json").status_code == 200
    assert writer.put(detail("legal"), {"terms": ["laches"]}, format="json").status_code == 200
    assert Vocabulary.objects.get().terms == ["laches"]
    assert writer.delete(detail("legal")).status_code == 204


def test_an_api_key_sees_only_its_owners_vocabularies(alice, bob, alices_medical):
    client = with_key(bob, ["history:read", "history:write"])
    assert client.get(LIST).json()["count"] == 0
    assert client.get(detail("medical")).status_code == 404
    assert client.delete(detail("medical")).status_code == 404
    assert Vocabulary.objects.filter(owner=alice).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_and_bad_keys_answer_401(alices_medical, method):
    response = getattr(APIClient(), method)(LIST, {"name": "x"}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stt_nope_nope")
    response = getattr(client, method)(detail("medical"))
    assert response.status_code == 401 and response.json()["code"] == "invalid_key"


def test_a_browser_session_needs_the_csrf_token_for_writes(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    refused = client.post(LIST, {"name": "medical"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert client.get(LIST).status_code == 200
    assert not Vocabulary.objects.exists()


def test_the_schema_documents_the_routes(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {
        op["operationId"]
        for path in ("/api/v1/vocabularies/", "/api/v1/vocabularies/{name}/")
        for op in schema["paths"][path].values()
    }
    assert operations == {
        "vocabularies_list",
        "vocabularies_create",
        "vocabularies_retrieve",
        "vocabularies_update",
        "vocabularies_partial_update",
        "vocabularies_destroy",
    }
    assert "/api/v1/vocabularies" not in schema["paths"]
    create = schema["paths"]["/api/v1/vocabularies/"]["post"]
    assert list(create["requestBody"]["content"]) == ["application/json"]
    assert {"400", "409"} <= set(create["responses"])


def test_terms_must_be_a_json_list(alice):
    response = signed_in(alice).post(LIST, {"name": "ok", "terms": {"a": 1}}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_keyterms"
