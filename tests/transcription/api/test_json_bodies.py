"""JSON bodies of every REST endpoint: NaN, Infinity and numbers past a float's range are refused (400)."""

from __future__ import annotations

import pytest

from accounts.models import ApiKey
from transcription.api.parsers import loads

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-2.5e999"])
def test_loads_refuses_non_finite_numbers(literal):
    with pytest.raises(ValueError, match="finite"):
        loads(f'{{"a": [1, {literal}]}}')
    assert loads('{"a": [1, 2.5e-300, 1e308, -0.0]}') == {"a": [1, 2.5e-300, 1e308, -0.0]}


@pytest.mark.parametrize("literal", ["NaN", "1e400"])
@pytest.mark.parametrize(
    ("method", "route", "field"),
    [
        ("post", "/api/v1/keys/", "name"),
        ("post", "/api/v1/keys/", "expires_in_days"),
        ("post", "/api/v1/tokens/", "expires_in_seconds"),
        ("post", "/api/v1/vocabularies/", "name"),
        ("patch", "/api/v1/sessions/{session}/segments/0/", "text"),
        ("patch", "/api/v1/sessions/{session}/segments/0/", "speaker"),
    ],
)
def test_rest_endpoints_answer_a_parse_error(alice, make_session, method, route, field, literal):
    session = make_session(alice, ["hello there"])
    response = getattr(signed_in(alice), method)(
        route.format(session=session.pk), f'{{"{field}": {literal}}}', content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "parse_error" and "finite" in response.json()["detail"]
    assert not ApiKey.objects.filter(owner=alice).exists()
