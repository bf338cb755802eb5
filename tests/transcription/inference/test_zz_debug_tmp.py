import asyncio, os, signal, sys, traceback, time
import pytest
from tests.transcription.inference.test_distributed import client, final_job, transcribe_all, FAKE

pytestmark = pytest.mark.redis

async def dumper(service):
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(3)
        print("=== t", loop.time(), time.monotonic(), file=sys.stderr)
        print("pending", {k: v[2].done() for k, v in service._pending.items()}, service.counters, file=sys.stderr)
        for h in sorted(loop._scheduled, key=lambda h: h.when())[:10]:
            print("  timer", round(h.when() - loop.time(), 2), h.cancelled(), h._callback, file=sys.stderr)
        for t in asyncio.all_tasks():
            print(" task", t.get_name(), file=sys.stderr)
            t.print_stack(limit=3, file=sys.stderr)

@pytest.mark.timeout(60)
async def test_dbg(redis_layer, start_worker):
    env = {**FAKE, "STT_FAKE_ENGINE_DELAY_MS": "100", "STT_MAX_BATCH_SIZE": "2"}
    victim, survivor = start_worker(env=env), start_worker(env=env)
    for w in (victim, survivor):
        await asyncio.to_thread(w.wait_ready)
    service = client(redis_layer, job_deadline_s=2.0, job_max_attempts=4)
    await service.start()
    jobs = [final_job(f"s{s}", i) for s in range(4) for i in range(8)]
    run = asyncio.create_task(transcribe_all(service, jobs))
    await asyncio.sleep(0.6)
    os.kill(victim.proc.pid, signal.SIGKILL)
    d = asyncio.create_task(asyncio.sleep(0))
    results = await asyncio.wait_for(run, 30)
    d.cancel()
