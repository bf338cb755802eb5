"""/v3/ws audio chunks: AssemblyAI's chunk-length rule and its two raw encodings (PCM16, G.711 mu-law)."""

from __future__ import annotations

import numpy as np

from speech.audio import AudioPacket, decode_pcm16

MIN_CHUNK_MS = 50.0
MAX_CHUNK_MS = 1000.0


def _mulaw_table() -> np.ndarray:
    """G.711 mu-law byte -> 16-bit linear sample (the standard expansion)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW_TO_PCM16 = _mulaw_table()


def chunk_ms(data: bytes, *, sample_rate: int, bytes_per_sample: int) -> float:
    return len(data) / bytes_per_sample / sample_rate * 1000.0


def chunk_violation(data: bytes, *, sample_rate: int, bytes_per_sample: int) -> str | None:
    """AssemblyAI's message for a chunk outside 50..1000 ms (close 3007), or None."""
    ms = chunk_ms(data, sample_rate=sample_rate, bytes_per_sample=bytes_per_sample)
    if MIN_CHUNK_MS - 1e-6 <= ms <= MAX_CHUNK_MS + 1e-6:
        return None
    return f"Input duration violation: {ms:.2f} ms. Expected between {MIN_CHUNK_MS:g} and {MAX_CHUNK_MS:g} ms"


def decode_chunk(data: bytes, *, sample_rate: int, encoding: str) -> AudioPacket:
    """A chunk as 16-bit PCM (AudioPacketError for PCM16 with an odd byte count)."""
    if encoding == "pcm_mulaw":
        samples = MULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)]
        return AudioPacket(sample_rate, 1, len(samples), samples.reshape(-1, 1), {})
    return decode_pcm16(data, sample_rate=sample_rate)
