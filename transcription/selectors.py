"""Reads for transcription sessions, segments and transcripts."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from accounts.selectors import stream_active_list
from transcription.models import (
    FILE_ENDPOINTS,
    Segment,
    SessionSpeaker,
    SessionStatus,
    SessionTopic,
    TranscriptionSession,
    speaker_display_name,
)


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
    topic: str = "",
    sentiment: str = "",
    started_from: dt.datetime | dt.date | None = None,
    started_to: dt.datetime | dt.date | None = None,
) -> QuerySet[TranscriptionSession]:
    """A user's sessions, newest first, narrowed by the given filters (empty ones are ignored).

    `started_from` / `started_to` bound the start time as in `started_bounds`; `q` is a full-text
    search of the transcript (PostgreSQL) or a contains-every-word match (SQLite); `topic` is
    contained (case-insensitive) in one of the session's topics; `sentiment` is its overall label.
    """
    sessions = TranscriptionSession.objects.filter(user=user).select_related("transcript")
    if endpoint:
        sessions = sessions.filter(endpoint=endpoint)
    if status:
        sessions = sessions.filter(status=status)
    if language:
        sessions = sessions.filter(language=language)
    if sentiment:
        sessions = sessions.filter(sentiment=sentiment)
    if topic.strip():
        # EXISTS rather than a join: each session once, however many of its topics match.
        topics = SessionTopic.objects.filter(session=OuterRef("pk"), topic__icontains=topic.strip())
        sessions = sessions.filter(Exists(topics))
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
        session.endpoint in FILE_ENDPOINTS
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
    speaker: str = "",
) -> QuerySet[Segment]:
    """The user's segments whose text matches `q`, newest session first, in order within a session.

    `speaker` keeps the segments of that speaker label (`speaker_1`); see `segments_with_speaker_names`.
    """
    if not q.strip():
        return Segment.objects.none()
    segments = Segment.objects.filter(session__user=user).select_related("session")
    if speaker:
        segments = segments.filter(speaker=speaker)
    lower, upper = started_bounds(started_from, started_to)
    if lower is not None:
        segments = segments.filter(session__started_at__gte=lower)
    if upper is not None:
        segments = segments.filter(session__started_at__lt=upper)
    segments = segments.filter(_text_matches("text", q.strip())).order_by("-session__started_at", "index")
    return segments_with_speaker_names(segments=segments)


def segment_list(*, session: TranscriptionSession, speaker: str = "") -> QuerySet[Segment]:
    """A session's segments in order (`speaker`: only that label's), with their speakers' names."""
    segments = session.segments.order_by("index")
    if speaker:
        segments = segments.filter(speaker=speaker)
    return segments_with_speaker_names(segments=segments)


def segments_with_speaker_names(*, segments: QuerySet[Segment]) -> QuerySet[Segment]:
    """Segments annotated with `speaker_given_name`: the name its owner gave the segment's speaker
    ("" or None when unnamed), in the same query (no lookup per segment)."""
    names = SessionSpeaker.objects.filter(session=OuterRef("session_id"), label=OuterRef("speaker"))
    return segments.annotate(speaker_given_name=Subquery(names.values("name")[:1]))


def segment_speaker_name(*, segment: Segment) -> str:
    """A segment's speaker as people read it: its given name, else `Speaker N`; "" without one."""
    if not segment.speaker:
        return ""
    return getattr(segment, "speaker_given_name", None) or speaker_display_name(segment.speaker)


def _label_order(label: str) -> tuple[str, int, str]:
    """speaker_2 before speaker_10 (the database orders labels as text)."""
    prefix, _, number = label.rpartition("_")
    return (prefix, int(number), "") if number.isdecimal() else (label, -1, label)


def speaker_list(*, session: TranscriptionSession) -> list[SessionSpeaker]:
    """A session's speakers in label order (speaker_1, speaker_2, ..., speaker_10).

    A label that segments carry but no stored speaker has (its statistics not stored yet) is
    included, unsaved, with figures counted from its segments.
    """
    speakers = {s.label: s for s in SessionSpeaker.objects.filter(session=session)}
    carried = (
        session.segments.exclude(speaker="")
        .exclude(speaker__in=list(speakers))
        .order_by()
        .values("speaker")
        .annotate(count=Count("pk"), seconds=Sum(F("end_s") - F("start_s")))
    )
    for row in carried:
        speakers[row["speaker"]] = SessionSpeaker(
            session=session,
            label=row["speaker"],
            speaking_time_s=round(max(0.0, row["seconds"] or 0.0), 3),
            segment_count=row["count"],
        )
    return sorted(speakers.values(), key=lambda s: _label_order(s.label))


def speaker_get(*, session: TranscriptionSession, label: str) -> SessionSpeaker | None:
    return SessionSpeaker.objects.filter(session=session, label=label).first()


def speaker_label_exists(*, session: TranscriptionSession, label: str) -> bool:
    """Whether a session knows this speaker label (from its speakers, or from a segment)."""
    if not label:
        return False
    return (
        SessionSpeaker.objects.filter(session=session, label=label).exists()
        or session.segments.filter(speaker=label).exists()
    )


def speaker_names(*, speakers: list[SessionSpeaker]) -> dict[str, str]:
    """label -> what the speaker is called (its name, else `Speaker N`)."""
    return {speaker.label: speaker.display_name for speaker in speakers}


def topic_list(*, session: TranscriptionSession) -> list[SessionTopic]:
    """A session's topics, the most confident first."""
    return list(SessionTopic.objects.filter(session=session).order_by("-confidence", "topic"))
