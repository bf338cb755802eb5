"""Credentials never reach a log: Daphne's access log (a real server) and the log records of LOGGING."""

from __future__ import annotations

import logging
import secrets
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from sttproject.redact import MASK, RedactCredentials, redact
from tests.live_server import daphne_server

KEY = "stt_ab12cd34ef_" + secrets.token_urlsafe(32)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwianRpIjoiYWJjIn0.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"GET /api/v1/sessions/?api_key={KEY}&page=2", f"GET /api/v1/sessions/?api_key={MASK}&page=2"),
        (f"/v1/listen?model=nova&KEY={KEY}", f"/v1/listen?model=nova&KEY={MASK}"),
        (
            "/x?token=abc&access_token=def&Authorization=Bearer+x",
            f"/x?token={MASK}&access_token={MASK}&Authorization={MASK}",
        ),
        ("/ws/transcribe?resume=8001.secret-part&lang=en", f"/ws/transcribe?resume={MASK}&lang=en"),
        ("/x?api%5Fkey=plain-secret", f"/x?api%5Fkey={MASK}"),
        # Shaped like a key or a token, whatever the parameter or place.
        (f"/x?q={KEY}", f"/x?q=stt_ab12cd34ef_{MASK}"),
        (f"/keys/{KEY}/", f"/keys/stt_ab12cd34ef_{MASK}/"),
        (f"/x?t={JWT}#frag", f"/x?t={MASK}#frag"),
        (f"Bearer {JWT}", f"Bearer {MASK}"),
        # Nothing else is touched.
        ("/api/v1/sessions/?page=2&q=keynote&ordering=-started_at", None),
        ("/api/v1/keys/17/ key=", None),
        ("upload 9b929de1-1ba4-4a1a-a386-bc42a6076f7e failed", None),
    ],
)
def test_redact_masks_credentials_and_keeps_the_rest(line, expected):
    assert redact(line) == (line if expected is None else expected)


def test_the_configured_handlers_mask_every_record():
    handlers = [
        h for h in logging.getLogger().handlers if any(isinstance(f, RedactCredentials) for f in h.filters)
    ]
    assert handlers, "settings.LOGGING's console handler has no RedactCredentials filter"
    record = logging.LogRecord(
        "django.channels.server",
        logging.INFO,
        __file__,
        1,
        "HTTP %(method)s %(path)s %(status)s",
        ({"method": "GET", "path": f"/api/v1/sessions/?api_key={KEY}", "status": 403},),
        None,
    )
    assert all(handler.filter(record) for handler in handlers)
    assert KEY.rsplit("_", 1)[1] not in record.getMessage()
    assert record.getMessage() == f"HTTP GET /api/v1/sessions/?api_key={MASK} 403"


@pytest.mark.slow
@pytest.mark.parametrize("serve", [True, False], ids=["manage.py serve", "daphne"])
def test_a_key_or_token_in_a_query_string_is_masked_in_daphnes_access_log(tmp_path, serve):
    secret = KEY.split("_", 2)[2]
    extra = {"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    with daphne_server(tmp_path, extra, serve=serve) as (base, _env, proc):
        for path in (
            f"/api/v1/sessions/?api_key={KEY}&page=2",
            f"/api/v1/usage/?token={JWT}",
            f"/health?key={KEY}",
        ):
            try:
                urlopen(base + path, timeout=10).close()
            except HTTPError as refused:  # a key in a URL is refused (401), and logged
                assert refused.code in (401, 403)
        proc.terminate()
        proc.wait(20)
    log = (tmp_path / "daphne.log").read_text()
    assert '"GET /api/v1/sessions/?api_key=[redacted]&page=2"' in log, log[-3000:]
    assert '"GET /api/v1/usage/?token=[redacted]"' in log and '"GET /health?key=[redacted]"' in log
    assert secret not in log and JWT.split(".")[2] not in log
