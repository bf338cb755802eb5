"""What a fuzz target is, and the recorder of the unexpected exceptions one raises (deduplicated)."""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The packages whose functions are instrumented for coverage (what a target's parser lives in).
PROJECT_PACKAGES = ("speech", "transcription", "accounts")


class InvariantError(AssertionError):
    """A parser accepted an input but returned something it documents it never does."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantError(message)


@dataclass(frozen=True)
class Target:
    """One parser under test. `run` takes one input; it returns normally or raises one of
    `expected` (the parser's documented errors). `check_error`, given an expected error, says
    what is wrong with it (an undocumented code, say) or None."""

    name: str
    run: Callable[[bytes], Any]
    expected: tuple[type[BaseException], ...]
    seeds: Sequence[bytes]
    what: str = ""  # the functions fuzzed, for the report
    django: bool = True
    instrument: tuple[str, ...] = PROJECT_PACKAGES
    check_error: Callable[[BaseException], str | None] | None = None
    max_len: int = 4096
    dictionary: Sequence[bytes] = ()
    options: dict[str, Any] = field(default_factory=dict)  # extra libFuzzer flags (name -> value)


def call(target: Target, data: bytes) -> BaseException | None:
    """Run one input; the unexpected exception it raised (None when it behaved)."""
    try:
        target.run(data)
    except target.expected as exc:
        problem = target.check_error(exc) if target.check_error is not None else None
        if problem is not None:
            # Located (and deduplicated) where the parser raised the error it got wrong.
            wrong = InvariantError(f"{problem} ({describe(exc)})").with_traceback(exc.__traceback__)
            wrong.__cause__ = exc
            return wrong
    except Exception as exc:
        return exc
    return None


def _own(frame: traceback.FrameSummary) -> bool:
    """Whether the frame runs this project's code (not a library's, nor a Cython module's bare name)."""
    path = Path(frame.filename)
    return path.is_absolute() and path.is_relative_to(ROOT) and not path.is_relative_to(ROOT / ".venv")


def _where(frame: traceback.FrameSummary) -> str:
    path = Path(frame.filename)
    shown = path.relative_to(ROOT) if _own(frame) else path
    return f"{shown}:{frame.lineno} in {frame.name}"


def locate(exc: BaseException) -> tuple[str, str]:
    """(where it was raised, the innermost frame of this project's code on the way)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?", "?"
    own = [f for f in frames if _own(f)]
    return _where(frames[-1]), _where(own[-1] if own else frames[-1])


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


class Recorder:
    """Counts inputs, keeps one reproducer per distinct (type, location) and saves its stats."""

    def __init__(self, target: str, out_dir: Path, stats_path: Path | None) -> None:
        self.target = target
        self.out_dir = out_dir
        self.stats_path = stats_path
        self.inputs = 0
        self.started: float | None = None
        self.last_input: float | None = None
        self.findings: dict[str, dict[str, Any]] = {}
        self._saved = 0.0

    def seen(self) -> None:
        now = time.time()
        if self.started is None:
            self.started = now
            self.save()
        self.inputs += 1
        self.last_input = now
        if now - self._saved > 1.0:
            self.save()

    def add(self, exc: BaseException, data: bytes) -> None:
        raised, own = locate(exc)
        key = f"{type(exc).__name__} at {raised} ({own})"
        known = self.findings.get(key)
        if known is not None:
            known["count"] += 1
            return
        digest = hashlib.sha1(data).hexdigest()[:12]
        folder = self.out_dir / self.target
        folder.mkdir(parents=True, exist_ok=True)
        reproducer = folder / f"{type(exc).__name__}-{digest}.bin"
        reproducer.write_bytes(data)
        tb = "".join(traceback.format_exception(exc))
        replay = f"python -m bench.fuzz --targets {self.target} --replay {reproducer}"
        reproducer.with_suffix(".txt").write_text(f"{describe(exc)}\n{key}\n\nreplay: {replay}\n\n{tb}")
        self.findings[key] = {
            "type": type(exc).__name__,
            "message": str(exc)[:300],
            "raised_at": raised,
            "own_frame": own,
            "reproducer": str(reproducer),
            "input_head": data[:120].decode("latin-1"),
            "input_bytes": len(data),
            "traceback": tb[-4000:],
            "count": 1,
        }
        self.save()

    def snapshot(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "inputs": self.inputs,
            "started": self.started,
            "last_input": self.last_input,
            "findings": list(self.findings.values()),
        }

    def save(self) -> None:
        self._saved = time.time()
        if self.stats_path is None:
            return
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        os.replace(tmp, self.stats_path)
