"""Load generator: many simulated real-time streams from one process, stepped up until latency breaks.

    python -m bench.load --spawn-server --streams 2,4,8                      # this machine (CPU)
    python -m bench.load --spawn-server --device cuda --streams 50,100,200,400,600
    python -m bench.load --url ws://HOST/ws/transcribe --api-key KEY --metrics-token T --streams 100,200

One asyncio process holds every socket; each stream sends dev-corpus utterances (a different
rotation per stream, `--utterances` of them, 1 s of silence between) in `--packet-ms` packets paced
by the wall clock, and reads its events (bench.stream's client). Streams start spread over
`--ramp-s`. For each step it prints TTFS p50/p95 over every utterance, utterances with no final,
errors, streams refused or closed early, how far the generator itself fell behind its own pacing
(`send_lag_max_s`: above ~0.2 s the generator, not the server, is the bottleneck: use fewer streams
per process or several processes), and with a metrics token the mean inference batch size of each
lane over the step (the batch-size curve). The last line names the most streams held with TTFS p95
at most `--target-p95-s` and nothing missing.

`--spawn-server` starts one Daphne on this machine (embedded inference, its own SQLite database),
with the model settings given (`--device`, `--compute-type`, `--model`, `--max-batch-size`;
`--engine speech.inference.fake.FakeEngine` leaves the model out, to see how many sockets the
generator and one Daphne hold on their own).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

from bench import corpus, server
from bench.stream import run_client, summarize


def _files(stream: int, count: int) -> list[corpus.Utterance]:
    dev = corpus.dev_utterances()
    return [dev[(stream * count + i) % len(dev)] for i in range(count)]


def batch_sizes(url: str, token: str | None) -> dict[str, dict[str, int]] | None:
    """Each lane's cumulative batch-size histogram from /api/metrics (None without a token)."""
    if not token:
        return None
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    request = Request(
        urlunsplit((scheme, parts.netloc, "/api/metrics", "", "")),
        headers={"Authorization": f"Bearer {token}"},
    )
    with urlopen(request, timeout=10) as response:
        lanes = (json.loads(response.read()).get("inference") or {}).get("lanes") or {}
    return {name: dict(lane.get("batch_sizes") or {}) for name, lane in lanes.items()}


def _mean_batch(before: dict[str, int], after: dict[str, int]) -> float:
    delta = {int(k): after.get(k, 0) - before.get(k, 0) for k in after}
    jobs, batches = sum(k * v for k, v in delta.items()), sum(delta.values())
    return jobs / batches if batches else float("nan")


async def step(args, streams: int) -> dict:
    async def one(i: int):
        await asyncio.sleep(args.ramp_s * i / max(1, streams))
        try:
            return await run_client(
                args.url, args.api_key, _files(i, args.utterances),
                realtime=not args.no_interim, packet_ms=args.packet_ms,
            )  # fmt: skip
        except Exception as exc:  # refused at the handshake, reset: counted, not fatal to the step
            return exc

    before = batch_sizes(args.url, args.metrics_token)
    outcomes = await asyncio.gather(*(one(i) for i in range(streams)))
    after = batch_sizes(args.url, args.metrics_token)
    results = [o for o in outcomes if not isinstance(o, BaseException)]
    summary = summarize(results) if results else {"ttfs_p50_s": float("nan"), "ttfs_p95_s": float("nan")}
    row = {
        "streams": streams,
        "ttfs_p50_s": summary["ttfs_p50_s"],
        "ttfs_p95_s": summary["ttfs_p95_s"],
        "missing": summary.get("finals_missing", 0) + args.utterances * (len(outcomes) - len(results)),
        "errors": sum(len(r.errors) for r in results),
        "refused": len(outcomes) - len(results),
        "closed": sum(1 for r in results if r.close_code is not None),
        "send_lag_max_s": max((r.send_lag_s for r in results), default=0.0),
    }
    if before is not None and after is not None:
        row["mean_batch"] = {lane: _mean_batch(before.get(lane, {}), sizes) for lane, sizes in after.items()}
    return row


def _line(row: dict) -> str:
    batches = " ".join(f"batch_{lane}={v:.2f}" for lane, v in (row.get("mean_batch") or {}).items())
    return (
        f"streams={row['streams']} ttfs_p50_s={row['ttfs_p50_s']:.3f} ttfs_p95_s={row['ttfs_p95_s']:.3f} "
        f"missing={row['missing']} errors={row['errors']} refused={row['refused']} closed={row['closed']} "
        f"send_lag_max_s={row['send_lag_max_s']:.3f} {batches}"
    ).rstrip()


@contextlib.contextmanager
def spawned(args, max_streams: int) -> Iterator[None]:
    token = secrets.token_urlsafe(16)
    env = {
        "STT_METRICS_TOKEN": token,
        "STT_MAX_SESSIONS": str(max_streams + 8),
        "STT_MAX_ACTIVE_SPEAKERS": str(max_streams + 8),
        "STT_DEVICE": args.device,
        "STT_COMPUTE_TYPE": args.compute_type,
        "STT_MAX_BATCH_SIZE": str(args.max_batch_size),
        "STT_MAX_GLOBAL_QUEUE_DEPTH": str(max(64, 4 * max_streams)),
        "STT_WS_CONNECT_LIMIT": "0",  # every stream comes from this one address, by design
    }
    if args.model:
        env["STT_MODEL"] = args.model
    if args.engine:
        env["STT_ENGINE"] = args.engine
    with (
        tempfile.TemporaryDirectory() as tmp,
        server.daphne_server(Path(tmp), env, wait_ready=True) as (
            base,
            full_env,
            _,
        ),
    ):
        key = server.streaming_key(lambda *a: server.manage(full_env, *a), max_streams, "load")
        args.url, args.api_key, args.metrics_token = (
            base.replace("http://", "ws://") + "/ws/transcribe",
            key,
            token,
        )
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url")
    parser.add_argument("--api-key")
    parser.add_argument("--metrics-token")
    parser.add_argument("--spawn-server", action="store_true")
    parser.add_argument("--streams", default="1,2,4", help="streams at once, one step each")
    parser.add_argument("--utterances", type=int, default=3, help="dev utterances per stream")
    parser.add_argument("--packet-ms", type=int, default=100)
    parser.add_argument("--ramp-s", type=float, default=5.0, help="streams start spread over this long")
    parser.add_argument("--target-p95-s", type=float, default=1.0)
    parser.add_argument("--no-interim", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compute-type", default="auto")
    parser.add_argument("--model", default="")
    parser.add_argument("--max-batch-size", type=int, default=0, help="0: the server's default")
    parser.add_argument(
        "--engine",
        default="",
        help="STT_ENGINE for --spawn-server, e.g. speech.inference.fake.FakeEngine to "
        "measure the generator and the server's socket handling without the model",
    )
    args = parser.parse_args(argv)
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 2
    steps = [int(s) for s in args.streams.split(",")]
    if not args.spawn_server and not (args.url and args.api_key):
        parser.error("give --url and --api-key, or --spawn-server")
    held = 0
    with spawned(args, max(steps)) if args.spawn_server else contextlib.nullcontext():
        for streams in steps:
            row = asyncio.run(step(args, streams))
            print(_line(row), flush=True)
            if row["ttfs_p95_s"] <= args.target_p95_s and not row["missing"] and not row["refused"]:
                held = max(held, streams)
    print(f"held: {held} streams at TTFS p95 <= {args.target_p95_s} s with nothing missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
