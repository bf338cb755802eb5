"""Recorded audio files: container sniffing, validation and decoding to 16 kHz mono with PyAV."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import av
import av.error
import numpy as np

from speech.audio import SAMPLE_RATE, AudioNormalizer

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = "WAV, FLAC, OGG (Opus/Vorbis), MP3, M4A/MP4 (AAC/ALAC), WebM/Matroska or AAC"
# Demuxer chosen from the file's first bytes: FFmpeg never probes for (or follows) playlists,
# concat lists or other formats that open further files or URLs.
SUFFIXES = {
    "wav": ".wav",
    "flac": ".flac",
    "ogg": ".ogg",
    "mp3": ".mp3",
    "mp4": ".m4a",
    "matroska": ".webm",
    "aac": ".aac",
}
# A file may hold a few damaged packets (FFmpeg's command line skips them too); more is not audio.
MAX_BAD_PACKET_RATIO = 0.1
# Container durations are estimates (VBR MP3 without an index): reject early only when far over.
_ESTIMATE_MARGIN = 1.1

Source = str | Path | IO[bytes]


class UploadError(Exception):
    """The file cannot be accepted. `code` is stable; `status` is the HTTP status to answer."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


# FFmpeg's resampler (and so the decoder) takes at most 64 channels.
DECODER_MAX_CHANNELS = 64


@dataclass(frozen=True)
class AudioLimits:
    """The channel counts and sample rates accepted (settings.STT_UPLOAD; `accept.audio_limits`).

    A header may claim any rate: 2 KB of WAV claiming 1 Hz lasts 1,000 s (and would be billed so),
    one claiming 4 MHz a few milliseconds; 255 channels pass probing and fail in the decoder.
    """

    max_channels: int = 8
    min_sample_rate: int = 8000
    max_sample_rate: int = 192000

    def check(self, channels: int, sample_rate: int) -> None:
        """UploadError `unsupported_audio` (400) unless both are within bounds."""
        if not 1 <= channels <= min(self.max_channels, DECODER_MAX_CHANNELS):
            limit = min(self.max_channels, DECODER_MAX_CHANNELS)
            raise UploadError(
                "unsupported_audio",
                f"The recording has {channels} channel{'s' * (channels != 1)}; this server takes "
                f"recordings of at most {limit} channel{'s' * (limit != 1)}.",
            )
        if not self.min_sample_rate <= sample_rate <= self.max_sample_rate:
            raise UploadError(
                "unsupported_audio",
                f"The recording's sample rate is {sample_rate} Hz; this server takes "
                f"{self.min_sample_rate} to {self.max_sample_rate} Hz.",
            )


@dataclass(frozen=True)
class AudioInfo:
    container: str  # the demuxer used: a key of SUFFIXES
    codec: str
    sample_rate: int
    channels: int
    duration_s: float

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.container]

    def as_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_s": round(self.duration_s, 3),
        }


