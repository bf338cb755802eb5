"""What enrichment costs: CPU milliseconds per final for each stage, and TTFS with every stage on
against every stage off, one and four real-time streams, on one server, interleaved.

    python -m bench.enrichment [--repeat 3] [--clients 1,4] [--skip-streams]

Stage costs are measured in-process on the dev corpus (the bundled model transcribes each
utterance once, then every stage runs on its final as a session would). The streaming part
starts one Daphne with the models loaded and alternates off/on runs of bench.stream against it,
so both see the same machine load; it prints the medians of --repeat runs of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from argparse import Namespace
from pathlib import Path

from bench import corpus, server
from bench import stream as bench_stream

ALL_ON = {
    "speakers": True,
    "sentiment": True,
    "topics": True,
    "profanityFilter": True,
    "redact": ["pci", "phone", "email", "ssn"],
}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def stage_costs() -> dict[str, list[float]]:
    """CPU ms per final of each stage (thread CPU time), over the dev corpus."""
    from speech.enrich.options import EnrichOptions
    from speech.enrich.session import SessionEnricher
    from speech.finals import FinalSegment
    from speech.inference.jobs import TranscribeOptions

    engine = corpus.bundled_engine()
    options = EnrichOptions(
        speakers=True,
        sentiment=True,
        topics=True,
        profanity_filter=True,
        redact=frozenset({"pci", "phone", "email", "ssn"}),
    )
    enricher = SessionEnricher(options)
    wall: list[float] = []
    for index, utterance in enumerate(corpus.dev_utterances()):
        audio = corpus.read_mono_float(utterance.path)
        (out,) = engine.transcribe_batch([(audio, TranscribeOptions(language="en", beam_size=5))])
        final = FinalSegment(
            index=index,
            segment_id=f"b-{index}",
            start_s=0.0,
            end_s=len(audio) / 16000,
            text=out.text.strip(),
            confidence=None,
            language="en",
            words=[],
            end_reason="silence",
            pre_roll_s=0.0,
            latency_ms=None,
        )
        started = time.perf_counter()
        await enricher.enrich(final, enricher.voice(audio))
        wall.append((time.perf_counter() - started) * 1000)
    await enricher.settle()
    costs = dict(enricher.cost_ms)
    costs["all stages, wall ms"] = wall
    return costs


def _stream_args(base_args: Namespace, clients: int, enrichment: dict | None) -> Namespace:
    return Namespace(
        url=base_args.url,
        api_key=base_args.api_key,
        files=None,
        server_pid=base_args.server_pid,
        worker_pids=[],
        metrics_token=None,
        clients=clients,
        no_interim=False,
        options={"enrichment": enrichment} if enrichment else {},
    )


def streams(client_counts: list[int], repeat: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with server.daphne_server(Path(tmp), wait_ready=True) as (base, env, proc):
            key = server.streaming_key(lambda *a: server.manage(env, *a), max(client_counts))
            target = Namespace(url=base.replace("http://", "ws://") + "/ws/transcribe", api_key=key,
                               server_pid=proc.pid)  # fmt: skip
            for clients in client_counts:
                runs: dict[str, list[dict]] = {"off": [], "on": []}
                for i in range(repeat):
                    for mode, enrichment in (("off", None), ("on", ALL_ON)):
                        summary = asyncio.run(
                            bench_stream.main_async(_stream_args(target, clients, enrichment))
                        )
                        runs[mode].append(summary)
                        line = bench_stream.one_line(summary)
                        print(f"clients={clients} {mode} run {i + 1}/{repeat}: {line}", flush=True)
                for mode in ("off", "on"):
                    rows.append({"clients": clients, "enrichment": mode, **bench_stream.medians(runs[mode])})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--skip-streams", action="store_true", help="stage costs only")
    args = parser.parse_args(argv)
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 2
    costs = asyncio.run(stage_costs())
    print("stage cpu_ms_per_final_p50 p95 max (n)")
    for stage, values in costs.items():
        p50, p95 = statistics.median(values), _pct(values, 0.95)
        print(f"{stage} {p50:.2f} {p95:.2f} {max(values):.2f} ({len(values)})")
    if args.skip_streams:
        return 0
    rows = streams([int(c) for c in args.clients.split(",")], args.repeat)
    print(f"(medians of {args.repeat} runs each, off and on interleaved on one server)")
    print("clients enrichment ttfs_p50_s ttfs_p95_s wer first_interim_p50_s cpu_s_per_audio_s")
    for row in rows:
        cpu = row["server_cpu_s_per_audio_s"]
        print(f"{row['clients']} {row['enrichment']} {row['ttfs_p50_s']:.3f} {row['ttfs_p95_s']:.3f} "
              f"{row['wer']:.3f} {row['first_interim_p50_s']:.3f} {cpu:.3f}")  # fmt: skip
    for clients in sorted({r["clients"] for r in rows}):
        off, on = (
            next(r for r in rows if r["clients"] == clients and r["enrichment"] == m) for m in ("off", "on")
        )
        delta = (on["ttfs_p50_s"] - off["ttfs_p50_s"]) * 1000
        print(f"clients={clients}: TTFS p50 with every stage on {delta:+.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
