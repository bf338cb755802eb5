"""Enrichment of a whole recording (an upload): chunks as they come, speakers over the whole file.

Chunks are transcribed several at a time and out of order, so the labels given on the way are
provisional; once every chunk is in, the voices are clustered together (speech.enrich.speakers
.cluster) and relabelled by first appearance, so a label means one voice across the recording.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np

from speech.enrich.options import EnrichOptions
from speech.enrich.session import SessionEnricher, settled
from speech.finals import FinalSegment


class RecordingEnricher:
    """One upload's enrichment; `enrich` each chunk's final, then `relabel` and `settle` at the end."""

    def __init__(self, options: EnrichOptions, **kwargs: Any) -> None:
        self.options = options
        self.session = SessionEnricher(options, **kwargs)
        self._voices: dict[int, list[tuple[float, float, np.ndarray]]] = {}
        self._spoken: set[int] = set()  # chunks with text (a silent chunk has no speaker)

    def voice(self, audio: np.ndarray) -> asyncio.Future | None:
        return self.session.voice(audio)

    async def enrich(self, final: FinalSegment, voice: asyncio.Future | None) -> None:
        """Mask, label (provisionally) and analyse one chunk's final, in place; keep its voice."""
        parts = await settled(voice)
        if parts:
            self._voices[final.index] = parts
        await self.session.enrich_with(final, parts)
        if final.text:
            self._spoken.add(final.index)

    async def add_stored(self, index: int, audio: np.ndarray) -> None:
        """A chunk stored by an earlier run (the job resumed): only its voice is needed."""
        parts = await settled(self.voice(audio))
        if parts:
            self._voices[index] = parts
            self._spoken.add(index)

    async def relabel(self) -> dict[int, str]:
        """{chunk index: speaker} from clustering every voice of the recording (empty: speakers off)."""
        if not self.session.speakers:
            return {}
        return await asyncio.to_thread(self._relabel)

    def _relabel(self) -> dict[int, str]:
        from speech.enrich import speakers

        keys = [
            (index, n)
            for index in sorted(self._voices)
            if index in self._spoken
            for n in range(len(self._voices[index]))
        ]
        if not keys:
            return {}
        vectors = [self._voices[index][n][2] for index, n in keys]
        durations = [self._voices[index][n][1] - self._voices[index][n][0] for index, n in keys]
        kwargs = (
            {} if self.options.speaker_threshold is None else {"threshold": self.options.speaker_threshold}
        )
        labels = speakers.cluster(vectors, durations, max_speakers=self.options.max_speakers, **kwargs)
        time_by: dict[int, Counter[str]] = {}
        for (index, _), label, seconds in zip(keys, labels, durations, strict=True):
            time_by.setdefault(index, Counter())[label] += seconds
        return {index: counts.most_common(1)[0][0] for index, counts in time_by.items()}

    async def settle(self, labels: dict[int, str], durations: dict[int, float]) -> dict[str, Any] | None:
        """The recording's snapshot to store; speakers as the whole-file labels say."""
        snapshot = await self.session.settle()
        if snapshot is None:
            return None
        if self.session.speakers:
            speakers: dict[str, dict[str, Any]] = {}
            for index in sorted(labels):
                entry = speakers.setdefault(labels[index], {"speaking_time_s": 0.0, "segments": []})
                entry["speaking_time_s"] += durations.get(index, 0.0)
                entry["segments"].append(index)
            snapshot["speakers"] = speakers
        return snapshot
