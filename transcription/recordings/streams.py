"""A stream's recording, held by its `StreamLease`: decided at start, fed each packet, saved at the end."""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async

from speech.audio import AudioPacket
from transcription.recordings.live import MIME_TYPE, LiveRecorder
from transcription.recordings.policy import store_audio_wanted
from transcription.recordings.store import live_audio_save

log = logging.getLogger(__name__)


class StreamRecording:
    """`asked` is the session's own option (`storeAudio`, `store_audio`); None follows the defaults."""

    def __init__(self) -> None:
        self.asked: bool | None = None
        self.enabled = False
        self._recorder: LiveRecorder | None = None
        self._opened = False

    async def open(self, *, user) -> bool:
        """Decide (once) whether this stream keeps its audio, and start recording if it does."""
        if not self._opened:
            self._opened = True
            self.enabled = await database_sync_to_async(store_audio_wanted)(user=user, asked=self.asked)
            if self.enabled:
                self._recorder = LiveRecorder()
        return self.enabled

    def feed(self, packet: AudioPacket) -> None:
        if self._recorder is not None:
            self._recorder.feed(packet)

    async def save(self, db_session) -> None:
        """At the stream's real end (once): close the file and put it in the audio storage."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        path = await recorder.close()
        if path is None:
            return
        if db_session is None:
            recorder.discard()
            return
        # Not on the shared database thread: copying a long recording into a (maybe remote) storage
        # must not hold up every other stream's finals and heartbeats.
        save = database_sync_to_async(live_audio_save, thread_sensitive=False)
        await save(session=db_session, path=path, content_type=MIME_TYPE)
