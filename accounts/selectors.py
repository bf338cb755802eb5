"""Reads for accounts: effective quota limits, usage and keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, FloatField, QuerySet, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import ActiveStream, ApiKey, Quota, Usage


@dataclass(frozen=True)
class Limits:
    monthly_audio_seconds: int
    max_concurrent_streams: int
    max_session_seconds: int
    max_upload_bytes: int
    is_default: bool

    def as_dict(self) -> dict:
        """The limits themselves (without `is_default`)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "is_default"}


def month_start(when: dt.datetime | None = None) -> dt.date:
    """First day of the month (UTC) that `when` falls in."""
    when = when or timezone.now()
    return when.astimezone(dt.UTC).date().replace(day=1)


def quota_for_user(*, user) -> Limits:
    try:
        quota = Quota.objects.get(user=user)
    except Quota.DoesNotExist:
        return Limits(**settings.STT_DEFAULT_QUOTA, is_default=True)
    return Limits(
        monthly_audio_seconds=quota.monthly_audio_seconds,
        max_concurrent_streams=quota.max_concurrent_streams,
        max_session_seconds=quota.max_session_seconds,
        max_upload_bytes=quota.max_upload_bytes,
        is_default=False,
    )


def usage_for_month(*, user, month: dt.date | None = None) -> Usage:
    """The usage row for the month, or an unsaved zero row when nothing was used."""
    month = month or month_start()
    usage = Usage.objects.filter(user=user, month=month).first()
    return usage or Usage(user=user, month=month)


def stream_reserved_seconds(*, user, exclude_stream_id=None) -> float:
    """Audio seconds the user's live streams hold reserved and have not been billed for yet."""
    live = ActiveStream.objects.filter(user=user, heartbeat_at__gte=stream_active_cutoff())
    if exclude_stream_id is not None:
        live = live.exclude(pk=exclude_stream_id)
    held = Greatest(F("reserved_seconds") - F("billed_seconds"), Value(0.0), output_field=FloatField())
    return float(live.aggregate(held=Sum(held))["held"] or 0.0)


def usage_remaining_seconds(
    *, user, limits: Limits | None = None, usage: Usage | None = None, exclude_stream_id=None
) -> float:
    """Audio seconds left this month: the allowance less what was used and what live streams hold
    reserved (all but `exclude_stream_id`'s). Pass the user's `limits` and this month's `usage` if
    already read."""
    limits = limits or quota_for_user(user=user)
    usage = usage or usage_for_month(user=user)
    held = stream_reserved_seconds(user=user, exclude_stream_id=exclude_stream_id)
    return max(0.0, limits.monthly_audio_seconds - usage.audio_seconds - held)


def api_key_self_service_enabled() -> bool:
    """Whether users may create and revoke their own API keys (STT_API_KEY_SELF_SERVICE)."""
    return bool(getattr(settings, "STT_API_KEY_SELF_SERVICE", True))


def api_key_list(*, user) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(owner=user).order_by("-created_at")


def stream_active_cutoff() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.STT_STREAM_HEARTBEAT_TTL_S)


def stream_active_list() -> QuerySet[ActiveStream]:
    return ActiveStream.objects.filter(heartbeat_at__gte=stream_active_cutoff())


def stream_active_counts() -> dict[str, int]:
    active = stream_active_list()
    return {"sessions": active.count(), "speakers": active.filter(speaking=True).count()}
