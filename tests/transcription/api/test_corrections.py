"""Corrections: PATCH /api/v1/sessions/{id}/segments/{index} keeps the original, and everything that
reads the text (transcript, exports, search, history) reads the corrected one."""

from __future__ import annotations

import io
import json
import re

import pytest
import srt
import webvtt

from accounts.models import ActiveStream, Scope
from transcription.models import Endpoint, Segment, SessionSpeaker, SessionStatus, TranscriptionSession

from .conftest import ago, signed_in, with_key
from .enriched import store_enriched_session

pytestmark = pytest.mark.django_db

TEXTS = ["ask not what your country can do for you", "ask what you can do for your country"]


def edit(client, session, index, **body):
    return client.patch(f"/api/v1/sessions/{session.pk}/segments/{index}/", body, format="json")


@pytest.fixture
def speech(alice, make_session):
    return make_session(alice, TEXTS, words=True)


def test_editing_the_text_keeps_the_original_and_rebuilds_the_transcript(alice, speech):
    response = edit(signed_in(alice), speech, 0, text="  ask not what your  county can do\nfor you ")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"] == "ask not what your county can do for you"
    assert body["edited"] is True and body["edited_at"]
    assert body["original_text"] == TEXTS[0] and body["original_speaker"] == ""
    assert [w["word"].strip() for w in body["words"]] == TEXTS[0].split()  # what was heard, timed
    segment = Segment.objects.get(session=speech, index=0)
    assert segment.text == body["text"] and segment.original_text == TEXTS[0]
    speech.transcript.refresh_from_db()
    assert speech.transcript.text == f"{body['text']} {TEXTS[1]}"
    # A second edit keeps the first original, and moves edited_at on.
    again = edit(signed_in(alice), speech, 0, text="ask not")
    assert again.json()["original_text"] == TEXTS[0] and again.json()["edited_at"] > body["edited_at"]
    speech.transcript.refresh_from_db()
    assert speech.transcript.text == f"ask not {TEXTS[1]}" and speech.transcript.word_count == 10


def test_an_unedited_segment_says_so(alice, speech):
    body = signed_in(alice).get(f"/api/v1/sessions/{speech.pk}/").json()
    assert body["edited"] is False
    assert [(s["edited"], s["original_text"], s["edited_at"]) for s in body["segments"]] == [
        (False, None, None),
        (False, None, None),
    ]
    assert edit(signed_in(alice), speech, 1, text=TEXTS[1]).json()["edited"] is False  # no change


def test_empty_text_is_allowed_and_leaves_the_transcript_and_exports(alice, speech):
    assert edit(signed_in(alice), speech, 0, text="   ").status_code == 200
    speech.transcript.refresh_from_db()
    assert speech.transcript.text == TEXTS[1]
    txt = signed_in(alice).get(f"/api/v1/sessions/{speech.pk}/export/txt/").content.decode()
    assert txt.splitlines() == [TEXTS[1]]


def test_moving_a_segment_to_another_speaker_keeps_the_speaker_figures_right(alice):
    meeting = store_enriched_session(alice)  # speaker_1: segments 0 and 2, speaker_2: segment 1 (3 s each)
    response = edit(signed_in(alice), meeting, 2, speaker="speaker_2")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["speaker"], body["original_speaker"], body["speaker_name"]) == (
        "speaker_2",
        "speaker_1",
        "Speaker 2",
    )
    assert body["original_text"] == "We will cut the travel budget."
    figures = {
        s.label: (s.segment_count, s.speaking_time_s) for s in SessionSpeaker.objects.filter(session=meeting)
    }
    assert figures == {"speaker_1": (1, 3.0), "speaker_2": (2, 6.0)}
    # A new label gets a speaker of its own; one with no segment left is removed.
    edit(signed_in(alice), meeting, 0, speaker="speaker_3")
    figures = {
        s.label: (s.segment_count, s.speaking_time_s) for s in SessionSpeaker.objects.filter(session=meeting)
    }
    assert figures == {"speaker_2": (2, 6.0), "speaker_3": (1, 3.0)}
    speakers = signed_in(alice).get(f"/api/v1/sessions/{meeting.pk}/").json()["speakers"]
    assert [(s["label"], s["segment_count"]) for s in speakers] == [("speaker_2", 2), ("speaker_3", 1)]
    # Renaming the new speaker is the existing speaker endpoint.
    renamed = signed_in(alice).patch(
        f"/api/v1/sessions/{meeting.pk}/speakers/speaker_3/", {"name": "Ann"}, format="json"
    )
    assert renamed.status_code == 200
    txt = signed_in(alice).get(f"/api/v1/sessions/{meeting.pk}/export/txt/").content.decode()
    assert txt.splitlines()[0] == "Ann: Welcome to the budget review."


def test_every_export_shows_the_corrected_text(alice, speech):
    edit(signed_in(alice), speech, 1, text="ask what you can do for your county")
    client = signed_in(alice)

    def export(fmt: str) -> str:
        response = client.get(f"/api/v1/sessions/{speech.pk}/export/{fmt}/")
        assert response.status_code == 200
        return response.content.decode()

    assert export("txt").splitlines() == [TEXTS[0], "ask what you can do for your county"]
    assert [c.content for c in srt.parse(export("srt"))] == [TEXTS[0], "ask what you can do for your county"]
    assert [c.text for c in webvtt.from_buffer(io.StringIO(export("vtt")))] == [
        TEXTS[0],
        "ask what you can do for your county",
    ]
    document = json.loads(export("json"))
    assert document["segments"][1]["text"] == "ask what you can do for your county"
    assert document["text"] == f"{TEXTS[0]} ask what you can do for your county"


