"""Transcript exports, read back with real SRT (srt) and WebVTT (webvtt-py) parsers."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
import srt
import webvtt

from .conftest import signed_in

pytestmark = pytest.mark.django_db

TEXTS = ["Ask not what your country can do for you,", "ask what you can do for your country."]


@pytest.fixture
def session(alice, make_session):
    return make_session(
        alice, TEXTS, words=True, started_at=dt.datetime(2024, 5, 31, 14, 25, 1, tzinfo=dt.UTC)
    )


def export(user, session, fmt: str):
    return signed_in(user).get(f"/api/v1/sessions/{session.pk}/export/{fmt}/")


def test_srt_export_parses_back_into_the_segments(alice, session):
    response = export(alice, session, "srt")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-subrip")
    cues = list(srt.parse(response.content.decode("utf-8")))
    assert [c.content for c in cues] == TEXTS
    assert [c.index for c in cues] == [1, 2]
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [(0.5, 3.75), (4.5, 7.75)]


def test_vtt_export_parses_back_into_the_segments(alice, session):
    response = export(alice, session, "vtt")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/vtt")
    captions = webvtt.from_string(response.content.decode("utf-8"))
    assert [c.text for c in captions] == TEXTS
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.500", "00:00:03.750"),
        ("00:00:04.500", "00:00:07.750"),
    ]


def test_vtt_escapes_markup_and_subtitles_keep_odd_text_on_one_cue(alice, make_session):
    tricky = make_session(alice, ["AT&T <b>loud</b> --> next", "two\n\nparagraphs"])
    captions = webvtt.from_string(export(alice, tricky, "vtt").content.decode("utf-8"))
    assert [html.unescape(c.text) for c in captions] == ["AT&T <b>loud</b> --> next", "two paragraphs"]
    cues = list(srt.parse(export(alice, tricky, "srt").content.decode("utf-8")))
    assert [c.content for c in cues] == ["AT&T <b>loud</b> --> next", "two paragraphs"]


def test_txt_and_json_exports(alice, session):
    txt = export(alice, session, "txt")
    assert txt["Content-Type"].startswith("text/plain") and txt.content.decode().splitlines() == TEXTS
    document = json.loads(export(alice, session, "json").content)
    assert document["session"]["id"] == str(session.pk) and document["text"] == " ".join(TEXTS)
    first = document["segments"][0]
    assert (first["start"], first["end"], first["text"]) == (0.5, 3.75, TEXTS[0])
    assert [w["word"].strip() for w in first["words"]] == TEXTS[0].split()
    assert first["words"][1] == {"start": 1.0, "end": 1.4, "word": " not", "probability": 0.9}


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "json"])
def test_export_is_an_attachment_with_a_dated_file_name(alice, session, fmt):
    disposition = export(alice, session, fmt)["Content-Disposition"]
    assert disposition == f'attachment; filename="transcript-20240531-142501-{str(session.pk)[:8]}.{fmt}"'


def test_export_ignores_the_accept_header(alice, session):
    response = signed_in(alice).get(f"/api/v1/sessions/{session.pk}/export/vtt/", HTTP_ACCEPT="text/vtt")
    assert response.status_code == 200 and response.content.startswith(b"WEBVTT")


def test_unknown_export_format_is_400(alice, session):
    response = export(alice, session, "docx")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_export_format" and re.search(r"txt, srt, vtt, json", body["detail"])


def test_empty_session_exports_are_valid(alice, make_session):
    empty = make_session(alice, [])
    assert list(srt.parse(export(alice, empty, "srt").content.decode())) == []
    assert len(webvtt.from_string(export(alice, empty, "vtt").content.decode())) == 0
