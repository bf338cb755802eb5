"""What a web process knows of the inference workers: who is alive, since when, holding which jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from speech.inference.wire import WORKER_TIMEOUT_S

# A worker unheard of for this long is dropped from the report altogether (it was stopped or replaced).
FORGET_AFTER_S = 600.0


@dataclass
class WorkerState:
    name: str
    state: str = "serving"
    lanes: list[str] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    handled: int = 0
    interval_s: float = 0.0
    last_seen: float = 0.0  # monotonic, for liveness
    last_seen_wall: float = 0.0  # epoch seconds, for people


class WorkerRegistry:
    """Built from heartbeats: a worker is alive while it says it serves and was heard within `timeout_s`."""

    def __init__(self, timeout_s: float = WORKER_TIMEOUT_S, clock: Callable[[], float] = time.monotonic):
        self.timeout_s = timeout_s
        self._clock = clock
        self._workers: dict[str, WorkerState] = {}

    def heard(self, message: dict[str, Any]) -> WorkerState | None:
        name = str(message.get("worker") or "")
        if not name:
            return None
        worker = self._workers.setdefault(name, WorkerState(name))
        worker.state = str(message.get("state") or "serving")
        worker.lanes = list(message.get("lanes") or [])
        worker.jobs = [j for j in message.get("jobs") or [] if isinstance(j, dict)]
        worker.handled = int(message.get("handled") or 0)
        worker.interval_s = float(message.get("interval_s") or 0.0)
        worker.last_seen = self._clock()
        worker.last_seen_wall = time.time()
        return worker

    def seen_reply(self, name: str) -> None:
        """A reply proves its worker alive too (before its first heartbeat arrives, say)."""
        worker = self._workers.get(name)
        if worker is not None and worker.state == "serving":
            worker.last_seen = max(worker.last_seen, self._clock())

    def alive(self, name: str, *, patience: float = 1.0) -> bool:
        """Serving and heard within `patience` timeouts (a worker that said it stopped never is)."""
        worker = self._workers.get(name)
        return (
            worker is not None
            and worker.state == "serving"
            and self._clock() - worker.last_seen <= self.timeout_s * patience
        )

    def live_names(self, *, patience: float = 1.0) -> list[str]:
        return sorted(name for name in self._workers if self.alive(name, patience=patience))

    def known_names(self) -> list[str]:
        return sorted(self._workers)

    def forget_old(self) -> None:
        now = self._clock()
        for name in [n for n, w in self._workers.items() if now - w.last_seen > FORGET_AFTER_S]:
            del self._workers[name]

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [
            {
                "name": w.name,
                "alive": self.alive(w.name),
                "state": w.state,
                "lanes": w.lanes,
                "last_heartbeat_at": round(w.last_seen_wall, 3),
                "last_heartbeat_age_s": round(now - w.last_seen, 3),
                "jobs_in_flight": len(w.jobs),
                "jobs": w.jobs,
                "handled": w.handled,
            }
            for w in sorted(self._workers.values(), key=lambda w: w.name)
        ]
