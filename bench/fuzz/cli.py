"""`python -m bench.fuzz`: every target in its own process, then one table and the findings.

    python -m bench.fuzz                          # 1,000,000 inputs per target
    python -m bench.fuzz --inputs 5000 --targets packet,ws_transcribe --seconds 60
    python -m bench.fuzz --targets packet --replay artifacts/fuzz/packet/ValueError-0123abcd.bin

Exit status 1 when a target raised an unexpected exception, crashed, hung, or ran short.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.fuzz import libfuzzer
from bench.fuzz.harness import ROOT
from bench.fuzz.targets import TARGETS

DEFAULT_OUT = ROOT / "artifacts" / "fuzz"


@dataclass
class Result:
    target: str
    asked: int
    inputs: int = 0
    wall_s: float = 0.0  # from the first input to the process's end
    cov: int | None = None
    ft: int | None = None
    corpus: int | None = None
    peak_rss_mb: int | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    crash: str | None = None
    crash_input: str | None = None
    rc: int = 0
    log: str = ""
    capped: bool = False  # stopped by --seconds

    @property
    def rate(self) -> float:
        return self.inputs / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def problems(self) -> list[str]:
        out = [
            f"{f['type']}: {f['message'][:120]} at {f['own_frame']} ({f['count']}x)" for f in self.findings
        ]
        if self.crash:
            out.append(f"libFuzzer stopped: {self.crash} (input: {self.crash_input})")
        elif self.rc != 0:
            out.append(f"worker exited {self.rc}; see {self.log}")
        elif self.inputs < self.asked and not self.capped:
            out.append(f"ran {self.inputs} of {self.asked} inputs; see {self.log}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


def _worker(name: str, args: argparse.Namespace, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "bench.fuzz.worker", "--target", name, "--out", str(args.out)]
    return [*cmd, "--inputs", str(args.inputs), "--seed", str(args.seed), *extra]


def run_target(name: str, args: argparse.Namespace) -> Result:
    result = Result(name, args.inputs)
    folder = args.out / name.replace(":", "_")
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "libfuzzer.log"
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    stats = work / "stats.json"
    extra = ["--stats", str(stats), "--work", str(work)]
    if args.seconds:
        extra += ["--seconds", str(args.seconds)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.run(
                _worker(name, args, extra), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )
        ended = time.time()
        text = log_path.read_text(errors="replace")
        snapshot = json.loads(stats.read_text()) if stats.exists() else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run = libfuzzer.parse(text)
    result.rc, result.log = proc.returncode, str(log_path)
    result.inputs = run.executed if run.executed is not None else snapshot.get("inputs", 0)
    if snapshot.get("started"):
        result.wall_s = ended - snapshot["started"]
    result.cov, result.ft, result.corpus, result.peak_rss_mb = run.cov, run.ft, run.corpus, run.peak_rss_mb
    result.findings = snapshot.get("findings", [])
    result.crash, result.crash_input = run.crash, run.crash_input
    result.capped = (
        bool(args.seconds) and result.inputs < args.inputs and run.crash is None and proc.returncode == 0
    )
    return result


def _row(r: Result) -> str:
    unexpected = sum(f["count"] for f in r.findings)
    distinct = len(r.findings) + (1 if r.crash else 0)
    cov = "-" if r.cov is None else f"{r.cov}/{r.ft}"
    return (
        f"| {r.target} | {r.inputs:,} | {r.rate:,.0f} | {r.wall_s:.1f} | {cov} | {r.corpus or 0} "
        f"| {distinct} ({unexpected:,} inputs) |"
    )


def report(results: list[Result]) -> str:
    lines = ["| target | inputs | inputs/s | wall s | cov/ft | corpus | unexpected |", "| --- " * 7 + "|"]
    lines += [_row(r) for r in results]
    for r in results:
        for problem in r.problems:
            lines.append(f"FAIL {r.target}: {problem}")
        for f in r.findings:
            lines.append(f"    reproducer: {f['reproducer']} (raised at {f['raised_at']})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target (default 1,000,000)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: all)")
    parser.add_argument("--seconds", type=int, default=0, help="cap on each target's time (0: none)")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's seed (0: random)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="reproducers and logs (%(default)s)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--replay", type=Path, help="run one saved input through the (one) target")
    parser.add_argument("--list", action="store_true", help="list the targets")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[Result]:
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    args.out = args.out.resolve()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = []
        for result in pool.map(lambda name: run_target(name, args), names):
            print(
                f"{result.target}: {result.inputs:,} inputs in {result.wall_s:.1f} s, "
                f"{'ok' if result.ok else 'FAIL'}",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.replay:
        return subprocess.call([*_worker(args.targets, args, []), "--replay", str(args.replay)], cwd=ROOT)
    results = run(args)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "rate": r.rate} for r in results], indent=1))
    return 0 if all(r.ok for r in results) else 1
