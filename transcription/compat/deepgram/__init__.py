"""Deepgram's /v1/listen: live (WebSocket) and pre-recorded (POST)."""
