"""Stream the dev corpus in real time from N clients to /ws/transcribe and print latency and accuracy.

    python -m bench.stream --url ws://127.0.0.1:8000/ws/transcribe --api-key KEY --clients 4 \
        [--server-pid PID] [--metrics-token TOKEN]
    python -m bench.stream --spawn-server --clients 4    # a fresh local Daphne, models preloaded
    python -m bench.stream --spawn-server --mode both --clients 1,4   # embedded and scale-out, side by side

Scale-out (`--mode scale-out`) is one Daphne on STT_INFERENCE_BACKEND=channels and two
`inference_worker` processes over Redis (REDIS_URL, default redis://127.0.0.1:6379/0), each
worker on one CPU thread; server CPU then counts the workers too.

    python -m bench.stream --spawn-server --options '{"postSpeechSilenceDuration": 0.8}' --repeat 3

Each client sends 40 ms packets paced by the wall clock, 1 s of silence between utterances.
Finals are attributed to the utterance their segment overlaps most. The figures:

- `ttfs_p50_s`, `ttfs_p95_s`: time to final speech, from the end of an utterance's audio being
  sent to the arrival of its last final (the one that closes it); median and 95th percentile.
- `wer`: corpus word error rate of each utterance's finals joined in start order, against its
  manifest reference, both normalized with Whisper's English normalizer (`bench.corpus`).
- `first_interim_p50_s`, `first_interim_p95_s`: from the start of an utterance's audio being
  sent to its first `realtime` (interim) message (nan with --no-interim).
- `finals_per_utterance` (`finals_per_utt` on the last line): mean number of non-empty finals
  (text with at least one normalized word) per utterance; 1.0 is one final per utterance.
- `cuts`: boundaries between consecutive non-empty finals of one utterance (sum of finals - 1).
- `mid_sentence_cuts`: cuts whose earlier final ends, by a word alignment with the reference,
  on a reference word not followed by `.`, `?`, `!` or `;` (abbreviations like `i.e.` or
  `Mr.` excepted); the end of the reference counts as a sentence end. Split into
  `comma_cuts` (the reference has `,`, `:` or a dash there) and `breath_cuts` (no punctuation
  there at all). Unpunctuated references (LibriSpeech) make every inner cut a breath cut.
  Definition and alignment details: `bench/endpointing.py`.
- `server_cpu_s_per_audio_s`: server (and worker) CPU seconds per second of audio streamed,
  with --server-pid or --spawn-server.
- Dropped and coalesced counts come from each session's `metrics` command (interim jobs
  dropped) and, with a metrics token, from the server's /api/metrics (scheduler coalescing and
  drops over the run).

`--options JSON` is merged into the `start` command's "options" (the server echoes the
settings it applied, under `settings`; an option it ignored or changed is warned about).
`--repeat N` runs the whole measurement N times (each with a fresh server with
--spawn-server), prints each run's one-line figures, then the medians over runs.
Last line (the medians with --repeat): `ttfs_p50_s=<f> ttfs_p95_s=<f> wer=<f> finals_per_utt=<f>
mid_sentence_cuts=<n> first_interim_p50_s=<f>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

import numpy as np

from bench import corpus, endpointing, server
from bench.packets import packets

PACKET_MS = 40
GAP_S = 1.0


@dataclass
class UtteranceRun:
    name: str
    reference: str
    start_offset: float  # seconds into this client's stream
    end_offset: float
    sent_start: float = 0.0  # wall clock
    sent_end: float = 0.0
    finals: list[dict] = field(default_factory=list)
    first_realtime_at: float | None = None


@dataclass
class ClientResult:
    utterances: list[UtteranceRun]
    events: dict[str, int]
    errors: list[dict]
    session_metrics: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # what the server applied, from its "status"
    close_code: int | None = None  # set when the server closed the stream before its end
    warnings: list[dict] = field(default_factory=list)
    send_lag_s: float = 0.0  # how far behind the wall clock this client's sending fell at worst


def _clock_ticks() -> int:
    return os.sysconf(os.sysconf_names["SC_CLK_TCK"])


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children that were waited for (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / _clock_ticks()


def _assign(event: dict, runs: list[UtteranceRun], received_at: float) -> None:
    """Attribute a transcript event to the utterance its segment overlaps most."""
    seg = event.get("segment") or {}
    start, end = seg.get("start", event.get("start")), seg.get("end", event.get("end"))
    if start is None or end is None:
        return
    best, overlap = None, 0.0
    for run in runs:
        o = min(end, run.end_offset + GAP_S) - max(start, run.start_offset - 0.8)
        if o > overlap:
            best, overlap = run, o
    if best is not None:
        event["_received_at"] = received_at
        best.finals.append(event)


async def run_client(
    url: str,
    api_key: str,
    files: list[corpus.Utterance],
    *,
    realtime: bool = True,
    options: dict | None = None,
    packet_ms: int = PACKET_MS,
) -> ClientResult:
    import websockets

    runs: list[UtteranceRun] = []
    offset = 0.0
    chunks: list[np.ndarray] = []
    for utt in files:
        audio = corpus.read_mono_float(utt.path)
        runs.append(UtteranceRun(utt.name, utt.reference, offset, offset + len(audio) / 16000))
        chunks.append(audio)
        offset += len(audio) / 16000 + GAP_S
    counts: dict[str, int] = {}
    errors: list[dict] = []
    warnings: list[dict] = []
    segment_runs: dict[str, UtteranceRun] = {}
    done = asyncio.Event()
    session_metrics: dict = {}
    settings: dict = {}

    closed: list[int | None] = []
    async with websockets.connect(
        url, additional_headers={"X-API-Key": api_key}, max_size=None, open_timeout=60
    ) as ws:

        async def reader() -> None:
            try:
                await read_events()
            except websockets.ConnectionClosed:
                pass
            if not done.is_set():  # the server ended the stream first (a restart, an error)
                closed.append(ws.close_code)
                done.set()

        async def read_events() -> None:
            async for raw in ws:
                now = time.monotonic()
                event = json.loads(raw)
                kind = event.get("type")
                counts[kind] = counts.get(kind, 0) + 1
                if kind == "final":
                    _assign(event, runs, now)
                elif kind == "realtime":
                    position = event.get("segmentId")
                    run = segment_runs.get(position)
                    if run is not None and run.first_realtime_at is None:
                        run.first_realtime_at = now
                elif kind == "timeline" and event.get("event") == "recording_started":
                    seg_start = event["segment"]["start"]
                    for run in runs:
                        if run.start_offset - 1.0 <= seg_start <= run.end_offset:
                            segment_runs[event["segmentId"]] = run
                            break
                elif kind == "status" and event.get("state") == "listening":
                    settings.update(event.get("settings") or {})
                elif kind == "error":
                    errors.append(event)
                elif kind == "warning":
                    (warnings if event.get("code") == "server_shutdown" else errors).append(event)
                elif kind == "metrics":  # answered after "stop" has drained every final
                    session_metrics.update(event.get("metrics") or {})
                    done.set()
                    return

        read_task = asyncio.create_task(reader())
        start_options = {"interimResults": realtime, **(options or {})}
        await ws.send(json.dumps({"type": "start", "options": start_options}))
        t0 = time.monotonic()
        sent = send_lag = 0.0
        silence = np.zeros(int(16000 * GAP_S), dtype=np.float32)
        try:
            for run, audio in zip(runs, chunks, strict=True):
                for part, is_speech in ((audio, True), (silence, False)):
                    if is_speech:
                        run.sent_start = time.monotonic()
                    for packet in packets(part, 16000, packet_ms):
                        sent += packet_ms / 1000
                        delay = t0 + sent - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        else:
                            send_lag = max(send_lag, -delay)
                        await ws.send(packet)
                    if is_speech:
                        run.sent_end = time.monotonic()
            await ws.send(json.dumps({"type": "stop"}))
            await ws.send(json.dumps({"type": "metrics"}))
        except websockets.ConnectionClosed:
            pass  # the reader records how it ended
        await asyncio.wait_for(done.wait(), 120)
        read_task.cancel()
    return ClientResult(
        runs, counts, errors, session_metrics, settings, closed[0] if closed else None, warnings, send_lag
    )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summarize(results: list[ClientResult]) -> dict:
    ttfs, first_interim, refs, hyps, per_utterance, cut_reports = [], [], [], [], [], []
    for result in results:
        for run in result.utterances:
            refs.append(run.reference)
            texts = [f.get("text") or "" for f in sorted(run.finals, key=lambda f: f["start"])]
            hyps.append(" ".join(texts))
            cuts = endpointing.classify_cuts(run.reference, texts)
            cut_reports.append(cuts)
            row = {"name": run.name, "finals": len(run.finals)}
            if cuts.cuts:
                row["cuts"] = cuts.places
            if run.finals:
                last = max(f["_received_at"] for f in run.finals)
                ttfs.append(max(0.0, last - run.sent_end))
                row["ttfs_s"] = round(ttfs[-1], 3)
            if run.first_realtime_at is not None:
                first_interim.append(run.first_realtime_at - run.sent_start)
                row["first_interim_s"] = round(first_interim[-1], 3)
            per_utterance.append(row)
    endpoints = endpointing.summarize_cuts(cut_reports)
    return {
        "utterances": len(refs),
        "finals_missing": sum(1 for h in hyps if not h.strip()),
        "ttfs_p50_s": _pct(ttfs, 0.5),
        "ttfs_p95_s": _pct(ttfs, 0.95),
        "first_interim_p50_s": _pct(first_interim, 0.5),
        "first_interim_p95_s": _pct(first_interim, 0.95),
        "wer": corpus.wer(refs, hyps),
        "finals_per_utterance": endpoints.finals_per_utterance,
        "cuts": endpoints.cuts,
        "mid_sentence_cuts": endpoints.mid_sentence_cuts,
        "comma_cuts": endpoints.comma_cuts,
        "breath_cuts": endpoints.breath_cuts,
        "events": {
            k: sum(r.events.get(k, 0) for r in results)
            for k in ("hello", "ready", "realtime", "final", "warning", "error")
        },
        "per_utterance": per_utterance,
    }


SCHEDULER_DROPS = ("stale_dropped", "segment_final_dropped", "shed")


def scheduler_counters(url: str, token: str | None) -> dict[str, int] | None:
    """Coalesced and dropped jobs so far, summed over the server's lanes (None without a token)."""
    if not token:
        return None
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    metrics_url = urlunsplit((scheme, parts.netloc, "/api/metrics", "", ""))
    request = Request(metrics_url, headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=10) as response:
        lanes = (json.loads(response.read()).get("inference") or {}).get("lanes") or {}
    return {
        "coalesced": sum(lane.get("coalesced", 0) for lane in lanes.values()),
        "dropped": sum(lane.get(k, 0) for lane in lanes.values() for k in SCHEDULER_DROPS),
    }


