"""End to end: a real Daphne with the real bundled model, a separate client process, jfk.wav in real time."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

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
