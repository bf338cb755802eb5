"""Audio packet decoding, PCM16 conversion, downmix and streaming resampling to 16 kHz mono float32."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

# The rate of everything past decoding: VAD, segments, inference.
SAMPLE_RATE = 16000
TARGET_RATE = SAMPLE_RATE
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000
MIN_CHANNELS = 1
MAX_CHANNELS = 8
MAX_METADATA_BYTES = 64 * 1024
# 1 MiB is ~5.5 s of 48 kHz stereo; browsers send 20-100 ms packets, so anything near this is abuse.
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
SUPPORTED_FORMAT = "pcm_s16le"
_PREFIX = struct.Struct("<I")

# Stable error codes (clients and tests match on these strings, never on the message):
PACKET_TOO_SHORT = "packet_too_short"  # fewer than the 4 bytes of the length prefix
METADATA_TOO_LARGE = "metadata_too_large"  # declared metadata length over 64 KiB
METADATA_LENGTH_OUT_OF_RANGE = "metadata_length_out_of_range"  # length prefix runs past the packet
METADATA_NOT_JSON_OBJECT = "metadata_not_json_object"  # not UTF-8, not JSON, or not a JSON object
UNSUPPORTED_FORMAT = "unsupported_format"  # "format" present and not "pcm_s16le"
INVALID_SAMPLE_RATE = "invalid_sample_rate"  # not an integer in 8000..192000
INVALID_CHANNELS = "invalid_channels"  # not an integer in 1..8
INVALID_FRAMES = "invalid_frames"  # "frames" present but not a non-negative integer
FRAME_COUNT_MISMATCH = "frame_count_mismatch"  # frames * channels * 2 != payload length
PAYLOAD_TOO_LARGE = "payload_too_large"  # PCM payload over max_payload_bytes
ODD_BYTE_COUNT = "odd_byte_count"  # headerless PCM16 with an odd number of bytes
PARTIAL_FRAME = "partial_frame"  # headerless PCM16 not a whole number of multi-channel frames

ERROR_CODES = frozenset(
    {
        PACKET_TOO_SHORT,
        METADATA_TOO_LARGE,
        METADATA_LENGTH_OUT_OF_RANGE,
        METADATA_NOT_JSON_OBJECT,
        UNSUPPORTED_FORMAT,
        INVALID_SAMPLE_RATE,
        INVALID_CHANNELS,
        INVALID_FRAMES,
        FRAME_COUNT_MISMATCH,
        PAYLOAD_TOO_LARGE,
        ODD_BYTE_COUNT,
        PARTIAL_FRAME,
    }
)


class AudioPacketError(ValueError):
    """A malformed audio packet: `code` is one of ERROR_CODES, `message` is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AudioPacket:
    """Decoded PCM: `samples` is int16 shaped (frames, channels) and may be a read-only view."""

    sample_rate: int
    channels: int
    frames: int
    samples: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def _as_int(value: Any) -> int | None:
    # bool is an int subclass and JS clients may send 48000.0; accept only true integral numbers.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _check_rate_and_channels(sample_rate: Any, channels: Any) -> tuple[int, int]:
    rate = _as_int(sample_rate)
    if rate is None or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioPacketError(
            INVALID_SAMPLE_RATE,
            f"sampleRate must be an integer in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}, got {sample_rate!r}",
        )
    chans = _as_int(channels)
    if chans is None or not MIN_CHANNELS <= chans <= MAX_CHANNELS:
        raise AudioPacketError(
            INVALID_CHANNELS,
            f"channels must be an integer in {MIN_CHANNELS}..{MAX_CHANNELS}, got {channels!r}",
        )
    return rate, chans


def _pcm_view(payload: bytes | memoryview, channels: int) -> np.ndarray:
    samples = np.frombuffer(payload, dtype="<i2")
    if samples.dtype != np.int16:  # big-endian host: the one case where a copy is needed
        samples = samples.astype(np.int16)
    return samples.reshape(-1, channels)