def _cpu(pids: list[int]) -> float:
    return sum(process_cpu_seconds(pid) for pid in pids)


async def main_async(args) -> dict:
    files = corpus.dev_utterances()
    if args.files:
        files = [corpus.manifest()[name] for name in args.files]
    pids = [args.server_pid, *getattr(args, "worker_pids", [])] if args.server_pid else []
    cpu0 = _cpu(pids) if pids else None
    sched0 = scheduler_counters(args.url, args.metrics_token)
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            run_client(args.url, args.api_key, files, realtime=not args.no_interim, options=args.options)
            for _ in range(args.clients)
        )
    )
    wall = time.monotonic() - started
    summary = summarize(list(results))
    audio_s = args.clients * sum(u.duration_s + GAP_S for u in files)
    if cpu0 is not None:
        summary["server_cpu_s_per_audio_s"] = (_cpu(pids) - cpu0) / audio_s
    summary["wall_s"] = wall
    summary["audio_s"] = audio_s
    summary["clients"] = args.clients
    summary["interim_dropped"] = sum(r.session_metrics.get("realtime_dropped", 0) for r in results)
    summary["speaker_capacity_refused"] = sum(
        r.session_metrics.get("speaker_capacity_refused", 0) for r in results
    )
    sched1 = scheduler_counters(args.url, args.metrics_token)
    if sched0 is not None and sched1 is not None:
        summary["scheduler_coalesced"] = sched1["coalesced"] - sched0["coalesced"]
        summary["scheduler_dropped"] = sched1["dropped"] - sched0["dropped"]
    summary["errors"] = [e for r in results for e in r.errors][:10]
    summary["settings"] = results[0].settings if results else {}
    return summary


