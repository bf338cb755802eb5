"""Soak: real-time streams for many minutes, memory of every process, nothing lost, latency over time.

    python -m bench.soak --clients 6 --minutes 60             # one embedded Daphne (models in-process)
    python -m bench.soak --clients 6 --minutes 60 --setup nginx   # nginx + 2 Daphne + workers (bench.scale)

Each client streams dev-corpus utterances in real time to /ws/transcribe (bench.stream's client:
40 ms packets, 1 s of silence between utterances), `--utterances` per session, then stops the
session and opens the next one at once, until `--minutes` have passed (the last session started
in time runs to its end). Sessions are staggered so connects and disconnects happen all along.

Every minute it prints one line: the RSS of each server process (MiB), and over the sessions that
ended in that minute: utterances sent (`expected`), utterances that got a final (`delivered`),
utterances said within a neighbour's final (`merged`: the segmenter heard one turn, its segment
spans at least half of this utterance),
finals the clients received that are stored in the database (`stored` of `finals`), and TTFS
p50/p95 (bench.stream's definition). At the end: the totals (`missing` utterances with no final
spanning them, each also printed as a `# missing:` line,
`dup` finals received twice, `unstored`, `errors`, sessions closed early by the server) and the RSS
growth of each process from the end of minute 5 (or the first minute of a shorter run) to the end.
Last line: `soak clients=<n> minutes=<m> expected=<n> merged=<n> missing=<n> unstored=<n> dup=<n> errors=<n>
rss_growth_max=<f>`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import corpus
from bench.scale import SetUp, behind_nginx, embedded
from bench.stream import ClientResult, _pct, run_client

WARM_MINUTES = 5


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Minute:
    rss: dict[str, float]
    expected: int = 0
    delivered: int = 0
    merged: int = 0
    finals: int = 0
    stored: int = 0
    ttfs: list[float] = field(default_factory=list)


@dataclass
class Totals:
    sessions: int = 0
    expected: int = 0
    merged: int = 0
    missing: int = 0
    finals: int = 0
    unstored: int = 0
    dup: int = 0
    errors: int = 0
    closed_early: int = 0
    seen: set = field(default_factory=set)
    problems: dict[str, int] = field(default_factory=dict)  # error codes and early close codes


def _files(client: int, session: int, count: int) -> list[corpus.Utterance]:
    dev = corpus.dev_utterances()
    first = (client * 7 + session * count) % len(dev)
    return [dev[(first + i) % len(dev)] for i in range(count)]


def _pids(setup: SetUp) -> dict[str, int]:
    return {f"{kind}{i}": pid for kind, pids in setup.processes.items() for i, pid in enumerate(pids)}


def _covers(final: dict, run) -> bool:
    """Whether a final's segment spans at least half of the utterance's speech."""
    seg = final.get("segment") or {}
    start, end = seg.get("start", final.get("start")), seg.get("end", final.get("end"))
    if start is None or end is None:
        return False
    overlap = min(end, run.end_offset) - max(start, run.start_offset)
    return overlap >= 0.5 * (run.end_offset - run.start_offset)


def account(result: ClientResult, minute: Minute, totals: Totals, stored: set) -> None:
    """Fold one ended session into the current minute's figures and the totals."""
    totals.sessions += 1
    totals.errors += len(result.errors)
    totals.closed_early += result.close_code is not None
    for problem in [e.get("code", "?") for e in result.errors] + (
        [f"close_{result.close_code}"] if result.close_code is not None else []
    ):
        totals.problems[problem] = totals.problems.get(problem, 0) + 1
    said = [f for run in result.utterances for f in run.finals if (f.get("text") or "").strip()]
    for run in result.utterances:
        minute.expected += 1
        totals.expected += 1
        if any((f.get("text") or "").strip() for f in run.finals):
            minute.delivered += 1
        elif any(_covers(f, run) for f in said):
            minute.merged += 1  # said in a final of its neighbour's: one turn for the segmenter
            totals.merged += 1
        else:
            totals.missing += 1
            print(f"# missing: {run.name} at {run.start_offset:.1f}-{run.end_offset:.1f} s", flush=True)
        if run.finals:
            minute.ttfs.append(max(0.0, max(f["_received_at"] for f in run.finals) - run.sent_end))
        for final in run.finals:
            key = (final["sessionId"], final["segmentKey"])
            minute.finals += 1
            totals.finals += 1
            if key in totals.seen:
                totals.dup += 1
            totals.seen.add(key)
            if key in stored:
                minute.stored += 1
            else:
                totals.unstored += 1


