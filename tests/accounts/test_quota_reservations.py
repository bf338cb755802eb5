"""Monthly quota reserved, not read: streams draw their seconds in atomic reservations."""

from __future__ import annotations

import pytest

from accounts.models import ActiveStream
from accounts.selectors import stream_reserved_seconds, usage_for_month, usage_remaining_seconds
from accounts.services import AdmissionDenied, quota_set, stream_admission_create, stream_reserve, usage_add
from tests.accounts.test_admission import _run_concurrently
from transcription.services import session_start, stream_usage_add


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("rita")


@pytest.fixture
def reservation(settings):
    settings.STT_STREAM = {**settings.STT_STREAM, "QUOTA_RESERVATION_S": 10.0}
    return 10.0


@pytest.mark.django_db
def test_admission_reserves_the_first_seconds_and_others_see_them_held(user, reservation):
    quota_set(user=user, monthly_audio_seconds=25, max_concurrent_streams=5)
    first = stream_admission_create(user=user, endpoint="ws_transcribe")
    assert first.reserved_seconds == 10.0
    assert usage_remaining_seconds(user=user) == 15.0
    second = stream_admission_create(user=user, endpoint="ws_transcribe")
    third = stream_admission_create(user=user, endpoint="ws_transcribe")
    assert (second.reserved_seconds, third.reserved_seconds) == (10.0, 5.0)  # the last one gets the rest
    with pytest.raises(AdmissionDenied) as refused:  # nothing left to reserve, though nothing is billed
        stream_admission_create(user=user, endpoint="ws_transcribe")
    assert refused.value.code == "quota_exhausted" and refused.value.close_code == 4002
    assert stream_reserve(stream_id=first.pk, user=user, seconds=10.0) == 0.0


@pytest.mark.django_db
def test_billing_moves_seconds_from_the_reservation_to_the_usage(user, reservation):
    quota_set(user=user, monthly_audio_seconds=100, max_concurrent_streams=2)
    stream = stream_admission_create(user=user, endpoint="ws_transcribe")
    session = session_start(user=user, api_key=None, endpoint="ws_transcribe")
    assert usage_remaining_seconds(user=user) == 90.0
    stream_usage_add(session=session, stream_id=stream.pk, seconds=4.0)
    assert usage_for_month(user=user).audio_seconds == 4.0
    assert stream_reserved_seconds(user=user) == 6.0
    assert usage_remaining_seconds(user=user) == 90.0  # billed or held, the same seconds once
    assert stream_reserve(stream_id=stream.pk, user=user, seconds=10.0) == 10.0
    assert usage_remaining_seconds(user=user) == 80.0
    ActiveStream.objects.filter(pk=stream.pk).delete()  # released: what it held is free again
    assert usage_remaining_seconds(user=user) == 96.0


@pytest.mark.django_db
def test_a_stream_that_billed_past_its_reservation_holds_nothing_negative(user, reservation):
    quota_set(user=user, monthly_audio_seconds=100, max_concurrent_streams=2)
    stream = stream_admission_create(user=user, endpoint="ws_transcribe")
    session = session_start(user=user, api_key=None, endpoint="ws_transcribe")
    stream_usage_add(session=session, stream_id=stream.pk, seconds=10.04)  # one packet over
    assert stream_reserved_seconds(user=user) == 0.0
    assert usage_remaining_seconds(user=user) == pytest.approx(89.96)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_grant_more_than_the_allowance(postgres_only, user, reservation):
    quota_set(user=user, monthly_audio_seconds=100, max_concurrent_streams=8)
    usage_add(user=user, streamed_seconds=37.0)
    streams = [stream_admission_create(user=user, endpoint="ws_transcribe") for _ in range(4)]  # 40 s held
    results = _run_concurrently(
        8, lambda: [stream_reserve(stream_id=s.pk, user=user, seconds=3.0) for s in streams for _ in range(3)]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    granted = sum(sum(r) for r in results)
    assert granted == pytest.approx(23.0)  # 100 - 37 used - 40 held at admission
    assert usage_remaining_seconds(user=user) == 0.0
