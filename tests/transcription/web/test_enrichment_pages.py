"""Enrichment on the web pages: speaker labels and naming on the session page, the sentiment strip
and topics, history's topic and sentiment filters, and the live page's enrichment switches."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.transcription.api.enriched import store_enriched_session
from transcription import services
from transcription.models import SessionSpeaker

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def meeting(alice):
    return store_enriched_session(alice)


def page(client, session) -> str:
    response = client.get(f"/history/{session.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_session_page_labels_each_segment_with_its_speakers_colour(client, alice, meeting):
    html = page(signed_in(client, alice), meeting)
    labels = re.findall(r'<span class="speaker spk-(\d)" data-speaker="(speaker_\d)">([^<]+)<', html)
    assert labels == [
        ("1", "speaker_1", "Speaker 1"),
        ("2", "speaker_2", "Speaker 2"),
        ("1", "speaker_1", "Speaker 1"),
    ]
    # The speakers panel: speaking time and share, and a rename form per speaker.
    panel = html[html.index('id="speakers"') : html.index('id="details-title"')]
    assert "6 s · 67%" in panel and "3 s · 33%" in panel
    assert panel.count('name="csrfmiddlewaretoken"') == 2
    assert 'name="label" value="speaker_1"' in panel and 'name="label" value="speaker_2"' in panel
    assert 'for="speaker-name-1"' in panel and 'placeholder="Speaker 2"' in panel


def test_session_page_shows_the_sentiment_strip_and_topics(client, alice, meeting):
    html = page(signed_in(client, alice), meeting)
    cells = re.findall(
        r'class="sent-cell sent-(\w+)" href="#seg-(\d+)" data-sentiment="\w+" title="([^"]+)"', html
    )
    assert [(c[0], c[1]) for c in cells] == [("positive", "0"), ("negative", "1"), ("neutral", "2")]
    assert cells[1][2] == "0:04.5 · negative (0.77)"
    assert re.search(r'id="sentiment-overall"[^>]*>Neutral overall<', html)
    chip = r'<a class="topic-chip" href="/history/\?topic=([^"]+)"[^>]*>([^<]+) '
    chips = re.findall(chip + r'<span class="topic-confidence">(\d+)%', html)
    assert chips == [
        ("Budget%20review", "Budget review", "91"),
        ("travel%20budget", "travel budget", "64"),
        ("quarter%20numbers", "quarter numbers", "40"),
    ]
    # What the filters did, in words.
    assert "1 word masked" in html and "1 card number" in html


def test_a_session_without_enrichment_shows_none_of_it(client, alice, make_session):
    plain = make_session(alice, ["just words"])
    html = page(signed_in(client, alice), plain)
    for marker in ('class="speaker ', 'id="speakers"', 'id="sentiment-strip"', 'id="topics"', "Redacted"):
        assert marker not in html


def test_renaming_a_speaker_redirects_back_and_the_page_and_exports_use_the_name(client, alice, meeting):
    c = signed_in(client, alice)
    response = c.post(f"/history/{meeting.pk}/", {"label": "speaker_2", "name": "  Dana "})
    assert response.status_code == 302 and response["Location"] == f"/history/{meeting.pk}/#speakers"
    html = page(c, meeting)
    assert "Speaker 2 is now called Dana." in html
    assert re.findall(r'class="speaker spk-2" data-speaker="speaker_2">([^<]+)<', html) == ["Dana"]
    assert re.search(r'<span class="speaker spk-2">Dana</span>', html)  # the speakers panel
    assert 'value="Dana"' in html
    txt = c.get(f"/api/v1/sessions/{meeting.pk}/export/txt/").content.decode()
    assert "Dana: The numbers look bad this quarter." in txt
    # A blank name is the default name again.
    c.post(f"/history/{meeting.pk}/", {"label": "speaker_2", "name": ""})
    assert SessionSpeaker.objects.get(session=meeting, label="speaker_2").display_name == "Speaker 2"


def test_renaming_needs_the_csrf_token(alice, meeting):
    c = signed_in(Client(enforce_csrf_checks=True), alice)
    html = page(c, meeting)
    assert c.post(f"/history/{meeting.pk}/", {"label": "speaker_1", "name": "Eve"}).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    ok = c.post(
        f"/history/{meeting.pk}/", {"label": "speaker_1", "name": "Eve", "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302
    assert SessionSpeaker.objects.get(session=meeting, label="speaker_1").name == "Eve"


def test_only_the_owner_can_rename(client, bob, meeting):
    response = signed_in(client, bob).post(
        f"/history/{meeting.pk}/", {"label": "speaker_1", "name": "Mallory"}
    )
    assert response.status_code == 404
    assert SessionSpeaker.objects.get(session=meeting, label="speaker_1").name == ""


def test_renaming_while_signed_out_leads_to_the_login_page(client, meeting):
    response = client.post(f"/history/{meeting.pk}/", {"label": "speaker_1", "name": "Anon"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_unknown_speaker_is_not_found(client, alice, meeting):
    c = signed_in(client, alice)
    assert c.post(f"/history/{meeting.pk}/", {"label": "speaker_7", "name": "Ghost"}).status_code == 404
    assert c.post(f"/history/{meeting.pk}/", {"name": "Ghost"}).status_code == 404
    assert not SessionSpeaker.objects.filter(session=meeting, label="speaker_7").exists()


def test_a_name_too_long_is_reported_at_its_field(client, alice, meeting):
    response = signed_in(client, alice).post(
        f"/history/{meeting.pk}/", {"label": "speaker_2", "name": "x" * 101}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="speaker-name-2-error"' in html and "at most 100 characters" in html
    assert re.search(r'id="speaker-name-2"[^>]*aria-invalid="true"', html)
    assert SessionSpeaker.objects.get(session=meeting, label="speaker_2").name == ""


def test_history_filters_by_topic_and_sentiment_and_shows_them(client, alice, make_session, meeting):
    happy = store_enriched_session(alice)
    services.session_analysis_store(
        session=happy,
        analysis={
            "sentiment": {"overall": {"label": "positive", "score": 0.9}},
            "topics": [{"topic": "Holiday plans", "confidence": 0.8, "mentions": [0]}],
        },
    )
    plain = make_session(alice, ["nothing enriched"])
    c = signed_in(client, alice)

    def listed(query: str) -> set:
        html = c.get("/history/?" + query).content.decode()
        return {s for s in (meeting, happy, plain) if f'data-session="{s.pk}"' in html}

    assert listed("") == {meeting, happy, plain}
    assert listed("topic=budget") == {meeting}
    assert listed("topic=HOLIDAY") == {happy}
    assert listed("sentiment=positive") == {happy}
    assert listed("sentiment=neutral&topic=budget") == {meeting}
    assert listed("sentiment=bogus") == {meeting, happy, plain}  # reported at the field, otherwise ignored
    html = c.get("/history/?topic=budget").content.decode()
    assert 'id="f-topic"' in html and 'value="budget"' in html and 'for="f-sentiment"' in html
    row = html[html.index(f'data-session="{meeting.pk}"') :]
    assert ">Neutral<" in row and ">Budget review<" in row


def test_live_page_offers_the_enrichment_switches_the_server_has(client, alice, settings):
    settings.STT_ENRICHMENT = {**settings.STT_ENRICHMENT, "TOPICS": False, "DEFAULT": ["sentiment"]}
    html = signed_in(client, alice).get("/live/").content.decode()
    switches = dict(
        re.findall(r'<input type="checkbox" id="(opt-[a-z]+)" name="\w+" data-enrich="(\w+)"', html)
    )
    assert switches == {
        "opt-speakers": "speakers",
        "opt-sentiment": "sentiment",
        "opt-profanity": "profanityFilter",
        "opt-redact": "redact",
    }
    for control in switches:
        assert f'for="{control}"' in html
    assert "Identify speakers" in html and "Redact card numbers, phone numbers and e-mails" in html
    assert re.search(r'id="opt-sentiment"[^>]*checked', html)
    assert not re.search(r'id="opt-speakers"[^>]*checked', html)
    assert 'id="analysis-strip"' in html


def test_live_page_hides_enrichment_when_the_server_offers_none(client, alice, settings):
    off = {"SPEAKERS": False, "SENTIMENT": False, "TOPICS": False, "FILTERS": False}
    settings.STT_ENRICHMENT = {**settings.STT_ENRICHMENT, **off}
    html = signed_in(client, alice).get("/live/").content.decode()
    assert "data-enrich" not in html and "Identify speakers" not in html
