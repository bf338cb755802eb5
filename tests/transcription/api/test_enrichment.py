"""Enrichment in the history API: speakers, sentiment and topics on sessions and segments, their
filters, and naming a speaker (PATCH /api/v1/sessions/{id}/speakers/{label})."""

from __future__ import annotations

import pytest

from transcription import services
from transcription.models import SessionSpeaker

from .conftest import signed_in, with_key
from .enriched import LINES, TOPICS, store_enriched_session

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def speaker_url(session, label: str = "speaker_2") -> str:
    return f"/api/v1/sessions/{session.pk}/speakers/{label}/"


@pytest.fixture
def meeting(alice):
    return store_enriched_session(alice)


def test_detail_has_speakers_sentiment_topics_and_analysis(alice, meeting):
    body = signed_in(alice).get(f"/api/v1/sessions/{meeting.pk}/").json()
    assert body["sentiment"] == "neutral"
    assert body["speakers"] == [
        {
            "label": "speaker_1",
            "name": "",
            "display_name": "Speaker 1",
            "speaking_time_s": 6.0,
            "segment_count": 2,
        },
        {
            "label": "speaker_2",
            "name": "",
            "display_name": "Speaker 2",
            "speaking_time_s": 3.0,
            "segment_count": 1,
        },
    ]
    assert body["topics"] == TOPICS  # most confident first
    analysis = body["analysis"]
    assert analysis["sentiment"]["overall"] == {"label": "neutral", "score": 0.12}
    assert [s["sentiment"] for s in analysis["sentiment"]["by_sentence"]] == [line[2] for line in LINES]
    assert analysis["topics"][0]["topic"] == "Budget review"
    assert analysis["filters"] == {
        "profanity": {"detected": True, "filtered_words": ["d***"]},
        "redacted": {"pci": 1},
    }


def test_segments_carry_speaker_its_name_and_sentiment(alice, meeting):
    segments = signed_in(alice).get(f"/api/v1/sessions/{meeting.pk}/").json()["segments"]
    assert [(s["speaker"], s["speaker_name"]) for s in segments] == [
        ("speaker_1", "Speaker 1"),
        ("speaker_2", "Speaker 2"),
        ("speaker_1", "Speaker 1"),
    ]
    assert [(s["sentiment"], s["sentiment_score"]) for s in segments] == [
        (line[2], line[3]) for line in LINES
    ]


def test_sessions_without_enrichment_have_empty_fields(alice, make_session):
    plain = make_session(alice, ["just words"])
    body = signed_in(alice).get(f"/api/v1/sessions/{plain.pk}/").json()
    assert (body["sentiment"], body["speakers"], body["topics"], body["analysis"]) == ("", [], [], {})
    segment = body["segments"][0]
    assert (
        segment["speaker"],
        segment["speaker_name"],
        segment["sentiment"],
        segment["sentiment_score"],
    ) == (
        "",
        "",
        "",
        None,
    )


def test_a_label_without_stored_statistics_is_still_a_speaker(alice):
    session = store_enriched_session(alice, analysis=False)
    body = signed_in(alice).get(f"/api/v1/sessions/{session.pk}/").json()
    assert [(s["label"], s["segment_count"], s["speaking_time_s"]) for s in body["speakers"]] == [
        ("speaker_1", 2, 6.0),
        ("speaker_2", 1, 3.0),
    ]


def test_speakers_are_in_number_order(alice):
    lines = [(f"speaker_{n}", f"line {n}", "", None) for n in (10, 2, 1)]
    session = store_enriched_session(alice, lines=lines, analysis=False)
    body = signed_in(alice).get(f"/api/v1/sessions/{session.pk}/").json()
    assert [s["label"] for s in body["speakers"]] == ["speaker_1", "speaker_2", "speaker_10"]


def test_list_filters_by_topic_contained_case_insensitively_each_session_once(alice, make_session, meeting):
    other = store_enriched_session(alice)
    services.session_analysis_store(
        session=other, analysis={"topics": [{"topic": "Lunch", "confidence": 0.5}]}
    )
    make_session(alice, ["no topics here"])
    client = signed_in(alice)
    # "budget" is in two topics of the meeting: the meeting is listed once.
    assert ids(client.get("/api/v1/sessions/?topic=BUDGET")) == [str(meeting.pk)]
    assert ids(client.get("/api/v1/sessions/?topic=lunch")) == [str(other.pk)]
    assert ids(client.get("/api/v1/sessions/?topic=volcano")) == []
    assert client.get("/api/v1/sessions/?topic=budget").json()["count"] == 1
    assert len(ids(client.get("/api/v1/sessions/?topic="))) == 3


