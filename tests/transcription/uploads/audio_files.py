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
    container, codec, out_rate, layout = FORMATS[name]
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
