"""/api/v1/sessions/: list with filters, search and pagination; detail; delete."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from accounts.models import ActiveStream
from transcription import services
from transcription.models import Endpoint, Segment, SessionStatus, Transcript, TranscriptionSession
from transcription.selectors import session_is_live
from transcription.uploads.services import upload_audio_path

from .conftest import ago, signed_in

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_list_is_newest_first_with_transcript_preview(alice, make_session):
    old = make_session(alice, ["good morning everyone"], started_at=ago(days=2))
    new = make_session(alice, ["the weather is nice", "see you later"], started_at=ago(hours=1))
    body = signed_in(alice).get("/api/v1/sessions/").json()
    assert [item["id"] for item in body["results"]] == [str(new.pk), str(old.pk)]
    first = body["results"][0]
    assert first["preview"] == "the weather is nice see you later" and first["word_count"] == 7
    assert first["url"].endswith(f"/api/v1/sessions/{new.pk}/")
    assert first["endpoint"] == "ws_transcribe" and first["status"] == "completed"


def test_routes_answer_with_and_without_trailing_slash(alice, make_session):
    session = make_session(alice, ["hello"])
    client = signed_in(alice)
    assert ids(client.get("/api/v1/sessions")) == ids(client.get("/api/v1/sessions/")) == [str(session.pk)]
    assert client.get(f"/api/v1/sessions/{session.pk}").json()["id"] == str(session.pk)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("endpoint=upload", ["upload"]),
        ("endpoint=stt_v3", ["v3"]),
        ("status=failed", ["failed"]),
        ("language=de", ["german"]),
        ("endpoint=ws_transcribe&status=completed&language=en", ["plain"]),
    ],
)
def test_each_filter_narrows_the_list(alice, make_session, query, expected):
    made = {
        "plain": make_session(alice, ["a"]),
        "upload": make_session(alice, ["b"], endpoint=Endpoint.UPLOAD),
        "v3": make_session(alice, ["c"], endpoint=Endpoint.STT_V3),
        "failed": make_session(alice, ["d"], status=SessionStatus.FAILED),
        "german": make_session(alice, ["e"], language="de"),
    }
    assert ids(signed_in(alice).get(f"/api/v1/sessions/?{query}")) == [str(made[n].pk) for n in expected]


def test_date_range_accepts_dates_and_datetimes(alice, make_session):
    day = dt.datetime(2024, 5, 10, 12, 0, tzinfo=dt.UTC)
    before = make_session(alice, ["a"], started_at=day - dt.timedelta(days=1))
    morning = make_session(alice, ["b"], started_at=day.replace(hour=6))
    evening = make_session(alice, ["c"], started_at=day.replace(hour=23, minute=59))
    after = make_session(alice, ["d"], started_at=day + dt.timedelta(days=1))
    client = signed_in(alice)
    # A `to` date includes that whole day.
    assert ids(client.get("/api/v1/sessions/?from=2024-05-10&to=2024-05-10")) == [
        str(evening.pk),
        str(morning.pk),
    ]
    assert ids(client.get("/api/v1/sessions/?from=2024-05-10T12:00:00Z")) == [str(after.pk), str(evening.pk)]
    assert ids(client.get("/api/v1/sessions/?to=2024-05-10T07:00:00%2B00:00")) == [
        str(morning.pk),
        str(before.pk),
    ]
    assert ids(client.get("/api/v1/sessions/?from=2024-05-11")) == [str(after.pk)]
    assert ids(client.get("/api/v1/sessions/?from=2024-05-11&to=2024-05-09")) == []
    # Any ISO offset works (PostgreSQL itself refuses offsets past 15:59).
    assert ids(client.get("/api/v1/sessions/?from=2024-05-12T11:00:00%2B23:30")) == [str(after.pk)]
    assert client.get("/api/v1/sessions/?from=9999-12-31T23:59:59-05:00").status_code == 400


def test_search_finds_words_in_transcripts(alice, make_session):
    weather = make_session(alice, ["Tomorrow the weather will be sunny", "bring glasses"])
    make_session(alice, ["The meeting starts at noon"])
    both = make_session(alice, ["weather report", "for the meeting"])
    client = signed_in(alice)
    assert set(ids(client.get("/api/v1/sessions/?q=weather"))) == {str(weather.pk), str(both.pk)}
    assert ids(client.get("/api/v1/sessions/?q=weather meeting")) == [str(both.pk)]
    assert ids(client.get("/api/v1/sessions/?q=SUNNY")) == [str(weather.pk)]
    assert ids(client.get("/api/v1/sessions/?q=volcano")) == []
    assert ids(client.get("/api/v1/sessions/?q=weather&endpoint=upload")) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="stemming needs PostgreSQL full-text search")
def test_search_on_postgresql_matches_word_forms(alice, make_session):
    session = make_session(alice, ["She was running to the meetings"])
    assert ids(signed_in(alice).get("/api/v1/sessions/?q=meeting run")) == [str(session.pk)]


def test_pagination_with_page_size_and_a_maximum(alice, make_session):
    made = [make_session(alice, [f"number {i}"], started_at=ago(minutes=i)) for i in range(5)]
    client = signed_in(alice)
    first = client.get("/api/v1/sessions/?page_size=2").json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    assert [r["id"] for r in first["results"]] == [str(made[0].pk), str(made[1].pk)]
    last = client.get(first["next"]).json()
    last = client.get(last["next"]).json()
    assert [r["id"] for r in last["results"]] == [str(made[4].pk)] and last["next"] is None
    assert len(client.get("/api/v1/sessions/?page_size=100000").json()["results"]) == 5
    missing = client.get("/api/v1/sessions/?page=9")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    for page in ("", "abc", "0", "-1"):  # malformed (an empty one was read as the first page)
        bad = client.get(f"/api/v1/sessions/?page={page}")
        assert bad.status_code == 400 and "page" in bad.json()["fields"], (page, bad.content)
    assert client.get("/api/v1/sessions/?page=last&page_size=2").json()["results"]


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("status=sleeping", "status", "invalid_choice"),
        ("endpoint=telnet", "endpoint", "invalid_choice"),
        ("from=yesterday", "from", "invalid_date"),
        ("to=2024-13-01", "to", "invalid_date"),
        ("q=" + "x" * 201, "q", "max_length"),
        ("page_size=ten", "page_size", "invalid"),
        ("page_size=1&page_size=2", "page_size", "invalid"),
        ("status=failed&status=completed", "status", "repeated_parameter"),
    ],
)
def test_malformed_filters_answer_400_naming_the_field(alice, query, field, code):
    response = signed_in(alice).get(f"/api/v1/sessions/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code and field in body["fields"] and body["detail"].startswith(f"{field}: ")


def test_nul_characters_in_text_filters_are_ignored(alice, make_session):
    session = make_session(alice, ["zebra crossing"])
    assert ids(signed_in(alice).get("/api/v1/sessions/?q=zeb%00ra")) == [str(session.pk)]


def test_detail_has_segments_words_and_export_links(alice, make_session):
    session = make_session(alice, ["hello there", "general kenobi"], words=True)
    body = signed_in(alice).get(f"/api/v1/sessions/{session.pk}/").json()
    assert body["transcript"] == "hello there general kenobi"
    assert [s["text"] for s in body["segments"]] == ["hello there", "general kenobi"]
    assert body["segments"][1]["start_s"] == 4.5 and body["segments"][1]["end_s"] == 7.75
    assert [w["word"] for w in body["segments"][0]["words"]] == [" hello", " there"]
    assert body["exports"]["srt"].endswith(f"/api/v1/sessions/{session.pk}/export/srt/")
    assert body["upload"] is None


def test_unknown_or_malformed_session_id_is_404(alice):
    client = signed_in(alice)
    for path in ["/api/v1/sessions/3f1c1d8e-0000-4000-8000-000000000000/", "/api/v1/sessions/not-a-uuid/"]:
        response = client.get(path)
        assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_delete_removes_session_segments_transcript_and_stored_audio(
    alice, make_session, upload_dir, django_capture_on_commit_callbacks
):
    session = make_session(alice, ["to be forgotten"], endpoint=Endpoint.UPLOAD)
    audio = upload_audio_path(session_id=session.pk, suffix=".flac")
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"fLaC...")
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(alice).delete(f"/api/v1/sessions/{session.pk}/")
    assert response.status_code == 204
    assert not TranscriptionSession.objects.filter(pk=session.pk).exists()
    assert not Segment.objects.filter(session_id=session.pk).exists()
    assert not Transcript.objects.filter(session_id=session.pk).exists()
    assert not audio.exists()
    assert signed_in(alice).get(f"/api/v1/sessions/{session.pk}/").status_code == 404


def unfinished(session: TranscriptionSession) -> TranscriptionSession:
    TranscriptionSession.objects.filter(pk=session.pk).update(status=SessionStatus.ACTIVE, ended_at=None)
    session.refresh_from_db()
    return session


def test_a_live_stream_cannot_be_deleted_until_its_heartbeat_goes_stale(alice, make_session):
    stream = ActiveStream.objects.create(
        user=alice, endpoint=Endpoint.WS_TRANSCRIBE, started_at=ago(seconds=3)
    )
    live = unfinished(make_session(alice, ["still talking"]))
    response = signed_in(alice).delete(f"/api/v1/sessions/{live.pk}/")
    assert response.status_code == 409 and response.json()["code"] == "session_active"
    # Paused for long: still live while its stream sends heartbeats, however old the session.
    TranscriptionSession.objects.filter(pk=live.pk).update(started_at=ago(days=1))
    ActiveStream.objects.filter(pk=stream.pk).update(started_at=ago(days=1, seconds=1))
    assert signed_in(alice).delete(f"/api/v1/sessions/{live.pk}/").status_code == 409
    # Its server died: the heartbeat goes stale and the session can go.
    ActiveStream.objects.filter(pk=stream.pk).update(heartbeat_at=ago(minutes=5))
    assert signed_in(alice).delete(f"/api/v1/sessions/{live.pk}/").status_code == 204


def test_an_unfinished_session_without_its_stream_can_be_deleted(alice, bob, make_session):
    left_over = unfinished(make_session(alice, ["the server crashed"]))
    # Streams of another user, on another endpoint, or admitted after it started are not its stream.
    ActiveStream.objects.create(user=bob, endpoint=Endpoint.WS_TRANSCRIBE, started_at=ago(hours=1))
    ActiveStream.objects.create(user=alice, endpoint=Endpoint.STT_V3, started_at=ago(hours=1))
    ActiveStream.objects.create(user=alice, endpoint=Endpoint.WS_TRANSCRIBE)
    assert not session_is_live(session=left_over)
    assert signed_in(alice).delete(f"/api/v1/sessions/{left_over.pk}/").status_code == 204


@pytest.mark.parametrize("state", [SessionStatus.PENDING, SessionStatus.ACTIVE])
def test_an_upload_being_transcribed_can_be_deleted(alice, make_session, state):
    upload = unfinished(make_session(alice, endpoint=Endpoint.UPLOAD))
    TranscriptionSession.objects.filter(pk=upload.pk).update(status=state)
    ActiveStream.objects.create(user=alice, endpoint=Endpoint.UPLOAD, started_at=ago(hours=1))
    assert signed_in(alice).delete(f"/api/v1/sessions/{upload.pk}/").status_code == 204


def test_the_delete_service_refuses_a_live_stream_for_every_caller(alice, make_session):
    ActiveStream.objects.create(user=alice, endpoint=Endpoint.V1_STREAM, started_at=ago(seconds=1))
    live = unfinished(make_session(alice, ["hello"], endpoint=Endpoint.V1_STREAM))
    with pytest.raises(services.SessionActive):
        services.session_delete(session=live)
    assert TranscriptionSession.objects.filter(pk=live.pk).exists()


def test_a_from_date_before_the_first_utc_instant_is_a_400(alice, settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # 0001-01-01 00:00 there is before year 1 in UTC
    response = signed_in(alice).get("/api/v1/sessions/?from=0001-01-01")
    assert response.status_code == 400 and response.json()["code"] == "invalid_date"


def test_staff_may_filter_by_user_and_read_but_not_delete(alice, bob, staff, make_session):
    bobs = make_session(bob, ["bob speaking"])
    make_session(alice, ["alice speaking"])
    client = signed_in(staff)
    assert ids(client.get("/api/v1/sessions/?user=bob")) == [str(bobs.pk)]
    assert ids(client.get(f"/api/v1/sessions/?user={bob.pk}")) == [str(bobs.pk)]
    assert ids(client.get("/api/v1/sessions/")) == []
    assert client.get(f"/api/v1/sessions/{bobs.pk}/").json()["transcript"] == "bob speaking"
    assert client.get(f"/api/v1/sessions/{bobs.pk}/export/txt/").status_code == 200
    assert client.delete(f"/api/v1/sessions/{bobs.pk}/").status_code == 404
    unknown = client.get("/api/v1/sessions/?user=nobody")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_user"


def test_non_staff_cannot_filter_by_user(alice, bob, make_session):
    make_session(bob, ["secret"])
    response = signed_in(alice).get("/api/v1/sessions/?user=bob")
    assert response.status_code == 403 and response.json()["code"] == "staff_only"
