"""The speech core, free of Django, Channels and DRF: audio, voice activity, segments, sessions, inference."""