# The figures --repeat takes the median of, and the one-line form of a run.
MEDIAN_KEYS = (
    "ttfs_p50_s",
    "ttfs_p95_s",
    "wer",
    "finals_per_utterance",
    "mid_sentence_cuts",
    "first_interim_p50_s",
    "server_cpu_s_per_audio_s",
)


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def medians(runs: list[dict]) -> dict:
    """The median over runs of each of MEDIAN_KEYS (NaN runs left out; NaN if all are)."""
    out = {}
    for key in MEDIAN_KEYS:
        values = [v for v in (_num(r.get(key)) for r in runs) if not math.isnan(v)]
        out[key] = statistics.median(values) if values else float("nan")
    return out


def _n(value) -> str:
    """A count, or a median of counts (which may fall half-way)."""
    value = _num(value)
    return "nan" if math.isnan(value) else f"{value:g}"


def last_line(s: dict) -> str:
    return (
        f"ttfs_p50_s={s['ttfs_p50_s']:.3f} ttfs_p95_s={s['ttfs_p95_s']:.3f} wer={s['wer']:.3f} "
        f"finals_per_utt={s['finals_per_utterance']:.3f} mid_sentence_cuts={_n(s['mid_sentence_cuts'])} "
        f"first_interim_p50_s={s['first_interim_p50_s']:.3f}"
    )


