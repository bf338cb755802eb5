"""End to end, real Daphne and real models: speakers, sentiment, topics and the filters, live and uploaded."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import sqlite3
import subprocess
import time
import uuid
import wave
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from bench import conversation
from bench.packets import float_to_int16, packets
from tests.live_server import daphne_server, manage
from tests.transcription.streaming.protocols import doc_clients
from tests.transcription.uploads.test_upload_live import call, multipart

pytestmark = pytest.mark.slow

SPEED = 3.0  # times real time: segmentation follows the audio's own clock, not the wall's


def wav_bytes(audio: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(float_to_int16(audio).astype("<i2").tobytes())
    return out.getvalue()


def espeak(text: str, tmp_path: Path, name: str) -> np.ndarray:
    """Synthetic speech at 16 kHz (espeak-ng, resampled by sox)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        reason = "espeak-ng and sox are needed (.ci/run installs them)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    raw, out = tmp_path / f"{name}-raw.wav", tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True)
    with wave.open(str(out)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32768.0


async def stream(url: str, key: str, audio: np.ndarray, start: dict) -> list[dict]:
    """/ws/transcribe at SPEED times real time; every event until the session is idle after stop."""
    import websockets

    events: list[dict] = []
    async with websockets.connect(url, additional_headers={"X-API-Key": key}, open_timeout=60) as ws:

        async def read() -> None:
            async for raw in ws:
                events.append(json.loads(raw))

        reader = asyncio.create_task(read())
        await ws.send(json.dumps({"type": "start", **start}))
        t0 = time.monotonic()
        for i, packet in enumerate(packets(audio)):
            await asyncio.sleep(max(0.0, t0 + i * 0.04 / SPEED - time.monotonic()))
            await ws.send(packet)
        await ws.send(json.dumps({"type": "stop"}))
        deadline = time.monotonic() + 120
        while not any(e["type"] == "status" and e.get("state") == "idle" for e in events[-3:]):
            assert time.monotonic() < deadline, events[-5:]
            await asyncio.sleep(0.1)
        reader.cancel()
    errors = [e for e in events if e["type"] == "error"]
    assert not errors, errors
    return events


def upload(base: str, key: str, audio: np.ndarray, fields: dict[str, str]) -> dict:
    body, content_type = multipart(fields, "conversation.wav", wav_bytes(audio))
    status, headers, raw = call(base, "POST", "/api/v1/transcriptions/", key, body, content_type)
    assert status == 202, raw
    location = urlsplit(headers["Location"]).path
    deadline = time.monotonic() + 300
    while True:
        _, _, raw = call(base, "GET", location, key)
        done = json.loads(raw)
        if done["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert done["status"] == "completed", done
    return done


def check_two_speakers(turns, segments: list[tuple[float, float, str]]) -> None:
    labels = {label for _, _, label in segments}
    accuracy, mapping = conversation.label_accuracy(turns, segments)
    print(f"speakers={sorted(labels)} accuracy={accuracy:.2f} over {len(segments)} segments {mapping}")
    assert len(labels) == 2 and set(mapping.values()) == {"lj", "libri"}, segments
    assert accuracy >= 0.9, segments


def test_two_voices_get_two_speakers_live_and_uploaded(tmp_path, corpus):
    audio, turns = conversation.conversation()
    extra = {"STT_UPLOAD_DIR": str(tmp_path / "uploads")}
    with daphne_server(tmp_path, extra) as (base, env, _server):
        key = manage(
            env, "apikey", "create", "--user", "duo", "--create-user",
            "--scopes", "stream", "history:read", "history:write",
        ).strip()  # fmt: skip
        url = base.replace("http://", "ws://") + "/ws/transcribe"
        events = asyncio.run(stream(url, key, audio, {"enrichment": {"speakers": True}}))
        finals = [e for e in events if e["type"] == "final" and e["text"]]
        check_two_speakers(turns, [(f["start"], f["end"], f["speaker"]) for f in finals])
        assert finals[-1]["analysis"]["speakers"] and len(finals[-1]["analysis"]["speakers"]) == 2
        realtime = [e for e in events if e["type"] == "realtime" and e.get("speaker")]
        assert realtime, "interim text carries its provisional speaker"

        done = upload(base, key, audio, {"speakers": "true"})
        segments = [(s["start_s"], s["end_s"], s["speaker"]) for s in done["segments"]]
        check_two_speakers(turns, segments)
        assert corpus.wer([" ".join(t.reference for t in turns)], [done["transcript"]]) <= 0.15

    db = sqlite3.connect(tmp_path / "live.sqlite3")
    rows = db.execute(
        "SELECT s.endpoint, p.label, p.speaking_time_s, p.segment_count FROM transcription_sessionspeaker p "
        "JOIN transcription_transcriptionsession s ON s.id = p.session_id ORDER BY s.endpoint, p.label"
    ).fetchall()
    print(rows)
    for endpoint in ("upload", "ws_transcribe"):
        speakers = [r for r in rows if r[0] == endpoint]
        assert [r[1] for r in speakers] == ["speaker_1", "speaker_2"], rows
        assert sum(r[2] for r in speakers) == pytest.approx(sum(t.end_s - t.start_s for t in turns), rel=0.3)


def test_one_voice_for_over_a_minute_stays_one_speaker(tmp_path, corpus):
    audio = corpus.read_mono_float(corpus.corpus_dir() / "long_ljspeech_LJ001-0001_0010_concat.wav")
    with daphne_server(tmp_path) as (base, env, _server):
        key = manage(env, "apikey", "create", "--user", "solo", "--create-user", "--scopes", "stream").strip()
        url = base.replace("http://", "ws://") + "/ws/transcribe"
        # Its sentences are 0.4 s apart: a short fixed silence makes each its own segment.
        start = {
            "enrichment": {"speakers": True},
            "postSpeechSilenceDuration": 0.3,
            "endOfTurnSilence": 0.0,
            "wordTimestamps": True,
        }
        events = asyncio.run(stream(url, key, audio, start))
    finals = [e for e in events if e["type"] == "final" and e["text"]]
    print([(f["start"], f["speaker"]) for f in finals])
    assert len(finals) >= 6 and {f["speaker"] for f in finals} == {"speaker_1"}
    assert {w.get("speaker", "speaker_1") for f in finals for w in f["words"]} == {"speaker_1"}


def test_seed_003_client_with_every_feature_gets_the_documented_structure(tmp_path, corpus):
    """Profanity and a spoken card number (espeak-ng), then a dev-corpus sentence, through /v1/stream."""
    speech = np.concatenate(
        [
            np.zeros(8000, np.float32),
            espeak("This is really shit, I am so angry.", tmp_path, "profane"),
            np.zeros(16000, np.float32),
            espeak("My card number is 4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1.", tmp_path, "card"),
            np.zeros(16000, np.float32),
            corpus.read_mono_float(corpus.manifest()["ljspeech_LJ001-0001.wav"].path),
            np.zeros(24000, np.float32),
        ]
    )
    pcm = float_to_int16(speech).astype("<i2").tobytes()
    config = {
        "features": {
            "interim_results": True,
            "speaker_diarization": True,
            "sentiment_analysis": {"enabled": True, "granularity": "sentence", "min_confidence": 0.0},
            "topic_detection": {"enabled": True, "min_confidence": 0.0},
            "profanity_filter": True,
            "redact": ["pci"],
        }
    }
    with daphne_server(tmp_path, serve=True) as (base, env, _server):
        key = manage(
            env, "apikey", "create", "--user", "seed3", "--create-user",
            "--scopes", "stream", "history:read",
        ).strip()  # fmt: skip
        run = asyncio.run(
            doc_clients.v1_stream(
                base.replace("http://", "ws://"), key, pcm, client_id="c-9", session_id="s-9", config=config
            )
        )
        assert not [m for m in run.messages if m["type"] == "error"], run.messages
        finals = [m["data"] for m in run.messages if m["type"] == "final_result"]
        print(json.dumps(finals, indent=1)[:3000])
        assert len(finals) >= 3
        # The synthetic voice, then the LJSpeech reader: two speakers.
        assert [d["speaker"] for d in finals] == ["speaker_1"] * (len(finals) - 1) + ["speaker_2"], finals
        assert finals[-1]["speakers"]["count"] == 2
        for data in finals:
            assert data["speakers"]["count"] >= 1
            assert {"id", "speaking_time", "segments"} <= set(data["speakers"]["details"][0])
            sentiment = data["analysis"]["sentiment"]
            assert sentiment["overall"]["label"] in ("positive", "negative", "neutral")
            assert 0.0 <= sentiment["overall"]["score"] <= 1.0
            assert all({"text", "sentiment", "score"} <= set(s) for s in sentiment["by_sentence"])
            assert isinstance(data["analysis"]["topics"], list)
            assert set(data["filters"]["profanity"]) == {"detected", "filtered_words"}
        everything = json.dumps(run.messages)
        assert "shit" not in everything.lower() and "4111" not in everything.replace(" ", "")
        profane = next(d for d in finals if d["filters"]["profanity"]["detected"])
        assert profane["filters"]["profanity"]["filtered_words"] == ["s***"], profane
        assert "s***" in profane["text"]
        card = next(d for d in finals if "card" in d["text"].lower())
        assert "[PCI]" in card["text"] and card["filters"]["redaction"]["counts"] == {"pci": 1}, card
        assert finals[0]["analysis"]["sentiment"]["by_sentence"][0]["sentiment"] == "negative", finals[0]
        assert any(d["analysis"]["topics"] for d in finals[1:]), finals

        db = sqlite3.connect(tmp_path / "live.sqlite3")
        (raw_id,) = db.execute("SELECT id FROM transcription_transcriptionsession").fetchone()
        session_id = uuid.UUID(raw_id)
        stored = " ".join(r[0] for r in db.execute("SELECT text FROM transcription_segment"))
        assert "s***" in stored and "[PCI]" in stored and "shit" not in stored.lower()
        assert "4111" not in stored.replace(" ", "").replace("-", "")
        for fmt in ("txt", "srt", "vtt", "json"):
            status, _, raw = call(base, "GET", f"/api/v1/sessions/{session_id}/export/{fmt}/", key)
            text = raw.decode()
            assert status == 200 and "s***" in text and "[PCI]" in text and "shit" not in text.lower(), text
        (stored_analysis,) = db.execute("SELECT analysis FROM transcription_transcriptionsession").fetchone()
        analysis = json.loads(stored_analysis)
        assert analysis["topics"] and analysis["sentiment"]["by_sentence"], analysis
        assert analysis["filters"]["profanity"] == {"detected": True, "filtered_words": ["s***"]}
    log = (tmp_path / "daphne.log").read_text()
    assert "shit" not in log.lower() and "4111" not in log
