"""End to end: a real Daphne with the bundled model keeps, serves, deletes and purges stored audio."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import time

import av
import pytest

from tests.live_server import daphne_server, manage
from tests.transcription.uploads.test_upload_live import call, multipart

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audio-live")
    extra = {
        "STT_AUDIO_DIR": str(tmp / "audio"),
        "STT_UPLOAD_DIR": str(tmp / "uploads"),
        "STT_STORE_AUDIO": "false",
    }
    with daphne_server(tmp, extra) as (base, env, _):
        scopes = ["--scopes", "stream", "history:read", "history:write"]
        owner = manage(env, "apikey", "create", "--user", "owner", "--create-user", *scopes).strip()
        other = manage(env, "apikey", "create", "--user", "other", "--create-user", *scopes).strip()
        yield {"base": base, "env": env, "tmp": tmp, "owner": owner, "other": other}


async def stream(server, audio, *, store_audio: bool | None) -> str:
    """Send `audio` (16 kHz mono float32) with a start command; stop, wait for idle, close. The session id."""
    import websockets

    from bench.packets import packets

    url = server["base"].replace("http://", "ws://") + "/ws/transcribe"
    start = {"type": "start", **({} if store_audio is None else {"storeAudio": store_audio})}
    async with websockets.connect(
        url, additional_headers={"X-API-Key": server["owner"]}, open_timeout=60
    ) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        await ws.send(json.dumps(start))
        for packet in packets(audio):
            await ws.send(packet)
            await asyncio.sleep(0.002)
        await ws.send(json.dumps({"type": "stop"}))
        deadline = time.monotonic() + 120
        async for raw in ws:
            event = json.loads(raw)
            if event["type"] == "status" and event.get("state") == "idle":
                break
            assert time.monotonic() < deadline
    return hello["sessionId"]


def ended(server, session_id: str) -> dict:
    """The session once its stream has finished (the audio is saved before it ends)."""
    deadline = time.monotonic() + 60
    while True:
        status, _, raw = call(server["base"], "GET", f"/api/v1/sessions/{session_id}", server["owner"])
        assert status == 200, raw
        session = json.loads(raw)
        if session.get("ended_at") or time.monotonic() > deadline:
            return session
        time.sleep(0.2)


def audio_files(server, session_id: str) -> list:
    folder = server["tmp"] / "audio"
    return sorted(folder.rglob(f"{session_id}*")) if folder.is_dir() else []


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


async def test_streamed_audio_is_kept_served_with_ranges_to_its_owner_and_deleted_with_it(server, corpus):
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    sent_s = len(audio) / 16000
    session_id = await stream(server, audio, store_audio=True)
    assert ended(server, session_id)["ended_at"]
    base, owner, other = server["base"], server["owner"], server["other"]

    status, headers, data = call(base, "GET", f"/api/v1/sessions/{session_id}/audio", owner)
    assert status == 200 and headers["Content-Type"] == "audio/ogg" and headers["Accept-Ranges"] == "bytes"
    duration = decoded_seconds(data)
    print(f"sent {sent_s:.3f} s; stored {duration:.3f} s in {len(data)} bytes")
    assert abs(duration - sent_s) < 0.1

    status, _, raw = call(base, "GET", f"/api/v1/sessions/{session_id}/audio", other)
    assert status == 404 and json.loads(raw)["code"] == "not_found"

    url = f"/api/v1/sessions/{session_id}/audio"
    status, headers, part = get_range(base, url, owner, "bytes=100-199")
    assert status == 206 and part == data[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    status, headers, _ = get_range(base, url, owner, f"bytes={len(data) + 10}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"

    _, _, raw = call(base, "GET", "/api/v1/usage", owner)
    assert json.loads(raw)["audio_bytes_stored"] >= len(data)

    (path,) = audio_files(server, session_id)
    status, _, _ = call(base, "DELETE", f"/api/v1/sessions/{session_id}", owner)
    assert status == 204
    assert not path.exists()


async def test_audio_purge_removes_only_expired_audio_and_keeps_the_text(server, corpus):
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)[: 16000 * 4]
    old = await stream(server, audio, store_audio=True)
    new = await stream(server, audio, store_audio=True)
    for session_id in (old, new):
        ended(server, session_id)
        assert len(audio_files(server, session_id)) == 1
    db = sqlite3.connect(server["tmp"] / "live.sqlite3")
    with db:
        db.execute(
            "UPDATE transcription_transcriptionsession SET started_at = datetime('now', '-41 days'), "
            "ended_at = datetime('now', '-40 days') WHERE id = ?",
            (old.replace("-", ""),),
        )
    out = manage(server["env"], "audio_purge", "--older-than-days", "30")
    print(out)
    assert "1 session(s)" in out
    assert audio_files(server, old) == [] and len(audio_files(server, new)) == 1
    status, _, _ = call(server["base"], "GET", f"/api/v1/sessions/{old}/audio", server["owner"])
    assert status == 404
    status, _, raw = call(server["base"], "GET", f"/api/v1/sessions/{old}", server["owner"])
    kept = json.loads(raw)
    assert status == 200 and "fellow americans" in corpus.normalize(kept["transcript"])


async def test_a_session_without_storage_keeps_no_file(server, corpus):
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)[: 16000 * 3]
    session_id = await stream(server, audio, store_audio=None)  # the server's default: off
    assert ended(server, session_id)["ended_at"]
    assert audio_files(server, session_id) == []
    status, _, _ = call(server["base"], "GET", f"/api/v1/sessions/{session_id}/audio", server["owner"])
    assert status == 404


def test_an_upload_with_store_audio_keeps_its_original(server, corpus):
    flac = (corpus.corpus_dir() / "orig" / "jfk.flac").read_bytes()
    body, content_type = multipart({"store_audio": "true"}, "jfk.flac", flac)
    base, owner = server["base"], server["owner"]
    status, headers, raw = call(base, "POST", "/api/v1/transcriptions/", owner, body, content_type)
    assert status == 202, raw
    session_id = json.loads(raw)["id"]
    deadline = time.monotonic() + 240
    while True:
        _, _, raw = call(base, "GET", f"/api/v1/transcriptions/{session_id}", owner)
        done = json.loads(raw)
        if done["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert done["status"] == "completed", done
    status, headers, data = call(base, "GET", f"/api/v1/sessions/{session_id}/audio", owner)
    assert status == 200 and headers["Content-Type"] == "audio/flac"
    assert data == flac
    assert not any((server["tmp"] / "uploads").glob(f"{session_id}*"))  # the upload folder's copy went


def get_range(base: str, path: str, key: str, value: str):
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {key}", "Range": value})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()