def one_line(s: dict) -> str:
    """One run's figures on one line."""
    extra = ""
    if "cuts" in s:
        extra = (
            f" cuts={s['cuts']} comma_cuts={s['comma_cuts']} breath_cuts={s['breath_cuts']}"
            f" first_interim_p95_s={s['first_interim_p95_s']:.3f}"
            f" missing={s['finals_missing']} errors={len(s['errors'])}"
        )
    cpu = _num(s.get("server_cpu_s_per_audio_s"))
    return f"{last_line(s)}{extra} server_cpu_s_per_audio_s={cpu:.3f}"


def _check_options(summary: dict, options: dict) -> None:
    """Warn about requested start options the server did not apply as asked."""
    settings = summary.get("settings") or {}
    for name, value in options.items():
        if settings.get(name) != value:
            print(
                f"warning: start option {name}={value!r} not applied as asked "
                f"(server settings say {settings.get(name)!r})",
                file=sys.stderr,
                flush=True,
            )


@contextlib.contextmanager
def spawned(tmp: Path, args, mode: str = "embedded"):
    """A fresh set-up with the models loaded; fills in args.url, api_key, server_pid(s), metrics_token.

    `mode` is "embedded" (one Daphne running the models) or "scale-out" (one Daphne, two workers).
    """
    token = secrets.token_urlsafe(16)
    args.metrics_token = token
    if mode == "scale-out":
        from bench.scale_out import scale_out

        redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        with scale_out(tmp, redis_url, servers=1, workers=2, server_env={"STT_METRICS_TOKEN": token},
                       worker_env={"STT_CPU_THREADS": "1"}) as setup:  # fmt: skip
            args.api_key = server.streaming_key(setup.manage, args.clients)
            args.url, args.server_pid = setup.ws_url(0), setup.server_pids[0]
            args.worker_pids = [w.proc.pid for w in setup.workers]
            yield
        return
    with server.daphne_server(tmp, {"STT_METRICS_TOKEN": token}, wait_ready=True) as (base, env, proc):
        args.api_key = server.streaming_key(lambda *a: server.manage(env, *a), args.clients)
        args.url = base.replace("http://", "ws://") + "/ws/transcribe"
        args.server_pid, args.worker_pids = proc.pid, []
        yield


