"""Prometheus metrics of streams: open streams and speakers, refused admissions, audio in, errors out.

Per process (gauges in `livesum` mode add up across the Daphne processes of a host). Labels are endpoints
(a fixed list), refusal reasons and error codes (constants of the code, capped by `BoundChildren`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from speech.telemetry import BoundChildren

ACTIVE_STREAMS = Gauge(
    "stt_active_streams",
    "Streams admitted and not yet finished, in this process.",
    ["endpoint"],
    multiprocess_mode="livesum",
)
ACTIVE_SPEAKERS = Gauge(
    "stt_active_speakers",
    "Streams holding an active-speaker place (speaking now), in this process.",
    ["endpoint"],
    multiprocess_mode="livesum",
)
ADMISSIONS_REFUSED = Counter(
    "stt_admissions_refused_total", "Streams refused at admission, by the refusal's code.", ["reason"]
)
AUDIO_RECEIVED = Counter(
    "stt_audio_received_seconds_total", "Seconds of audio fed to streaming sessions.", ["endpoint"]
)
CLIENT_ERRORS = Counter(
    "stt_client_errors_total", "Error messages sent to streaming clients, by error code.", ["code"]
)

refused = BoundChildren(ADMISSIONS_REFUSED)
_errors = BoundChildren(CLIENT_ERRORS)


def error_sent(code: str) -> None:
    _errors(code).inc()


class StreamTelemetry:
    """One stream's share of the gauges (bound once per stream; `audio` is incremented per packet)."""

    __slots__ = ("_open", "_speakers", "_speaking", "_streams", "audio")

    def __init__(self, endpoint: str) -> None:
        self.audio = AUDIO_RECEIVED.labels(endpoint)
        self._streams = ACTIVE_STREAMS.labels(endpoint)
        self._speakers = ACTIVE_SPEAKERS.labels(endpoint)
        self._open = False
        self._speaking = False

    def opened(self) -> None:
        if not self._open:
            self._open = True
            self._streams.inc()

    def speaking(self, speaking: bool) -> None:
        if speaking != self._speaking:
            self._speaking = speaking
            if speaking:
                self._speakers.inc()
            else:
                self._speakers.dec()

    def closed(self) -> None:
        """Idempotent: the stream's place and speaker place are given back."""
        self.speaking(False)
        if self._open:
            self._open = False
            self._streams.dec()
