"""Writes for uploads: accept a recording (session, usage, stored file), progress, finish, fail, sweep."""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.selectors import usage_remaining_seconds
from accounts.services import usage_add
from speech.enrich.options import EnrichOptions
from transcription.models import FILE_ENDPOINTS, Endpoint, SessionStatus, TranscriptionSession
from transcription.services import session_end, session_start
from transcription.speech_models import model_label
from transcription.uploads.decode import AudioInfo

log = logging.getLogger(__name__)


class QuotaExceeded(Exception):
    """The recording is longer than what remains of the user's monthly audio."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def upload_audio_path(*, session_id, suffix: str = "") -> Path:
    """Where an upload's original file is kept (settings.STT_UPLOAD["DIR"]/<session id><suffix>)."""
    return Path(settings.STT_UPLOAD["DIR"]) / f"{session_id}{suffix}"


def upload_audio_files(*, session_id) -> list[Path]:
    folder = Path(settings.STT_UPLOAD["DIR"])
    return sorted(folder.glob(f"{session_id}.*")) if folder.is_dir() else []


def upload_session_create(
    *,
    user,
    api_key=None,
    audio: AudioInfo,
    chunks: Iterable[bytes],
    filename: str,
    content_type: str,
    size_bytes: int,
    language: str,
    word_timestamps: bool,
    keyterms: Iterable[str] = (),
    vocabulary: str | None = None,
    enrich: EnrichOptions | None = None,
    endpoint: str = Endpoint.UPLOAD,
    prompt: str = "",
) -> TranscriptionSession:
    """Accept a validated recording: session (pending), usage and the stored file, all or nothing.

    `keyterms` are the validated terms every chunk is transcribed with (a named `vocabulary`'s terms
    already merged in: a later change to that vocabulary does not change an accepted upload);
    `vocabulary` is kept to show which one it was.

    Raises QuotaExceeded when the recording is longer than the month's remaining audio.
    """
    folder = Path(settings.STT_UPLOAD["DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    # Written before the transaction (which holds SQLite's write lock), renamed into place inside it.
    incoming = folder / f".incoming-{uuid.uuid4().hex}"
    path: Path | None = None
    try:
        with open(incoming, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        with transaction.atomic():
            # Serializes one user's concurrent uploads on PostgreSQL (SQLite transactions already are).
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            remaining = usage_remaining_seconds(user=user)
            if audio.duration_s > remaining:
                raise QuotaExceeded(
                    f"The recording lasts {audio.duration_s:.0f} s but only {remaining:.0f} s of this "
                    "month's audio quota remain."
                )
            session = session_start(
                user=user,
                api_key=api_key,
                endpoint=endpoint,
                status=SessionStatus.PENDING,
                sample_rate=audio.sample_rate,
                language=language,
                models_used={"final": model_label("final")},
                options={
                    "language": language,
                    "word_timestamps": word_timestamps,
                    "keyterms": list(keyterms),
                    "vocabulary": vocabulary or None,
                    **({"prompt": prompt} if prompt else {}),
                    "enrichment": (enrich or EnrichOptions()).stored(),
                },
                client_info={
                    "upload": {
                        "filename": filename[:255],
                        "content_type": content_type[:100],
                        "size_bytes": size_bytes,
                        **audio.as_dict(),
                        "progress": 0.0,
                        "updated_at": timezone.now().isoformat(),
                    }
                },
            )
            session.channels = audio.channels
            session.audio_seconds = audio.duration_s
            session.save(update_fields=["channels", "audio_seconds"])
            usage_add(user=user, uploaded_seconds=audio.duration_s)
            path = upload_audio_path(session_id=session.id, suffix=audio.suffix)
            os.replace(incoming, path)
    except BaseException:
        incoming.unlink(missing_ok=True)
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    return session


def _upload_info_update(session_id, **values) -> bool:
    with transaction.atomic():
        session = TranscriptionSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            return False
        info = dict(session.client_info or {})
        # `updated_at` tells a job that still progresses from one a stopped server left behind.
        info["upload"] = {**info.get("upload", {}), **values, "updated_at": timezone.now().isoformat()}
        session.client_info = info
        session.save(update_fields=["client_info"])
    return True


def upload_started(*, session_id, runner: str) -> bool:
    """Claim a pending upload for `runner` (host:pid) to transcribe; False if another claimed it first
    or the session was deleted meanwhile."""
    started = bool(
        TranscriptionSession.objects.filter(pk=session_id, status=SessionStatus.PENDING).update(
            status=SessionStatus.ACTIVE
        )
    )
    return started and _upload_info_update(session_id, runner=runner)


def upload_unfinished_claim(
    *, orphaned: Callable[[str], bool], stale_s: float, running: Iterable[str] = ()
) -> list[str]:
    """The uploads a runner should (re)start: every pending one whose audio is stored here, and each
    active one whose runner is gone (`orphaned(runner)`, a stopped process of this host) or has not
    progressed for `stale_s`. Those active ones are put back to pending, so that claiming them stays a
    single conditional update. An upload whose file this host does not have is left to one that has.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=stale_s)
    found: list[str] = []
    unfinished = [SessionStatus.PENDING, SessionStatus.ACTIVE]
    mine = set(running)  # this process's own jobs are never stale to it
    for session in TranscriptionSession.objects.filter(endpoint__in=FILE_ENDPOINTS, status__in=unfinished):
        if str(session.pk) in mine or not upload_audio_files(session_id=session.pk):
            continue
        if session.status == SessionStatus.ACTIVE:
            runner = str(((session.client_info or {}).get("upload") or {}).get("runner") or "")
            if not (orphaned(runner) or _upload_progressed_at(session) < cutoff):
                continue
            reset = TranscriptionSession.objects.filter(pk=session.pk, status=SessionStatus.ACTIVE)
            if not reset.update(status=SessionStatus.PENDING):
                continue
            log.warning("upload %s: its runner %s stopped; picking it up again", session.pk, runner or "?")
        found.append(str(session.pk))
    return found


def upload_progress_set(*, session_id, progress: float) -> bool:
    return _upload_info_update(session_id, progress=round(min(max(progress, 0.0), 1.0), 4))


def upload_complete(*, session_id) -> TranscriptionSession | None:
    session = TranscriptionSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    _upload_info_update(session_id, progress=1.0)
    return session_end(session=session, end_reason="completed")


def upload_fail(*, session_id, error: str, end_reason: str = "transcription_failed") -> None:
    """Mark an upload failed with a reason and give its seconds back to the month's usage."""
    with transaction.atomic():
        session = TranscriptionSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or session.status in (SessionStatus.FAILED, SessionStatus.COMPLETED):
            return  # failed already, or finished by another runner: nothing to refund
        session_end(session=session, end_reason=end_reason, status=SessionStatus.FAILED, error=error[:2000])
        usage_add(user=session.user, uploaded_seconds=-session.audio_seconds, when=session.started_at)


def _upload_progressed_at(session: TranscriptionSession) -> dt.datetime:
    """When the upload last moved (accepted, started, a chunk done); its start for older rows."""
    raw = ((session.client_info or {}).get("upload") or {}).get("updated_at")
    try:
        when = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        when = None
    if when is None or timezone.is_naive(when):
        return session.started_at
    return max(when, session.started_at)


def upload_sweep_stale(*, older_than_s: float, running: Iterable[str] = ()) -> list[str]:
    """Fail the uploads left pending or active that no server finished; returns their session ids.

    A server picks up what it left behind when it starts again (`upload_unfinished_claim`); this is for
    uploads whose server never comes back. One is taken as orphaned when it is not among `running`
    (this process's jobs) and has not progressed for `older_than_s` (a job of another live process is
    only seen through its progress, so choose well above the time one chunk takes). Each is marked
    failed (`interrupted`) with its seconds given back to the month's usage, and its stored audio is
    removed unless kept.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_s)
    unfinished = [SessionStatus.PENDING, SessionStatus.ACTIVE]
    running = set(running)
    # Progress never predates the start, so only sessions started before the cut-off can qualify.
    candidates = list(
        TranscriptionSession.objects.filter(
            endpoint__in=FILE_ENDPOINTS, status__in=unfinished, started_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    swept: list[str] = []
    for session_id in candidates:
        if str(session_id) in running:
            continue
        with transaction.atomic():
            session = (
                TranscriptionSession.objects.select_for_update()
                .filter(pk=session_id, status__in=unfinished)
                .first()
            )
            if session is None or _upload_progressed_at(session) >= cutoff:
                continue
            upload_fail(
                session_id=session_id,
                error="Transcription was interrupted: the server stopped before it finished. "
                "Upload the file again.",
                end_reason="interrupted",
            )
            if not settings.STT_UPLOAD["KEEP_AUDIO"]:
                transaction.on_commit(lambda sid=session_id: upload_audio_remove(session_id=sid))
        swept.append(str(session_id))
    if swept:
        log.warning("marked %d orphaned upload(s) as interrupted", len(swept))
    return swept


def upload_audio_remove(*, session_id) -> None:
    for path in upload_audio_files(session_id=session_id):
        path.unlink(missing_ok=True)
