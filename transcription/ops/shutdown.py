"""Graceful shutdown: on SIGTERM/SIGINT finalize every open stream, then let Daphne stop.

Daphne's own handler stops the Twisted reactor, which cancels every application task:
a segment still being spoken would be lost. At start-up a handler is put in front of it that
finalizes and stores what each open stream has received, tells the client (warning
`server_shutdown`, close 1012), and only then hands the signal on. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from speech import telemetry
from sttproject import daphne
from transcription.streaming.registry import _state, grace_s, live_streams, set_draining
from transcription.uploads.jobs import upload_jobs_finish

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install() -> None:
    """Put our handler in front of the server's, once (at start-up, or the first stream at the latest)."""
    if not _state["installed"]:
        _state["installed"] = True
        _install()


def _install() -> None:
    """Put our handler in front of the server's (only under a running Twisted reactor: Daphne)."""
    if threading.current_thread() is not threading.main_thread() or daphne.running_reactor() is None:
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handler(signum, frame) -> None:
        if _state["draining"]:
            _hand_on(previous[signum], signum, frame)
            return
        _state["draining"] = True
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(_drain_then(previous[signum], signum, frame)))

    for sig in SIGNALS:
        signal.signal(sig, handler)


async def drain(timeout_s: float) -> int:
    """Finalize every open stream and let upload jobs finish (at most `timeout_s`).

    Returns how many streams there were.
    """
    set_draining()
    uploads = asyncio.ensure_future(upload_jobs_finish(timeout_s))
    streams = live_streams()
    if streams:
        log.warning("shutting down: finalizing %d open stream(s)", len(streams))
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(s.shutdown()) for s in streams], timeout=timeout_s
        )
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("finalizing a stream failed", exc_info=task.exception())
        if pending:
            log.error("%d stream(s) did not finish within %.0f s", len(pending), timeout_s)
    await uploads
    return len(streams)


async def _drain_then(previous, signum: int, frame) -> None:
    try:
        await drain(grace_s())
    finally:
        # Its streams are finished: with PROMETHEUS_MULTIPROC_DIR, this process's live gauges stop counting.
        telemetry.mark_process_dead()
        _hand_on(previous, signum, frame)


def _hand_on(previous, signum: int, frame) -> None:
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
