"""Stream admission: per-user concurrency, monthly quota, global capacity, stale streams."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from accounts.models import ActiveStream
from accounts.selectors import quota_for_user, usage_for_month
from accounts.services import (
    AdmissionDenied,
    quota_set,
    stream_admission_create,
    stream_heartbeat,
    stream_release,
    stream_speaking_set,
    usage_add,
)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("bob")


@pytest.mark.django_db
def test_users_without_quota_get_the_default(user, settings):
    limits = quota_for_user(user=user)
    assert limits.is_default
    assert limits.max_concurrent_streams == settings.STT_DEFAULT_QUOTA["max_concurrent_streams"]


@pytest.mark.django_db
def test_second_stream_over_the_user_limit_is_refused_with_4029(user):
    quota_set(user=user, max_concurrent_streams=1)
    first = stream_admission_create(user=user, endpoint="ws_transcribe")
    with pytest.raises(AdmissionDenied) as exc:
        stream_admission_create(user=user, endpoint="ws_transcribe")
    assert exc.value.close_code == 4029
    stream_release(stream_id=first.pk)
    assert stream_admission_create(user=user, endpoint="ws_transcribe")


@pytest.mark.django_db
def test_exhausted_monthly_quota_is_refused_with_4002(user):
    quota_set(user=user, monthly_audio_seconds=60)
    usage_add(user=user, streamed_seconds=45)
    assert stream_admission_create(user=user, endpoint="ws_transcribe")
    ActiveStream.objects.all().delete()
    usage_add(user=user, uploaded_seconds=15)
    with pytest.raises(AdmissionDenied) as exc:
        stream_admission_create(user=user, endpoint="ws_transcribe")
    assert exc.value.close_code == 4002


@pytest.mark.django_db
def test_global_capacity_is_refused_with_1013(user, django_user_model):
    other = django_user_model.objects.create_user("carol")
    stream_admission_create(user=user, endpoint="ws_transcribe", max_sessions=1)
    with pytest.raises(AdmissionDenied) as exc:
        stream_admission_create(user=other, endpoint="ws_transcribe", max_sessions=1)
    assert exc.value.close_code == 1013


@pytest.mark.django_db
def test_stale_streams_expire_and_stop_counting(user, settings):
    quota_set(user=user, max_concurrent_streams=1)
    stream = stream_admission_create(user=user, endpoint="ws_transcribe")
    old = timezone.now() - dt.timedelta(seconds=settings.STT_STREAM_HEARTBEAT_TTL_S + 1)
    ActiveStream.objects.filter(pk=stream.pk).update(heartbeat_at=old)
    assert stream_admission_create(user=user, endpoint="ws_transcribe")
    assert not stream_heartbeat(stream_id=stream.pk)


@pytest.mark.django_db
def test_active_speaker_limit(user, django_user_model):
    other = django_user_model.objects.create_user("dave")
    a = stream_admission_create(user=user, endpoint="ws_transcribe")
    b = stream_admission_create(user=other, endpoint="ws_transcribe")
    assert stream_speaking_set(stream_id=a.pk, speaking=True, max_active_speakers=1)
    assert not stream_speaking_set(stream_id=b.pk, speaking=True, max_active_speakers=1)
    stream_speaking_set(stream_id=a.pk, speaking=False)
    assert stream_speaking_set(stream_id=b.pk, speaking=True, max_active_speakers=1)


def _run_concurrently(n: int, target) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target()
        except Exception as exc:
            results[i] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_with_limit_one_admit_exactly_one(postgres_only, user):
    quota_set(user=user, max_concurrent_streams=1)
    for _ in range(5):
        ActiveStream.objects.all().delete()
        results = _run_concurrently(4, lambda: stream_admission_create(user=user, endpoint="ws_transcribe"))
        admitted = [r for r in results if isinstance(r, ActiveStream)]
        refused = [r for r in results if isinstance(r, AdmissionDenied)]
        assert len(admitted) == 1, results
        assert len(refused) == 3 and all(r.close_code == 4029 for r in refused)
        assert ActiveStream.objects.filter(user=user).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_usage_updates_are_not_lost(postgres_only, user):
    results = _run_concurrently(8, lambda: [usage_add(user=user, streamed_seconds=0.5) for _ in range(10)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert usage_for_month(user=user).audio_seconds_streamed == pytest.approx(40.0)
