"""Uploaded recordings: the container sniff, PyAV's probe (the whole decode, within a small
duration budget) and the 16 kHz decode of what the probe accepted."""

from __future__ import annotations

import io
import logging

import av
import numpy as np

from bench.fuzz.harness import Target, require
from transcription.uploads.decode import SUFFIXES, UploadError, decode_16k, probe, sniff_container

MAX_SECONDS = 2.0  # the decode budget of one input (the probe stops past it: audio_too_long)
_FORMATS = (
    ("wav", "pcm_s16le", ".wav"),
    ("flac", "flac", ".flac"),
    ("ogg", "libopus", ".ogg"),
    ("mp3", "libmp3lame", ".mp3"),
    ("mp4", "aac", ".m4a"),
    ("webm", "libopus", ".webm"),
    ("adts", "aac", ".aac"),
)


def _encoded(container: str, codec: str, seconds: float = 0.1, rate: int = 16000) -> bytes | None:
    """A short tone in `container`/`codec`, or None where this FFmpeg build lacks the encoder."""
    out = io.BytesIO()
    try:
        with av.open(out, "w", format=container) as box:
            stream = box.add_stream(codec, rate=48000 if codec == "libopus" else rate)
            stream.layout = "mono"
            samples = (np.sin(np.arange(int(seconds * stream.rate)) / 5.0) * 8000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = stream.rate
            for packet in stream.encode(frame):
                box.mux(packet)
            for packet in stream.encode(None):
                box.mux(packet)
    except (av.error.FFmpegError, ValueError):
        return None
    return out.getvalue()


def _seeds() -> list[bytes]:
    seeds = [s for s in (_encoded(c, codec) for c, codec, _ in _FORMATS) if s]
    return [*seeds, b"RIFF$\x00\x00\x00WAVEfmt ", b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\xff\xf1P\x80"]


def _upload(data: bytes) -> None:
    name = sniff_container(data[:16])
    require(name is None or name in SUFFIXES, f"sniffed {name!r}")
    info = probe(io.BytesIO(data), max_seconds=MAX_SECONDS)
    require(info.container == name and 0 < info.duration_s <= MAX_SECONDS, f"probe said {info.as_dict()}")
    for block in decode_16k(io.BytesIO(data)):
        require(block.dtype == np.float32 and block.ndim == 1, "decoded block shape")
        require(bool(np.isfinite(block).all()), "non-finite samples")


logging.getLogger("libav").setLevel(logging.CRITICAL)  # FFmpeg's complaints about the fuzzed bytes
av.logging.set_level(av.logging.PANIC)

SNIFF = Target(
    name="upload_sniff",
    instrument=("transcription.uploads.decode", "speech.audio"),
    what="uploads.decode.sniff_container, probe (PyAV, 2 s budget), decode_16k",
    run=_upload,
    expected=(UploadError,),
    seeds=_seeds(),
    max_len=16384,
    dictionary=(
        b"RIFF",
        b"WAVE",
        b"fmt ",
        b"data",
        b"fLaC",
        b"OggS",
        b"OpusHead",
        b"ftyp",
        b"moov",
        b"\x1a\x45\xdf\xa3",
        b"ID3",
        b"\xff\xfb",
        b"\xff\xf1",
    ),
)
