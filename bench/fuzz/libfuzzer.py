"""What a libFuzzer run printed: coverage, final stats, and why it stopped if it crashed."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COV = re.compile(r"\bcov: (\d+)")
_FT = re.compile(r"\bft: (\d+)")
_CORP = re.compile(r"\bcorp: (\d+)/")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_DEADLY = re.compile(r"==\d+== ERROR: libFuzzer: (.+)")
_UNIT = re.compile(r"Test unit written to (\S+)")
_PY_UNCAUGHT = re.compile(r"=== Uncaught Python exception: ===\n(.+)")


@dataclass
class Run:
    cov: int | None = None  # edges covered in the instrumented code
    ft: int | None = None  # libFuzzer's features (edges with hit counts, comparisons)
    corpus: int | None = None  # inputs kept as interesting
    executed: int | None = None  # stat::number_of_executed_units
    peak_rss_mb: int | None = None
    crash: str | None = None  # libFuzzer's reason for stopping early (timeout, OOM, signal)
    crash_input: str | None = None


def parse(log: str) -> Run:
    run = Run()
    for line in log.splitlines():
        if "corp:" in line and line.startswith("#"):
            for pattern, name in ((_COV, "cov"), (_FT, "ft"), (_CORP, "corpus")):
                found = pattern.search(line)
                if found:
                    setattr(run, name, int(found.group(1)))
    stats = dict(_STAT.findall(log))
    if "number_of_executed_units" in stats:
        run.executed = int(stats["number_of_executed_units"])
    if "peak_rss_mb" in stats:
        run.peak_rss_mb = int(stats["peak_rss_mb"])
    error = _DEADLY.search(log)
    uncaught = _PY_UNCAUGHT.search(log)
    if error:
        run.crash = error.group(1).strip()
    elif uncaught:
        run.crash = f"uncaught Python exception: {uncaught.group(1).strip()}"
    unit = _UNIT.search(log)
    if unit:
        run.crash_input = unit.group(1)
    return run
