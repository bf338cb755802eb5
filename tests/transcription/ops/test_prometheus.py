"""/metrics: the Prometheus exposition, its protection, and the series a real stream moves."""

from __future__ import annotations

import numpy as np
import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import api_key_create, quota_set
from bench.packets import packets
from speech import telemetry
from tests.speech.inference.test_telemetry import run_writer
from tests.transcription.streaming.test_ws_transcribe import (
    SILENCE_1S,
    connect,
    expect_close,
    open_session,
    receive_until,
    receive_until_status,
)

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "prometheus-test-token"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def metrics_token(settings, monkeypatch):
    settings.STT_STREAM = {**settings.STT_STREAM, "METRICS_TOKEN": TOKEN}
    monkeypatch.delenv(telemetry.MULTIPROC_ENV, raising=False)


@pytest.fixture
def key(django_user_model):
    user = django_user_model.objects.create_user("prom-user", password="pw-prom-user-1")
    return api_key_create(owner=user, scopes=["stream"])[1]


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape() -> dict[tuple[str, frozenset], float]:
    response = await AsyncClient().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return parse(response.content.decode())


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def test_metrics_needs_staff_or_the_metrics_token(client, django_user_model):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").json()["error"] == "forbidden"
    client.force_login(django_user_model.objects.create_user("plain", password="pw-plain-123"))
    assert client.get("/metrics").status_code == 403
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True))
    assert client.get("/metrics").status_code == 200


def test_the_token_gets_a_text_exposition_that_parses(client):
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain") and "version=" in response["Content-Type"]
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    expected = {
        "stt_active_streams",
        "stt_active_speakers",
        "stt_admissions_refused",
        "stt_audio_received_seconds",
        "stt_client_errors",
        "stt_final_latency_seconds",
        "stt_inference_latency_seconds",
        "stt_inference_batch_size",
        "stt_inference_queue_depth",
        "stt_realtime_jobs_coalesced",
        "stt_realtime_jobs_dropped",
    }
    assert expected <= names  # counters' families drop the _total suffix


@pytest.mark.usefixtures("fake_inference")
async def test_a_stream_moves_audio_finals_latency_and_the_active_streams(key, corpus):
    before = await scrape()
    comm, _ = await open_session(key)
    during = await scrape()
    endpoint = {"endpoint": "ws_transcribe"}
    assert (
        total(during, "stt_active_streams", **endpoint) - total(before, "stt_active_streams", **endpoint) == 1
    )
    audio = np.concatenate(
        [SILENCE_1S, corpus.read_mono_float(corpus.manifest()["jfk.wav"].path), SILENCE_1S]
    )
    for packet in packets(audio):
        await comm.send_to(bytes_data=packet)
    final, _ = await receive_until(comm, "final")
    await comm.send_to(text_data='{"type": "stop"}')
    _, rest = await receive_until_status(comm, "idle")
    finals = [final] + [e for e in rest if e["type"] == "final"]
    await comm.disconnect()
    after = await scrape()

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("stt_audio_received_seconds_total", **endpoint) == pytest.approx(
        len(audio) / 16000, abs=1e-6
    )
    assert moved("stt_final_latency_seconds_count") == len(finals)
    assert 0 < moved("stt_final_latency_seconds_sum") < 10 * len(finals)
    # Every final and any interim that ran went through a lane of this process.
    assert moved("stt_inference_latency_seconds_count", backend="local") >= len(finals)
    assert moved("stt_inference_batch_size_count") >= 1
    assert total(after, "stt_active_streams", **endpoint) == total(before, "stt_active_streams", **endpoint)
    assert total(after, "stt_active_speakers", **endpoint) == total(before, "stt_active_speakers", **endpoint)
    assert total(after, "stt_inference_queue_depth") == 0


@pytest.mark.usefixtures("fake_inference")
async def test_refused_admissions_are_counted_by_their_code(django_user_model, key):
    before = await scrape()
    comm = connect(headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")])  # no key
    await comm.connect()
    events = await expect_close(comm, 4001)
    assert events[0]["code"] == "not_authenticated"
    user = await database_sync_to_async(django_user_model.objects.get)(username="prom-user")
    await database_sync_to_async(quota_set)(user=user, max_concurrent_streams=1)
    first, _ = await open_session(key)
    second = connect(key)
    await second.connect()
    refused = (await expect_close(second, 4029))[0]["code"]
    await first.disconnect()
    after = await scrape()
    for code in ("not_authenticated", refused):
        reason = {"reason": code}
        assert (
            total(after, "stt_admissions_refused_total", **reason)
            - total(before, "stt_admissions_refused_total", **reason)
            == 1
        )
        errors = {"code": code}
        assert (
            total(after, "stt_client_errors_total", **errors)
            - total(before, "stt_client_errors_total", **errors)
            == 1
        )
    # The refused streams never held a place.
    assert total(after, "stt_active_streams") == total(before, "stt_active_streams")


async def test_with_a_multiprocess_directory_metrics_reports_every_process_of_it(tmp_path, monkeypatch):
    run_writer(str(tmp_path), 2)
    run_writer(str(tmp_path), 3)
    monkeypatch.setenv(telemetry.MULTIPROC_ENV, str(tmp_path))
    samples = await scrape()
    assert total(samples, "stt_realtime_jobs_coalesced_total", lane="mp") == 5
    assert total(samples, "stt_inference_queue_depth", lane="mp") == 5
    # Only the directory is reported: this process wrote nothing there.
    assert not total(samples, "stt_audio_received_seconds_total")
