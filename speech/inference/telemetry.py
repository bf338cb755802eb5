"""Prometheus metrics of the inference lanes, fed by `LaneMetrics` where its own counters move.

`backend` says who counts: "local" for lanes whose models run in this process (the embedded server, an
inference worker), "channels" for a web process's view of jobs it sent to workers. On one host sharing
PROMETHEUS_MULTIPROC_DIR, both sides report the same job once each, under their own backend.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INFERENCE_LATENCY = Histogram(
    "stt_inference_latency_seconds",
    "Time from a job's creation to its result (queue wait plus model time), per completed job.",
    ["backend", "lane"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BATCH_SIZE = Histogram(
    "stt_inference_batch_size",
    "Jobs per model batch.",
    ["lane"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
QUEUE_DEPTH = Gauge(
    "stt_inference_queue_depth",
    "Jobs waiting in a lane's queues (finals and pending realtime jobs).",
    ["lane"],
    multiprocess_mode="livesum",
)
REALTIME_COALESCED = Counter(
    "stt_realtime_jobs_coalesced_total",
    "Realtime jobs replaced by a newer one of their session before they ran (or left by a closed one).",
    ["backend", "lane"],
)
REALTIME_DROPPED = Counter(
    "stt_realtime_jobs_dropped_total",
    "Realtime jobs dropped: stale (too old), segment_final (its final came first), shed (room for a final).",
    ["backend", "lane", "reason"],
)

# LaneMetrics counter -> the `reason` of stt_realtime_jobs_dropped_total.
DROP_REASONS = {"stale_dropped": "stale", "segment_final_dropped": "segment_final", "shed": "shed"}


class LaneTelemetry:
    """One lane's label children, bound once: updating them is an attribute lookup and an add."""

    __slots__ = ("batch_size", "counters", "latency", "queue_depth")

    def __init__(self, lane: str, backend: str = "local") -> None:
        self.latency = INFERENCE_LATENCY.labels(backend, lane)
        # Batches and queues exist where the models run; a web process's remote lanes have neither.
        self.batch_size = BATCH_SIZE.labels(lane) if backend == "local" else None
        self.queue_depth = QUEUE_DEPTH.labels(lane) if backend == "local" else None
        self.counters = {
            "coalesced": REALTIME_COALESCED.labels(backend, lane),
            **{name: REALTIME_DROPPED.labels(backend, lane, reason) for name, reason in DROP_REASONS.items()},
        }

    def count(self, counter: str, amount: int) -> None:
        child = self.counters.get(counter)
        if child is not None:
            child.inc(amount)

    def batch(self, size: int) -> None:
        if self.batch_size is not None:
            self.batch_size.observe(size)

    def queued(self, depth: int) -> None:
        if self.queue_depth is not None:
            self.queue_depth.set(depth)
