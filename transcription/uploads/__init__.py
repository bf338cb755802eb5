"""Uploaded recordings: decoding, the writes that accept and finish them, background jobs, the API."""
