"""A session with stored audio, as a finished stream leaves it."""

from __future__ import annotations

import asyncio

from tests.transcription.recordings.test_live_recorder import packets
from transcription import services
from transcription.models import Endpoint, TranscriptionSession
from transcription.recordings.live import MIME_TYPE, LiveRecorder
from transcription.recordings.store import audio_save


def recording(seconds: float = 2.0):
    async def record():
        recorder = LiveRecorder()
        for packet in packets(seconds, 16000, 1, 100):
            recorder.feed(packet)
        return await recorder.close()

    return asyncio.run(record())


def session_with_audio(user, folder, *, text: str = "hello there") -> TranscriptionSession:
    session = services.session_start(user=user, endpoint=Endpoint.WS_TRANSCRIBE, language="en")
    services.segment_finalize(session=session, index=0, segment_id="s0", start_s=0.2, end_s=1.8, text=text)
    services.session_end(session=session, end_reason="client_stop")
    audio_save(session=session, path=recording(), content_type=MIME_TYPE)
    session.refresh_from_db()
    return session
