"""The deployment shape against the embedded mode: real-time clients, latency, accuracy, losses, CPU.

    python -m bench.scale                          # 1, 4 and 8 clients, 3 runs each, both set-ups
    python -m bench.scale --clients 4 --repeat 1 --workers 1

Set-ups, each started once and measured at every client count:
- `embedded`: one Daphne running the models in-process (STT_INFERENCE_BACKEND=local), SQLite.
- `nginx`: deploy/nginx's site in front of two Daphne processes (STT_INFERENCE_BACKEND=channels)
  and `--workers` inference workers (one CPU thread each) over Redis, on a PostgreSQL database of
  its own (DATABASE_URL's server, default postgres://127.0.0.1:5432/test; REDIS_URL, default
  redis://127.0.0.1:6379/0).

Each client streams `--utterances` dev-corpus utterances (a different rotation per client) to
/ws/transcribe in real time, 40 ms packets, 1 s of silence between utterances (bench.stream's
client). Figures per run: TTFS p50/p95 and WER as in bench.stream; `missing` utterances that got no
final; `dup` finals a client received twice; `unstored` finals received but not in the database,
`unseen` stored segments no client received; CPU seconds per audio second of each kind of process
(nginx, daphne, worker) and in all. The table gives the median over runs of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import corpus, server
from bench.stream import GAP_S, process_cpu_seconds, run_client, summarize

FIGURES = ("ttfs_p50_s", "ttfs_p95_s", "wer", "missing", "dup", "unstored", "unseen", "cpu_total")


@dataclass
class SetUp:
    name: str
    url: str
    api_key: str
    processes: dict[str, list[int]]  # kind -> pids
    stored: Callable[[], set[tuple[str, str]]]  # (session id, segment id) of every stored segment


@contextlib.contextmanager
def embedded(tmp: Path, max_clients: int) -> Iterator[SetUp]:
    env = {"STT_METRICS_TOKEN": secrets.token_urlsafe(16), "STT_MAX_SESSIONS": str(max_clients + 4)}
    with server.daphne_server(tmp, env, wait_ready=True) as (base, full_env, proc):
        database = tmp / "live.sqlite3"

        def stored() -> set[tuple[str, str]]:
            with sqlite3.connect(database) as db:
                rows = db.execute("SELECT session_id, segment_id FROM transcription_segment").fetchall()
            return {(str(uuid.UUID(s)), seg) for s, seg in rows}  # SQLite keeps UUIDs as hex

        yield SetUp(
            "embedded",
            base.replace("http://", "ws://") + "/ws/transcribe",
            server.streaming_key(lambda *a: server.manage(full_env, *a), max_clients),
            {"daphne": [proc.pid]},
            stored,
        )


@contextlib.contextmanager
def behind_nginx(tmp: Path, max_clients: int, workers: int) -> Iterator[SetUp]:
    import psycopg

    from bench.scale_out import scale_out

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    postgres_url = os.environ.get("DATABASE_URL", "")
    if not postgres_url.startswith("postgres"):
        postgres_url = "postgres://127.0.0.1:5432/test"
    with scale_out(tmp, redis_url, servers=2, workers=workers, postgres_url=postgres_url, nginx=True,
                   server_env={"STT_MAX_SESSIONS": str(max_clients + 4)},
                   worker_env={"STT_CPU_THREADS": "1"}) as setup:  # fmt: skip

        def stored() -> set[tuple[str, str]]:
            with psycopg.connect(setup.env["DATABASE_URL"]) as conn:
                rows = conn.execute(
                    "SELECT session_id::text, segment_id FROM transcription_segment"
                ).fetchall()
            return {(s, seg) for s, seg in rows}

        processes = {
            "nginx": _with_children(setup.proxy.proc.pid),
            "daphne": list(setup.server_pids),
            "worker": [w.proc.pid for w in setup.workers],
        }
        yield SetUp(
            "nginx", setup.proxy_url(), server.streaming_key(setup.manage, max_clients), processes, stored
        )


def _with_children(pid: int) -> list[int]:
    """nginx's master and its worker processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]


