"""End to end: the official deepgram-sdk, unchanged, against a real Daphne running the bundled model."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
import uuid

import numpy as np
import pytest

from bench.packets import float_to_int16
from tests.live_server import daphne_server, manage

pytestmark = pytest.mark.slow

MAX_WER = 0.15
CHUNK_S = 0.1


@pytest.fixture(scope="module")
def server(tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("deepgram-live")
    extra = {
        "CHANNEL_PREFIX": f"stt-test-{uuid.uuid4().hex[:10]}",
        "STT_UPLOAD_DIR": str(tmp / "uploads"),
    }
    with daphne_server(tmp, extra, serve=True) as (base, env, _proc):
        yield {"http": base, "ws": base.replace("http://", "ws://"), "env": env, "db": tmp / "live.sqlite3"}


def new_key(server, username: str) -> str:
    return manage(
        server["env"],
        "apikey",
        "create",
        "--user",
        username,
        "--create-user",
        "--scopes",
        "stream",
        "history:write",
    ).strip()


def sdk_client(server, key: str):
    from deepgram import DeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    environment = DeepgramClientEnvironment(
        base=server["http"], production=server["ws"], agent=server["ws"], agent_rest=server["http"]
    )
    return DeepgramClient(api_key=key, environment=environment)


def stored_sessions(server, username: str) -> list[tuple]:
    """(endpoint, status) of the user's sessions, once every one has ended."""
    deadline = time.monotonic() + 30
    while True:
        with sqlite3.connect(server["db"]) as db:
            rows = db.execute(
                "SELECT s.endpoint, s.status FROM transcription_transcriptionsession s "
                "JOIN auth_user u ON u.id = s.user_id WHERE u.username = ?",
                (username,),
            ).fetchall()
        if (rows and all(status == "completed" for _, status in rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_sdk_streams_live_with_interim_results_finalize_keepalive_and_close_stream(server, corpus):
    utterance = corpus.manifest()["jfk.wav"]
    audio = np.concatenate([np.zeros(16000, np.float32), corpus.read_mono_float(utterance.path)])
    pcm = float_to_int16(audio).astype("<i2").tobytes()
    key = new_key(server, "dg-live")
    client = sdk_client(server, key)
    messages: list = []
    with client.listen.v1.connect(
        model="nova-3",
        encoding="linear16",
        sample_rate=16000,
        interim_results=True,
        punctuate=True,
        vad_events=True,
        utterance_end_ms=1000,
    ) as socket:
        reader = threading.Thread(target=lambda: messages.extend(socket), daemon=True)
        reader.start()
        step = int(16000 * CHUNK_S) * 2
        for i in range(0, len(pcm), step):
            socket.send_media(pcm[i : i + step])
            time.sleep(CHUNK_S / 2)  # twice real time
        # The file ends mid-pause: Finalize flushes what is still open, KeepAlive holds the stream.
        socket.send_finalize()
        for _ in range(3):
            time.sleep(1.0)
            socket.send_keep_alive()
        socket.send_close_stream()
        reader.join(60)
    kinds = [type(m).__name__ for m in messages]
    print(kinds)
    results = [m for m in messages if getattr(m, "type", None) == "Results"]
    finals = [r for r in results if r.is_final]
    interim = [r for r in results if not r.is_final]
    assert interim and finals, kinds
    assert any(r.from_finalize for r in finals), kinds
    assert any(getattr(m, "type", None) == "SpeechStarted" for m in messages), kinds
    [metadata] = [m for m in messages if getattr(m, "type", None) == "Metadata"]
    assert metadata.duration == pytest.approx(len(pcm) / 32000, abs=0.05)
    text = " ".join(r.channel.alternatives[0].transcript for r in finals).strip()
    words = [w for r in finals for w in r.channel.alternatives[0].words]
    assert words and all(a.end <= b.start + 0.5 for a, b in itertools.pairwise(words))
    wer = corpus.wer([utterance.reference], [text])
    print(f"live wer={wer:.3f} text={text!r}")
    assert wer <= MAX_WER, text
    assert stored_sessions(server, "dg-live") == [("deepgram_listen", "completed")]


def test_sdk_transcribes_a_recorded_file(server, corpus):
    utterance = corpus.manifest()["jfk.wav"]
    key = new_key(server, "dg-file")
    client = sdk_client(server, key)
    response = client.listen.v1.media.transcribe_file(
        request=utterance.path.read_bytes(), model="nova-3", smart_format=True, utterances=True
    )
    alternative = response.results.channels[0].alternatives[0]
    wer = corpus.wer([utterance.reference], [alternative.transcript])
    print(f"pre-recorded wer={wer:.3f} text={alternative.transcript!r}")
    assert wer <= MAX_WER, alternative.transcript
    assert response.metadata.duration == pytest.approx(utterance.duration_s, abs=0.1)
    assert alternative.words and response.results.utterances
    assert alternative.words[0].start < alternative.words[-1].end <= response.metadata.duration + 0.1
    assert stored_sessions(server, "dg-file") == [("deepgram_prerecorded", "completed")]
