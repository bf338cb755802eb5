"""Range requests on stored audio: Werkzeug's parser, our answers (206, 416, or the whole file)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from transcription.recordings.serve import byte_range, ranged_response

LENGTH = 1000


@pytest.mark.parametrize(
    ("header", "status", "start", "stop"),
    [
        (None, 200, 0, LENGTH),
        ("bytes=100-199", 206, 100, 200),
        ("bytes=0-0", 206, 0, 1),
        ("bytes=-300", 206, 700, LENGTH),  # suffix: the last 300 bytes
        ("bytes=-5000", 206, 0, LENGTH),  # a suffix longer than the file: all of it
        ("bytes=900-", 206, 900, LENGTH),  # open range
        ("bytes=990-5000", 206, 990, LENGTH),  # past the end: clipped
        ("bytes=1000-", 416, 0, 0),  # starts at the end
        ("bytes=2000-3000", 416, 0, 0),
        ("bytes=5-2", 200, 0, LENGTH),  # malformed: ignored
        ("bytes=abc", 200, 0, LENGTH),
        ("items=0-10", 200, 0, LENGTH),  # another unit: ignored
        ("bytes=0-9,20-29", 200, 0, LENGTH),  # several ranges: the whole file (allowed by RFC 9110)
    ],
)
def test_byte_range(header, status, start, stop):
    part = byte_range(header, LENGTH)
    assert (part.status, part.start, part.stop) == (status, start, stop)


def test_content_range_of_each_status():
    assert byte_range("bytes=100-199", LENGTH).content_range == "bytes 100-199/1000"
    assert byte_range("bytes=-1", LENGTH).content_range == "bytes 999-999/1000"
    assert byte_range("bytes=4000-", LENGTH).content_range == "bytes */1000"
    assert byte_range(None, LENGTH).content_range is None


def test_an_empty_file_has_no_satisfiable_range():
    assert byte_range("bytes=0-", 0).status == 416
    assert byte_range(None, 0).status == 200


@pytest.fixture
def stored(tmp_path):
    storage = FileSystemStorage(location=str(tmp_path))
    data = bytes(range(256)) * 300  # 76,800 bytes: more than one read chunk
    name = storage.save("a/b.ogg", ContentFile(data))
    return storage, name, data


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize(
    ("header", "status", "piece"),
    [
        (None, 200, slice(None)),
        ("bytes=100-199", 206, slice(100, 200)),
        ("bytes=-70000", 206, slice(6800, None)),
        ("bytes=65530-65545", 206, slice(65530, 65546)),  # across a chunk boundary
        ("bytes=70000-", 206, slice(70000, None)),
    ],
)
def test_ranged_response_sends_exactly_those_bytes(stored, header, status, piece):
    storage, name, data = stored
    response = ranged_response(storage=storage, name=name, content_type="audio/ogg", range_header=header)
    assert response.status_code == status
    assert _body(response) == data[piece]
    assert response["Content-Length"] == str(len(data[piece]))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "audio/ogg"
    if status == 206:
        first = piece.start if piece.start is not None else 0
        assert response["Content-Range"] == f"bytes {first}-{first + len(data[piece]) - 1}/{len(data)}"
    else:
        assert "Content-Range" not in response


def test_ranged_response_416(stored):
    storage, name, data = stored
    response = ranged_response(
        storage=storage, name=name, content_type="audio/ogg", range_header="bytes=99999-"
    )
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(data)}"
    assert response["Accept-Ranges"] == "bytes"
