"""Prometheus plumbing every process shares, and the session's own metric (server-side time to final).

One process: the default registry. Several processes on one host (Daphne processes, inference workers):
`PROMETHEUS_MULTIPROC_DIR` names a directory every process writes its values to; prometheus_client reads it
when a metric is created (at import), and a scrape then aggregates the directory with a
`MultiProcessCollector` over a fresh registry. Labels stay bounded: lanes, endpoints, codes, never a
session or a user.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A label with more distinct values than this (an unexpected stream of codes) folds into "other".
MAX_LABEL_VALUES = 64

FINAL_LATENCY = Histogram(
    "stt_final_latency_seconds",
    "Server-side time to final: from the end of speech (or the segment's close) to the final being sent.",
    ["lane"],
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)


class BoundChildren:
    """A metric's label children by one label value, bound once, at most `limit` values ("other" after)."""

    def __init__(self, metric: Any, limit: int = MAX_LABEL_VALUES) -> None:
        self._metric = metric
        self._limit = limit
        self._children: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, value: str) -> Any:
        child = self._children.get(value)
        if child is not None:
            return child
        with self._lock:
            if value in self._children:
                return self._children[value]
            if len(self._children) >= self._limit:
                return self._metric.labels("other")
            child = self._children[value] = self._metric.labels(value)
            return child


final_latency: Callable[[str], Any] = BoundChildren(FINAL_LATENCY)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape_registry() -> CollectorRegistry:
    """What a scrape reports: the multiprocess aggregate when the directory is set, else this process's."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def exposition() -> tuple[bytes, str]:
    """The text exposition of `scrape_registry()` and its content type."""
    return generate_latest(scrape_registry()), CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve `/metrics` on `port` from a daemon thread (the inference worker's own endpoint)."""
    start_http_server(port, addr=addr, registry=scrape_registry())


def mark_process_dead(pid: int | None = None) -> None:
    """A process of the multiprocess directory is gone: its live gauges stop counting (no-op without it)."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid, path)
