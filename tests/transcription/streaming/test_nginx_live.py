"""The deployment shape of deploy/: nginx (the shipped site) in front of two Daphne processes and two
real-model inference workers over Redis, on PostgreSQL; clients stream dev utterances through nginx."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import numpy as np
import psycopg
import pytest
import websockets

from bench import nginx
from bench.packets import float_to_int16, packets
from bench.scale_out import scale_out
from bench.server import streaming_key
from bench.stream import run_client
from tests.transcription.streaming.protocols import doc_clients

CLIENT_FILES = [  # four clients, two dev utterances each
    ["jfk.wav", "ljspeech_LJ001-0001.wav"],
    ["ljspeech_LJ001-0002.wav", "ljspeech_LJ001-0003.wav"],
    ["librispeech_1089-134686-0001.wav", "ljspeech_LJ001-0005.wav"],
    ["ljspeech_LJ001-0007.wav", "ljspeech_LJ001-0008.wav"],
]
CLOSE_SERVICE_RESTART = 1012  # a Daphne process stopping (SIGTERM): README, Production


def _skip_without_nginx() -> None:
    reason = nginx.available()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)


def test_the_shipped_site_with_its_tls_server_passes_nginx_t(tmp_path):
    _skip_without_nginx()
    result = nginx.check_site(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, corpus):
    _skip_without_nginx()
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        reason = "needs PostgreSQL and Redis: the deployment test runs in the PostgreSQL+Redis pass"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("deployed")
    worker_env = {"STT_CPU_THREADS": "1", "STT_MAX_BATCH_SIZE": "4"}
    with scale_out(tmp, redis_url, servers=2, workers=2, postgres_url=database_url,
                   worker_env=worker_env, nginx=True) as setup:  # fmt: skip
        setup.api_key = streaming_key(setup.manage, 8, "ops")
        yield setup


def _query(setup, sql: str, *params):
    with psycopg.connect(setup.env["DATABASE_URL"]) as conn:
        return conn.execute(sql, params).fetchall()


def _stored(setup) -> dict[str, list[str]]:
    """Stored segment ids by session."""
    out: dict[str, list[str]] = {}
    for session, segment in _query(
        setup, "SELECT session_id::text, segment_id FROM transcription_segment ORDER BY session_id, index"
    ):
        out.setdefault(session, []).append(segment)
    return out


def _finals_of(result) -> list[tuple[str, str]]:
    return [
        (f["sessionId"], f["segmentKey"])
        for run in result.utterances
        for f in run.finals
        if f["text"].strip()
    ]


def _stream(setup, corpus, files_per_client, stagger_s: float = 0.3, during=None):
    """Real-time clients of /ws/transcribe through nginx, started `stagger_s` apart (least_conn then
    alternates between the processes); `during()` runs alongside them."""
    manifest = corpus.manifest()

    async def one(index: int, files: list[str]):
        await asyncio.sleep(index * stagger_s)
        return await run_client(setup.proxy_url(), setup.api_key, [manifest[n] for n in files])

    async def run():
        tasks = [asyncio.create_task(one(i, f)) for i, f in enumerate(files_per_client)]
        if during is not None:
            await during()
        return await asyncio.gather(*tasks)

    return asyncio.run(run())


def _no_secret_in_logs(setup) -> None:
    logs = setup.proxy.access_log.read_text() + setup.proxy.error_log.read_text()
    assert setup.api_key not in logs
    assert "token=" not in logs and "resume=" not in logs, logs[-2000:]


def test_four_clients_through_nginx_get_every_final_stored_once(deployed, corpus):
    before = set(_stored(deployed))
    results = _stream(deployed, corpus, CLIENT_FILES)
    errors = [e for r in results for e in r.errors]
    assert not errors, errors
    for result in results:
        assert result.close_code is None
        assert all(run.finals for run in result.utterances), [u.name for u in result.utterances]
    seen = sorted(key for r in results for key in _finals_of(r))
    assert len(set(seen)) == len(seen)
    sessions = {session for session, _ in seen}
    assert len(sessions) == 4 and sessions.isdisjoint(before)
    stored = {s: ids for s, ids in _stored(deployed).items() if s in sessions}
    assert sorted((s, i) for s, ids in stored.items() for i in ids) == seen
    # nginx spread the streams over both processes (least_conn), as its log says.
    upstreams = deployed.proxy.upstreams("/ws/transcribe")
    assert set(upstreams[-4:]) == {f"127.0.0.1:{p}" for p in deployed.ports}, upstreams
    _no_secret_in_logs(deployed)


def test_v1_stream_control_and_audio_sockets_pair_across_processes_through_nginx(deployed, corpus):
    speech = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    pcm = float_to_int16(np.concatenate([speech, np.zeros(24000, np.float32)])).astype("<i2").tobytes()
    base = deployed.proxy.ws_url("")
    run = asyncio.run(
        doc_clients.v1_stream(base, deployed.api_key, pcm, client_id="ops-c", session_id="ops-s")
    )
    assert not [m for m in run.messages if m["type"] == "error"], run.messages
    assert run.texts and "country" in " ".join(run.texts).lower(), run.texts
    # The control socket was still open when the audio socket came: least_conn sent it to the other.
    (control,) = deployed.proxy.upstreams("/v1/stream/control")[-1:]
    (audio,) = deployed.proxy.upstreams("/v1/stream/audio")[-1:]
    assert control != audio and {control, audio} == {f"127.0.0.1:{p}" for p in deployed.ports}
    [(seconds,)] = _query(
        deployed,
        "SELECT audio_seconds FROM transcription_transcriptionsession WHERE endpoint = 'v1_stream' "
        "ORDER BY started_at DESC LIMIT 1",
    )
    assert seconds == pytest.approx(len(pcm) / 2 / 16000, abs=0.1)


async def _hello(ws) -> dict:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if event["type"] == "hello":
            return event


async def _drop_and_resume(setup, audio: np.ndarray) -> tuple[dict, dict]:
    headers = {"X-API-Key": setup.api_key}
    ws = await websockets.connect(setup.proxy_url(), additional_headers=headers)
    hello = await _hello(ws)
    await ws.send(json.dumps({"type": "start", "options": {}}))
    for packet in packets(audio):
        await ws.send(packet)
        await asyncio.sleep(0.02)
    ws.transport.abort()  # a dropped connection: no close frame
    await asyncio.sleep(0.5)
    url = setup.proxy_url() + f"?resume={hello['resume']['token']}"
    async with websockets.connect(url, additional_headers=headers) as ws:
        again = await _hello(ws)
        await ws.send(json.dumps({"type": "stop"}))
    return hello, again


def test_a_resume_through_nginx_reaches_the_process_that_parked_the_stream(deployed, corpus):
    audio = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)[: 16000 * 2]
    for _ in range(2):  # without the resume map, least_conn's tie-break would alternate processes
        hello, again = asyncio.run(_drop_and_resume(deployed, audio))
        instance = hello["resume"]["token"].split(".", 1)[0]
        assert instance in {str(p) for p in deployed.ports}, hello["resume"]
        assert again.get("resumed") is True and again["sessionId"] == hello["sessionId"], again
        first, resumed = deployed.proxy.upstreams("/ws/transcribe")[-2:]
        assert first == resumed == f"127.0.0.1:{instance}"
    _no_secret_in_logs(deployed)


def test_a_daphne_restart_and_a_worker_kill_mid_run_lose_nothing_of_the_other_streams(deployed, corpus):
    restarted, killed = deployed.server_procs[0], deployed.workers[0]

    async def faults():
        await asyncio.sleep(6.0)  # every client is mid-utterance
        restarted.send_signal(signal.SIGTERM)  # systemctl restart stt-daphne@PORT
        killed.proc.kill()  # a worker dies: no goodbye

    before = set(_stored(deployed))
    results = _stream(deployed, corpus, CLIENT_FILES, during=faults)
    stopped = [r for r in results if r.close_code is not None]
    carried_on = [r for r in results if r.close_code is None]
    # The stopped process's clients are told (warning server_shutdown, then close 1012)...
    assert len(stopped) == 2, [(r.close_code, r.errors) for r in results]
    assert {r.close_code for r in stopped} == {CLOSE_SERVICE_RESTART}
    assert all(any(w["code"] == "server_shutdown" for w in r.warnings) for r in stopped)
    # ...every final any client saw is stored once, and the others lose nothing to either fault.
    sessions = {session for r in results for session, _ in _finals_of(r)}
    assert len(sessions) == 4 and sessions.isdisjoint(before)
    stored = _stored(deployed)
    for result in results:
        finals = _finals_of(result)
        assert len(set(finals)) == len(finals)
        assert all(segment in stored[session] for session, segment in finals), (finals, stored)
    # What the stopped clients were saying when SIGTERM came was finalized and sent before the close.
    assert all(_finals_of(r) for r in stopped)
    for result in carried_on:
        assert not result.errors, result.errors
        assert all(run.finals for run in result.utterances), [u.name for u in result.utterances]
        finals = _finals_of(result)
        assert sorted(i for _, i in finals) == sorted(stored[finals[0][0]])
    # The restarted process (same port, as systemd restarts it) and a new worker serve again.
    restarted.wait(40)
    deployed.start_server(0)
    deployed.add_worker()
    again = _stream(deployed, corpus, [["jfk.wav"], ["ljspeech_LJ001-0001.wav"]])
    assert all(r.close_code is None and not r.errors and r.utterances[0].finals for r in again)
    assert set(deployed.proxy.upstreams("/ws/transcribe")[-2:]) == {f"127.0.0.1:{p}" for p in deployed.ports}
