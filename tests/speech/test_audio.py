"""Packet decoding, PCM conversion, downmix and streaming resampling."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import soxr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speech import audio
from speech.audio import AudioNormalizer, AudioPacketError, decode_packet, decode_pcm16


def packet(meta: dict | bytes, payload: bytes = b"") -> bytes:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return struct.pack("<I", len(raw)) + raw + payload


def meta(frames: int = 2, **extra) -> dict:
    return {"sampleRate": 48000, "channels": 1, "format": "pcm_s16le", "frames": frames, **extra}


def test_valid_packet_decodes_to_int16_frames_by_channels():
    pcm = np.array([[1, -1], [32767, -32768], [5, 6]], dtype="<i2")
    result = decode_packet(packet(meta(frames=3, channels=2, seq=7), pcm.tobytes()))
    assert (result.sample_rate, result.channels, result.frames) == (48000, 2, 3)
    assert result.samples.dtype == np.int16
    np.testing.assert_array_equal(result.samples, pcm)
    assert result.metadata["seq"] == 7


def test_missing_frames_is_derived_and_missing_format_means_pcm_s16le():
    result = decode_packet(packet({"sampleRate": 16000, "channels": 1}, b"\x00\x00" * 5))
    assert result.frames == 5


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "packet_too_short"),
        (b"\x01\x00\x00", "packet_too_short"),
        (struct.pack("<I", 10) + b"{}", "metadata_length_out_of_range"),
        (struct.pack("<I", 64 * 1024 + 1) + b" " * (64 * 1024 + 1), "metadata_too_large"),
        (packet(b"\xff\xfe{}"), "metadata_not_json_object"),
        (packet(b"{not json"), "metadata_not_json_object"),
        (packet(b"[1, 2]"), "metadata_not_json_object"),
        (packet(b"[" * 30000 + b"]" * 30000), "metadata_not_json_object"),
        (packet(meta(format="pcm_f32le"), b"\x00" * 4), "unsupported_format"),
        (packet(meta(sampleRate=7999), b"\x00" * 4), "invalid_sample_rate"),
        (packet(meta(sampleRate=192001), b"\x00" * 4), "invalid_sample_rate"),
        (packet(meta(sampleRate="48000"), b"\x00" * 4), "invalid_sample_rate"),
        (packet(meta(sampleRate=True), b"\x00" * 4), "invalid_sample_rate"),
        (packet({"channels": 1, "frames": 2}, b"\x00" * 4), "invalid_sample_rate"),
        (packet(meta(channels=0), b"\x00" * 4), "invalid_channels"),
        (packet(meta(channels=9), b"\x00" * 36), "invalid_channels"),
        (packet(meta(frames=-1)), "invalid_frames"),
        (packet(meta(frames=1.5), b"\x00" * 3), "invalid_frames"),
        (packet(meta(frames=3), b"\x00" * 4), "frame_count_mismatch"),
        (packet(meta(frames=2, channels=2), b"\x00" * 4), "frame_count_mismatch"),
        (packet({"sampleRate": 16000, "channels": 2}, b"\x00" * 6), "frame_count_mismatch"),
    ],
)
def test_malformed_packet_gives_its_error_code(data, code):
    with pytest.raises(AudioPacketError) as info:
        decode_packet(data)
    assert info.value.code == code
    assert info.value.code in audio.ERROR_CODES
    assert info.value.message


def test_payload_over_the_configured_maximum_is_rejected():
    data = packet(meta(frames=100), b"\x00" * 200)
    assert decode_packet(data, max_payload_bytes=200).frames == 100
    with pytest.raises(AudioPacketError) as info:
        decode_packet(data, max_payload_bytes=199)
    assert info.value.code == "payload_too_large"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_audio_packet_error(data):
    try:
        decode_packet(data)
    except AudioPacketError as exc:
        assert exc.code in audio.ERROR_CODES


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["sampleRate", "channels", "format", "frames", "x"]),
        st.one_of(
            st.integers(), st.floats(), st.text(max_size=5), st.none(), st.booleans(), st.lists(st.integers())
        ),
    ),
    st.binary(max_size=64),
)
def test_random_metadata_raises_only_audio_packet_error(metadata, payload):
    try:
        result = decode_packet(packet(metadata, payload))
    except AudioPacketError as exc:
        assert exc.code in audio.ERROR_CODES
    else:
        assert result.samples.shape == (result.frames, result.channels)


def test_headerless_pcm16():
    result = decode_pcm16(np.arange(6, dtype="<i2").tobytes(), sample_rate=16000, channels=2)
    assert result.samples.shape == (3, 2)
    for data, kwargs, code in [
        (b"\x00" * 3, {"sample_rate": 16000}, "odd_byte_count"),
        (b"\x00" * 6, {"sample_rate": 16000, "channels": 2}, "partial_frame"),
        (b"\x00" * 4, {"sample_rate": 4000}, "invalid_sample_rate"),
        (b"\x00" * 4, {"sample_rate": 16000, "channels": 0}, "invalid_channels"),
        (b"\x00" * 4, {"sample_rate": 16000, "max_payload_bytes": 2}, "payload_too_large"),
    ]:
        with pytest.raises(AudioPacketError) as info:
            decode_pcm16(data, **kwargs)
        assert info.value.code == code


def tone(freq: float, rate: int, seconds: float, level: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stream(normalizer: AudioNormalizer, x: np.ndarray, rate: int, sizes: list[int]) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(normalizer.feed_float(x[i : i + n], rate))
        i, k = i + n, k + 1
    out.append(normalizer.flush())
    return np.concatenate(out)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_resampled_tone_keeps_frequency_and_level(rate):
    x = tone(1000.0, rate, 1.0)
    y = stream(AudioNormalizer(), x, rate, [rate // 50])
    assert abs(len(y) - 16000) <= 1
    body = y[800:-800]  # skip the filter's edge transients
    assert abs(dominant_frequency(body, 16000) - 1000.0) < 2.0
    rms_db = 20 * np.log10(np.sqrt(np.mean(body**2)) / (0.5 / np.sqrt(2)))
    assert abs(rms_db) < 0.1


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_chunked_resampling_equals_one_shot(rate):
    x = tone(440.0, rate, 0.7) + tone(3100.0, rate, 0.7, 0.2)
    one_shot = soxr.resample(x, rate, 16000)
    chunked = stream(AudioNormalizer(), x, rate, [1, 441, 960, 7, 1920, 4096])
    assert len(chunked) == len(one_shot)
    np.testing.assert_allclose(chunked, one_shot, atol=1e-6)


def test_48k_stereo_packets_downmix_to_the_channel_mean():
    left, right = tone(500.0, 48000, 0.5, 0.4), tone(500.0, 48000, 0.5, 0.2)
    pcm = np.round(np.stack([left, right], axis=1) * 32767).astype("<i2")
    normalizer = AudioNormalizer()
    out = [
        normalizer.feed(decode_packet(packet(meta(frames=len(block), channels=2), block.tobytes())))
        for block in np.array_split(pcm, 25)
    ]
    y = np.concatenate([*out, normalizer.flush()])
    expected = soxr.resample(pcm.astype(np.float32).mean(axis=1) / 32768, 48000, 16000)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    # Antiphase channels cancel: the mix is a mean, not one channel.
    silent = np.stack([pcm[:, 0], -pcm[:, 0]], axis=1).astype("<i2")
    assert np.abs(audio.pcm16_to_float(silent)).max() < 1e-4


def test_sample_rate_change_mid_stream_flushes_and_keeps_time():
    normalizer = AudioNormalizer()
    first = stream(normalizer, tone(1000.0, 48000, 0.5), 48000, [960])
    second = np.concatenate([normalizer.feed_float(tone(1000.0, 8000, 0.5), 8000), normalizer.flush()])
    assert abs(len(first) - 8000) <= 1 and abs(len(second) - 8000) <= 1
    assert abs(dominant_frequency(second[400:-400], 16000) - 1000.0) < 4.0


def test_rate_change_without_explicit_flush_emits_the_old_tail_first():
    normalizer = AudioNormalizer()
    a = normalizer.feed_float(tone(1000.0, 48000, 0.2), 48000)
    b = normalizer.feed_float(tone(1000.0, 44100, 0.2), 44100)
    c = normalizer.flush()
    # Nothing is lost across the switch: 0.4 s in, 0.4 s out.
    assert abs(len(a) + len(b) + len(c) - 6400) <= 2


def test_16k_mono_passes_through_unchanged():
    pcm = (np.arange(-800, 800) * 20).astype("<i2")
    y = AudioNormalizer().feed(decode_pcm16(pcm.tobytes(), sample_rate=16000))
    np.testing.assert_array_equal(y, pcm.astype(np.float32) / 32768)


def test_channel_change_mid_stream_keeps_the_resampler_running():
    x = tone(700.0, 48000, 0.4)
    pcm = np.round(x * 32767).astype("<i2")
    half = len(pcm) // 2
    stereo = np.stack([pcm[:half], pcm[:half]], axis=1)
    normalizer = AudioNormalizer()
    first = normalizer.feed(decode_packet(packet(meta(frames=half, channels=2), stereo.tobytes())))
    second = normalizer.feed(decode_packet(packet(meta(frames=len(pcm) - half), pcm[half:].tobytes())))
    y = np.concatenate([first, second, normalizer.flush()])
    # Identical channels downmix to the mono signal, so the switch is seamless.
    np.testing.assert_allclose(y, soxr.resample(pcm.astype(np.float32) / 32768, 48000, 16000), atol=1e-5)
