"""Upload tests share the history API's fixtures (users, clients, stored sessions, the upload runner)."""

from __future__ import annotations

from tests.transcription.api.conftest import (  # noqa: F401 (fixtures)
    fake_engine,
    make_session,
    staff,
    upload_dir,
)
