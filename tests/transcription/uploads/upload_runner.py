"""An upload runner on a thread of its own, for tests without a server (the Django test client)."""

from __future__ import annotations

import asyncio
import threading

from transcription.streaming.service import shutdown_service
from transcription.uploads.jobs import upload_jobs_finish, upload_runner, upload_runner_start


class BackgroundRunner:
    """Runs `upload_runner_start()` on a private event loop, as Daphne's loop would at start-up."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-upload-runner", daemon=True)
        self.thread.start()
        self.runner = self._call(self._start())

    async def _start(self):
        return upload_runner_start()

    def _call(self, coro, timeout_s: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        drain()
        self._call(upload_jobs_finish(5))
        self._call(shutdown_service())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def drain(timeout_s: float = 30.0) -> None:
    """Wait for every job of this process's runner to end (cancelling them after `timeout_s`)."""
    runner = upload_runner()
    if runner is None:
        return

    async def wait() -> None:
        tasks = [task for task in runner.jobs.values() if not task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)

    asyncio.run_coroutine_threadsafe(wait(), runner.loop).result(timeout_s + 20)
