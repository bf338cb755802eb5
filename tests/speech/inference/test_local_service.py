"""LocalInferenceService with the fake engine: fairness, no lost finals, coalescing, limits, metrics."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import numpy as np
import pytest
from prometheus_client import REGISTRY

from speech.inference.fake import FakeEngine
from speech.inference.jobs import InferenceRejected, JobDropped, TranscribeOptions, TranscriptionJob
from speech.inference.service import LocalInferenceService, ServiceLimits
from transcription.streaming.service import build_inference_service

AUDIO = np.zeros(8000, dtype=np.float32)


def make_service(delay_ms: float = 1.0, shared: bool = True, **limits) -> LocalInferenceService:
    limits.setdefault("max_batch_wait_ms", 0.0)
    return LocalInferenceService(
        lambda lane: FakeEngine(delay_ms=delay_ms), shared_lane=shared, limits=ServiceLimits(**limits)
    )


def job(session: str, kind: str = "final", segment: str = "seg", seq: int = 0, **kw) -> TranscriptionJob:
    return TranscriptionJob(session, segment, seq, kind, AUDIO, **kw)  # type: ignore[arg-type]


async def test_four_flooding_sessions_each_get_a_quarter_and_no_final_is_lost():
    service = make_service(delay_ms=1.0, max_batch_size=2, max_final_queue_depth_per_session=8)
    await service.start()
    completions: list[str] = []
    warnings: Counter[str] = Counter()

    async def flood(session: str, count: int) -> list:
        async def one(i: int):
            result = await service.transcribe(
                job(session, segment=f"{session}-{i}", seq=i), on_warning=lambda w: warnings.update([w.code])
            )
            completions.append(session)
            return result

        return await asyncio.gather(*(one(i) for i in range(count)))

    # Unequal demand: one session floods twice as hard; each still gets its fair share while all are busy.
    results = await asyncio.gather(flood("a", 200), flood("b", 100), flood("c", 100), flood("d", 100))
    await service.stop()

    assert [len(r) for r in results] == [200, 100, 100, 100]  # every final completed
    assert all(r.text for rs in results for r in rs)
    window = Counter(completions[:300])
    for session in "abcd":
        assert abs(window[session] / 300 - 0.25) <= 0.10, window
    assert warnings["final_queue_full"] > 0  # sessions were told they were back-pressured
    assert any(r.backpressured for rs in results for r in rs)


async def test_realtime_flood_is_coalesced_and_counted():
    service = make_service(delay_ms=20.0, max_batch_size=1)
    await service.start()
    before = prometheus_lane()
    outcomes: Counter[str] = Counter()
    depths: list[float] = []

    async def one(seq: int) -> None:
        try:
            await service.transcribe(job("rt", "realtime", segment="live", seq=seq))
            outcomes["done"] += 1
        except JobDropped as dropped:
            outcomes[dropped.reason] += 1

    tasks = []
    for seq in range(30):
        tasks.append(asyncio.create_task(one(seq)))
        await asyncio.sleep(0.002)
        depths.append(prometheus_lane()["depth"])
    await asyncio.gather(*tasks)
    lane = service.metrics()["lanes"]["shared"]
    await service.stop()
    assert outcomes["superseded"] > 10
    assert outcomes["done"] >= 1
    assert lane["coalesced"] == outcomes["superseded"]
    assert lane["completed"] == outcomes["done"]
    # The Prometheus series move with the same bookkeeping.
    after = prometheus_lane()
    assert after["coalesced"] - before["coalesced"] == outcomes["superseded"]
    assert after["latency"] - before["latency"] == outcomes["done"]
    assert after["batches"] - before["batches"] == outcomes["done"]
    assert max(depths) == 1 and after["depth"] == 0  # one pending realtime job: the rest were coalesced


def prometheus_lane(lane: str = "shared") -> dict[str, float]:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"lane": lane, **labels}) or 0.0

    return {
        "coalesced": sample("stt_realtime_jobs_coalesced_total", backend="local"),
        "latency": sample("stt_inference_latency_seconds_count", backend="local"),
        "batches": sample("stt_inference_batch_size_count"),
        "depth": sample("stt_inference_queue_depth"),
    }


async def test_realtime_results_for_a_finalized_segment_are_discarded():
    service = make_service(delay_ms=50.0, max_batch_size=1)
    await service.start()
    running = asyncio.create_task(service.transcribe(job("s", "realtime", segment="seg-1", seq=1)))
    await asyncio.sleep(0.02)  # it is now being transcribed
    service.segment_finalized("s", "seg-1")
    with pytest.raises(JobDropped) as info:
        await running
    assert info.value.reason == "segment_final"
    await service.stop()


async def test_stale_realtime_jobs_are_dropped():
    service = make_service(delay_ms=0.0, max_realtime_queue_age_ms=100)
    await service.start()
    old = job("s", "realtime", created_at=time.monotonic() - 1.0)
    with pytest.raises(JobDropped) as info:
        await service.transcribe(old)
    assert info.value.reason == "stale"
    assert service.metrics()["lanes"]["shared"]["stale_dropped"] == 1
    await service.stop()


async def test_full_global_queue_rejects_with_a_code_but_sheds_realtime_for_finals():
    service = make_service(delay_ms=200.0, max_batch_size=1, max_global_queue_depth=3)
    await service.start()
    blocker = await service.submit(job("x", segment="blocker"))
    await asyncio.sleep(0.02)  # blocker is running, the queue is empty
    rt = await service.submit(job("r", "realtime", segment="live"))
    finals = [await service.submit(job(f"s{i}", segment=f"f{i}")) for i in range(2)]
    # Queue: 1 realtime + 2 finals = 3. A new final sheds the realtime job ...
    finals.append(await service.submit(job("s9", segment="f9")))
    with pytest.raises(JobDropped, match="shed"):
        await rt
    # ... and once only finals are queued, new work is refused.
    with pytest.raises(InferenceRejected) as info:
        await service.submit(job("s10", segment="f10"))
    assert info.value.code == "queue_full"
    await asyncio.gather(blocker, *finals)
    assert service.metrics()["lanes"]["shared"]["rejected"] == 1
    await service.stop()


async def test_unsupported_language_is_refused():
    service = make_service()
    await service.start()
    assert service.supported_languages == ["en"] and not service.is_multilingual
    with pytest.raises(InferenceRejected) as info:
        await service.transcribe(job("s", options=TranscribeOptions(language="de")))
    assert info.value.code == "unsupported_language"
    await service.stop()


async def test_separate_lanes_run_finals_and_realtime_on_their_own_engines():
    service = make_service(shared=False, delay_ms=1.0)
    await service.start()
    final = await service.transcribe(job("s", segment="a"))
    live = await service.transcribe(job("s", "realtime", segment="b"))
    assert (final.lane, live.lane) == ("final", "realtime")
    assert service.lanes["final"].engine is not service.lanes["realtime"].engine
    await service.stop()


async def test_a_failing_job_fails_alone_in_its_batch():
    engine = FakeEngine(delay_ms=20, fail_fn=lambda audio, opts: opts.initial_prompt == "boom")
    service = LocalInferenceService(
        lambda lane: engine, limits=ServiceLimits(max_batch_size=4, max_batch_wait_ms=0)
    )
    await service.start()
    futures = [
        await service.submit(job("a", segment="1")),
        await service.submit(job("b", segment="2", options=TranscribeOptions(initial_prompt="boom"))),
        await service.submit(job("c", segment="3")),
    ]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert [type(r).__name__ for r in results] == [
        "TranscriptionResult",
        "InferenceError",
        "TranscriptionResult",
    ]
    assert engine.batches[0] == 3  # they were batched, then retried one by one
    await service.stop()


async def test_metrics_are_json_serializable_and_per_lane():
    service = build_inference_service(
        {"ENGINE": "speech.inference.fake.FakeEngine", "USE_MAIN_MODEL_FOR_REALTIME": False}
    )
    await service.start()
    await asyncio.gather(*(service.transcribe(job(f"s{i}", segment=str(i))) for i in range(5)))
    data = json.loads(json.dumps(service.metrics()))
    await service.stop()
    final = data["lanes"]["final"]
    assert final["completed"] == 5
    for key in (
        "failed",
        "queued_now",
        "coalesced",
        "stale_dropped",
        "rejected",
        "batch_sizes",
        "busy_ratio",
    ):
        assert key in final
    assert set(final["queue_ms"]) == {"p50", "p95", "n"}
    assert final["inference_ms"]["n"] == 5 and "total_ms" in final
