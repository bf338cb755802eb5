"""/v1/stream across two Daphne processes: control on one, audio on the other, meeting over Redis."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import numpy as np
import pytest

from bench.packets import float_to_int16
from tests.live_server import daphne_server, manage
from tests.transcription.streaming.protocols import doc_clients

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def test_control_and_audio_sockets_on_different_servers_meet_through_the_channel_layer(
    tmp_path, corpus, redis_url
):
    shared = {
        "REDIS_URL": redis_url,
        "CHANNEL_PREFIX": f"stt-test-{uuid.uuid4().hex[:10]}",
        "STT_ENGINE": "speech.inference.fake.FakeEngine",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    database = tmp_path / "a" / "live.sqlite3"
    env_b = {**shared, "DATABASE_URL": f"sqlite:///{database}"}  # one database, two processes
    with (
        daphne_server(tmp_path / "a", shared, serve=True) as (base_a, env, proc_a),
        daphne_server(tmp_path / "b", env_b, serve=True) as (base_b, _, proc_b),
    ):
        assert proc_a.pid != proc_b.pid
        key = manage(
            env, "apikey", "create", "--user", "split", "--create-user", "--scopes", "stream"
        ).strip()
        speech = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
        audio = np.concatenate([speech, np.zeros(24000, np.float32)])
        pcm = float_to_int16(audio).astype("<i2").tobytes()
        run = asyncio.run(
            doc_clients.v1_stream(
                base_a.replace("http", "ws"),
                key,
                pcm,
                client_id="c",
                session_id="s",
                audio_base_ws=base_b.replace("http", "ws"),
            )
        )
    assert run.texts and all(t.startswith("Fake ") for t in run.texts), run.messages
    assert not [m for m in run.messages if m["type"] == "error"], run.messages
    with sqlite3.connect(database) as db:
        [(endpoint, seconds)] = db.execute(
            "SELECT endpoint, audio_seconds FROM transcription_transcriptionsession"
        ).fetchall()
    assert endpoint == "v1_stream" and seconds == pytest.approx(len(audio) / 16000, abs=0.07)