def sniff_container(head: bytes) -> str | None:
    """The demuxer for a file starting with `head` (at least 12 bytes), or None if not accepted."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:3] == b"ID3":
        # An ID3v2 tag may precede MP3 frames (and, rarely, FLAC or AAC); MP3 is by far the usual.
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; ADTS (AAC) has the same sync with layer bits 00.
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return None


def _read_head(source: Source) -> bytes:
    if isinstance(source, str | Path):
        with open(source, "rb") as fh:
            return fh.read(16)
    position = source.tell()
    head = source.read(16)
    source.seek(position)
    return head


def _open(source: Source) -> tuple[Any, Any, str]:
    """Open `source` with the sniffed demuxer; returns (container, audio stream, demuxer name)."""
    head = _read_head(source)
    if not head:
        raise UploadError("empty_file", "The uploaded file is empty.")
    container_name = sniff_container(head)
    if container_name is None:
        raise UploadError("not_audio", f"The file is not a recognised audio file; send {ACCEPTED_FORMATS}.")
    try:
        container = av.open(str(source) if isinstance(source, Path) else source, "r", format=container_name)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UploadError("not_audio", f"The file could not be read as {container_name}: {exc}") from None
    if not container.streams.audio:
        container.close()
        raise UploadError("not_audio", "The file contains no audio stream.")
    return container, container.streams.audio[0], container_name


def _frames(container: Any, stream: Any) -> Iterator[Any]:
    """Decoded audio frames; skips damaged packets unless they are more than a few."""
    packets = bad = 0
    try:
        for packet in container.demux(stream):
            packets += 1
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                bad += 1
                if bad > 10 and bad > MAX_BAD_PACKET_RATIO * packets:
                    raise UploadError(
                        "not_audio", "The audio data is damaged and cannot be decoded."
                    ) from None
    except av.error.FFmpegError as exc:
        raise UploadError("not_audio", f"The audio could not be decoded: {exc}") from None


def probe(source: Source, *, max_seconds: float, limits: AudioLimits = AudioLimits()) -> AudioInfo:
    """Decode the whole file (without keeping it) to validate it and measure its exact duration: the
    decoded samples over their rate, which is what is billed, whatever the container's header says.

    Raises UploadError: empty_file, not_audio, empty_audio, unsupported_audio (channels or sample
    rate out of `limits`, as the header says or any decoded frame has them), or audio_too_long (413)
    as soon as the decoded audio passes `max_seconds`.
    """
    container, stream, container_name = _open(source)
    with container:
        declared = stream.codec_context
        if declared is None:  # an audio track no decoder opens (fuzzed WebM)
            raise UploadError("not_audio", "The file's audio track cannot be decoded.")
        if declared.sample_rate or declared.channels:
            limits.check(declared.channels, declared.sample_rate)
        estimate = float(container.duration) / 1e6 if container.duration else 0.0
        if estimate > max_seconds * _ESTIMATE_MARGIN + 1:
            raise _too_long(estimate, max_seconds)
        codec = stream.codec_context.name
        seconds = 0.0
        first: tuple[int, int] | None = None
        last = (0, 0)
        for frame in _frames(container, stream):
            if not frame.sample_rate:
                continue
            shape = (frame.sample_rate, frame.layout.nb_channels)
            if shape != last:
                # The first frame, and each change (chained Ogg, ADTS): every shape is checked.
                limits.check(shape[1], shape[0])
                first, last = first or shape, shape
            seconds += frame.samples / frame.sample_rate
            if seconds > max_seconds:
                raise _too_long(seconds, max_seconds, decoded=True)
    if seconds <= 0:
        raise UploadError("empty_audio", "The file contains no audio samples.")
    rate, channels = first or (0, 0)
    return AudioInfo(container_name, codec, rate, channels, seconds)


def _too_long(seconds: float, max_seconds: float, *, decoded: bool = False) -> UploadError:
    what = "more than" if decoded else "about"
    return UploadError(
        "audio_too_long",
        f"The recording lasts {what} {seconds:.0f} s; the limit is {max_seconds:.0f} s.",
        status=413,
    )


def _mono(frame: Any) -> np.ndarray:
    """A packed float frame's channels averaged. Packed (one plane), not planar: PyAV's planar
    frames of 8 or more channels (7.1 audio) crash the process when read as an array."""
    channels = frame.layout.nb_channels
    return frame.to_ndarray().reshape(-1, channels).mean(axis=1, dtype=np.float32)


def decode_16k(source: Source, *, block_s: float = 10.0) -> Iterator[np.ndarray]:
    """The file as consecutive 16 kHz mono float32 blocks (channels averaged, soxr resampling)."""
    container, stream, _ = _open(source)
    to_float = av.AudioResampler(format="flt")  # keeps the layout and the rate
    normalizer = AudioNormalizer()
    pending: list[np.ndarray] = []
    pending_samples = 0
    block = int(block_s * SAMPLE_RATE)
    with container:
        for frame in _frames(container, stream):
            try:
                converted = to_float.resample(frame)
            except ValueError:  # the frames changed format mid-file (ADTS): a resampler for the new one
                converted = [*to_float.resample(None)]
                to_float = av.AudioResampler(format="flt")
                converted += to_float.resample(frame)
            for packed in converted:
                out = normalizer.feed_float(_mono(packed), packed.sample_rate)
                if len(out):
                    pending.append(out)
                    pending_samples += len(out)
            if pending_samples >= block:
                yield np.concatenate(pending)
                pending, pending_samples = [], 0
    for packed in to_float.resample(None):
        pending.append(normalizer.feed_float(_mono(packed), packed.sample_rate))
    pending.append(normalizer.flush())
    rest = [p for p in pending if len(p)]
    if rest:
        yield np.concatenate(rest).astype(np.float32, copy=False)