def test_list_filters_by_overall_sentiment_and_shows_it(alice, make_session, meeting):
    happy = store_enriched_session(alice)
    services.session_analysis_store(
        session=happy, analysis={"sentiment": {"overall": {"label": "positive", "score": 0.9}}}
    )
    make_session(alice, ["no sentiment"])
    client = signed_in(alice)
    assert ids(client.get("/api/v1/sessions/?sentiment=positive")) == [str(happy.pk)]
    assert ids(client.get("/api/v1/sessions/?sentiment=neutral")) == [str(meeting.pk)]
    assert ids(client.get("/api/v1/sessions/?sentiment=negative")) == []
    listed = {item["id"]: item["sentiment"] for item in client.get("/api/v1/sessions/").json()["results"]}
    assert listed[str(happy.pk)] == "positive" and listed[str(meeting.pk)] == "neutral"
    bad = client.get("/api/v1/sessions/?sentiment=ecstatic")
    assert (
        bad.status_code == 400
        and bad.json()["code"] == "invalid_choice"
        and "sentiment" in bad.json()["fields"]
    )


def test_topic_and_sentiment_filters_combine_with_the_others(alice, meeting):
    client = signed_in(alice)
    assert ids(client.get("/api/v1/sessions/?topic=budget&sentiment=neutral&q=quarter")) == [str(meeting.pk)]
    assert ids(client.get("/api/v1/sessions/?topic=budget&endpoint=upload")) == []


def test_a_sessions_segments_filter_by_speaker(alice, meeting):
    client = signed_in(alice)
    every = client.get(f"/api/v1/sessions/{meeting.pk}/segments/").json()
    assert every["count"] == 3 and [s["index"] for s in every["results"]] == [0, 1, 2]
    second = client.get(f"/api/v1/sessions/{meeting.pk}/segments/?speaker=speaker_2").json()
    assert [(s["index"], s["speaker_name"]) for s in second["results"]] == [(1, "Speaker 2")]
    assert client.get(f"/api/v1/sessions/{meeting.pk}/segments/?speaker=speaker_9").json()["count"] == 0


def test_segment_search_filters_by_speaker(alice, meeting):
    client = signed_in(alice)
    found = client.get("/api/v1/segments/?q=budget").json()["results"]
    assert [(r["index"], r["speaker"]) for r in found] == [(0, "speaker_1"), (2, "speaker_1")]
    assert client.get("/api/v1/segments/?q=budget&speaker=speaker_2").json()["count"] == 0
    numbers = client.get("/api/v1/segments/?q=numbers&speaker=speaker_2").json()["results"]
    assert [(r["session"], r["index"], r["speaker_name"]) for r in numbers] == [
        (str(meeting.pk), 1, "Speaker 2")
    ]


def test_segment_lists_name_speakers_without_a_query_per_segment(
    alice, django_assert_max_num_queries, meeting
):
    many = [(f"speaker_{i % 4 + 1}", f"budget line {i}", "", None) for i in range(30)]
    session = store_enriched_session(alice, lines=many, analysis=False)
    services.speaker_rename(session=session, label="speaker_3", name="Cleo")
    client = signed_in(alice)
    with django_assert_max_num_queries(8):
        results = client.get(f"/api/v1/sessions/{session.pk}/segments/?page_size=100").json()["results"]
    assert [r["speaker_name"] for r in results[:4]] == ["Speaker 1", "Speaker 2", "Cleo", "Speaker 4"]
    with django_assert_max_num_queries(8):
        found = client.get("/api/v1/segments/?q=budget&page_size=100").json()["results"]
    assert len(found) == 32 and sum(r["speaker_name"] == "Cleo" for r in found) == 7
    with django_assert_max_num_queries(12):
        body = client.get(f"/api/v1/sessions/{session.pk}/").json()
    assert len(body["segments"]) == 30 and body["segments"][2]["speaker_name"] == "Cleo"


