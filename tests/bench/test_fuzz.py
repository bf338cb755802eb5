"""bench.fuzz: a short coverage-guided run of every parser that takes client bytes finds nothing
unexpected, and the harness does report a parser that fails (exceptions, bad codes, crashes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="bench.fuzz needs atheris (requirements-dev)")

from bench.fuzz import cli, libfuzzer
from bench.fuzz.harness import ROOT
from bench.fuzz.targets import TARGETS

SHORT_INPUTS = 2000


def _run(tmp: Path, targets: str, inputs: int, jobs: int = 1) -> list[cli.Result]:
    args = cli.parse_args(["--targets", targets, "--inputs", str(inputs), "--seed", "1", "--jobs", str(jobs)])
    args.out = tmp
    return cli.run(args)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> dict[str, cli.Result]:
    """Every target once, 2,000 inputs each, two at a time (about 15 s of CPU on 2 cores)."""
    results = _run(tmp_path_factory.mktemp("fuzz"), ",".join(TARGETS), SHORT_INPUTS, jobs=2)
    return {r.target: r for r in results}


@pytest.mark.parametrize("name", list(TARGETS))
def test_target_runs_its_inputs_with_no_unexpected_exception(short_run, name):
    result = short_run[name]
    assert result.rc == 0, open(result.log).read()[-3000:]
    assert result.inputs >= SHORT_INPUTS, open(result.log).read()[-3000:]
    assert result.cov, "libFuzzer saw no coverage: the parser was not instrumented"
    assert result.findings == [], "\n\n".join(f["traceback"] for f in result.findings)
    assert result.crash is None
    assert result.ok


def test_a_broken_parser_is_reported_and_fails_the_run(tmp_path):
    target, report = "tests.bench.fuzz_broken:BROKEN", tmp_path / "results.json"
    args = [
        "--targets",
        target,
        "--inputs",
        "300",
        "--seed",
        "1",
        "--out",
        str(tmp_path),
        "--json",
        str(report),
    ]
    assert cli.main(args) == 1
    (result,) = json.loads(report.read_text())
    assert result["inputs"] >= 300  # it went on past the first exception
    found = {f["type"]: f for f in result["findings"]}
    assert {"RecursionError", "KeyError", "InvariantError"} <= set(found)
    assert "no_such_code" in found["InvariantError"]["message"]
    assert found["KeyError"]["raised_at"].startswith("tests/bench/fuzz_broken.py:")
    assert found["RecursionError"]["count"] >= 1
    for finding in found.values():
        reproducer = Path(finding["reproducer"])
        assert reproducer.read_bytes(), "the reproducer holds the input"
        assert "Traceback" in reproducer.with_suffix(".txt").read_text()


def test_a_reproducer_replays(tmp_path):
    (result,) = _run(tmp_path, "tests.bench.fuzz_broken:BROKEN", 100)
    key_error = next(f for f in result.findings if f["type"] == "KeyError")
    replay = [sys.executable, "-m", "bench.fuzz", "--targets", "tests.bench.fuzz_broken:BROKEN"]
    done = subprocess.run(
        [*replay, "--replay", key_error["reproducer"]], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "KeyError: 'options'" in done.stdout + done.stderr


def test_a_native_crash_is_reported(tmp_path):
    (result,) = _run(tmp_path, "tests.bench.fuzz_broken:CRASHING", 100)
    assert result.crash == "deadly signal"
    assert result.crash_input and Path(result.crash_input).read_bytes().startswith(b"boom")
    assert not result.ok


def test_libfuzzer_output_is_read():
    log = (
        "#2\tINITED cov: 3 ft: 4 corp: 1/1b exec/s: 0 rss: 40Mb\n"
        "#9\tNEW    cov: 7 ft: 9 corp: 2/5b lim: 4 exec/s: 0 rss: 40Mb L: 4/4 MS: 1 InsertByte-\n"
        "#10\tDONE   cov: 7 ft: 9 corp: 2/5b lim: 4 exec/s: 0 rss: 40Mb\n"
        "stat::number_of_executed_units: 10\nstat::peak_rss_mb:              40\n"
    )
    run = libfuzzer.parse(log)
    assert (run.cov, run.ft, run.corpus, run.executed, run.peak_rss_mb, run.crash) == (7, 9, 2, 10, 40, None)