def _files(client: int, count: int) -> list[corpus.Utterance]:
    dev = corpus.dev_utterances()
    return [dev[(client * count + i) % len(dev)] for i in range(count)]


async def _clients(setup: SetUp, clients: int, utterances: int) -> list:
    async def one(i: int):
        await asyncio.sleep(i * 0.25)  # staggered starts, as real users arrive
        return await run_client(setup.url, setup.api_key, _files(i, utterances))

    return await asyncio.gather(*(one(i) for i in range(clients)))


def measure(setup: SetUp, clients: int, utterances: int) -> dict:
    before_cpu = {kind: sum(map(process_cpu_seconds, pids)) for kind, pids in setup.processes.items()}
    before_stored = setup.stored()
    started = time.monotonic()
    results = asyncio.run(_clients(setup, clients, utterances))
    wall = time.monotonic() - started
    time.sleep(0.5)  # the last segment rows are written as the sessions end
    summary = summarize(list(results))
    seen = [(f["sessionId"], f["segmentKey"]) for r in results for u in r.utterances for f in u.finals]
    stored = setup.stored() - before_stored
    audio_s = sum(u.duration_s + GAP_S for i in range(clients) for u in _files(i, utterances))
    cpu = {
        kind: (sum(map(process_cpu_seconds, pids)) - before_cpu[kind]) / audio_s
        for kind, pids in setup.processes.items()
    }
    return {
        "ttfs_p50_s": summary["ttfs_p50_s"],
        "ttfs_p95_s": summary["ttfs_p95_s"],
        "wer": summary["wer"],
        "missing": summary["finals_missing"],
        "dup": len(seen) - len(set(seen)),
        "unstored": len(set(seen) - stored),
        "unseen": len(stored - set(seen)),
        "errors": sum(len(r.errors) for r in results),
        "closed": sum(1 for r in results if r.close_code is not None),
        "cpu": cpu,
        "cpu_total": sum(cpu.values()),
        "wall_s": wall,
    }


def _line(name: str, clients: int, row: dict) -> str:
    cpu = " ".join(f"cpu_{k}={v:.3f}" for k, v in row["cpu"].items())
    return (
        f"{name} clients={clients} ttfs_p50_s={row['ttfs_p50_s']:.3f} ttfs_p95_s={row['ttfs_p95_s']:.3f} "
        f"wer={row['wer']:.3f} missing={row['missing']} dup={row['dup']} unstored={row['unstored']} "
        f"unseen={row['unseen']} errors={row['errors']} closed={row['closed']} {cpu} "
        f"cpu_total={row['cpu_total']:.3f}"
    )


def _median(runs: list[dict]) -> dict:
    out = {key: statistics.median(r[key] for r in runs) for key in FIGURES}
    out["cpu"] = {k: statistics.median(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]}
    out["errors"] = sum(r["errors"] for r in runs)
    out["closed"] = sum(r["closed"] for r in runs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", default="1,4,8", help="client counts, each measured in turn")
    parser.add_argument("--repeat", type=int, default=3, help="runs per client count (medians reported)")
    parser.add_argument("--utterances", type=int, default=5, help="dev utterances per client per run")
    parser.add_argument("--workers", type=int, default=2, help="inference workers behind nginx (1 or 2)")
    parser.add_argument("--setups", default="embedded,nginx")
    args = parser.parse_args(argv)
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 2
    counts = [int(c) for c in args.clients.split(",")]
    rows: list[tuple[str, int, dict]] = []
    for name in args.setups.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if name == "embedded":
                start = embedded(Path(tmp), max(counts))
            else:
                start = behind_nginx(Path(tmp), max(counts), args.workers)
            with start as setup:
                for clients in counts:
                    runs = []
                    for i in range(args.repeat):
                        runs.append(measure(setup, clients, args.utterances))
                        print(f"run {i + 1}/{args.repeat}: {_line(name, clients, runs[-1])}", flush=True)
                    rows.append((name, clients, _median(runs)))
    print(
        f"\nmedians of {args.repeat} runs ({args.utterances} utterances per client, workers={args.workers})"
    )
    for name, clients, row in rows:
        print(_line(name, clients, row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
