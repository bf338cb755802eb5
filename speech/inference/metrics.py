"""Per-lane counters and sliding-window latency, batch and utilisation figures."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from speech.inference.telemetry import LaneTelemetry

DEFAULT_WINDOW_S = 60.0


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class LaneMetrics:
    """Cumulative counters plus a sliding window of per-job timings and batch busy intervals.

    Written from the service's event loop, read from anywhere (a Django view thread), hence the lock.
    The same updates feed the lane's Prometheus metrics (`telemetry`; `backend` is one of its labels).
    """

    COUNTERS = (
        "submitted",
        "completed",
        "failed",
        "coalesced",
        "stale_dropped",
        "segment_final_dropped",
        "shed",
        "rejected",
        "backpressured",
        "batches",
    )

    def __init__(
        self,
        name: str,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        backend: str = "local",
    ):
        self.name = name
        self.telemetry = LaneTelemetry(name, backend)
        self.window_s = window_s
        self.clock = clock
        self.started_at = clock()
        self.counters: Counter[str] = Counter({key: 0 for key in self.COUNTERS})
        self.batch_sizes: Counter[int] = Counter()
        # (finished_at, queue_ms, inference_ms, total_ms, audio_s)
        self._jobs: deque[tuple[float, float, float, float, float]] = deque()
        # (started_at, ended_at, size)
        self._batches: deque[tuple[float, float, int]] = deque()
        self._lock = threading.Lock()

    def incr(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[counter] += amount
        self.telemetry.count(counter, amount)

    def record_batch(self, started_at: float, ended_at: float, size: int) -> None:
        with self._lock:
            self.counters["batches"] += 1
            self.batch_sizes[size] += 1
            self._batches.append((started_at, ended_at, size))
            self._trim(ended_at)
        self.telemetry.batch(size)

    def record_job(self, queue_ms: float, inference_ms: float, total_ms: float, audio_s: float) -> None:
        now = self.clock()
        with self._lock:
            self.counters["completed"] += 1
            self._jobs.append((now, queue_ms, inference_ms, total_ms, audio_s))
            self._trim(now)
        self.telemetry.latency.observe(total_ms / 1000.0)

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._jobs and self._jobs[0][0] < horizon:
            self._jobs.popleft()
        while self._batches and self._batches[0][1] < horizon:
            self._batches.popleft()

    def snapshot(
        self, *, queued_now: int = 0, in_flight: int = 0, extra: dict[str, Any] | None = None
    ) -> dict:
        now = self.clock()
        with self._lock:
            self._trim(now)
            jobs = list(self._jobs)
            batches = list(self._batches)
            counters = dict(self.counters)
            sizes = dict(self.batch_sizes)
        span = min(self.window_s, max(now - self.started_at, 1e-9))
        horizon = now - span
        busy = sum(max(0.0, end - max(start, horizon)) for start, end, _ in batches)
        window_sizes = [size for _, _, size in batches]
        audio_s = sum(j[4] for j in jobs)
        data = {
            "lane": self.name,
            **counters,
            "queued_now": queued_now,
            "in_flight": in_flight,
            "window_s": round(span, 3),
            "busy_ratio": round(min(1.0, busy / span), 4),
            "batch_sizes": {str(k): v for k, v in sorted(sizes.items())},
            "mean_batch_size": round(sum(window_sizes) / len(window_sizes), 3) if window_sizes else 0.0,
            "throughput_audio_s_per_s": round(audio_s / span, 3),
            "queue_ms": _p(j[1] for j in jobs),
            "inference_ms": _p(j[2] for j in jobs),
            "total_ms": _p(j[3] for j in jobs),
        }
        if extra:
            data.update(extra)
        return data


def _p(values: Any) -> dict[str, float]:
    items = list(values)
    return {"p50": round(percentile(items, 50), 2), "p95": round(percentile(items, 95), 2), "n": len(items)}
