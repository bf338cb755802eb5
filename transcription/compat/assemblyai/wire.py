"""AssemblyAI Universal-Streaming's server messages, and the session events they are made from.

The contract is the SDK's pydantic models (`assemblyai.streaming.v3.models`): Begin, Turn,
Termination, Error, Warning. Times are integer milliseconds from the stream's start.

One of our segments is one AssemblyAI turn: its interim text becomes partial Turns (end_of_turn
false; `transcript` holds the words that stopped changing, `words` all of them), its final the
end-of-turn Turn, unformatted as AssemblyAI's are (lower case, no punctuation), followed, when
format_turns is on, by the same turn formatted (Whisper's own casing and punctuation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from speech import events

# Close codes and messages (AssemblyAI's "Common session errors and closures").
CLOSE_NORMAL = 1000
CLOSE_UNAUTHORIZED = 1008
CLOSE_SERVER_ERROR = 3005
CLOSE_INPUT_INVALID = 3006
CLOSE_AUDIO_DURATION = 3007
CLOSE_SESSION_EXPIRED = 3008
CLOSE_TOO_MANY_SESSIONS = 3009
CLOSE_IDLE = 4031
CLOSE_TRY_LATER = 1013
SESSION_EXPIRED = "Session Expired: Maximum session duration exceeded"
SESSION_IDLE = "Session idle for too long"

# end_of_turn_confidence of an end-of-turn Turn, from what closed it: our verdicts are coarse
# (speech.turns), so this is the verdict's level, not a calibrated probability.
END_CONFIDENCE = {"complete": 1.0, "finalize": 1.0, "stop": 1.0, "unsure": 0.5, "silence": 0.5}
_PUNCT = re.compile(r"[^\w\s'-]|(?<!\w)['-]|['-](?!\w)")


def begin(session_id: str, expires_at: int, speech_model: str) -> dict[str, Any]:
    return {
        "type": "Begin",
        "id": session_id,
        "expires_at": expires_at,
        "configuration": {"model": speech_model},
    }


def termination(audio_s: float, session_s: float) -> dict[str, Any]:
    return {
        "type": "Termination",
        "audio_duration_seconds": round(audio_s),
        "session_duration_seconds": round(session_s),
    }


def error(code: int, message: str) -> dict[str, Any]:
    return {"type": "Error", "error_code": code, "error": message}


def warning(code: int, message: str) -> dict[str, Any]:
    return {"type": "Warning", "warning_code": code, "warning": message}


def unformatted(text: str) -> str:
    """AssemblyAI's unformatted transcript: lower case, no punctuation (apostrophes kept in words)."""
    return " ".join(_PUNCT.sub(" ", text).lower().split())


def ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def word(text: str, start_s: float, end_s: float, confidence: float, final: bool) -> dict[str, Any]:
    return {
        "text": text,
        "start": ms(start_s),
        "end": max(ms(start_s), ms(end_s)),
        "confidence": round(float(confidence), 4),
        "word_is_final": final,
    }


@dataclass
class _Turn:
    order: int | None  # None until its first message is sent
    start_s: float
    eager: str | None = None  # the end-of-turn verdict, once the turn probably ended
    final: events.Final | None = None  # held until the turn's end event says how it ended
    words: list[str] = field(default_factory=list)


class TurnEncoder:
    """A stream's session events as Turn messages; keeps each turn's order number."""

    def __init__(self, *, format_turns: bool, language_detection: bool) -> None:
        self.format_turns = format_turns
        self.language_detection = language_detection
        self._next_order = 0
        self._turns: dict[str, _Turn] = {}

    def _order(self, turn: _Turn) -> int:
        if turn.order is None:
            turn.order = self._next_order
            self._next_order += 1
        return turn.order

    def encode(self, event: events.SessionEvent, *, now_s: float) -> list[dict[str, Any]]:
        """The messages `event` becomes (`now_s`: how much audio the stream has received)."""
        if isinstance(event, events.SpeechStarted):
            start = event.first_voiced_s if event.first_voiced_s is not None else event.timing.start_s
            self._turns[event.segment_id] = _Turn(None, start)
        elif isinstance(event, events.Interim):
            return self._partial(event, now_s)
        elif isinstance(event, events.Final):
            turn = self._turns.setdefault(event.segment_id, _Turn(None, event.timing.start_s))
            if event.end_reason in ("silence", "finalize", "stop"):
                turn.final = event  # its Turn(end) follows at once and says how the turn ended
                return []
            return self._end(event.segment_id, event, event.end_reason)
        elif isinstance(event, events.Turn):
            turn = self._turns.get(event.segment_id)
            if turn is None:
                return []
            if event.state == events.TURN_EAGER_END:
                turn.eager = event.reason
            elif event.state == events.TURN_RESUMED:
                turn.eager = None
            elif event.state == events.TURN_END and turn.final is not None:
                return self._end(event.segment_id, turn.final, event.reason or turn.final.end_reason)
        return []

    def _partial(self, event: events.Interim, now_s: float) -> list[dict[str, Any]]:
        turn = self._turns.get(event.segment_id)
        words = unformatted(event.text).split()
        if turn is None or not words:
            return []
        stable = len(unformatted(event.stable_text).split())
        # Interim text has no word timings: its words share the turn's span so far, in order.
        span = max(now_s - turn.start_s, 0.001) / len(words)
        confidence = event.confidence
        listed = [
            word(w, turn.start_s + i * span, turn.start_s + (i + 1) * span, confidence, i < stable)
            for i, w in enumerate(words)
        ]
        return [
            {
                "type": "Turn",
                "turn_order": self._order(turn),
                "turn_is_formatted": False,
                "end_of_turn": False,
                "transcript": " ".join(words[:stable]),
                "end_of_turn_confidence": 0.5 if turn.eager == "complete" else 0.0,
                "words": listed,
            }
        ]

    def _end(self, segment_id: str, final: events.Final, how: str) -> list[dict[str, Any]]:
        turn = self._turns.pop(segment_id)
        if not final.text.strip() and turn.order is None:
            return []  # nothing was heard and nothing was shown: no turn
        offset = final.timing.start_s
        timed = [
            (w["word"].strip(), offset + w["start"], offset + w["end"], w.get("probability", 0.0))
            for w in (final.words or [])
            if w["word"].strip()
        ]
        plain = [(unformatted(t), s, e, p) for t, s, e, p in timed]
        plain = [item for item in plain if item[0]]
        base = {
            "type": "Turn",
            "turn_order": self._order(turn),
            "end_of_turn": True,
            "end_of_turn_confidence": END_CONFIDENCE.get(how, 0.0),
        }
        if self.language_detection:
            # The language the model transcribed in; Whisper gives no confidence for it per turn.
            base.update(language_code=final.language or "en", language_confidence=1.0)
        messages = [
            {
                **base,
                "turn_is_formatted": False,
                "transcript": " ".join(t for t, *_ in plain) or unformatted(final.text),
                "words": [word(t, s, e, p, True) for t, s, e, p in plain],
            }
        ]
        if self.format_turns:
            messages.append(
                {
                    **base,
                    "turn_is_formatted": True,
                    "transcript": final.text.strip(),
                    "words": [word(t, s, e, p, True) for t, s, e, p in timed],
                }
            )
        return messages
