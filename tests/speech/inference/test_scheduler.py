"""LaneScheduler: round-robin order, finals first, coalescing and stale/segment-final drops."""

from __future__ import annotations

import numpy as np

from speech.inference.jobs import TranscriptionJob
from speech.inference.scheduler import LaneScheduler, Ticket

AUDIO = np.zeros(1600, dtype=np.float32)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ticket(
    session: str, kind: str = "final", segment: str = "s1", seq: int = 0, created_at: float = 100.0
) -> Ticket:
    job = TranscriptionJob(session, segment, seq, kind, AUDIO, created_at=created_at)  # type: ignore[arg-type]
    return Ticket(job=job, enqueued_at=created_at)


def test_sessions_are_served_round_robin_across_batches():
    sched = LaneScheduler(clock=Clock())
    for i in range(4):
        sched.push_final(ticket("a", segment=f"a{i}"))
    for i in range(2):
        sched.push_final(ticket("b", segment=f"b{i}"))
    sched.push_final(ticket("c", segment="c0"))
    order = []
    while sched.has_work():
        batch, _ = sched.pop_batch(2)
        order += [t.job.segment_id for t in batch]
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


def test_finals_of_every_session_go_before_realtime_in_a_shared_lane():
    sched = LaneScheduler(clock=Clock())
    sched.push_realtime(ticket("a", "realtime", segment="live"))
    sched.push_final(ticket("b", segment="b0"))
    sched.push_final(ticket("c", segment="c0"))
    batch, _ = sched.pop_batch(8)
    assert [t.job.kind for t in batch] == ["final", "final", "realtime"]


def test_a_newer_realtime_job_replaces_the_pending_one():
    sched = LaneScheduler(clock=Clock())
    first = ticket("a", "realtime", seq=1)
    assert sched.push_realtime(first) is None
    assert sched.push_realtime(ticket("a", "realtime", seq=2)) is first
    assert sched.depth == 1
    batch, _ = sched.pop_batch(8)
    assert [t.job.sequence for t in batch] == [2]


def test_realtime_older_than_the_max_age_is_dropped_as_stale():
    clock = Clock()
    sched = LaneScheduler(max_realtime_age_ms=1500, clock=clock)
    sched.push_realtime(ticket("a", "realtime", created_at=100.0))
    clock.now = 101.6
    batch, dropped = sched.pop_batch(8)
    assert batch == []
    assert [reason for _, reason in dropped] == ["stale"]


def test_queued_realtime_for_a_finalized_segment_is_removed():
    sched = LaneScheduler(clock=Clock())
    live = ticket("a", "realtime", segment="seg-1")
    sched.push_realtime(live)
    obsolete = sched.push_final(ticket("a", "final", segment="seg-1"))
    assert obsolete == [live]
    assert sched.realtime_depth == 0
    # A final may be an early transcription, after which speech goes on: only its session finalizes.
    assert not sched.is_finalized("a", "seg-1")
    later = ticket("a", "realtime", segment="seg-1")
    sched.push_realtime(later)
    assert sched.mark_finalized("a", "seg-1") == [later] and sched.is_finalized("a", "seg-1")


def test_final_room_is_per_session():
    sched = LaneScheduler(max_final_per_session=2, clock=Clock())
    sched.push_final(ticket("a", segment="1"))
    sched.push_final(ticket("a", segment="2"))
    assert not sched.final_room("a")
    assert sched.final_room("b")


def test_closed_sessions_are_forgotten_once_drained():
    sched = LaneScheduler(clock=Clock())
    sched.push_final(ticket("a"))
    sched.push_realtime(ticket("a", "realtime", segment="s2"))
    assert len(sched.close_session("a")) == 1
    assert sched.sessions() == 1  # its final still runs
    sched.pop_batch(8)
    assert sched.sessions() == 0
