"""The enrichment stage of a session and of a recording, with a fake voice encoder (no model)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from speech import events
from speech.enrich.options import EnrichmentError, EnrichOptions, parse_enrichment
from speech.enrich.recording import RecordingEnricher
from speech.enrich.session import SessionEnricher
from speech.finals import FinalSegment
from speech.inference.fake import FakeEngine
from speech.inference.service import LocalInferenceService
from speech.options import SessionOptions
from speech.session import StreamingSession
from tests.speech.test_session import PACKET, Clock, RecordingSink

RATE = 16000


class FakeEncoder:
    """A clip's voice is the constant it is filled with: voice k is the unit vector e_k."""

    def __init__(self) -> None:
        self.calls = 0

    def _vector(self, audio: np.ndarray) -> np.ndarray:
        vector = np.zeros(8, np.float32)
        vector[round(float(np.median(audio)) * 10) % 8] = 1.0
        return vector

    def embed(self, audio: np.ndarray) -> np.ndarray | None:
        self.calls += 1
        return None if len(audio) < RATE // 2 else self._vector(audio)

    def embed_parts(self, audio: np.ndarray, part_s: float = 3.0):
        step = int(part_s * RATE)
        return [
            (a / RATE, min(len(audio), a + step) / RATE, self._vector(audio[a : a + step]))
            for a in range(0, len(audio), step)
        ]


def voice(k: int, seconds: float) -> np.ndarray:
    return np.full(int(seconds * RATE), k / 10, np.float32)


def final(index: int, text: str, seconds: float = 2.0, words=None) -> FinalSegment:
    return FinalSegment(
        index=index,
        segment_id=f"s-{index}",
        start_s=index * 10.0,
        end_s=index * 10.0 + seconds,
        text=text,
        confidence=0.9,
        language="en",
        words=words or [],
        end_reason="silence",
        pre_roll_s=0.0,
        latency_ms=None,
    )


def enricher(**options) -> tuple[SessionEnricher, FakeEncoder]:
    encoder = FakeEncoder()
    return SessionEnricher(EnrichOptions(**options), encoder=lambda: encoder, speaker_threshold=0.5), encoder


async def test_voices_get_stable_labels_in_order_of_first_appearance():
    e, _ = enricher(speakers=True)
    labels = []
    for index, k in enumerate([1, 2, 1, 1, 2, 3]):
        f = final(index, "Some words here.")
        await e.enrich(f, e.voice(voice(k, 2.0)))
        labels.append(f.speaker)
        assert f.enrichment.speakers and f.analysis["speakers"][f.speaker]["segments"][-1] == index
    assert labels == ["speaker_1", "speaker_2", "speaker_1", "speaker_1", "speaker_2", "speaker_3"]
    snapshot = e.snapshot()
    assert snapshot["speakers"]["speaker_1"]["segments"] == [0, 2, 3]
    assert snapshot["speakers"]["speaker_1"]["speaking_time_s"] == pytest.approx(6.0)


async def test_max_speakers_folds_a_new_voice_into_the_nearest():
    e, _ = enricher(speakers=True, max_speakers=2)
    labels = []
    for index, k in enumerate([1, 2, 3]):
        f = final(index, "Words.")
        await e.enrich(f, e.voice(voice(k, 2.0)))
        labels.append(f.speaker)
    assert labels[:2] == ["speaker_1", "speaker_2"] and labels[2] in ("speaker_1", "speaker_2")


async def test_a_long_segment_labels_its_words_by_the_part_they_fall_in():
    e, _ = enricher(speakers=True)
    audio = np.concatenate([voice(1, 6.0), voice(2, 3.0)])
    words = [{"word": " one", "start": 1.0, "end": 1.5}, {"word": " two", "start": 7.0, "end": 7.5}]
    f = final(0, "one two", seconds=9.0, words=words)
    await e.enrich(f, e.voice(audio))
    assert f.speaker == "speaker_1"  # six of the nine seconds
    assert [w["speaker"] for w in f.words] == ["speaker_1", "speaker_2"]


async def test_interim_speaker_is_a_guess_that_changes_nothing():
    e, encoder = enricher(speakers=True)
    assert await e.interim_speaker(e.voice(voice(1, 2.0))) == "speaker_1"  # the label it would get
    assert e.snapshot()["speakers"] == {}
    assert e.voice(voice(1, 0.5)) is None  # too short to say
    f = final(0, "Hello.")
    await e.enrich(f, e.voice(voice(1, 2.0)))
    assert await e.interim_speaker(e.voice(voice(2, 2.0))) == "speaker_2"
    assert await e.interim_speaker(e.voice(voice(1, 2.0))) == "speaker_1"
    assert encoder.calls == 4  # the short clip is not embedded at all


async def test_filters_mask_the_text_and_words_before_anything_else_sees_them():
    e, _ = enricher(profanity_filter=True, redact=frozenset({"pci"}), sentiment=True)
    words = [{"word": w, "start": i, "end": i + 0.5} for i, w in enumerate(" this is shit".split(" ")[1:])]
    f = final(0, "this is shit", words=words)
    await e.enrich(f, None)
    assert f.text == "this is s***" and [w["word"] for w in f.words][-1].strip() == "s***"
    assert f.enrichment.profanity == ["s***"] and f.enrichment.redacted == {}
    f = final(1, "My card is 4111 1111 1111 1111 thanks.")
    await e.enrich(f, None)
    assert "4111" not in f.text and "[PCI]" in f.text and f.enrichment.redacted == {"pci": 1}
    snap = e.snapshot()
    assert snap["filters"] == {
        "profanity": {"detected": True, "filtered_words": ["s***"]},
        "redacted": {"pci": 1},
    }
    assert "shit" not in repr(snap) and "4111" not in repr(snap)
    # Interim text: a card number still being spoken is masked before it is a valid number.
    assert e.mask_interim("card 4111 11", "card ", "4111 11") == ("card [PCI]", "card ", "[PCI]")


