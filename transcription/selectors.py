"""Reads for transcription sessions, segments and transcripts."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.selectors import stream_active_list
from transcription.models import Endpoint, Segment, SessionStatus, TranscriptionSession


def _text_matches(field: str, q: str) -> Q:
    """Full-text match on PostgreSQL; every word contained (case-insensitive) elsewhere."""
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery

        return Q(**{f"{field}__search": SearchQuery(q, config="english", search_type="websearch")})
    condition = Q()
    for word in q.split():
        condition &= Q(**{f"{field}__icontains": word})
    return condition


def day_start(day: dt.date) -> dt.datetime:
    """The start of `day` in the server's time zone, as an aware UTC date-time.

    Raises OverflowError when that instant is not a representable UTC date-time (year 1 east of UTC).
    """
    # In UTC: the database adapter converts to UTC anyway, and would overflow later, at query time.
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min)).astimezone(dt.UTC)


def started_bounds(
    started_from: dt.datetime | dt.date | None, started_to: dt.datetime | dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Half-open [from, to) as aware UTC date-times; a date means its whole day (a `to` day included).

    Raises OverflowError for date-times that cannot be expressed in UTC.
    """

    def aware(value: dt.datetime) -> dt.datetime:
        # In UTC: databases refuse some valid ISO offsets (PostgreSQL stops at +-15:59).
        return (timezone.make_aware(value) if timezone.is_naive(value) else value).astimezone(dt.UTC)

    lower = upper = None
    if started_from is not None:
        lower = aware(started_from) if isinstance(started_from, dt.datetime) else day_start(started_from)
    if started_to is not None:
        if isinstance(started_to, dt.datetime):
            upper = aware(started_to)
        elif started_to < dt.date.max:
            upper = day_start(started_to + dt.timedelta(days=1))
    return lower, upper


def session_list(
    *,
    user,
    q: str = "",
    endpoint: str = "",
    status: str = "",
    language: str = "",
    started_from: dt.datetime | dt.date | None = None,
    started_to: dt.datetime | dt.date | None = None,
) -> QuerySet[TranscriptionSession]:
    """A user's sessions, newest first, narrowed by the given filters (empty ones are ignored).

    `started_from` / `started_to` bound the start time as in `started_bounds`; `q` is a full-text
    search of the transcript (PostgreSQL) or a contains-every-word match (SQLite).
    """
    sessions = TranscriptionSession.objects.filter(user=user).select_related("transcript")
    if endpoint:
        sessions = sessions.filter(endpoint=endpoint)
    if status:
        sessions = sessions.filter(status=status)
    if language:
        sessions = sessions.filter(language=language)
    lower, upper = started_bounds(started_from, started_to)
    if lower is not None:
        sessions = sessions.filter(started_at__gte=lower)
    if upper is not None:
        sessions = sessions.filter(started_at__lt=upper)
    if q.strip():
        sessions = sessions.filter(_text_matches("transcript__text", q.strip()))
    return sessions.order_by("-started_at")


def session_get(*, user, session_id, any_owner: bool = False) -> TranscriptionSession | None:
    """The user's session (or anyone's with `any_owner`, for staff reads); None if there is none."""
    sessions = TranscriptionSession.objects.select_related("transcript")
    if not any_owner:
        sessions = sessions.filter(user=user)
    return sessions.filter(pk=session_id).first()


def session_is_live(*, session: TranscriptionSession) -> bool:
    """Whether a streamed session may still be receiving audio (so it must not be deleted yet).

    It is when it is unfinished (active, no end) and a stream of its user on its endpoint, admitted no
    later than it started, still sends heartbeats. A stream row names no session, but each connection
    makes one session, right after its admission; a server that died leaves rows whose heartbeat goes
    stale, so its sessions stop counting as live. Uploads are never live: deleting one stops its job.
    """
    if (
        session.endpoint == Endpoint.UPLOAD
        or session.status != SessionStatus.ACTIVE
        or session.ended_at is not None
    ):
        return False
    return (
        stream_active_list()
        .filter(user_id=session.user_id, endpoint=session.endpoint, started_at__lte=session.started_at)
        .exists()
    )


def segment_search(
    *,
    user,
    q: str,
    started_from: dt.datetime | dt.date | None = None,
    started_to: dt.datetime | dt.date | None = None,
) -> QuerySet[Segment]:
    """The user's segments whose text matches `q`, newest session first, in order within a session."""
    if not q.strip():
        return Segment.objects.none()
    segments = Segment.objects.filter(session__user=user).select_related("session")
    lower, upper = started_bounds(started_from, started_to)
    if lower is not None:
        segments = segments.filter(session__started_at__gte=lower)
    if upper is not None:
        segments = segments.filter(session__started_at__lt=upper)
    return segments.filter(_text_matches("text", q.strip())).order_by("-session__started_at", "index")


def segment_list(*, session: TranscriptionSession) -> QuerySet[Segment]:
    return session.segments.order_by("index")
