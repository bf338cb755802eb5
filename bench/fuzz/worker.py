"""One fuzz target in this process: `python -m bench.fuzz.worker --target NAME ...` (bench.fuzz runs it).

atheris.Setup/Fuzz run once per process and libFuzzer stops at the first uncaught exception, so
every exception is caught in the callback: the documented ones are the parser's answer, any other
is recorded (one reproducer per type and location) and fuzzing goes on. The stats are written to
`--stats` as JSON while it runs; libFuzzer's own lines (coverage, final stats) go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import traceback
from pathlib import Path

from bench.fuzz.harness import Recorder, Target, call, describe
from bench.fuzz.targets import load


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")
    import django

    django.setup()


def _instrument(atheris, prefixes: tuple[str, ...]) -> int:
    """Coverage instrumentation of the already-imported functions of `prefixes`' modules."""
    from atheris.instrument_bytecode import _is_instrumentable

    def wanted(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    count = 0
    for obj in gc.get_objects():
        if _is_instrumentable(obj) and wanted(getattr(obj, "__module__", "") or ""):
            try:
                atheris.instrument_func(obj)
                count += 1
            except Exception as exc:
                print(f"INFO: not instrumented {obj!r}: {exc}", file=sys.stderr)
    return count


def _quote(token: bytes) -> str:
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in token) + '"'


def _corpus(target: Target, folder: Path) -> Path:
    seeds = folder / "corpus"
    seeds.mkdir()
    for i, seed in enumerate(target.seeds):
        (seeds / f"seed-{i:03d}").write_bytes(seed)
    return seeds


def _libfuzzer_args(args, target: Target, folder: Path) -> list[str]:
    flags = {
        "runs": args.inputs,
        "max_len": target.max_len,
        "timeout": args.input_timeout,
        "rss_limit_mb": args.rss_limit_mb,
        "print_final_stats": 1,
        "artifact_prefix": str(args.out / target.name) + "/",
        "seed": args.seed,
        **target.options,
    }
    if args.seconds:
        flags["max_total_time"] = args.seconds
    if target.dictionary:
        path = folder / "dictionary"
        path.write_text("".join(f"{_quote(token)}\n" for token in target.dictionary))
        flags["dict"] = str(path)
    return [f"-{name}={value}" for name, value in flags.items()]


def replay(target: Target, path: Path) -> int:
    exc = call(target, path.read_bytes())
    if exc is None:
        print(f"{target.name}: {path}: no unexpected exception")
        return 0
    print(f"{target.name}: {path}: {describe(exc)}")
    traceback.print_exception(exc)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=0, help="stop after this long (0: no cap)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's seed (0: random)")
    parser.add_argument("--input-timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument(
        "--work", type=Path, help="scratch folder for the corpus (default: a new temporary one)"
    )
    parser.add_argument("--replay", type=Path, help="run this one input and print what it raised")
    args = parser.parse_args(argv)

    _setup_django()  # cheap beside a run, and every target under transcription/ needs it
    target = load(args.target)
    if args.replay:
        return replay(target, args.replay)

    import atheris

    instrumented = _instrument(atheris, target.instrument)
    print(f"INFO: {target.name}: {instrumented} functions instrumented", file=sys.stderr)
    (args.out / target.name).mkdir(parents=True, exist_ok=True)
    recorder = Recorder(target.name, args.out, args.stats)

    def one_input(data: bytes) -> None:
        recorder.seen()
        exc = call(target, data)
        if exc is not None:
            recorder.add(exc, data)
        if recorder.inputs >= args.inputs:
            recorder.save()  # libFuzzer exits right after its last run, past any Python hook

    # libFuzzer exits the process when done: the caller removes the scratch folder.
    folder = args.work or Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-"))
    corpus = _corpus(target, folder)
    atheris.Setup([sys.argv[0], *_libfuzzer_args(args, target, folder), str(corpus)], one_input)
    atheris.Fuzz()
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