# -- naming a speaker -----------------------------------------------------------------------------


def test_the_owner_names_a_speaker_and_pages_and_exports_use_the_name(alice, meeting):
    client = signed_in(alice)
    response = client.patch(speaker_url(meeting), {"name": "  Dana  "}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "label": "speaker_2",
        "name": "Dana",
        "display_name": "Dana",
        "speaking_time_s": 3.0,
        "segment_count": 1,
    }
    body = client.get(f"/api/v1/sessions/{meeting.pk}/").json()
    assert [s["display_name"] for s in body["speakers"]] == ["Speaker 1", "Dana"]
    assert [s["speaker_name"] for s in body["segments"]] == ["Speaker 1", "Dana", "Speaker 1"]
    txt = client.get(f"/api/v1/sessions/{meeting.pk}/export/txt/").content.decode()
    assert txt.splitlines()[1] == "Dana: The numbers look bad this quarter."
    # A blank name gives the speaker its label's name back; the slash-less route works too.
    again = client.patch(f"/api/v1/sessions/{meeting.pk}/speakers/speaker_2", {"name": ""}, format="json")
    assert again.status_code == 200 and again.json()["display_name"] == "Speaker 2"


def test_a_form_encoded_rename_works_too(alice, meeting):
    response = signed_in(alice).patch(speaker_url(meeting, "speaker_1"), {"name": "Ann"})
    assert response.status_code == 200 and response.json()["name"] == "Ann"


def test_a_speaker_only_segments_carry_can_be_named(alice):
    session = store_enriched_session(alice, analysis=False)
    assert not SessionSpeaker.objects.filter(session=session).exists()
    response = signed_in(alice).patch(speaker_url(session), {"name": "Dana"}, format="json")
    assert response.status_code == 200 and response.json()["segment_count"] == 0
    assert SessionSpeaker.objects.get(session=session, label="speaker_2").name == "Dana"


def test_another_users_speaker_is_not_found_and_stays_unnamed(alice, bob, staff, meeting):
    for user in (bob, staff):  # staff may read anyone's session, but not change it
        response = signed_in(user).patch(speaker_url(meeting), {"name": "Mallory"}, format="json")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert SessionSpeaker.objects.get(session=meeting, label="speaker_2").name == ""


@pytest.mark.parametrize("label", ["speaker_9", "nobody", "speaker_1x"])
def test_an_unknown_label_is_404(alice, meeting, label):
    response = signed_in(alice).patch(speaker_url(meeting, label), {"name": "Ghost"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert not SessionSpeaker.objects.filter(session=meeting, label=label).exists()


def test_an_unknown_session_is_404(alice):
    for path in ["/api/v1/sessions/3f1c1d8e-0000-4000-8000-000000000000/", "/api/v1/sessions/nope/"]:
        response = signed_in(alice).patch(f"{path}speakers/speaker_1/", {"name": "X"}, format="json")
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "required"),
        ({"name": "x" * 101}, "max_length"),
        ({"name": {"first": "Dana"}}, "invalid"),
        ({"name": None}, "null"),
        ({"name": "nul\x00here"}, "null_characters_not_allowed"),
    ],
)
def test_a_bad_body_is_400_with_the_error_envelope(alice, meeting, body, code):
    response = signed_in(alice).patch(speaker_url(meeting), body, format="json")
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == code and "name" in error["fields"] and error["detail"].startswith("name: ")
    assert SessionSpeaker.objects.get(session=meeting, label="speaker_2").name == ""


def test_a_body_that_is_not_json_is_400(alice, meeting):
    response = signed_in(alice).patch(speaker_url(meeting), "{nope", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"


def test_renaming_needs_the_history_write_scope(alice, meeting):
    denied = with_key(alice, ["history:read", "stream"]).patch(
        speaker_url(meeting), {"name": "D"}, format="json"
    )
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert SessionSpeaker.objects.get(session=meeting, label="speaker_2").name == ""
    allowed = with_key(alice, ["history:write"]).patch(speaker_url(meeting), {"name": "D"}, format="json")
    assert allowed.status_code == 200


def test_renaming_anonymously_is_401(meeting):
    from rest_framework.test import APIClient

    response = APIClient().patch(speaker_url(meeting), {"name": "D"}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
