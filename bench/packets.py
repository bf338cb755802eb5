"""Client side of the /ws/transcribe packet format, for tests, benchmarks and example clients."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import numpy as np


def encode_packet(samples: np.ndarray, sample_rate: int, channels: int = 1, **extra) -> bytes:
    """`[u32 LE metadata length][UTF-8 JSON metadata][PCM s16le]` for int16 samples (frames, channels)."""
    pcm = np.ascontiguousarray(samples, dtype="<i2")
    frames = pcm.shape[0]
    meta = json.dumps(
        {"sampleRate": sample_rate, "channels": channels, "format": "pcm_s16le", "frames": frames, **extra}
    ).encode()
    return struct.pack("<I", len(meta)) + meta + pcm.tobytes()


def float_to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0 - 1 / 32768) * 32768).astype(np.int16)


def packets(audio: np.ndarray, sample_rate: int = 16000, packet_ms: int = 40) -> Iterator[bytes]:
    """Mono float32 audio cut into packets of `packet_ms`."""
    pcm = float_to_int16(audio)
    step = sample_rate * packet_ms // 1000
    for start in range(0, len(pcm), step):
        yield encode_packet(pcm[start : start + step].reshape(-1, 1), sample_rate)
