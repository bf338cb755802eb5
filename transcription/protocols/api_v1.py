"""/api/v1/ws (seeds/001): raw PCM16 16 kHz mono in, each final transcript out as plain text."""

from __future__ import annotations

SAMPLE_RATE = 16000
# The provider serving this endpoint (settings.STT_PROVIDER). The source document also names
# "groq" and "deepgram": hosted services this server does not call, so they are refused too.
SUPPORTED_PROVIDERS = ("faster_whisper",)

# Every text message is a transcript, so errors travel only as close codes (and close reasons).
CLOSE_UNSUPPORTED_DATA = 1003  # a text message: this endpoint accepts binary audio only


def provider_error(provider: str) -> str | None:
    """Why `provider` cannot serve /api/v1/ws, or None when it can."""
    if provider in SUPPORTED_PROVIDERS:
        return None
    return f"STT_PROVIDER={provider!r} is not supported; supported values: {', '.join(SUPPORTED_PROVIDERS)}."


class PcmStream:
    """Cuts a PCM16 byte stream into whole samples; a message may end half-way through a sample.

    The document's clients send "binary audio data" of any length, so an odd trailing byte is
    kept for the next message rather than refused.
    """

    def __init__(self) -> None:
        self._carry = b""

    def push(self, data: bytes) -> bytes:
        data = self._carry + data
        cut = len(data) - len(data) % 2
        self._carry = data[cut:]
        return data[:cut]

    @property
    def pending(self) -> int:
        return len(self._carry)


def close_reason(code: str, message: str) -> str:
    """A WebSocket close reason (at most 123 bytes of UTF-8)."""
    reason = f"{code}: {message}" if message else code
    return reason.encode("utf-8")[:123].decode("utf-8", "ignore")
