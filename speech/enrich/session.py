"""A session's enrichment: who spoke each final, its sentiment, the session's topics, and the filters.

The CPU work (voice embedding, sentiment, topics) runs in worker threads, never on the event
loop. The voice of a segment is embedded while its final is being transcribed; the text stages
run once the text is known, in segment order so speaker labels are stable; topics are refreshed
in the background (a final never waits for them) and settled when the session ends.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from speech import events
from speech.audio import SAMPLE_RATE
from speech.enrich.options import EnrichOptions
from speech.finals import FinalSegment

log = logging.getLogger(__name__)

# A clip shorter than this says little about its voice: an interim gets no provisional speaker.
INTERIM_SPEAKER_MIN_S = 1.0
# Segments longer than this are embedded in parts, so a change of voice inside one is seen.
LONG_SEGMENT_S = 8.0
PART_S = 3.0
# While a card number is still being spoken its digits are not yet a valid number: interim text
# masks every run of four or more digits when card numbers are redacted.
_DIGIT_RUN = re.compile(r"\d(?:[\s-]?\d){3,}")


class SessionEnricher:
    """Enrichment state of one session (speakers so far, sentiment, topics); see the module doc."""

    def __init__(
        self,
        options: EnrichOptions,
        *,
        encoder: Callable[[], Any] | None = None,
        speaker_threshold: float | None = None,
    ) -> None:
        """`encoder()` returns the voice encoder (speech.enrich.voice.shared_encoder by default)."""
        self.options = options
        self._filter = None
        if options.filters:
            from speech.enrich.filters import TextFilter

            self._filter = TextFilter(profanity=options.profanity_filter, redact=options.redact)
        self._tracker = None
        if options.speakers:
            from speech.enrich import speakers, voice

            threshold = options.speaker_threshold if speaker_threshold is None else speaker_threshold
            kwargs = {} if threshold is None else {"threshold": threshold}
            self._tracker = speakers.SpeakerTracker(max_speakers=options.max_speakers, **kwargs)
            self._encoder = encoder or voice.shared_encoder
        self._sentiment = None
        if options.sentiment:
            from speech.enrich.sentiment import SessionSentiment

            self._sentiment = SessionSentiment()
        self._topics = None
        self._topics_now: list[dict[str, Any]] = []
        self._topics_task: asyncio.Task | None = None
        self._topics_stale = False
        if options.topics:
            from speech.enrich.topics import SessionTopics

            self._topics = SessionTopics()
        self._speaker_segments: dict[str, list[int]] = defaultdict(list)
        self._profanity: list[str] = []
        self._redacted: Counter[str] = Counter()
        self.cost_ms: dict[str, list[float]] = defaultdict(list)  # stage -> CPU ms per final

    @property
    def speakers(self) -> bool:
        return self._tracker is not None

    # -- interim text ------------------------------------------------------------------------

    def mask(self, text: str) -> str:
        """Text with the session's filters applied (interim text: stricter for card numbers)."""
        if self._filter is None or not text:
            return text
        masked = self._filter.apply(text).text
        if "pci" in self.options.redact or "numbers" in self.options.redact:
            masked = _DIGIT_RUN.sub("[PCI]" if "pci" in self.options.redact else "[NUMBER]", masked)
        return masked

    def mask_interim(self, text: str, stable: str, unstable: str) -> tuple[str, str, str]:
        """(text, stable, unstable) masked; a masked span across the split moves wholly to unstable."""
        if self._filter is None:
            return text, stable, unstable
        full, head = self.mask(text), self.mask(stable)
        if stable and full.startswith(head):
            return full, head, full[len(head) :]
        return full, "", full

    def voice(self, audio: np.ndarray) -> asyncio.Future | None:
        """Start embedding a clip's voice in a thread (None when speakers are off or it is too short)."""
        if self._tracker is None or len(audio) < INTERIM_SPEAKER_MIN_S * SAMPLE_RATE:
            return None
        return asyncio.ensure_future(asyncio.to_thread(self._embed_parts, audio))

    async def interim_speaker(self, voice: asyncio.Future | None) -> str | None:
        """The label an open segment's voice would get (the session's speakers are not changed)."""
        parts = await settled(voice)
        if not parts or self._tracker is None:
            return None
        return self._tracker.peek(_mean([p[2] for p in parts]))

    # -- finals --------------------------------------------------------------------------------

    async def enrich(self, final: FinalSegment, voice: asyncio.Future | None) -> None:
        """Fill `final`'s enrichment (masked text, speaker, sentiment, session snapshot) in place."""
        await self.enrich_with(final, await settled(voice))

    async def enrich_with(self, final: FinalSegment, parts: list | None) -> None:
        """As `enrich`, given the segment's voice already embedded (None: no voice)."""
        await asyncio.to_thread(self._enrich, final, parts)
        if self._topics is not None and final.text:
            self._refresh_topics()

    def _enrich(self, final: FinalSegment, parts: list | None) -> None:
        enrichment: dict[str, Any] = {}
        spoken = final.text  # analysed as said; only its masked form is kept or shown
        if self._filter is not None:
            started = time.thread_time()
            filtered = self._filter.apply(final.text)
            final.text = filtered.text
            final.words = self._filter.apply_words(final.words)
            self._profanity.extend(filtered.profanity)
            self._redacted.update(filtered.redacted)
            enrichment["profanity"] = list(filtered.profanity) if self.options.profanity_filter else None
            enrichment["redacted"] = dict(filtered.redacted) if self.options.redact else None
            self._cost("filters", started)
        if self._tracker is not None:
            started = time.thread_time()
            if final.text and parts:
                final.speaker = self._label(final, parts)
                self._speaker_segments[final.speaker].append(final.index)
            enrichment["speakers"] = self.speaker_list()
            self._cost("speakers", started)
        if self._sentiment is not None:
            started = time.thread_time()
            if final.text:
                # Profanity says a lot about sentiment: the spoken text is analysed.
                weight = max(1, len(final.text.split()))
                segment = self._sentiment.add(spoken, weight, shown=self._shown)
                final.sentiment = {"label": segment.label, "score": round(segment.score, 3)}
                enrichment["sentences"] = [
                    {"text": s.text, "sentiment": s.label, "score": round(s.score, 3)}
                    for s in self._sentiment.latest(self.options.sentiment_min_confidence)
                ]
            enrichment["sentiment"] = final.sentiment
            enrichment["session_sentiment"] = self._overall()
            self._cost("sentiment", started)
        if self._topics is not None:
            if final.text:
                self._topics.add(final.index, final.text)
                self._topics_stale = True
            enrichment["topics"] = list(self._topics_now)
        final.enrichment = events.Enrichment(**enrichment) if enrichment else None
        final.analysis = self.snapshot() if enrichment else None

    def _shown(self, text: str) -> str:
        return text if self._filter is None else self._filter.apply(text).text

    def _label(self, final: FinalSegment, parts: list) -> str:
        """The segment's speaker (the voice of most of it); long segments label their words too."""
        if len(parts) == 1:
            return self._tracker.assign(parts[0][2], final.duration_s)
        labelled = [(start, end, self._tracker.assign(vector, end - start)) for start, end, vector in parts]
        time_by: Counter[str] = Counter()
        for start, end, label in labelled:
            time_by[label] += end - start
        for word in final.words:
            # Word timings are relative to the segment's audio, as the parts are.
            middle = (float(word.get("start", 0.0)) + float(word.get("end", 0.0))) / 2
            word["speaker"] = next((lab for s, e, lab in labelled if s <= middle < e), labelled[-1][2])
        return time_by.most_common(1)[0][0]

    def _embed_parts(self, audio: np.ndarray) -> list[tuple[float, float, np.ndarray]]:
        started = time.thread_time()
        encoder = self._encoder()
        duration = len(audio) / SAMPLE_RATE
        if duration > LONG_SEGMENT_S:
            parts = encoder.embed_parts(audio, part_s=PART_S)
        else:
            vector = encoder.embed(audio)
            parts = [] if vector is None else [(0.0, duration, vector)]
        self._cost("voice", started)
        return parts

    # -- the session ---------------------------------------------------------------------------

    def speaker_list(self) -> list[dict[str, Any]]:
        if self._tracker is None:
            return []
        times = self._tracker.speaking_time()
        return [
            {"id": label, "speaking_time": round(times.get(label, 0.0), 3), "segments": list(indices)}
            for label, indices in self._speaker_segments.items()
        ]

    def _overall(self) -> dict[str, Any] | None:
        if self._sentiment is None:
            return None
        overall = self._sentiment.overall
        return None if overall is None else {"label": overall.label, "score": round(overall.score, 3)}

    def snapshot(self, *, sentences: bool = False) -> dict[str, Any]:
        """What is stored with the session (transcription.services.session_analysis_store).

        The sentence list grows with the session, so it is stored once, when the session settles
        (each segment row keeps its own sentiment meanwhile)."""
        snap: dict[str, Any] = {}
        if self._tracker is not None:
            times = self._tracker.speaking_time()
            snap["speakers"] = {
                label: {"speaking_time_s": times.get(label, 0.0), "segments": list(indices)}
                for label, indices in self._speaker_segments.items()
            }
        if self._sentiment is not None:
            snap["sentiment"] = {"overall": self._overall()}
            if sentences:
                snap["sentiment"]["by_sentence"] = [
                    {"text": s.text, "sentiment": s.label, "score": round(s.score, 3)}
                    for s in self._sentiment.sentences(self.options.sentiment_min_confidence)
                ]
        if self._topics is not None:
            snap["topics"] = list(self._topics_now)
        if self._filter is not None:
            snap["filters"] = {
                "profanity": {"detected": bool(self._profanity), "filtered_words": list(self._profanity)},
                "redacted": dict(self._redacted),
            }
        return snap

    def _refresh_topics(self) -> None:
        if self._topics_task is None or self._topics_task.done():
            self._topics_task = asyncio.ensure_future(self._topics_loop())

    async def _topics_loop(self) -> None:
        while self._topics_stale:
            self._topics_stale = False
            self._topics_now = await asyncio.to_thread(self._compute_topics)

    def _compute_topics(self) -> list[dict[str, Any]]:
        started = time.thread_time()
        found = self._topics.topics(min_confidence=self.options.topics_min_confidence)
        self._cost("topics", started)
        return [
            {"topic": t.topic, "confidence": round(t.confidence, 3), "mentions": list(t.mentions)}
            for t in found
        ]

    async def settle(self) -> dict[str, Any] | None:
        """At the end of the session: topics brought up to date; the snapshot to store (None: nothing on)."""
        if not self.options.any:
            return None
        if self._topics_task is not None:
            try:
                await self._topics_task
            except Exception:
                log.exception("topic extraction failed")
        if self._topics is not None and self._topics_stale:
            self._topics_stale = False
            self._topics_now = await asyncio.to_thread(self._compute_topics)
        return self.snapshot(sentences=True)

    def close(self) -> None:
        if self._topics_task is not None:
            self._topics_task.cancel()

    def _cost(self, stage: str, started: float) -> None:
        self.cost_ms[stage].append((time.thread_time() - started) * 1000)


async def settled(voice: asyncio.Future | None) -> list | None:
    if voice is None:
        return None
    try:
        return await voice
    except Exception:
        log.exception("speaker embedding failed")
        return None


def _mean(vectors: list[np.ndarray]) -> np.ndarray:
    mean = np.mean(np.stack(vectors), axis=0)
    return mean / (np.linalg.norm(mean) or 1.0)
