"""Exports of sessions with speakers: prefixes in TXT and SRT, WebVTT voice tags, JSON enrichment."""

from __future__ import annotations

import html
import io
import json

import pytest
import srt
import webvtt

from transcription import services
from transcription.exports import export_render
from transcription.selectors import segment_list, speaker_list

from .conftest import signed_in
from .enriched import LINES, TOPICS, store_enriched_session

pytestmark = pytest.mark.django_db

TEXTS = [line[1] for line in LINES]


@pytest.fixture
def meeting(alice):
    return store_enriched_session(alice)


def export(user, session, fmt: str) -> str:
    response = signed_in(user).get(f"/api/v1/sessions/{session.pk}/export/{fmt}/")
    assert response.status_code == 200, response.content
    return response.content.decode("utf-8")


def test_txt_lines_start_with_the_speaker(alice, meeting):
    assert export(alice, meeting, "txt").splitlines() == [
        "Speaker 1: Welcome to the budget review.",
        "Speaker 2: The numbers look bad this quarter.",
        "Speaker 1: We will cut the travel budget.",
    ]


def test_srt_cues_start_with_the_speakers_name_once_renamed(alice, meeting):
    services.speaker_rename(session=meeting, label="speaker_1", name="Ann")
    cues = list(srt.parse(export(alice, meeting, "srt")))
    assert [c.content for c in cues] == [
        "Ann: Welcome to the budget review.",
        "Speaker 2: The numbers look bad this quarter.",
        "Ann: We will cut the travel budget.",
    ]
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues][1] == (4.5, 7.5)


def test_vtt_cues_carry_voice_tags_that_parse_back(alice, meeting):
    services.speaker_rename(session=meeting, label="speaker_2", name="Bo")
    captions = webvtt.from_string(export(alice, meeting, "vtt"))
    assert [(c.voice, c.text) for c in captions] == [
        ("Speaker 1", TEXTS[0]),
        ("Bo", TEXTS[1]),
        ("Speaker 1", TEXTS[2]),
    ]
    assert captions[0].raw_text == f"<v Speaker 1>{TEXTS[0]}"


def test_vtt_voice_names_are_escaped(alice, meeting):
    services.speaker_rename(session=meeting, label="speaker_2", name="Ann & <Bob> --> x")
    text = export(alice, meeting, "vtt")
    assert "<v Ann &amp; &lt;Bob&gt; --&gt; x>" in text
    captions = webvtt.from_buffer(io.StringIO(text))
    assert html.unescape(captions[1].voice) == "Ann & <Bob> --> x" and captions[1].text == TEXTS[1]
    assert len(captions) == 3


def test_a_name_with_line_breaks_stays_on_the_cue_line(alice, meeting):
    services.speaker_rename(session=meeting, label="speaker_1", name="Ann\n\nLee")
    cues = list(srt.parse(export(alice, meeting, "srt")))
    assert cues[0].content == "Ann Lee: Welcome to the budget review."
    assert export(alice, meeting, "txt").splitlines()[0] == "Ann Lee: Welcome to the budget review."


def test_json_carries_speakers_topics_analysis_and_per_segment_names(alice, meeting):
    services.speaker_rename(session=meeting, label="speaker_2", name="Bo")
    document = json.loads(export(alice, meeting, "json"))
    assert [(s["speaker"], s["speaker_name"]) for s in document["segments"]] == [
        ("speaker_1", "Speaker 1"),
        ("speaker_2", "Bo"),
        ("speaker_1", "Speaker 1"),
    ]
    assert [(s["sentiment"], s["sentiment_score"]) for s in document["segments"]] == [
        (line[2], line[3]) for line in LINES
    ]
    assert document["speakers"] == [
        {
            "label": "speaker_1",
            "name": "",
            "display_name": "Speaker 1",
            "speaking_time_s": 6.0,
            "segment_count": 2,
        },
        {
            "label": "speaker_2",
            "name": "Bo",
            "display_name": "Bo",
            "speaking_time_s": 3.0,
            "segment_count": 1,
        },
    ]
    assert document["topics"] == TOPICS
    assert document["analysis"]["sentiment"]["overall"] == {"label": "neutral", "score": 0.12}
    assert document["analysis"]["filters"]["redacted"] == {"pci": 1}
    assert document["session"]["sentiment"] == "neutral"
    # The plain text stays the words alone.
    assert document["text"] == " ".join(TEXTS)


def test_exports_without_speakers_are_unchanged(alice, make_session):
    plain = make_session(alice, ["first line", "second line"])
    assert export(alice, plain, "txt") == "first line\nsecond line\n"
    assert [c.content for c in srt.parse(export(alice, plain, "srt"))] == ["first line", "second line"]
    vtt = export(alice, plain, "vtt")
    assert "<v" not in vtt and [c.voice for c in webvtt.from_string(vtt)] == [None, None]
    document = json.loads(export(alice, plain, "json"))
    assert list(document) == ["session", "text", "segments"]
    assert "sentiment" not in document["session"]
    assert list(document["segments"][0]) == [
        "index",
        "start",
        "end",
        "text",
        "confidence",
        "language",
        "speaker",
        "words",
    ]


def test_segments_of_one_session_without_a_speaker_get_no_prefix(alice):
    lines = [("speaker_1", "hello there", "", None), ("", "an unattributed line", "", None)]
    session = store_enriched_session(alice, lines=lines, analysis=False)
    assert export(alice, session, "txt").splitlines() == ["Speaker 1: hello there", "an unattributed line"]
    captions = webvtt.from_string(export(alice, session, "vtt"))
    assert [c.voice for c in captions] == ["Speaker 1", None]


def test_the_renderer_takes_names_from_the_speakers_given(alice, meeting, django_assert_num_queries):
    services.speaker_rename(session=meeting, label="speaker_1", name="Ann")
    segments, speakers = list(segment_list(session=meeting)), speaker_list(session=meeting)
    with django_assert_num_queries(0):
        txt = export_render(session=meeting, segments=segments, speakers=speakers, fmt="txt")
    assert txt.splitlines()[0] == "Ann: Welcome to the budget review."