def measure(args, mode: str = "embedded") -> dict:
    """One measurement: against a fresh server with --spawn-server, else against --url."""
    if args.spawn_server:
        with tempfile.TemporaryDirectory() as tmp, spawned(Path(tmp), args, mode):
            summary = asyncio.run(main_async(args))
    else:
        summary = asyncio.run(main_async(args))
    if args.options:
        _check_options(summary, args.options)
    return summary


def repeated(args, mode: str = "embedded", label: str = "") -> dict:
    """`--repeat` measurements: the one summary, or (N > 1) the medians with the runs under "runs"."""
    runs = []
    for i in range(args.repeat):
        summary = measure(args, mode)
        runs.append(summary)
        if args.repeat > 1 or label:
            print(f"{label}run {i + 1}/{args.repeat}: {one_line(summary)}", flush=True)
    if args.repeat == 1:
        return {**runs[0], "mode": mode}
    result = {"mode": mode, "clients": args.clients, **medians(runs), "runs": runs}
    print(f"{label}median of {args.repeat} runs: {one_line(result)}", flush=True)
    return result


def _compare(args) -> list[dict]:
    """Each mode at each client count, in one run: the figures side by side (medians with --repeat)."""
    rows = []
    for mode in ("embedded", "scale-out") if args.mode == "both" else (args.mode,):
        for clients in args.client_counts:
            args.clients = clients
            rows.append(repeated(args, mode, label=f"{mode} clients={clients} "))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="ws://HOST:PORT/ws/transcribe (or use --spawn-server)")
    parser.add_argument("--api-key")
    parser.add_argument(
        "--spawn-server",
        action="store_true",
        help="start a Daphne (temporary SQLite, a key and quota for the run) and measure against it",
    )
    parser.add_argument("--clients", default="1", help="streams at once; a list (1,4) runs each in turn")
    parser.add_argument(
        "--mode",
        choices=("embedded", "scale-out", "both"),
        default="embedded",
        help="with --spawn-server: the set-up to measure (both: embedded, then scale-out, in one run)",
    )
    parser.add_argument("--files", nargs="*", help="corpus file names (default: the dev corpus)")
    parser.add_argument("--server-pid", type=int, help="Daphne's PID, to measure server CPU")
    parser.add_argument("--no-interim", action="store_true")
    parser.add_argument("--metrics-token", help="the server's STT_METRICS_TOKEN, for scheduler counters")
    parser.add_argument(
        "--options",
        type=json.loads,
        default={},
        metavar="JSON",
        help='extra start options merged into "options", e.g. \'{"postSpeechSilenceDuration": 0.8}\'',
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the whole measurement N times (fresh server each with --spawn-server); print medians",
    )
    parser.add_argument("--json-out", help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    if not isinstance(args.options, dict):
        parser.error("--options must be a JSON object")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 2
    args.client_counts = [int(c) for c in str(args.clients).split(",") if c.strip()]
    args.clients = args.client_counts[0]
    if args.spawn_server and (args.mode != "embedded" or len(args.client_counts) > 1):
        rows = _compare(args)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(rows, indent=2, default=str))
        if args.repeat > 1:
            print(f"(medians of {args.repeat} runs each)")
        print("mode clients ttfs_p50_s ttfs_p95_s wer finals_per_utt mid_sentence_cuts "
              "first_interim_p50_s cpu_s_per_audio_s")  # fmt: skip
        for row in rows:
            print(f"{row['mode']} {row['clients']} {row['ttfs_p50_s']:.3f} {row['ttfs_p95_s']:.3f} "
                  f"{row['wer']:.3f} {row['finals_per_utterance']:.3f} {_n(row['mid_sentence_cuts'])} "
                  f"{row['first_interim_p50_s']:.3f} "
                  f"{_num(row.get('server_cpu_s_per_audio_s')):.3f}")  # fmt: skip
        return 0
    if not args.spawn_server and not (args.url and args.api_key):
        parser.error("give --url and --api-key, or --spawn-server")
    if args.repeat > 1:
        result = repeated(args)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=2, default=str))
        print(last_line(result))
        return 0
    summary = measure(args)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2, default=str))
    for key, value in summary.items():
        print(f"{key}={value}")
    print(last_line(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