async def soak(setup: SetUp, clients: int, minutes: float, utterances: int) -> tuple[list[Minute], Totals]:
    pids = _pids(setup)
    deadline = time.monotonic() + minutes * 60
    ended: list[ClientResult] = []

    async def client(i: int) -> None:
        await asyncio.sleep(i * 7.0)  # staggered: sessions end and start at different times
        session = 0
        while time.monotonic() < deadline:
            ended.append(await run_client(setup.url, setup.api_key, _files(i, session, utterances)))
            session += 1

    tasks = [asyncio.ensure_future(client(i)) for i in range(clients)]
    totals = Totals()
    report: list[Minute] = []
    started = time.monotonic()
    while not all(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=max(0.0, started + 60 * (len(report) + 1) - time.monotonic()))
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()
        minute = Minute({name: rss_mib(pid) for name, pid in pids.items()})
        await asyncio.sleep(0.5)  # the last segment rows are written as the sessions end
        stored = await asyncio.to_thread(setup.stored)
        while ended:
            account(ended.pop(0), minute, totals, stored)
        report.append(minute)
        print(_minute_line(len(report), minute), flush=True)
    print(_summary(clients, minutes, report, totals), flush=True)
    return report, totals


def _minute_line(index: int, minute: Minute) -> str:
    rss = " ".join(f"rss_{name}_mib={value:.1f}" for name, value in minute.rss.items())
    return (
        f"minute={index} {rss} expected={minute.expected} delivered={minute.delivered} "
        f"merged={minute.merged} "
        f"stored={minute.stored}/{minute.finals} ttfs_p50_s={_pct(minute.ttfs, 0.5):.3f} "
        f"ttfs_p95_s={_pct(minute.ttfs, 0.95):.3f}"
    )


def rss_growth(report: list[Minute]) -> dict[str, float]:
    """Relative RSS growth of each process from the end of the warm-up to the end of the run."""
    base = report[min(WARM_MINUTES, len(report)) - 1].rss
    return {name: report[-1].rss[name] / value - 1.0 for name, value in base.items()}


def _summary(clients: int, minutes: float, report: list[Minute], totals: Totals) -> str:
    growth = rss_growth(report)
    ttfs = [t for m in report for t in m.ttfs]
    per_minute = [_pct(m.ttfs, 0.5) for m in report if m.ttfs]
    lines = [
        f"\nsessions={totals.sessions} finals={totals.finals} ttfs_p50_s={_pct(ttfs, 0.5):.3f} "
        f"ttfs_p95_s={_pct(ttfs, 0.95):.3f} per-minute ttfs_p50 range "
        f"{min(per_minute, default=float('nan')):.3f}..{max(per_minute, default=float('nan')):.3f} "
        f"(median {statistics.median(per_minute) if per_minute else float('nan'):.3f})",
        "rss growth from minute "
        f"{min(WARM_MINUTES, len(report))}: " + " ".join(f"{k}={v * 100:+.2f}%" for k, v in growth.items()),
        f"soak clients={clients} minutes={minutes:g} expected={totals.expected} merged={totals.merged} "
        f"missing={totals.missing} "
        f"unstored={totals.unstored} dup={totals.dup} errors={totals.errors} "
        f"closed={totals.closed_early} rss_growth_max={max(growth.values()):.4f}",
    ]
    if totals.problems:
        lines.insert(2, "problems: " + " ".join(f"{k}={v}" for k, v in sorted(totals.problems.items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--utterances", type=int, default=6, help="dev utterances per session")
    parser.add_argument("--setup", choices=("embedded", "nginx"), default="embedded")
    parser.add_argument("--workers", type=int, default=2, help="inference workers with --setup nginx")
    args = parser.parse_args(argv)
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.setup == "embedded":
            start = embedded(Path(tmp), args.clients)
        else:
            start = behind_nginx(Path(tmp), args.clients, args.workers)
        with start as setup:
            _, totals = asyncio.run(soak(setup, args.clients, args.minutes, args.utterances))
    return 0 if not (totals.missing or totals.unstored or totals.dup or totals.errors) else 1


if __name__ == "__main__":
    sys.exit(main())
