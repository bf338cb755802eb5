"""The audio decoders: /ws/transcribe packets, headerless PCM16, G.711 mu-law and /api/v1/ws's PCM stream."""

from __future__ import annotations

import numpy as np
from django.conf import settings

from bench.fuzz.harness import Target, require
from bench.fuzz.targets.common import json_tokens
from bench.packets import encode_packet
from speech.audio import (
    ERROR_CODES,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_CHANNELS,
    MIN_SAMPLE_RATE,
    AudioPacket,
    AudioPacketError,
    decode_packet,
    decode_pcm16,
    pcm16_to_float,
)
from transcription.compat.assemblyai.audio import chunk_violation, decode_chunk
from transcription.streaming.protocols.api_v1 import PcmStream


def known_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    return None if code in ERROR_CODES else f"undocumented error code {code!r}"


def check_pcm(packet: AudioPacket, payload_bytes: int) -> None:
    require(MIN_SAMPLE_RATE <= packet.sample_rate <= MAX_SAMPLE_RATE, f"sample rate {packet.sample_rate}")
    require(MIN_CHANNELS <= packet.channels <= MAX_CHANNELS, f"channels {packet.channels}")
    require(packet.samples.dtype == np.int16, f"samples are {packet.samples.dtype}")
    require(packet.samples.shape == (packet.frames, packet.channels), f"shape {packet.samples.shape}")
    require(packet.frames * packet.channels * 2 == payload_bytes, "frames do not cover the payload")
    mono = pcm16_to_float(packet.samples)
    require(mono.dtype == np.float32 and mono.shape == (packet.frames,), "downmix shape")
    require(bool(np.all((mono >= -1.0) & (mono < 1.0))), "downmix outside [-1, 1)")


def _packet(data: bytes) -> None:
    packet = decode_packet(data)
    meta_len = int.from_bytes(data[:4], "little")
    check_pcm(packet, len(data) - 4 - meta_len)
    require(isinstance(packet.metadata, dict), "metadata is not a dict")


def _tone(frames: int, channels: int) -> np.ndarray:
    t = np.arange(frames * channels, dtype=np.float64)
    return (np.sin(t / 7.0) * 12000).astype(np.int16).reshape(frames, channels)


PACKET = Target(
    name="packet",
    instrument=("speech.audio",),
    what="speech.audio.decode_packet (+ pcm16_to_float)",
    run=_packet,
    expected=(AudioPacketError,),
    check_error=known_code,
    seeds=[
        encode_packet(_tone(640, 1), 16000),
        encode_packet(_tone(1920, 2), 48000, channels=2),
        encode_packet(_tone(80, 1), 8000),
        encode_packet(_tone(4, 8), 192000, channels=8),
        encode_packet(_tone(0, 1), 16000),
        encode_packet(_tone(441, 1), 44100, seq=7, timestamp=1.5),
        b'\x1e\x00\x00\x00{"sampleRate":16000,"channels":1}' + bytes(64),
        (3000).to_bytes(4, "little") + b"[" * 3000,  # metadata nested past the recursion limit
    ],
    dictionary=(
        *json_tokens("sampleRate", "channels", "format", "pcm_s16le", "frames"),
        b"16000",
        b"48000",
        b"192000",
        b"8",
        b"\x00\x00\x01\x00",
    ),
)

_RATES = (16000, 8000, 48000, 44100, 22050, 192000, 7999, 192001, 0, -16000)


def _pcm16(data: bytes) -> None:
    """Byte 0 picks the rate, byte 1 the channels (0..9, so out of range too), byte 2 the size
    limit; the rest is the PCM, as the endpoints that know their format hand it over."""
    if len(data) < 3:
        return
    rate, channels = _RATES[data[0] % len(_RATES)], data[1] % 10
    limit = (1 << 20, 64, 4096)[data[2] % 3]
    pcm = data[3:]
    packet = decode_pcm16(pcm, sample_rate=rate, channels=channels, max_payload_bytes=limit)
    check_pcm(packet, len(pcm))


PCM16 = Target(
    name="pcm16",
    instrument=("speech.audio",),
    what="speech.audio.decode_pcm16 (+ pcm16_to_float)",
    run=_pcm16,
    expected=(AudioPacketError,),
    check_error=known_code,
    seeds=[
        bytes([0, 1, 0]) + _tone(320, 1).tobytes(),
        bytes([2, 2, 0]) + _tone(480, 2).tobytes(),
        bytes([1, 8, 2]) + _tone(16, 8).tobytes(),
        bytes([0, 1, 0]),
    ],
)


def _mulaw(data: bytes) -> None:
    """Byte 0: the encoding and rate (AssemblyAI's parameters are checked before audio arrives)."""
    if not data:
        return
    encoding = ("pcm_mulaw", "pcm_s16le")[data[0] & 1]
    rate = (8000, 16000, 48000)[(data[0] >> 1) % 3]
    chunk = data[1:]
    chunk_violation(chunk, sample_rate=rate, bytes_per_sample=1 if encoding == "pcm_mulaw" else 2)
    packet = decode_chunk(chunk, sample_rate=rate, encoding=encoding)
    check_pcm(packet, len(chunk) * (2 if encoding == "pcm_mulaw" else 1))


MULAW = Target(
    name="mulaw",
    instrument=("speech.audio", "transcription.compat.assemblyai.audio"),
    what="transcription.compat.assemblyai.audio.decode_chunk, chunk_violation (G.711 mu-law, PCM16)",
    run=_mulaw,
    expected=(AudioPacketError,),
    check_error=known_code,
    seeds=[b"\x00" + bytes(range(256)) * 2, b"\x01" + _tone(800, 1).tobytes(), b"\x02" + b"\xff\x7f" * 400],
)


def _api_v1(data: bytes) -> None:
    """Messages cut at `||`: /api/v1/ws keeps an odd trailing byte for the next message and
    decodes the rest; its consumer catches nothing here, so any exception is a finding."""
    stream, fed, limit = PcmStream(), 0, settings.STT_STREAM["MAX_PACKET_BYTES"]
    for message in data.split(b"||"):
        if len(message) > limit:
            continue  # closed with message_too_big before decoding
        pcm = stream.push(message)
        if pcm:
            packet = decode_pcm16(pcm, sample_rate=16000, max_payload_bytes=limit + 1)
            check_pcm(packet, len(pcm))
            fed += len(pcm)
    require(fed + stream.pending == len(data) - 2 * data.count(b"||"), "bytes lost between messages")


API_V1 = Target(
    name="api_v1",
    instrument=("speech.audio", "transcription.streaming.protocols.api_v1"),
    what="transcription.streaming.protocols.api_v1.PcmStream + decode_pcm16 (16 kHz mono)",
    run=_api_v1,
    expected=(),
    seeds=[_tone(320, 1).tobytes(), _tone(160, 1).tobytes()[:-1] + b"||" + b"\x01" + _tone(10, 1).tobytes()],
    dictionary=(b"||",),
)