async def test_sentiment_and_topics_follow_the_session():
    e, _ = enricher(sentiment=True, topics=True)
    texts = [
        "I love this wonderful printing press, it is great.",
        "The printing press changed the world of books.",
        "This is terrible and I hate the awful delays.",
    ]
    for index, text in enumerate(texts):
        f = final(index, text)
        await e.enrich(f, None)
        assert f.sentiment["label"] in ("positive", "negative", "neutral")
    assert f.sentiment["label"] == "negative"
    snapshot = await e.settle()
    assert snapshot["sentiment"]["overall"]["label"] in ("positive", "negative", "neutral")
    assert len(snapshot["sentiment"]["by_sentence"]) == 3
    topics = [t["topic"].lower() for t in snapshot["topics"]]
    assert any("printing" in t for t in topics), topics
    printing = next(t for t in snapshot["topics"] if t["topic"].lower() == "printing press")
    assert printing["mentions"] == [0, 1] and 0.0 < printing["confidence"] <= 1.0


async def test_recording_speakers_are_clustered_over_the_whole_file():
    encoder = FakeEncoder()
    r = RecordingEnricher(EnrichOptions(speakers=True, speaker_threshold=0.5), encoder=lambda: encoder)
    # Chunks finish out of order; the first voice heard is still speaker_1.
    order = [(3, 2), (0, 1), (2, 1), (1, 2)]
    for index, k in order:
        f = final(index, "Words.")
        await r.enrich(f, r.voice(voice(k, 2.0)))
    await r.add_stored(4, voice(3, 2.0))  # stored by an earlier run of the job
    labels = await r.relabel()
    assert labels == {0: "speaker_1", 1: "speaker_2", 2: "speaker_1", 3: "speaker_2", 4: "speaker_3"}
    snapshot = await r.settle(labels, {i: 2.0 for i in range(5)})
    assert snapshot["speakers"]["speaker_1"] == {"speaking_time_s": 4.0, "segments": [0, 2]}


def test_client_options_are_validated_field_by_field():
    base = EnrichOptions()
    got = parse_enrichment(
        {"speakers": True, "maxSpeakers": 3, "redact": "pci,email", "sentimentMinConfidence": 0.6}, base
    )
    assert got.speakers and got.max_speakers == 3 and got.redact == {"pci", "email"}
    assert got.sentiment_min_confidence == 0.6
    assert parse_enrichment({"redact": ["pii"]}, base).redact == {"phone", "email", "ssn"}  # Deepgram's pii
    assert parse_enrichment({"redact": True}, base).redact == {"numbers"}  # Deepgram: numbers (or true)
    for bad, code in (
        ({"speakers": "yes"}, "invalid_option"),
        ({"maxSpeakers": 0}, "option_out_of_range"),
        ({"redact": ["passwords"]}, "invalid_option"),
        ({"sentimentMinConfidence": 2}, "option_out_of_range"),
        ({"colour": True}, "invalid_option"),
    ):
        with pytest.raises(EnrichmentError) as caught:
            parse_enrichment(bad, base)
        assert caught.value.code == code, bad
    from speech.enrich.options import EnrichAvailability

    with pytest.raises(EnrichmentError) as caught:
        parse_enrichment({"speakers": True}, base, EnrichAvailability(speakers=False))
    assert caught.value.code == "enrichment_unavailable"


class AnalysingSink(RecordingSink):
    async def store_analysis(self, analysis: dict) -> None:
        self.log.append(("analysis", analysis))


async def test_a_session_masks_interim_and_final_text_and_stores_its_analysis(corpus):
    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    audio = np.concatenate([np.zeros(8000, np.float32), jfk, np.zeros(16000, np.float32)])
    service = LocalInferenceService(
        lambda lane: FakeEngine(text_fn=lambda a, o: "well shit my card is 4111 1111 1111 1111")
    )
    await service.start()
    encoder = FakeEncoder()
    sink = AnalysingSink()
    options = SessionOptions(
        enrich=EnrichOptions(speakers=True, profanity_filter=True, redact=frozenset({"pci"}), topics=True)
    )
    session = StreamingSession(
        session_id="abcdef12-0001", service=service, sink=sink, options=options, clock=Clock()
    )
    session.enricher._encoder = lambda: encoder
    try:
        for start in range(0, len(audio), PACKET):
            session._clock.now += PACKET / RATE
            await session.feed_audio(audio[start : start + PACKET])
            await asyncio.sleep(0)
        await session.stop()
    finally:
        await session.close()
        await service.stop()
    interims, finals = sink.of(events.Interim), sink.of(events.Final)
    assert interims and finals
    for text in [i.text for i in interims] + [f.text for f in finals]:
        assert "shit" not in text and "4111" not in text and "s***" in text, text
    stored = [item for tag, item in sink.log if tag == "stored"]
    assert stored and all(s.speaker == "speaker_1" and "[PCI]" in s.text for s in stored)
    assert finals[0].speaker == "speaker_1" and finals[0].enrichment.profanity == ["s***"]
    assert any(i.speaker == "speaker_1" for i in interims)
    (analysis,) = [item for tag, item in sink.log if tag == "analysis"]
    assert set(analysis) == {"speakers", "topics", "filters"}
    assert "shit" not in repr(analysis) and "4111" not in repr(analysis)
