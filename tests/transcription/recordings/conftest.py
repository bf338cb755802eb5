"""Stored audio lands in a per-test folder."""

from __future__ import annotations

import pytest
from django.core.files.storage import FileSystemStorage

from transcription.models import TranscriptionSession


@pytest.fixture
def audio_dir(settings, tmp_path, monkeypatch):
    """The audio storage, a folder of this test's. Django builds a FileField's storage once, when the
    model is defined, so the field's storage is swapped (a server under test reads STT_AUDIO_DIR)."""
    folder = tmp_path / "audio"
    monkeypatch.setattr(
        TranscriptionSession._meta.get_field("audio_file"), "storage", FileSystemStorage(location=str(folder))
    )
    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "DIR": folder}
    return folder
