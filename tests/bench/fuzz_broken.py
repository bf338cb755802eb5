"""Deliberately broken parsers for tests/bench/test_fuzz.py: the harness must report them."""

from __future__ import annotations

import json
import os

from bench.fuzz.harness import Target
from bench.fuzz.targets.common import hostile, text


class ParseError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _parse(data: bytes) -> None:
    """A command parser with the classic mistakes: RecursionError from deep nesting escapes (only
    ValueError is caught), a KeyError on a missing field, and an error code nobody documented."""
    try:
        command = json.loads(text(data))
    except ValueError:
        raise ParseError("invalid_json") from None
    if isinstance(command, dict) and command.get("type") == "start":
        command["options"]["language"]
    if command == "undocumented":
        raise ParseError("no_such_code")


BROKEN = Target(
    name="broken",
    what="a JSON command parser that lets RecursionError and KeyError escape",
    run=_parse,
    expected=(ParseError,),
    check_error=lambda exc: None if exc.code == "invalid_json" else f"undocumented code {exc.code!r}",
    seeds=[*hostile('{"type": "ping", "x": ', "}"), b'{"type": "start"}', b'"undocumented"'],
    instrument=("tests.bench.fuzz_broken",),
)


def _abort(data: bytes) -> None:
    if data.startswith(b"boom"):
        os.abort()  # a native crash: libFuzzer's deadly signal, not a Python exception


CRASHING = Target(name="crashing", run=_abort, expected=(), seeds=[b"ok", b"boom"], instrument=())
