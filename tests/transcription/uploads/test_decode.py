"""Recorded files: container sniffing, validation by decoding, and decoding to 16 kHz mono."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.transcription.uploads.audio_files import FORMATS, ODD_WAVS, adts, encode, pcm_wav
from transcription.uploads.decode import AudioLimits, UploadError, decode_16k, probe, sniff_container

SWEEP = (0.4 * np.sin(2 * np.pi * np.cumsum(np.linspace(200, 2000, 4 * 16000)) / 16000)).astype(np.float32)


@pytest.mark.parametrize(("fmt", "container"), [(f, FORMATS[f][0]) for f in FORMATS])
def test_each_accepted_format_is_recognised_probed_and_decoded(fmt, container):
    data = encode(SWEEP, 16000, fmt)
    expected = {"webm": "matroska"}.get(fmt, container)
    assert sniff_container(data[:16]) == expected
    info = probe(io.BytesIO(data), max_seconds=60)
    assert info.container == expected and info.duration_s == pytest.approx(4.0, abs=0.06)
    decoded = np.concatenate(list(decode_16k(io.BytesIO(data))))
    assert decoded.dtype == np.float32 and len(decoded) == pytest.approx(4 * 16000, abs=0.06 * 16000)
    assert 0.2 < float(np.max(np.abs(decoded))) < 0.6


def test_decoding_resamples_and_downmixes_and_is_close_to_the_original():
    data = encode(SWEEP, 16000, "flac")  # stored as 44.1 kHz stereo
    assert probe(io.BytesIO(data), max_seconds=60).sample_rate == 44100
    decoded = np.concatenate(list(decode_16k(io.BytesIO(data), block_s=0.5)))
    n = min(len(decoded), len(SWEEP))
    # Same waveform, not delayed (the encoder's mono-to-stereo upmix lowers the level by 3 dB).
    assert np.corrcoef(decoded[1000 : n - 1000], SWEEP[1000 : n - 1000])[0, 1] > 0.99


def test_an_audio_track_of_a_codec_no_decoder_knows_is_not_audio():
    # Found by bench.fuzz: the track has no codec context, and probe raised AttributeError.
    data = encode(SWEEP, 16000, "webm")
    at = data.index(b"A_OPUS")
    unknown = data[:at] + b"A_QQQQ" + data[at + 6 :]
    with pytest.raises(UploadError) as caught:
        probe(io.BytesIO(unknown), max_seconds=60)
    assert caught.value.code == "not_audio"


def test_a_file_whose_format_changes_mid_way_decodes_whole():
    # Found by bench.fuzz: one resampler for the whole file raised ValueError where the format changed.
    data = adts(16000, "mono") + adts(44100, "stereo")
    assert probe(io.BytesIO(data), max_seconds=60).duration_s > 1.5
    decoded = np.concatenate(list(decode_16k(io.BytesIO(data), block_s=0.5)))
    assert len(decoded) == pytest.approx(2 * 16000, abs=0.15 * 16000)
    assert 0.1 < float(np.max(np.abs(decoded[-8000:]))) < 0.6  # the second part is there, not dropped


@pytest.mark.parametrize(
    "head",
    [
        b"#EXTM3U\n#EXT-X-VERSION:3\nfile:///etc/passwd\n",  # a playlist must never be followed
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
        b"<?xml version='1.0'?><svg/>",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    ],
)
def test_other_files_are_not_audio_without_being_opened(head):
    assert sniff_container(head) is None
    with pytest.raises(UploadError) as error:
        probe(io.BytesIO(head * 20), max_seconds=60)
    assert error.value.code == "not_audio" and error.value.status == 400


def test_probe_stops_decoding_past_the_limit_with_413():
    with pytest.raises(UploadError) as error:
        probe(io.BytesIO(encode(SWEEP, 16000, "ogg")), max_seconds=2)
    assert error.value.code == "audio_too_long" and error.value.status == 413


def test_a_truncated_file_gives_what_it_holds():
    data = encode(SWEEP, 16000, "wav")
    info = probe(io.BytesIO(data[: len(data) // 2]), max_seconds=60)
    assert info.duration_s == pytest.approx(2.0, abs=0.01)


def test_an_empty_file_is_reported_as_such():
    with pytest.raises(UploadError) as error:
        probe(io.BytesIO(b""), max_seconds=60)
    assert error.value.code == "empty_file"


@pytest.mark.parametrize("name", list(ODD_WAVS))
def test_channels_and_sample_rates_out_of_bounds_are_unsupported_audio(name):
    with pytest.raises(UploadError) as refused:
        probe(io.BytesIO(ODD_WAVS[name]), max_seconds=10_000)
    assert refused.value.code == "unsupported_audio" and refused.value.status == 400
    assert ("channels" if "channels" in name else "sample rate") in refused.value.message


def test_the_bounds_are_the_callers():
    eight = pcm_wav(8, 16000, 16000)
    assert probe(io.BytesIO(eight), max_seconds=60).channels == 8
    with pytest.raises(UploadError, match="at most 4 channels"):
        probe(io.BytesIO(eight), max_seconds=60, limits=AudioLimits(max_channels=4))
    low = pcm_wav(1, 6000, 6000)
    with pytest.raises(UploadError, match="8000"):
        probe(io.BytesIO(low), max_seconds=60)
    lenient = AudioLimits(min_sample_rate=4000)
    assert probe(io.BytesIO(low), max_seconds=60, limits=lenient).sample_rate == 6000


@pytest.mark.parametrize("channels", [2, 6, 8, 12])
def test_many_channels_decode_to_mono(channels):
    """7.1 (8 channels) and more: PyAV's planar frames of 8 or more channels crashed the process."""
    decoded = np.concatenate(list(decode_16k(io.BytesIO(pcm_wav(channels, 48000, 48000, tone_hz=440)))))
    assert len(decoded) == pytest.approx(16000, abs=50)
    assert 0.2 < float(np.max(np.abs(decoded))) < 0.4
