"""The header of a WAV stream (RIFF, PCM16): what a live client sends when it names no `encoding`."""

from __future__ import annotations

import struct
from dataclasses import dataclass

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class WavError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class WavHeader:
    sample_rate: int
    channels: int
    data_offset: int = 0  # where the PCM of the `data` chunk starts


def read_wav_header(data: bytes) -> WavHeader | None:
    """The PCM16 format and data offset of a WAV stream's start; None while the header is incomplete.

    WavError when the bytes are not a WAV file or not 16-bit PCM (Deepgram's DATA-0000).
    """
    if len(data) < 12:
        if not b"RIFF".startswith(data[:4]):
            raise WavError("Without an encoding parameter the stream must be a WAV file (RIFF header).")
        return None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(
            "Without an encoding parameter the stream must be a WAV file; for raw PCM set "
            "encoding=linear16 and sample_rate."
        )
    offset = 12
    fmt: tuple[int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise WavError("The WAV data chunk comes before its fmt chunk.")
            return WavHeader(sample_rate=fmt[1], channels=fmt[0], data_offset=body)
        if body + size > len(data):
            return None
        if chunk_id == b"fmt ":
            if size < 16:
                raise WavError("The WAV fmt chunk is too short.")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_EXTENSIBLE) or bits != 16:
                raise WavError(f"Only 16-bit PCM WAV is decoded live (format {tag}, {bits} bits).")
            if not 1 <= channels <= 8 or not 8000 <= rate <= 192000:
                raise WavError(f"Unsupported WAV format: {channels} channels at {rate} Hz.")
            fmt = (channels, rate, bits)
        offset = body + size + (size & 1)
    return None
