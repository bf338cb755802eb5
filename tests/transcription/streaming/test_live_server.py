"""End to end: a real Daphne with the real bundled model, a separate client process, jfk.wav in real time."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from urllib.request import urlopen

import numpy as np
import pytest

from tests.live_server import ROOT, daphne_server, manage

pytestmark = pytest.mark.slow


def test_jfk_streamed_in_real_time_gives_interim_and_accurate_final_text(tmp_path, corpus):
    with daphne_server(tmp_path) as (base, env, server):
        key = manage(env, "apikey", "create", "--user", "live", "--create-user", "--scopes", "stream").strip()
        out = tmp_path / "summary.json"
        url = base.replace("http://", "ws://") + "/ws/transcribe"
        client = subprocess.run(
            [sys.executable, "-m", "bench.stream", "--url", url, "--api-key", key, "--files", "jfk.wav",
             "--server-pid", str(server.pid), "--json-out", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert client.returncode == 0, client.stdout + client.stderr
        summary = json.loads(out.read_text())
        print(client.stdout)
        assert summary["events"]["hello"] == 1 and summary["events"]["ready"] == 1
        assert summary["events"]["realtime"] >= 1 and summary["events"]["final"] >= 1
        assert summary["finals_missing"] == 0 and not summary["errors"]
        assert summary["wer"] <= 0.15, summary
    db = sqlite3.connect(tmp_path / "live.sqlite3")
    segments = [row[0] for row in db.execute("SELECT text FROM transcription_segment ORDER BY id")]
    transcript = db.execute("SELECT text FROM transcription_transcript").fetchone()[0]
    assert transcript == " ".join(segments)
    assert corpus.wer([corpus.manifest()["jfk.wav"].reference], [transcript]) <= 0.15
    streamed = db.execute("SELECT audio_seconds_streamed FROM accounts_usage").fetchone()[0]
    assert streamed == pytest.approx(12.0, abs=0.5)  # 11 s of speech and 1 s of trailing silence
    status, ended = db.execute("SELECT status, ended_at FROM transcription_transcriptionsession").fetchone()
    assert status == "completed" and ended


async def test_sigterm_finalizes_what_was_spoken_and_stores_it(tmp_path, corpus):
    import signal

    import websockets

    from bench.packets import packets

    with daphne_server(tmp_path) as (base, env, server):
        key = manage(env, "apikey", "create", "--user", "term", "--create-user", "--scopes", "stream").strip()
        url = base.replace("http://", "ws://") + "/ws/transcribe"
        audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)[: 16000 * 8]
        events = []
        async with websockets.connect(url, additional_headers={"X-API-Key": key}, open_timeout=60) as ws:
            for packet in packets(audio):  # 8 s, ending mid-sentence
                await ws.send(packet)
            await ws.send(json.dumps({"type": "ping"}))
            async for raw in ws:
                events.append(json.loads(raw))
                if events[-1]["type"] == "pong":
                    break
            timeline = [e["event"] for e in events if e["type"] == "timeline"]
            assert timeline[-1] == "recording_started", events  # a segment is open
            server.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async for raw in ws:
                    events.append(json.loads(raw))
        assert closed.value.rcvd.code == 1012
        assert server.wait(30) is not None
    warnings = [e["code"] for e in events if e["type"] == "warning"]
    finals = [e for e in events if e["type"] == "final"]
    assert warnings == ["server_shutdown"] and finals[-1]["end"] >= 7.5, events
    db = sqlite3.connect(tmp_path / "live.sqlite3")
    segments = [row[0] for row in db.execute("SELECT text FROM transcription_segment ORDER BY id")]
    assert segments == [f["text"] for f in finals if f["text"]]
    transcript = db.execute("SELECT text FROM transcription_transcript").fetchone()[0]
    assert "ask not what your country can do for you" in corpus.normalize(transcript), transcript
    reason, seconds = db.execute(
        "SELECT end_reason, audio_seconds FROM transcription_transcriptionsession"
    ).fetchone()
    assert reason == "server_shutdown" and seconds == pytest.approx(8.0, abs=0.1)
    assert db.execute("SELECT COUNT(*) FROM accounts_activestream").fetchone()[0] == 0


async def test_finalize_mid_utterance_gives_the_final_so_far_and_the_stream_goes_on(tmp_path, corpus):
    """Real Daphne, real model, real time: finalize inside "what your country can do for you"."""
    import websockets

    from bench.packets import packets

    jfk = corpus.manifest()["jfk.wav"]
    audio = np.concatenate([corpus.read_mono_float(jfk.path), np.zeros(16000, np.float32)])
    finalize_at = 6.4
    with daphne_server(tmp_path) as (base, env, _server):
        key = manage(env, "apikey", "create", "--user", "fin", "--create-user", "--scopes", "stream").strip()
        url = base.replace("http://", "ws://") + "/ws/transcribe"
        events = []
        async with websockets.connect(url, additional_headers={"X-API-Key": key}, open_timeout=60) as ws:

            async def read() -> None:
                async for raw in ws:
                    events.append(json.loads(raw))

            reader = asyncio.create_task(read())
            await ws.send(json.dumps({"type": "start"}))
            t0, sent = time.monotonic(), 0.0
            for packet in packets(audio):
                sent += 0.04
                if abs(sent - finalize_at) < 0.02:
                    await ws.send(json.dumps({"type": "finalize"}))
                await asyncio.sleep(max(0.0, t0 + sent - time.monotonic()))
                await ws.send(packet)
            await ws.send(json.dumps({"type": "stop"}))
            deadline = time.monotonic() + 30
            while not any(e["type"] == "status" and e["state"] == "idle" for e in events):
                assert time.monotonic() < deadline, events
                await asyncio.sleep(0.05)
            reader.cancel()
    finals = [e for e in events if e["type"] == "final" and e["text"]]
    (cut,) = [f for f in finals if f["endReason"] == "finalize"]
    assert cut["end"] == pytest.approx(finalize_at, abs=0.2), finals
    assert corpus.normalize(cut["text"]).endswith("your country"), cut  # the words so far
    after = [f for f in finals if f["start"] >= cut["end"]]
    assert after and "ask what you can do for your country" in corpus.normalize(after[-1]["text"]), finals
    transcript = " ".join(f["text"] for f in finals)
    assert corpus.wer([jfk.reference], [transcript]) <= 0.2, transcript  # nothing lost or doubled
    ends = [e for e in events if e["type"] == "turn" and e["event"] == "end"]
    assert ("finalize", cut["segmentId"]) in [(t["reason"], t["segmentId"]) for t in ends]


async def test_the_reference_dialect_at_44_1_and_96_khz_with_the_real_model(tmp_path, corpus):
    """jfk.wav as a browser at 44.1 or 96 kHz sends it: the reference console's fields, typed as its."""
    import soxr
    import websockets

    from bench.packets import encode_packet

    jfk = corpus.manifest()["jfk.wav"]
    audio = np.concatenate([corpus.read_mono_float(jfk.path), np.zeros(16000, np.float32)])
    with daphne_server(tmp_path) as (base, env, _):
        key = manage(env, "apikey", "create", "--user", "dial", "--create-user", "--scopes", "stream").strip()
        url = base.replace("http://", "ws://") + "/ws/transcribe"
        for rate in (44100, 96000):
            pcm = (np.clip(soxr.resample(audio, 16000, rate), -1, 1) * 32767).astype(np.int16)
            events = []
            async with websockets.connect(url, additional_headers={"X-API-Key": key}, open_timeout=60) as ws:
                await ws.send(json.dumps({"type": "start"}))
                step, t0 = rate // 25, time.monotonic()  # 40 ms packets in real time, as the console sends
                for n, i in enumerate(range(0, len(pcm), step)):
                    await asyncio.sleep(max(0.0, t0 + n * 0.04 - time.monotonic()))
                    await ws.send(encode_packet(pcm[i : i + step], rate))
                await ws.send(json.dumps({"type": "stop"}))
                async for raw in ws:
                    events.append(json.loads(raw))
                    if events[-1]["type"] == "status" and events[-1]["state"] == "idle":
                        break
            assert not [e for e in events if e["type"] == "error"], events
            hello = (
                events[0] if events[0]["type"] == "hello" else next(e for e in events if e["type"] == "hello")
            )
            for name, kind in (("model", str), ("beam_size", int), ("post_speech_silence_duration", float),
                               ("wake_word_enabled", bool), ("device", str)):  # fmt: skip
                assert isinstance(hello["settings"][name], kind), name
            finals = [e for e in events if e["type"] == "final"]
            interims = [e for e in events if e["type"] == "realtime"]
            assert interims and all(isinstance(e["segmentId"], int) for e in finals + interims)
            for e in interims:
                assert e["stableText"] + e["unstableText"] == e["displayText"], e
                assert isinstance(e["rawText"], str) and isinstance(e["stableDelta"], str)
            for e in finals:
                assert isinstance(e["timestamp"], float) and isinstance(e["recordingStartedAt"], float)
                assert isinstance(e["segment"]["durationSeconds"], float)
            states = {e["state"] for e in events if e["type"] == "status"}
            assert {"listening", "recording", "transcribing", "idle"} <= states
            transcript = " ".join(e["text"] for e in finals)
            assert corpus.wer([jfk.reference], [transcript]) <= 0.1, (rate, transcript)


