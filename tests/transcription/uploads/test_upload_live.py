"""End to end: a real Daphne with the bundled model transcribes the original jfk.flac upload."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
import srt

from tests.live_server import daphne_server, manage

pytestmark = pytest.mark.slow


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: audio/flac\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def call(base: str, method: str, path: str, key: str, body: bytes | None = None, content_type: str = ""):
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = {"Authorization": f"Bearer {key}"}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()  # the client goes away: the job must not depend on it


def test_uploaded_jfk_flac_is_transcribed_by_the_real_model(tmp_path, corpus):
    flac = corpus.corpus_dir() / "orig" / "jfk.flac"
    reference = corpus.manifest()["jfk.wav"].reference
    extra = {"STT_UPLOAD_DIR": str(tmp_path / "uploads"), "LOG_LEVEL": "INFO"}
    with daphne_server(tmp_path, extra) as (base, env, _):
        key = manage(
            env,
            "apikey",
            "create",
            "--user",
            "uploader",
            "--create-user",
            "--scopes",
            "history:read",
            "history:write",
        ).strip()
        body, content_type = multipart({"word_timestamps": "true"}, "jfk.flac", flac.read_bytes())
        status, headers, raw = call(base, "POST", "/api/v1/transcriptions/", key, body, content_type)
        assert status == 202, raw
        location = urlsplit(headers["Location"]).path
        deadline = time.monotonic() + 240
        while True:
            status, _, raw = call(base, "GET", location, key)
            done = json.loads(raw)
            if done["status"] in ("completed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert done["status"] == "completed", done
        print(f"transcript: {done['transcript']!r}")
        assert corpus.wer([reference], [done["transcript"]]) <= 0.15
        assert done["duration_s"] == pytest.approx(11.0, abs=0.05) and done["progress"] == 1.0
        words = [w for s in done["segments"] for w in s["words"]]
        assert words and all(0 <= w["start"] <= w["end"] <= 11.1 for w in words)

        _, _, raw = call(base, "GET", f"/api/v1/sessions/{done['id']}/export/srt/", key)
        cues = list(srt.parse(raw.decode()))
        assert cues and corpus.wer([reference], [" ".join(c.content for c in cues)]) <= 0.15
        _, _, raw = call(base, "GET", "/api/v1/usage/", key)
        assert json.loads(raw)["audio_seconds_uploaded"] == pytest.approx(11.0, abs=0.05)
        assert not any((tmp_path / "uploads").iterdir())
    # The job ran as a task of the server's own event loop (not in the fallback thread).
    assert "scheduled on the server loop" in (tmp_path / "daphne.log").read_text()


def test_sigterm_lets_an_accepted_upload_finish_before_the_server_stops(tmp_path, corpus):
    import signal
    import sqlite3

    wav = corpus.corpus_dir() / "long_ljspeech_LJ001-0001_0010_concat.wav"
    reference = corpus.manifest()[wav.name].reference
    with daphne_server(tmp_path, {"STT_UPLOAD_DIR": str(tmp_path / "uploads")}) as (base, env, server):
        key = manage(env, "apikey", "create", "--user", "up", "--create-user", "--scopes", "history:write")
        body, content_type = multipart({}, wav.name, wav.read_bytes())
        status, _, raw = call(base, "POST", "/api/v1/transcriptions/", key.strip(), body, content_type)
        assert status == 202, raw
        server.send_signal(signal.SIGTERM)  # right after the 202: the job has barely started
        assert server.wait(60) == 0
    db = sqlite3.connect(tmp_path / "live.sqlite3")
    query = "SELECT status, end_reason FROM transcription_transcriptionsession"
    status, reason = db.execute(query).fetchone()
    transcript = db.execute("SELECT text FROM transcription_transcript").fetchone()[0]
    assert status == "completed", reason
    assert corpus.wer([reference], [transcript]) <= 0.15


def test_an_upload_cut_short_by_a_crash_is_resumed_by_the_next_server(tmp_path, corpus):
    import signal
    import sqlite3

    wav = corpus.corpus_dir() / "long_ljspeech_LJ001-0001_0010_concat.wav"
    reference = corpus.manifest()[wav.name].reference
    extra = {"STT_UPLOAD_DIR": str(tmp_path / "uploads"), "STT_UPLOAD_MAX_IN_FLIGHT": "1"}
    database = tmp_path / "live.sqlite3"
    with daphne_server(tmp_path, extra, wait_ready=True) as (base, env, server):
        key = manage(env, "apikey", "create", "--user", "up", "--create-user", "--scopes", "history:write")
        body, content_type = multipart({}, wav.name, wav.read_bytes())
        status, _, raw = call(base, "POST", "/api/v1/transcriptions/", key.strip(), body, content_type)
        assert status == 202, raw
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # crash once the first chunk is stored, mid-recording
            with sqlite3.connect(database) as db:
                if db.execute("SELECT count(*) FROM transcription_segment").fetchone()[0]:
                    break
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    with sqlite3.connect(database) as db:
        (status,) = db.execute("SELECT status FROM transcription_transcriptionsession").fetchone()
        stored_before = db.execute("SELECT count(*) FROM transcription_segment").fetchone()[0]
    assert status == "active" and stored_before >= 1
    with daphne_server(tmp_path, extra) as (base, env, server):  # same database and upload folder
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with sqlite3.connect(database) as db:
                (status,) = db.execute("SELECT status FROM transcription_transcriptionsession").fetchone()
            if status in ("completed", "failed"):
                break
            time.sleep(0.5)
    with sqlite3.connect(database) as db:
        status, reason = db.execute(
            "SELECT status, end_reason FROM transcription_transcriptionsession"
        ).fetchone()
        indices = [r[0] for r in db.execute('SELECT "index" FROM transcription_segment')]
        transcript = db.execute("SELECT text FROM transcription_transcript").fetchone()[0]
    assert status == "completed", reason
    assert (
        sorted(indices) == list(range(len(indices))) and len(indices) > stored_before
    )  # resumed, nothing twice
    assert corpus.wer([reference], [transcript]) <= 0.15