def decode_packet(data: bytes, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> AudioPacket:
    """Decode `[u32 LE metadata length][UTF-8 JSON metadata][PCM s16le]`.

    Raises AudioPacketError (and nothing else, whatever the bytes) with one of the codes:
    packet_too_short, metadata_too_large, metadata_length_out_of_range, payload_too_large,
    metadata_not_json_object, unsupported_format, invalid_sample_rate, invalid_channels,
    invalid_frames, frame_count_mismatch. A missing "format" means pcm_s16le and a missing
    "frames" is derived from the payload length; "sampleRate" and "channels" are required.
    """
    view = memoryview(data)
    if len(view) < _PREFIX.size:
        raise AudioPacketError(PACKET_TOO_SHORT, f"packet has {len(view)} bytes, the length prefix needs 4")
    (meta_len,) = _PREFIX.unpack_from(view, 0)
    if meta_len > MAX_METADATA_BYTES:
        raise AudioPacketError(
            METADATA_TOO_LARGE, f"metadata length {meta_len} exceeds {MAX_METADATA_BYTES} bytes"
        )
    end = _PREFIX.size + meta_len
    if end > len(view):
        raise AudioPacketError(
            METADATA_LENGTH_OUT_OF_RANGE,
            f"metadata length {meta_len} runs past the {len(view)}-byte packet",
        )
    payload = view[end:]
    if len(payload) > max_payload_bytes:
        raise AudioPacketError(
            PAYLOAD_TOO_LARGE, f"payload of {len(payload)} bytes exceeds {max_payload_bytes} bytes"
        )
    try:
        metadata = json.loads(bytes(view[_PREFIX.size : end]).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise AudioPacketError(METADATA_NOT_JSON_OBJECT, f"metadata is not UTF-8 JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise AudioPacketError(
            METADATA_NOT_JSON_OBJECT, f"metadata must be a JSON object, got {type(metadata).__name__}"
        )
    fmt = metadata.get("format", SUPPORTED_FORMAT)
    if fmt != SUPPORTED_FORMAT:
        raise AudioPacketError(UNSUPPORTED_FORMAT, f"format must be {SUPPORTED_FORMAT!r}, got {fmt!r:.80}")
    rate, channels = _check_rate_and_channels(metadata.get("sampleRate"), metadata.get("channels"))
    bytes_per_frame = 2 * channels
    if "frames" in metadata:
        frames = _as_int(metadata["frames"])
        if frames is None or frames < 0:
            raise AudioPacketError(
                INVALID_FRAMES, f"frames must be a non-negative integer, got {metadata['frames']!r:.80}"
            )
    else:
        frames = len(payload) // bytes_per_frame
    if frames * bytes_per_frame != len(payload):
        raise AudioPacketError(
            FRAME_COUNT_MISMATCH,
            f"frames * channels * 2 = {frames} * {channels} * 2 != payload length {len(payload)}",
        )
    return AudioPacket(rate, channels, frames, _pcm_view(payload, channels), metadata)


def decode_pcm16(
    data: bytes,
    *,
    sample_rate: int,
    channels: int = 1,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> AudioPacket:
    """Headerless interleaved PCM16 LE at a known rate and channel count.

    Error codes: invalid_sample_rate, invalid_channels, payload_too_large, odd_byte_count,
    partial_frame (an even byte count that is not a whole number of multi-channel frames).
    """
    rate, chans = _check_rate_and_channels(sample_rate, channels)
    if len(data) > max_payload_bytes:
        raise AudioPacketError(PAYLOAD_TOO_LARGE, f"payload of {len(data)} bytes exceeds {max_payload_bytes}")
    if len(data) % 2:
        raise AudioPacketError(ODD_BYTE_COUNT, f"PCM16 needs an even byte count, got {len(data)}")
    if len(data) % (2 * chans):
        raise AudioPacketError(
            PARTIAL_FRAME, f"{len(data)} bytes is not a whole number of {chans}-channel PCM16 frames"
        )
    return AudioPacket(rate, chans, len(data) // (2 * chans), _pcm_view(data, chans), {})


def pcm16_to_float(samples: np.ndarray) -> np.ndarray:
    """int16 (frames, channels) or (frames,) to mono float32 in [-1, 1) (channel average)."""
    if samples.ndim == 2:
        if samples.shape[1] == 1:
            samples = samples[:, 0]
        else:
            # Sum in float32 then scale once: avoids int16 overflow and one pass per channel.
            return samples.sum(axis=1, dtype=np.float32) * np.float32(1.0 / (32768.0 * samples.shape[1]))
    return samples.astype(np.float32) * np.float32(1.0 / 32768.0)


class AudioNormalizer:
    """One per stream: downmix to mono and resample to 16 kHz with state kept across packets.

    soxr's ResampleStream carries its filter history between calls, so a stream cut into any
    packets resamples exactly as if it came in one piece. When the input rate changes mid-stream
    the old resampler is flushed (its delayed tail is returned before the new rate's audio) and
    a new one started; channel changes need no reset because downmixing happens first.
    """

    def __init__(self, *, target_rate: int = TARGET_RATE, quality: str = "HQ") -> None:
        self.target_rate = target_rate
        self.quality = quality
        self._rate: int | None = None
        self._resampler: soxr.ResampleStream | None = None
        self.samples_in = 0
        self.samples_out = 0

    @property
    def sample_rate(self) -> int | None:
        """The input rate currently being resampled (None before the first packet)."""
        return self._rate

    def feed(self, packet: AudioPacket) -> np.ndarray:
        return self.feed_float(pcm16_to_float(packet.samples), packet.sample_rate)

    def feed_float(self, mono: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float32 at `sample_rate` in, 16 kHz float32 out (possibly empty: the filter delays)."""
        tail = None
        if sample_rate != self._rate:
            tail = self.flush()
            self._rate = sample_rate
            if sample_rate != self.target_rate:
                self._resampler = soxr.ResampleStream(
                    sample_rate, self.target_rate, 1, dtype="float32", quality=self.quality
                )
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        self.samples_in += len(mono)
        out = mono if self._resampler is None else self._resampler.resample_chunk(mono)
        self.samples_out += len(out)
        return out if tail is None or not len(tail) else np.concatenate([tail, out])

    def flush(self) -> np.ndarray:
        """The resampler's delayed tail; the next packet starts a fresh resampler."""
        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            self.samples_out += len(tail)
        self._resampler = None
        self._rate = None
        return tail
