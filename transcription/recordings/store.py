"""Stored audio in Django's `STORAGES["audio"]`: saved at a session's end, removed with it, counted in usage.

Only the storage API is used (save, open, size, delete), so a deployment may put the audio in
object storage with a storage backend (django-storages' S3 one, say) instead of the default folder.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.db.models import Sum
from django.db.models.signals import post_delete
from django.dispatch import receiver

from transcription.models import TranscriptionSession
from transcription.recordings.policy import store_audio_wanted

log = logging.getLogger(__name__)

# Uploads' containers (transcription.uploads.decode.SUFFIXES) and their MIME types.
UPLOAD_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
    ".aac": "audio/aac",
}
OPTION = "store_audio"  # the upload's own choice, kept in its session's options until it completes


def audio_save(*, session: TranscriptionSession, path: Path, content_type: str) -> TranscriptionSession:
    """Put the file at `path` in the audio storage as the session's audio (replacing any earlier one)."""
    old = session.audio_file.name if session.audio_file else ""
    with open(path, "rb") as source:
        # `save=False`: only the audio columns are written (another writer may own the rest of the row).
        session.audio_file.save(path.name, File(source), save=False)
    session.audio_format = content_type
    session.audio_bytes = session.audio_file.storage.size(session.audio_file.name)
    TranscriptionSession.objects.filter(pk=session.pk).update(
        audio_file=session.audio_file.name, audio_format=session.audio_format, audio_bytes=session.audio_bytes
    )
    if old and old != session.audio_file.name:
        session.audio_file.storage.delete(old)
    return session


def live_audio_save(*, session: TranscriptionSession, path: Path, content_type: str) -> None:
    """A finished stream's recording: into the storage, then the local file goes."""
    try:
        if TranscriptionSession.objects.filter(pk=session.pk).exists():
            audio_save(session=session, path=path, content_type=content_type)
    finally:
        path.unlink(missing_ok=True)


def upload_store_audio_ask(*, session: TranscriptionSession, asked: bool | None) -> None:
    """Remember an upload's own `store_audio` (None: it follows its user's and the server's default)."""
    if asked is None:
        return
    session.options = {**(session.options or {}), OPTION: bool(asked)}
    TranscriptionSession.objects.filter(pk=session.pk).update(options=session.options)


def upload_original_keep(*, session_id, path: Path) -> bool:
    """A completed upload: copy its original file into the audio storage if the session keeps audio."""
    session = TranscriptionSession.objects.select_related("user").filter(pk=session_id).first()
    if session is None or not path.is_file():
        return False
    if not store_audio_wanted(user=session.user, asked=(session.options or {}).get(OPTION)):
        return False
    content_type = UPLOAD_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or ""
    audio_save(session=session, path=path, content_type=content_type or "application/octet-stream")
    return True


def audio_remove(*, session: TranscriptionSession) -> bool:
    """Delete a session's stored audio (the session and its text stay)."""
    if not session.audio_file:
        return False
    session.audio_file.storage.delete(session.audio_file.name)
    TranscriptionSession.objects.filter(pk=session.pk).update(audio_file="", audio_format="", audio_bytes=0)
    return True


def audio_bytes_stored(*, user) -> int:
    """Bytes of audio the user's sessions keep."""
    total = TranscriptionSession.objects.filter(user=user).aggregate(total=Sum("audio_bytes"))["total"]
    return int(total or 0)


@receiver(post_delete, sender=TranscriptionSession, dispatch_uid="recordings-audio-delete")
def _on_session_row_deleted(sender, instance: TranscriptionSession, **kwargs) -> None:
    """A deleted session (on its own, or with its user) takes its stored audio along, once committed."""
    name = instance.audio_file.name if instance.audio_file else ""
    if not name:
        return
    storage = instance.audio_file.storage

    def delete() -> None:
        try:
            storage.delete(name)
        except Exception:
            log.exception("deleting the stored audio %s failed", name)

    transaction.on_commit(delete)
