"""End to end: the official `assemblyai` SDK, unchanged, against `manage.py serve` with the real model."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
from assemblyai.streaming.v3 import (
    StreamingClient,
    StreamingClientOptions,
    StreamingEvents,
    StreamingParameters,
    TerminationEvent,
    TurnEvent,
)

from bench.packets import float_to_int16
from tests.live_server import daphne_server, manage

pytestmark = pytest.mark.slow

MAX_WER = 0.15
CHUNK_SAMPLES = 800  # 50 ms at 16 kHz, the SDK's documented chunk


@pytest.fixture(scope="module")
def server(tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("assemblyai-live")
    prefix = {"CHANNEL_PREFIX": f"stt-test-{uuid.uuid4().hex[:10]}"}
    with daphne_server(tmp, prefix, serve=True) as (base, env, _proc):
        yield {"http": base, "ws": base.replace("http://", "ws://"), "env": env, "db": tmp / "live.sqlite3"}


def new_key(server, username: str) -> str:
    return manage(
        server["env"], "apikey", "create", "--user", username, "--create-user", "--scopes", "stream"
    ).strip()


def jfk_chunks(corpus) -> tuple[list[bytes], str]:
    utterance = corpus.manifest()["jfk.wav"]
    audio = np.concatenate(
        [np.zeros(8000, np.float32), corpus.read_mono_float(utterance.path), np.zeros(24000, np.float32)]
    )
    audio = np.concatenate([audio, np.zeros(-len(audio) % CHUNK_SAMPLES, np.float32)])
    pcm = float_to_int16(audio).astype("<i2").tobytes()
    size = CHUNK_SAMPLES * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)], utterance.reference


class Run:
    """What one SDK session received."""

    def __init__(self) -> None:
        self.begin = None
        self.turns: list[TurnEvent] = []
        self.termination: TerminationEvent | None = None
        self.errors: list = []
        self.forced = threading.Event()
        self.force_sent = False

    def on_turn(self, _client, event: TurnEvent) -> None:
        self.turns.append(event)
        if self.force_sent and event.end_of_turn:
            self.forced.set()


def stream_with_sdk(server, options: StreamingClientOptions, chunks: list[bytes]) -> Run:
    run = Run()
    client = StreamingClient(options)
    client.on(StreamingEvents.Begin, lambda _c, event: setattr(run, "begin", event))
    client.on(StreamingEvents.Turn, run.on_turn)
    client.on(StreamingEvents.Termination, lambda _c, event: setattr(run, "termination", event))
    client.on(StreamingEvents.Error, lambda _c, error: run.errors.append(error))
    client.connect(StreamingParameters(sample_rate=16000, format_turns=True))

    def paced():
        for chunk in chunks:
            yield chunk
            # Real time, as a microphone sends: faster, a loaded machine may finish a short segment
            # before its first interim is transcribed (a CI run saw no partial turn at 2.5x).
            time.sleep(0.05)

    client.stream(paced())
    run.force_sent = True
    client.force_endpoint()
    run.forced.wait(30)
    client.disconnect(terminate=True)
    return run


def sdk_options(server, **credential) -> StreamingClientOptions:
    return StreamingClientOptions(
        api_host=server["ws"], connect_timeout=10, terminate_timeout=60, **credential
    )


def stored_sessions(server, username: str) -> list[tuple]:
    deadline = time.monotonic() + 20
    while True:
        with sqlite3.connect(server["db"]) as db:
            rows = db.execute(
                "SELECT s.endpoint, s.status, s.sample_rate, s.api_key_id IS NOT NULL "
                "FROM transcription_transcriptionsession s "
                "JOIN auth_user u ON u.id = s.user_id WHERE u.username = ?",
                (username,),
            ).fetchall()
        if (rows and all(r[1] == "completed" for r in rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def check_run(corpus, run: Run, reference: str) -> None:
    assert not run.errors, run.errors
    assert run.begin is not None and run.begin.id
    ends = [t for t in run.turns if t.end_of_turn and not t.turn_is_formatted]
    formatted = [t for t in run.turns if t.end_of_turn and t.turn_is_formatted]
    assert ends and len(formatted) == len(ends), run.turns
    assert any(not t.end_of_turn for t in run.turns), "no partial turns"
    words = [w for t in ends for w in t.words]
    starts = [w.start for w in words]
    # Milliseconds from the stream's start: the speech runs from about 0.5 s to 11.5 s.
    assert words and starts == sorted(starts) and 9000 <= words[-1].end <= 12500, words
    wer = corpus.wer([reference], [" ".join(t.transcript for t in ends)])
    print(f"wer={wer:.3f} turns={[t.transcript for t in ends]}")
    assert wer <= MAX_WER
    assert run.termination is not None and run.termination.audio_duration_seconds in (12, 13)


def test_the_sdk_streams_a_file_with_a_key(server, corpus):
    key = new_key(server, "aai-live-key")
    chunks, reference = jfk_chunks(corpus)
    run = stream_with_sdk(server, sdk_options(server, api_key=key), chunks)
    check_run(corpus, run, reference)
    assert stored_sessions(server, "aai-live-key") == [("assemblyai_streaming", "completed", 16000, 1)]


def test_the_sdk_streams_with_a_token_minted_through_v3_token(server, corpus):
    key = new_key(server, "aai-live-token")
    response = httpx.get(
        server["http"] + "/v3/token", params={"expires_in_seconds": 60}, headers={"Authorization": key}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in_seconds"] == 60
    chunks, reference = jfk_chunks(corpus)
    run = stream_with_sdk(server, sdk_options(server, token=body["token"]), chunks)
    check_run(corpus, run, reference)
    # The token's stream belongs to the key's user, on the key that minted it.
    assert stored_sessions(server, "aai-live-token") == [("assemblyai_streaming", "completed", 16000, 1)]