def test_search_finds_the_corrected_text_and_not_the_replaced_word(alice, speech):
    edit(signed_in(alice), speech, 1, text="ask what you can do for your planet")
    client = signed_in(alice)
    found = client.get("/api/v1/segments/", {"q": "planet"}).json()["results"]
    assert [(s["index"], s["text"], s["edited"]) for s in found] == [
        (1, "ask what you can do for your planet", True)
    ]
    still = client.get("/api/v1/segments/", {"q": "country"}).json()["results"]
    assert [s["index"] for s in still] == [0]  # segment 1 no longer says it
    assert [s["id"] for s in client.get("/api/v1/sessions/", {"q": "planet"}).json()["results"]] == [
        str(speech.pk)
    ]
    page = client.get("/history/", {"q": "planet"})
    assert page.status_code == 200 and str(speech.pk) in page.content.decode()


def test_the_session_list_says_which_sessions_were_edited(alice, speech, make_session):
    other = make_session(alice, ["never touched"])
    edit(signed_in(alice), speech, 0, text="changed")
    rows = {row["id"]: row["edited"] for row in signed_in(alice).get("/api/v1/sessions/").json()["results"]}
    assert rows == {str(speech.pk): True, str(other.pk): False}
    html = signed_in(alice).get("/history/").content.decode()
    row = html.split(f'data-session="{speech.pk}"')[1].split("</tr>")[0]
    untouched = html.split(f'data-session="{other.pk}"')[1].split("</tr>")[0]
    assert "Edited" in row and "Edited" not in untouched


def test_another_user_gets_404_and_staff_cannot_edit_either(alice, bob, staff, speech):
    for user in (bob, staff):
        response = edit(signed_in(user), speech, 0, text="mine now")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert Segment.objects.get(session=speech, index=0).text == TEXTS[0]


def test_a_key_needs_history_write(alice, speech):
    response = edit(with_key(alice, [Scope.HISTORY_READ]), speech, 0, text="nope")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert edit(with_key(alice, [Scope.HISTORY_WRITE]), speech, 0, text="yes").status_code == 200


@pytest.mark.parametrize(
    ("index", "body", "status", "code"),
    [
        (0, {}, 400, "nothing_to_change"),
        (0, {"text": "x" * 5001}, 400, "text_too_long"),
        (0, {"speaker": "speaker 2"}, 400, "invalid_speaker"),
        (0, {"speaker": "s" * 65}, 400, "invalid_speaker"),
        (0, {"text": 12}, 400, "invalid"),
        (7, {"text": "where?"}, 404, "not_found"),
        ("x1", {"text": "where?"}, 404, "not_found"),
    ],
)
def test_bad_input_returns_its_code(alice, speech, index, body, status, code):
    response = edit(signed_in(alice), speech, index, **body)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert Segment.objects.get(session=speech, index=0).edited_at is None


def test_control_characters_are_cleaned_not_stored(alice, speech):
    response = edit(signed_in(alice), speech, 0, text="a\x00b\tc\u2028d")
    assert response.status_code == 200 and response.json()["text"] == "a b c d"


def test_a_live_session_cannot_be_edited(alice, speech):
    ActiveStream.objects.create(user=alice, endpoint=Endpoint.WS_TRANSCRIBE, started_at=ago(seconds=3))
    TranscriptionSession.objects.filter(pk=speech.pk).update(status=SessionStatus.ACTIVE, ended_at=None)
    response = edit(signed_in(alice), speech, 0, text="too early")
    assert response.status_code == 409 and response.json()["code"] == "session_live"
    assert Segment.objects.get(session=speech, index=0).text == TEXTS[0]


def test_an_upload_being_transcribed_cannot_be_edited(alice, make_session):
    upload = make_session(alice, TEXTS, endpoint=Endpoint.UPLOAD)
    TranscriptionSession.objects.filter(pk=upload.pk).update(status=SessionStatus.ACTIVE)
    response = edit(signed_in(alice), upload, 0, text="too early")
    assert response.status_code == 409 and response.json()["code"] == "session_processing"


def test_the_session_page_marks_edited_segments_and_keeps_the_original_on_request(alice):
    meeting = store_enriched_session(alice)
    edit(signed_in(alice), meeting, 1, text="The numbers look good this quarter.", speaker="speaker_1")
    html = signed_in(alice).get(f"/history/{meeting.pk}/").content.decode()
    items = {m.group(1): m.group(0) for m in re.finditer(r'<li id="seg-(\d+)".*?</li>', html, re.S)}
    assert 'class="edited"' in items["1"] and 'class="edited"' not in items["0"]
    assert "The numbers look good this quarter." in items["1"]
    original = items["1"].split('<details class="seg-original">')[1]
    assert "Show original" in original and "The numbers look bad this quarter." in original
    assert "Speaker 2:" in original  # who said it before the correction
    assert items["1"].count('data-edit-segment="1"') == 1 and "js/session_edit.js" in html
    assert 'data-start="4.500" data-end="7.500"' in items["1"]  # what the player reads


def test_a_live_sessions_page_offers_no_editing(alice, speech):
    ActiveStream.objects.create(user=alice, endpoint=Endpoint.WS_TRANSCRIBE, started_at=ago(seconds=3))
    TranscriptionSession.objects.filter(pk=speech.pk).update(status=SessionStatus.ACTIVE, ended_at=None)
    html = signed_in(alice).get(f"/history/{speech.pk}/").content.decode()
    assert "data-edit-segment" not in html and "session_edit.js" not in html
