"""The live recorder: Ogg/Opus whose decoded duration is what was sent, whatever the packets."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from speech.audio import AudioPacket
from transcription.recordings.live import LiveRecorder


def packets(seconds: float, rate: int, channels: int, packet_ms: int):
    t = np.arange(int(seconds * rate)) / rate
    tone = (np.sin(2 * np.pi * 330 * t) * 9000).astype(np.int16)
    pcm = np.repeat(tone[:, None], channels, axis=1)
    step = rate * packet_ms // 1000
    for i in range(0, len(pcm), step):
        chunk = pcm[i : i + step]
        yield AudioPacket(rate, channels, len(chunk), chunk)


def decoded_seconds(path) -> tuple[float, float]:
    """(decoded samples / rate, RMS) of the file's first audio stream, decoded with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    audio = np.concatenate(frames, axis=1)
    return audio.shape[1] / rate, float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


@pytest.mark.parametrize(
    ("seconds", "rate", "channels", "packet_ms"),
    [(3.7, 16000, 1, 20), (5.0, 48000, 2, 100), (2.25, 44100, 1, 43), (1.0, 8000, 1, 250)],
)
def test_decoded_duration_matches_what_was_sent(tmp_path, seconds, rate, channels, packet_ms):
    async def record():
        recorder = LiveRecorder(tmp_path, batch_s=0.5)
        for packet in packets(seconds, rate, channels, packet_ms):
            recorder.feed(packet)
            await asyncio.sleep(0)
        return await recorder.close()

    path = asyncio.run(record())
    assert path is not None and path.stat().st_size > 0
    duration, rms = decoded_seconds(path)
    assert abs(duration - seconds) < 0.1, (duration, seconds)
    assert rms > 0.05  # the tone is there, not silence


def test_a_rate_change_mid_stream_keeps_every_second(tmp_path):
    async def record():
        recorder = LiveRecorder(tmp_path)
        for packet in [*packets(1.5, 48000, 1, 20), *packets(2.0, 16000, 1, 20)]:
            recorder.feed(packet)
        return await recorder.close()

    duration, _ = decoded_seconds(asyncio.run(record()))
    assert abs(duration - 3.5) < 0.1


def test_nothing_fed_keeps_no_file(tmp_path):
    async def record():
        recorder = LiveRecorder(tmp_path)
        return recorder, await recorder.close()

    recorder, path = asyncio.run(record())
    assert path is None
    assert not recorder.path.exists()


def test_close_is_idempotent_and_later_packets_are_ignored(tmp_path):
    async def record():
        recorder = LiveRecorder(tmp_path)
        for packet in packets(1.0, 16000, 1, 20):
            recorder.feed(packet)
        first = await recorder.close()
        recorder.feed(next(packets(1.0, 16000, 1, 1000)))
        return first, await recorder.close()

    first, second = asyncio.run(record())
    assert first == second
    assert abs(decoded_seconds(first)[0] - 1.0) < 0.1


def test_an_encoder_failure_drops_the_recording_not_the_stream(tmp_path, monkeypatch):
    async def record():
        recorder = LiveRecorder(tmp_path, batch_s=0.1)

        def broken(batch):
            raise RuntimeError("disk full")

        monkeypatch.setattr(recorder, "_write", broken)
        for packet in packets(1.0, 16000, 1, 20):
            recorder.feed(packet)  # never raises
        return recorder, await recorder.close()

    recorder, path = asyncio.run(record())
    assert path is None and recorder.failed
    assert not recorder.path.exists()