def wait_until_ready(base: str) -> dict:
    deadline = time.monotonic() + 60
    while not (health := json.loads(urlopen(base + "/health").read()))["ready"]:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    return health


async def test_registered_close_codes_reach_the_client_through_daphne(tmp_path):
    """Autobahn refuses 1008/1009/1013 in sendClose; they must still close cleanly, not crash."""
    import websockets

    with daphne_server(tmp_path, {"STT_MAX_SESSIONS": "1", "STT_MAX_PACKET_BYTES": "4096"}) as (base, env, _):
        # The models load when the server starts, before any stream asks for them.
        health = await asyncio.to_thread(wait_until_ready, base)
        assert health["scheduler"]["started"] and health["activeSessions"] == 0
        key = manage(env, "apikey", "create", "--user", "codes", "--create-user", "--scopes", "stream")
        key = key.strip()
        url = base.replace("http://", "ws://") + "/ws/transcribe"
        headers = {"X-API-Key": key}
        async with websockets.connect(url, additional_headers=headers, open_timeout=60) as first:
            await first.recv()  # hello: the one place is taken
            async with websockets.connect(url, additional_headers=headers) as second:
                refused = json.loads(await second.recv())
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await second.recv()
            assert refused["code"] == "server_at_capacity" and closed.value.rcvd.code == 1013
            await first.send(b"\x00" * 8192)  # over STT_MAX_PACKET_BYTES
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await first.recv()
            assert closed.value.rcvd.code == 1009
        async with websockets.connect(url, additional_headers=headers) as third:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await third.send(b"\x01\x00")  # malformed, again and again
                    await third.recv()
            assert closed.value.rcvd.code == 1008
