"""/api/v1/segments/: search across the caller's sessions."""

from __future__ import annotations

import pytest

from .conftest import ago, signed_in

pytestmark = pytest.mark.django_db


def test_search_returns_matching_segments_across_sessions(alice, make_session):
    old = make_session(alice, ["the budget is approved", "lunch at noon"], started_at=ago(days=3))
    new = make_session(alice, ["we discussed the budget again", "nothing else"], started_at=ago(hours=2))
    body = signed_in(alice).get("/api/v1/segments/?q=budget").json()
    assert body["count"] == 2
    found = [(r["session"], r["index"], r["text"]) for r in body["results"]]
    assert found == [
        (str(new.pk), 0, "we discussed the budget again"),
        (str(old.pk), 0, "the budget is approved"),
    ]
    assert body["results"][0]["session_url"].endswith(f"/api/v1/sessions/{new.pk}/")
    assert body["results"][0]["start_s"] == 0.5


def test_search_honours_the_date_range_and_pages(alice, make_session):
    make_session(alice, ["budget one"], started_at=ago(days=40))
    recent = [make_session(alice, [f"budget {i}"], started_at=ago(hours=i + 1)) for i in range(3)]
    client = signed_in(alice)
    since = ago(days=1).date().isoformat()
    body = client.get(f"/api/v1/segments/?q=budget&from={since}&page_size=2").json()
    assert body["count"] == 3 and [r["session"] for r in body["results"]] == [str(s.pk) for s in recent[:2]]


def test_search_needs_q(alice):
    for query in ["", "?q=", "?q=%20"]:
        response = signed_in(alice).get(f"/api/v1/segments/{query}")
        assert response.status_code == 400 and "q" in response.json()["fields"]


def test_search_never_returns_other_users_segments(alice, bob, make_session):
    make_session(bob, ["the budget of bob"])
    mine = make_session(alice, ["my budget"])
    body = signed_in(alice).get("/api/v1/segments/?q=budget").json()
    assert [r["session"] for r in body["results"]] == [str(mine.pk)]
