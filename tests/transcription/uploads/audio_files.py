"""Encode test recordings in memory with PyAV (WAV, FLAC, OGG/Opus, MP3, M4A, WebM)."""

from __future__ import annotations

import io

import av
import numpy as np

# name -> (container, codec, output rate, layout)
FORMATS = {
    "wav": ("wav", "pcm_s16le", 16000, "mono"),
    "flac": ("flac", "flac", 44100, "stereo"),
    "ogg": ("ogg", "libopus", 48000, "mono"),
    "mp3": ("mp3", "libmp3lame", 44100, "stereo"),
    "m4a": ("mp4", "aac", 44100, "mono"),
    "webm": ("webm", "libopus", 48000, "mono"),
}


def encode(samples: np.ndarray, rate: int, name: str) -> bytes:
    """Mono float32 `samples` at `rate` as a file of the format `name` (a key of FORMATS)."""
    return _encoded(samples, rate, *FORMATS[name])


def _encoded(samples: np.ndarray, rate: int, container: str, codec: str, out_rate: int, layout: str) -> bytes:
    pcm = np.clip(samples * 32767, -32768, 32767).astype(np.int16).reshape(1, -1)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=out_rate, layout=layout)
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=out_rate)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def adts(rate: int, layout: str, seconds: float = 1.0) -> bytes:
    """A 440 Hz tone as raw AAC (ADTS) at `rate` Hz, mono or stereo: ADTS files can be joined by
    concatenation, and the joined file changes format where the second one starts."""
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    return _encoded(tone, rate, "adts", "aac", rate, layout)


def pcm_wav(channels: int, rate: int, frames: int, *, tone_hz: float = 0.0) -> bytes:
    """A 16-bit PCM WAV as its header says, whatever it says (odd channel counts and rates included):
    silence, or a tone in every channel."""
    import struct

    block = channels * 2
    if tone_hz and rate:
        wave = (0.3 * 32767 * np.sin(2 * np.pi * tone_hz * np.arange(frames) / rate)).astype("<i2")
        data = np.repeat(wave, channels).tobytes()
    else:
        data = bytes(frames * block)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


# WAVs the decoder must not take (what a probe sent): 255 channels (failed in the job), 2 KB claiming
# 1 Hz (read as 1,000 s of audio and billed so) and 4 MHz. Each is 400 `unsupported_audio`.
ODD_WAVS = {
    "255-channels": pcm_wav(255, 16000, 1600),
    "1-hz": pcm_wav(1, 1, 1000),
    "4-mhz": pcm_wav(1, 4_000_000, 100_000),
}
