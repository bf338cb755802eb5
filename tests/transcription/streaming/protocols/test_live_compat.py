"""End to end: `manage.py serve` with the real bundled model; clients written only from seeds/001-003."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid

import numpy as np
import pytest
import soxr

from bench.packets import float_to_int16
from tests.live_server import daphne_server, manage
from tests.transcription.streaming.protocols import doc_clients

pytestmark = pytest.mark.slow

MAX_WER = 0.15


def check_wer(corpus, reference: str, texts: list[str]) -> None:
    wer = corpus.wer([reference], [" ".join(texts)])
    print(f"wer={wer:.3f} texts={texts}")
    assert wer <= MAX_WER, texts


@pytest.fixture(scope="module")
def server(tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("compat-live")
    # Its own channel prefix: in the PostgreSQL+Redis pass the server's layer is the shared Redis.
    prefix = {"CHANNEL_PREFIX": f"stt-test-{uuid.uuid4().hex[:10]}"}
    with daphne_server(tmp, prefix, serve=True) as (base, env, proc):
        yield {"ws": base.replace("http://", "ws://"), "env": env, "db": tmp / "live.sqlite3", "proc": proc}


def new_key(server, username: str) -> str:
    return manage(
        server["env"], "apikey", "create", "--user", username, "--create-user", "--scopes", "stream"
    ).strip()


def jfk(corpus, rate: int = 16000) -> tuple[bytes, str]:
    utterance = corpus.manifest()["jfk.wav"]
    audio = np.concatenate(
        [np.zeros(8000, np.float32), corpus.read_mono_float(utterance.path), np.zeros(24000, np.float32)]
    )
    if rate != 16000:
        audio = soxr.resample(audio, 16000, rate)
    return float_to_int16(audio).astype("<i2").tobytes(), utterance.reference


def stored_session(server, username: str) -> tuple:
    """(endpoint, sample_rate, status) of the user's one session, once the server has closed it."""
    deadline = time.monotonic() + 20
    while True:
        with sqlite3.connect(server["db"]) as db:
            rows = db.execute(
                "SELECT s.endpoint, s.sample_rate, s.status FROM transcription_transcriptionsession s "
                "JOIN auth_user u ON u.id = s.user_id WHERE u.username = ?",
                (username,),
            ).fetchall()
        if (len(rows) == 1 and rows[0][2] == "completed") or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_api_v1_client_gets_the_spoken_text_as_plain_text(server, corpus):
    key = new_key(server, "live-api-v1")
    pcm, reference = jfk(corpus)
    run = asyncio.run(doc_clients.api_v1(server["ws"] + "/api/v1/ws", key, pcm))
    assert run.texts, run
    check_wer(corpus, reference, run.texts)
    assert stored_session(server, "live-api-v1") == [("api_v1_ws", 16000, "completed")]


@pytest.mark.parametrize("rate", [16000, 8000, 48000])
def test_stt_v3_client_gets_transcripts_at_each_sample_rate(server, corpus, rate):
    username = f"live-stt-v3-{rate}"
    key = new_key(server, username)
    pcm, reference = jfk(corpus, rate)
    run = asyncio.run(doc_clients.stt_v3(server["ws"] + "/stt/v3/stream", key, pcm, rate=rate))
    connected = run.messages[0]
    assert connected["type"] == "connected" and connected["config"]["sample_rate"] == rate, run.messages
    assert all(m["type"] and m["timestamp"].endswith("Z") for m in run.messages)
    kinds = [m["type"] for m in run.messages]
    assert kinds.count("processing") == kinds.count("transcript") >= 1 and "error" not in kinds, kinds
    transcripts = [m for m in run.messages if m["type"] == "transcript"]
    assert all(m["lang_code"] == "en-IN" and m["end"] > m["start"] for m in transcripts)
    check_wer(corpus, reference, run.texts)
    assert stored_session(server, username) == [("stt_v3", rate, "completed")]


def test_v1_stream_clients_get_formatted_final_results(server, corpus):
    key = new_key(server, "live-v1-stream")
    pcm, reference = jfk(corpus)
    run = asyncio.run(doc_clients.v1_stream(server["ws"], key, pcm, client_id="c-1", session_id="s-1"))
    assert run.texts and all(t[0].isupper() and t.endswith((".", "?", "!")) for t in run.texts), run.texts
    assert not [m for m in run.messages if m["type"] == "error"], run.messages
    check_wer(corpus, reference, run.texts)
    assert stored_session(server, "live-v1-stream") == [("v1_stream", 16000, "completed")]


def test_lang_code_header_reaches_the_endpoint_and_other_underscore_headers_do_not(server):
    key = new_key(server, "live-headers")
    url = server["ws"] + "/stt/v3/stream"
    # lang_code arrives: Hindi is refused because the bundled model is English-only.
    run = asyncio.run(doc_clients.refused(url, {"x-api-key-id": key, "lang_code": "hi-IN"}))
    assert run.close_code == 4400 and run.messages[0]["code"] == "unsupported_language", run
    assert "STT_MODEL" in run.messages[0]["message"]
    # x_api_key_id is not on the allow-list: dropped, so this client presents no key at all.
    run = asyncio.run(doc_clients.refused(url, {"x_api_key_id": key, "lang_code": "en-IN"}))
    assert run.http_status == 403, run


def test_bad_key_is_refused_with_4001_on_each_endpoint(server):
    ws = server["ws"]
    for url, headers in [
        (ws + "/api/v1/ws", {"X-API-Key": "stt_nope_nope"}),
        (ws + "/stt/v3/stream", {"x-api-key-id": "stt_nope_nope"}),
        (ws + "/v1/stream/control?client_id=1&session_id=1", {"Authorization": "Token stt_nope_nope"}),
        (ws + "/v1/stream/audio?client_id=1&session_id=1", {"Authorization": "Token stt_nope_nope"}),
    ]:
        run = asyncio.run(doc_clients.refused(url, headers))
        assert run.close_code == 4001, (url, run)


def test_protocol_close_codes_reach_clients_through_daphne(server):
    key = new_key(server, "live-close-codes")
    ws = server["ws"]
    run = asyncio.run(doc_clients.refused(ws + "/api/v1/ws", {"X-API-Key": key}, send="hello"))
    assert run.close_code == 1003 and run.messages == [], run
    run = asyncio.run(
        doc_clients.refused(ws + "/stt/v3/stream", {"x-api-key-id": key, "x-sample-rate": "22050"})
    )
    assert run.close_code == 4400 and run.messages[0]["code"] == "unsupported_sample_rate", run
    audio = ws + "/v1/stream/audio?client_id=none&session_id=none"
    run = asyncio.run(doc_clients.refused(audio, {"Authorization": f"Token {key}"}))
    assert run.close_code == 4404 and run.messages[0]["data"]["code"] == "no_control_socket", run
