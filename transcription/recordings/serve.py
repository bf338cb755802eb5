"""Stored audio answered with HTTP range requests (RFC 9110 §14), so a player can seek.

The `Range` header is parsed by Werkzeug's `parse_range_header`. One satisfiable byte range answers
206 with `Content-Range`; a single range past the end answers 416 with `Content-Range: bytes */<length>`;
no header, another unit, a malformed header or several ranges answer the whole file (200), as the RFC
allows. Every answer says `Accept-Ranges: bytes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.core.files.storage import Storage
from django.http import HttpResponse, StreamingHttpResponse
from werkzeug.http import parse_range_header

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ByteRange:
    """What to send of a `length`-byte file: [start, stop), with its status (200, 206 or 416)."""

    status: int
    start: int
    stop: int
    length: int

    @property
    def content_range(self) -> str | None:
        if self.status == 206:
            return f"bytes {self.start}-{self.stop - 1}/{self.length}"
        if self.status == 416:
            return f"bytes */{self.length}"
        return None


def byte_range(header: str | None, length: int) -> ByteRange:
    """The part of a `length`-byte file a `Range` header asks for."""
    whole = ByteRange(200, 0, length, length)
    parsed = parse_range_header(header) if header else None
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return whole
    first, _ = parsed.ranges[0]
    if first < 0 and length > 0:
        # A suffix longer than the file is all of it (RFC 9110 §14.1.2); Werkzeug refuses it.
        first = max(0, length + first)
        return ByteRange(206, first, length, length)
    span = parsed.range_for_length(length)
    if span is None:
        return ByteRange(416, 0, 0, length)
    return ByteRange(206, span[0], span[1], length)


def _read(storage: Storage, name: str, start: int, stop: int) -> Iterator[bytes]:
    with storage.open(name, "rb") as handle:
        handle.seek(start)
        left = stop - start
        while left > 0:
            chunk = handle.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def ranged_response(
    *, storage: Storage, name: str, content_type: str, range_header: str | None, head: bool = False
) -> HttpResponse:
    """The stored file `name` (or the part the `Range` header asks for)."""
    length = storage.size(name)
    part = byte_range(range_header, length)
    if part.status == 416:
        response: HttpResponse = HttpResponse(status=416)
    elif head:
        response = HttpResponse(status=part.status, content_type=content_type)
    else:
        response = StreamingHttpResponse(
            _read(storage, name, part.start, part.stop), status=part.status, content_type=content_type
        )
    if part.status != 416:
        response["Content-Length"] = str(part.stop - part.start)
    if part.content_range is not None:
        response["Content-Range"] = part.content_range
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response
