"""A stored session with enrichment (speakers, sentiment, topics, filters), made through the services."""

from __future__ import annotations

from transcription import services
from transcription.models import Endpoint, TranscriptionSession

# (speaker, text, sentiment, score) per segment; segment i spans [i * 4 + 0.5, i * 4 + 3.5].
LINES = [
    ("speaker_1", "Welcome to the budget review.", "positive", 0.82),
    ("speaker_2", "The numbers look bad this quarter.", "negative", 0.77),
    ("speaker_1", "We will cut the travel budget.", "neutral", 0.55),
]
TOPICS = [
    {"topic": "Budget review", "confidence": 0.91, "mentions": [0, 2]},
    {"topic": "travel budget", "confidence": 0.64, "mentions": [2]},
    {"topic": "quarter numbers", "confidence": 0.4, "mentions": [1]},
]


def analysis_after(count: int) -> dict:
    """The enrichment snapshot after the first `count` lines, as SessionEnricher.snapshot() gives it."""
    speakers: dict[str, dict] = {}
    for index, (label, *_rest) in enumerate(LINES[:count]):
        entry = speakers.setdefault(label, {"speaking_time_s": 0.0, "segments": []})
        entry["speaking_time_s"] += 3.0
        entry["segments"].append(index)
    return {
        "speakers": speakers,
        "sentiment": {
            "overall": {"label": "neutral", "score": 0.12},
            "by_sentence": [
                {"text": text, "sentiment": sentiment, "score": score}
                for _label, text, sentiment, score in LINES[:count]
            ],
        },
        "topics": TOPICS,
        "filters": {"profanity": {"detected": True, "filtered_words": ["d***"]}, "redacted": {"pci": 1}},
    }


def store_enriched_session(
    user, *, endpoint: str = Endpoint.WS_TRANSCRIBE, lines=LINES, analysis: bool = True
) -> TranscriptionSession:
    """A finished session whose segments carry speakers and sentiment, with its analysis stored."""
    session = services.session_start(user=user, endpoint=endpoint, language="en", sample_rate=16000)
    for index, (label, text, sentiment, score) in enumerate(lines):
        start = index * 4.0 + 0.5
        services.segment_finalize(
            session=session,
            index=index,
            segment_id=f"s{index}",
            start_s=start,
            end_s=start + 3.0,
            text=text,
            confidence=0.9,
            language="en",
            speaker=label,
            sentiment=sentiment,
            sentiment_score=score,
            latency_ms=300.0,
            analysis=analysis_after(index + 1) if analysis else None,
        )
    services.session_end(session=session, end_reason="client_disconnected")
    return TranscriptionSession.objects.select_related("transcript").get(pk=session.pk)
