"""The web process's picture of the inference workers, built from their heartbeats (no Redis)."""

from __future__ import annotations

from speech.inference.wire import encode_heartbeat
from speech.inference.workers import FORGET_AFTER_S, WorkerRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def beat(name: str, *, state: str = "serving", jobs: list[dict] | None = None) -> dict:
    return encode_heartbeat(
        worker=name, state=state, lanes=["final"], jobs=jobs or [], handled=3, interval_s=0.25
    )


def test_a_worker_is_alive_until_it_is_silent_for_the_timeout():
    clock = Clock()
    registry = WorkerRegistry(timeout_s=1.2, clock=clock)
    registry.heard(beat("w1"))
    clock.now += 1.1
    assert registry.live_names() == ["w1"]
    clock.now += 0.2
    assert registry.live_names() == [] and registry.known_names() == ["w1"]
    registry.heard(beat("w1"))
    assert registry.alive("w1")


def test_a_stopping_worker_is_not_alive_at_once_and_a_late_reply_does_not_revive_it():
    clock = Clock()
    registry = WorkerRegistry(timeout_s=1.2, clock=clock)
    registry.heard(beat("w1"))
    registry.heard(beat("w1", state="stopped"))
    registry.seen_reply("w1")
    assert not registry.alive("w1")


def test_the_snapshot_says_who_holds_what_and_how_long_ago_each_was_heard():
    clock = Clock()
    registry = WorkerRegistry(timeout_s=1.2, clock=clock)
    job = {"id": "c-1", "kind": "final", "session_id": "s", "segment_id": "s-0"}
    registry.heard(beat("w2", jobs=[job]))
    clock.now += 0.5
    registry.heard(beat("w1"))
    [w1, w2] = registry.snapshot()
    assert (w1["name"], w1["jobs_in_flight"], w1["last_heartbeat_age_s"]) == ("w1", 0, 0.0)
    assert (w2["name"], w2["jobs"], w2["last_heartbeat_age_s"], w2["alive"]) == ("w2", [job], 0.5, True)
    assert w2["handled"] == 3 and w2["lanes"] == ["final"] and w2["last_heartbeat_at"] > 0


def test_workers_gone_for_long_are_forgotten_and_nameless_beats_ignored():
    clock = Clock()
    registry = WorkerRegistry(timeout_s=1.2, clock=clock)
    assert registry.heard({"type": "inference.heartbeat"}) is None
    registry.heard(beat("old"))
    clock.now += FORGET_AFTER_S + 1
    registry.heard(beat("new"))
    registry.forget_old()
    assert registry.known_names() == ["new"]


def test_patience_stretches_how_long_a_silent_worker_still_counts():
    clock = Clock()
    registry = WorkerRegistry(timeout_s=0.8, clock=clock)
    registry.heard(beat("w1"))
    clock.now += 1.0
    assert not registry.alive("w1") and registry.live_names(patience=2.0) == ["w1"]
    registry.heard(beat("w1", state="stopped"))
    assert registry.live_names(patience=2.0) == []  # its own word counts at once
