"""Prometheus metrics of the speech core: fed by LaneMetrics and the lanes, aggregated across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from speech import telemetry
from speech.inference.metrics import LaneMetrics


def value(name: str, registry=REGISTRY, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_lane_metrics_feed_the_prometheus_series_of_their_lane():
    lane = LaneMetrics("t-unit")
    lane.incr("coalesced", 3)
    lane.incr("stale_dropped")
    lane.incr("shed", 2)
    lane.incr("submitted")  # no Prometheus series of its own
    lane.record_batch(0.0, 0.1, 4)
    lane.record_job(5.0, 100.0, 250.0, 0.5)
    assert value("stt_realtime_jobs_coalesced_total", backend="local", lane="t-unit") == 3
    dropped = {"stale": 1, "shed": 2, "segment_final": 0}
    for reason, count in dropped.items():
        assert (
            value("stt_realtime_jobs_dropped_total", backend="local", lane="t-unit", reason=reason) == count
        )
    assert value("stt_inference_batch_size_count", lane="t-unit") == 1
    assert value("stt_inference_batch_size_sum", lane="t-unit") == 4
    assert value("stt_inference_latency_seconds_count", backend="local", lane="t-unit") == 1
    assert value("stt_inference_latency_seconds_sum", backend="local", lane="t-unit") == 0.25
    assert value("stt_inference_latency_seconds_bucket", backend="local", lane="t-unit", le="0.25") == 1
    assert value("stt_inference_latency_seconds_bucket", backend="local", lane="t-unit", le="0.1") == 0


def test_a_web_process_view_of_remote_lanes_has_its_own_backend_and_no_batches():
    lane = LaneMetrics("t-remote", backend="channels")
    lane.incr("coalesced")
    lane.record_job(0.0, 0.0, 100.0, 0.5)
    assert value("stt_realtime_jobs_coalesced_total", backend="channels", lane="t-remote") == 1
    assert value("stt_realtime_jobs_coalesced_total", backend="local", lane="t-remote") == 0
    assert value("stt_inference_latency_seconds_count", backend="channels", lane="t-remote") == 1
    assert REGISTRY.get_sample_value("stt_inference_queue_depth", {"lane": "t-remote"}) is None


def test_label_values_are_capped():
    from prometheus_client import Counter as PromCounter

    metric = PromCounter("stt_test_capped_total", "test", ["code"], registry=CollectorRegistry())
    bound = telemetry.BoundChildren(metric, limit=2)
    for code in ("a", "b", "c", "d", "a"):
        bound(code).inc()
    samples = {
        s.labels["code"]: s.value for s in next(iter(metric.collect())).samples if s.name.endswith("_total")
    }
    assert samples == {"a": 2, "b": 1, "other": 2}


WRITER = """
import json, os, sys
from speech.inference.metrics import LaneMetrics
lane = LaneMetrics("mp")
lane.incr("coalesced", int(sys.argv[1]))
lane.telemetry.queued(int(sys.argv[1]))
print(json.dumps({"pid": os.getpid()}))
"""


def run_writer(directory: str, amount: int) -> int:
    env = {**os.environ, telemetry.MULTIPROC_ENV: directory}
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(amount)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)["pid"]


def test_processes_sharing_a_multiprocess_directory_add_up_and_a_dead_one_stops_counting(
    tmp_path, monkeypatch
):
    pids = [run_writer(str(tmp_path), 2), run_writer(str(tmp_path), 3)]
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert value("stt_realtime_jobs_coalesced_total", registry, backend="local", lane="mp") == 5
    assert value("stt_inference_queue_depth", registry, lane="mp") == 5  # livesum
    monkeypatch.setenv(telemetry.MULTIPROC_ENV, str(tmp_path))
    assert value("stt_inference_queue_depth", telemetry.scrape_registry(), lane="mp") == 5
    telemetry.mark_process_dead(pids[0])
    after = telemetry.scrape_registry()
    assert value("stt_inference_queue_depth", after, lane="mp") == 3  # a dead process's gauges go
    assert value("stt_realtime_jobs_coalesced_total", after, backend="local", lane="mp") == 5  # counters stay


def test_without_a_multiprocess_directory_the_scrape_is_this_processs_registry(monkeypatch):
    monkeypatch.delenv(telemetry.MULTIPROC_ENV, raising=False)
    assert telemetry.scrape_registry() is REGISTRY
    body, content_type = telemetry.exposition()
    assert b"stt_inference_latency_seconds" in body and content_type.startswith("text/plain")
