"""Helpers the targets share: WebSocket text, fields of one input, driving a consumer's handler."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Any

# Each protocol's consumer is given these languages by the bundled model (tiny.en) or a
# multilingual one; the targets run their language checks against both.
ENGLISH_ONLY = ["en"]
MULTILINGUAL = ["en", "de", "fr", "es", "hi", "bn", "ta", "zh", "ja"]
LANGUAGE_SETS = (ENGLISH_ONLY, None, MULTILINGUAL)


def text(data: bytes) -> str:
    """A WebSocket text message: always valid UTF-8 by the time a consumer sees it."""
    return data.decode("utf-8", "replace")


def fields(data: bytes, count: int) -> list[bytes]:
    """The first `count - 1` lines of `data`, then the rest (missing fields are empty)."""
    parts = data.split(b"\n", count - 1)
    return parts + [b""] * (count - len(parts))


def jsons(*values: Any) -> list[bytes]:
    return [json.dumps(value).encode() for value in values]


def drive(coro: Coroutine) -> None:
    """Run a consumer handler whose awaits all complete at once (stubbed I/O) to its end."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("the handler waited on something the fuzz stub does not provide")


async def nothing(*args: Any, **kwargs: Any) -> None:
    return None


def json_tokens(*names: str) -> tuple[bytes, ...]:
    """libFuzzer dictionary entries: JSON punctuation and the quoted names a parser looks for."""
    return (
        b"{",
        b"}",
        b"[",
        b"]",
        b'":',
        b",",
        b"true",
        b"false",
        b"null",
        b"1e309",
        b"-0",
        b"\\u0000",
        *(json.dumps(name).encode() for name in names),
    )


def hostile(before: str, after: str = "") -> list[bytes]:
    """The classic hostile JSON values, each put where a valid message has a value: nesting past
    the recursion limit, a number past float and int limits, NaN, a lone surrogate, a NUL, so
    that these known classes of failure are tried on every run rather than left to chance."""
    values = ("[" * 3000, '{"a":' * 1500, "1e400", "9" * 5000, "NaN", '"\\ud800"', '"a\\u0000b"',
              '["\\udfff", -0.0, 1e-400]')  # fmt: skip
    return [f"{before}{value}{after}".encode() for value in values]
