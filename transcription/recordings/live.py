"""A live session's audio, written as it arrives: 16 kHz mono (what the session transcribes), Opus in Ogg.

Packets are downmixed and resampled on the event loop (cheap, as the session itself does) and
gathered into batches of about a second; each batch is encoded on a worker thread, one batch after
the other, so the encoder never holds the loop. The file is written to a local temporary folder and
handed to the audio storage when the stream ends (`transcription.recordings.store`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

import av
import numpy as np

from speech.audio import SAMPLE_RATE, AudioNormalizer, AudioPacket

log = logging.getLogger(__name__)

MIME_TYPE = "audio/ogg"
SUFFIX = ".ogg"
BITRATE = 24_000  # Opus at 24 kb/s: clear speech at about 10.8 MB an hour
BATCH_S = 1.0


class OggOpusWriter:
    """16 kHz mono float32 in, Ogg/Opus out (blocking: call from one thread at a time)."""

    def __init__(self, path: Path, *, bitrate: int = BITRATE) -> None:
        self.path = path
        self._container = av.open(str(path), mode="w", format="ogg")
        self._stream = self._container.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        self._stream.bit_rate = bitrate
        self.samples = 0

    def write(self, audio: np.ndarray) -> None:
        if not len(audio):
            return
        pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.samples
        self.samples += len(pcm)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE


class LiveRecorder:
    """One stream's recording: `feed` never waits for the encoder; `close` does, and returns the file."""

    def __init__(self, folder: str | os.PathLike | None = None, *, batch_s: float = BATCH_S) -> None:
        fd, name = tempfile.mkstemp(prefix="stt-live-", suffix=SUFFIX, dir=folder)
        os.close(fd)
        self.path = Path(name)
        self._writer: OggOpusWriter | None = None
        self._normalizer = AudioNormalizer(quality="MQ")
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._batch_samples = max(1, int(batch_s * SAMPLE_RATE))
        self._last_write: asyncio.Future | None = None
        self.failed = False
        self.closed = False

    def feed(self, packet: AudioPacket) -> None:
        """Add one packet; a full batch goes to the encoder thread (in order) without waiting for it."""
        if self.closed or self.failed:
            return
        self._add(self._normalizer.feed(packet))
        if self._pending_samples >= self._batch_samples:
            self._submit()

    def _add(self, audio: np.ndarray) -> None:
        if len(audio):
            self._pending.append(audio)
            self._pending_samples += len(audio)

    def _submit(self) -> None:
        if not self._pending:
            return
        batch = np.concatenate(self._pending)
        self._pending, self._pending_samples = [], 0
        previous = self._last_write
        self._last_write = asyncio.ensure_future(self._write_after(previous, batch))

    async def _write_after(self, previous: asyncio.Future | None, batch: np.ndarray) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if self.failed:
            return
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception:
            self.failed = True
            log.exception("recording %s: encoding failed; the rest of the stream is not kept", self.path)

    def _write(self, batch: np.ndarray) -> None:
        if self._writer is None:
            self._writer = OggOpusWriter(self.path)
        self._writer.write(batch)

    async def close(self) -> Path | None:
        """Encode what is left and close the file: its path, or None if nothing usable was kept."""
        if self.closed:
            return None if self.failed or self._writer is None else self.path
        self.closed = True
        self._add(self._normalizer.flush())
        self._submit()
        if self._last_write is not None:
            await asyncio.wait([self._last_write])
        if self._writer is not None and not self.failed:
            try:
                await asyncio.to_thread(self._writer.close)
            except Exception:
                self.failed = True
                log.exception("recording %s: closing the file failed", self.path)
        if self.failed or self._writer is None:
            self.discard()
            return None
        return self.path

    @property
    def duration_s(self) -> float:
        return self._writer.duration_s if self._writer is not None else 0.0

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
