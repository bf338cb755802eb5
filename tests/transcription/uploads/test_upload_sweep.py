"""Orphaned uploads: a stopped server's unfinished uploads are failed, refunded and cleaned up."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import Sum

from accounts.models import Usage
from tests.transcription.api.conftest import ago
from transcription.models import SessionStatus, TranscriptionSession
from transcription.uploads import services
from transcription.uploads.decode import AudioInfo

pytestmark = pytest.mark.django_db


def uploaded_seconds(user) -> float:
    # Summed over months: a refund goes to the month the upload started in.
    return Usage.objects.filter(user=user).aggregate(total=Sum("audio_seconds_uploaded"))["total"] or 0.0


@pytest.fixture
def make_upload(upload_dir):
    """An accepted upload (usage counted, file stored) in `status`, started and last moved when given."""

    def make(user, *, status=SessionStatus.PENDING, started=None, moved=None) -> TranscriptionSession:
        session = services.upload_session_create(
            user=user,
            audio=AudioInfo(
                container="wav", codec="pcm_s16le", sample_rate=16000, channels=1, duration_s=12.0
            ),
            chunks=[b"RIFF....WAVE"],
            filename="note.wav",
            content_type="audio/wav",
            size_bytes=12,
            language="en",
            word_timestamps=False,
        )
        info = dict(session.client_info)
        if moved is not None:
            info["upload"] = {**info["upload"], "updated_at": moved.isoformat()}
        TranscriptionSession.objects.filter(pk=session.pk).update(
            status=status, started_at=started or session.started_at, client_info=info
        )
        session.refresh_from_db()
        return session

    return make


def test_progress_records_when_the_upload_last_moved(alice, make_upload):
    session = make_upload(alice)
    accepted = dt.datetime.fromisoformat(session.client_info["upload"]["updated_at"])
    assert services.upload_started(session_id=session.pk, runner="host:1")
    session.refresh_from_db()
    started = dt.datetime.fromisoformat(session.client_info["upload"]["updated_at"])
    services.upload_progress_set(session_id=session.pk, progress=0.5)
    session.refresh_from_db()
    moved = dt.datetime.fromisoformat(session.client_info["upload"]["updated_at"])
    assert accepted <= started <= moved and session.client_info["upload"]["progress"] == 0.5


def test_sweep_fails_uploads_left_behind_and_gives_their_seconds_back(
    alice, make_upload, upload_dir, settings, django_capture_on_commit_callbacks
):
    hour = ago(hours=1)
    orphan = make_upload(alice, started=hour, moved=hour)
    stalled = make_upload(alice, status=SessionStatus.ACTIVE, started=hour, moved=ago(minutes=40))
    old_row = make_upload(alice, status=SessionStatus.ACTIVE, started=hour)
    TranscriptionSession.objects.filter(pk=old_row.pk).update(client_info={"upload": {"progress": 0.2}})
    moving = make_upload(alice, status=SessionStatus.ACTIVE, started=hour, moved=ago(minutes=2))
    fresh = make_upload(alice)
    done = make_upload(alice, status=SessionStatus.COMPLETED, started=hour, moved=hour)
    assert uploaded_seconds(alice) == pytest.approx(6 * 12.0)

    with django_capture_on_commit_callbacks(execute=True):
        swept = services.upload_sweep_stale(older_than_s=600)

    assert sorted(swept) == sorted(str(s.pk) for s in (orphan, stalled, old_row))
    for session in (orphan, stalled, old_row):
        session.refresh_from_db()
        assert session.status == SessionStatus.FAILED and session.end_reason == "interrupted"
        assert session.ended_at is not None and "interrupted" in session.error
        assert services.upload_audio_files(session_id=session.pk) == []
    for session, state in ((moving, "active"), (fresh, "pending"), (done, "completed")):
        session.refresh_from_db()
        assert session.status == state and services.upload_audio_files(session_id=session.pk)
    assert uploaded_seconds(alice) == pytest.approx(3 * 12.0)
    # Once only: a second sweep finds nothing, and refunds nothing twice.
    assert services.upload_sweep_stale(older_than_s=600) == []
    assert uploaded_seconds(alice) == pytest.approx(3 * 12.0)


def test_sweep_leaves_a_job_this_process_runs(alice, make_upload, monkeypatch):
    running = make_upload(alice, status=SessionStatus.ACTIVE, started=ago(hours=1), moved=ago(hours=1))
    assert services.upload_sweep_stale(older_than_s=60, running=[str(running.pk)]) == []
    running.refresh_from_db()
    assert running.status == SessionStatus.ACTIVE


def test_uploads_sweep_command_lists_what_it_marked(alice, make_upload):
    orphan = make_upload(alice, started=ago(hours=3), moved=ago(hours=3))
    recent = make_upload(alice, started=ago(minutes=10), moved=ago(minutes=10))
    out, err = io.StringIO(), io.StringIO()
    call_command("uploads_sweep", stdout=out, stderr=err)  # default: 30 minutes without progress
    assert out.getvalue().split() == [str(orphan.pk)] and "1 orphaned upload" in err.getvalue()
    out = io.StringIO()
    call_command("uploads_sweep", "--older-than", "300", stdout=out, stderr=io.StringIO())
    assert out.getvalue().split() == [str(recent.pk)]
