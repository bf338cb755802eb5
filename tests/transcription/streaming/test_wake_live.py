"""End to end, real Daphne and the real model: wake-word mode on /ws/transcribe and /v1/stream,
a runtime change of the words through PATCH /api/config, and the transcript backend."""

from __future__ import annotations

import asyncio
import http.client
import json
import sqlite3
from urllib.parse import urlsplit

import numpy as np
import pytest

from bench import wake as wake_audio
from bench.packets import float_to_int16
from tests.live_server import daphne_server, manage
from tests.transcription.streaming.protocols import doc_clients
from tests.transcription.streaming.test_enrichment_live import stream

pytestmark = pytest.mark.slow

# A fixed end-of-speech silence: the gate is under test here, not the end-of-turn detector (which
# may cut a sentence at a pause; with no follow-up window the rest would then wait for a wake word).
FIXED = {"postSpeechSilenceDuration": 0.8, "endOfTurnSilence": 0.0}


def finals(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "final" and e["text"]]


def patch_config(base: str, key: str, settings: dict) -> dict:
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection.request("PATCH", "/api/config", body=json.dumps({"settings": settings}), headers=headers)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return {"status": response.status, **body}


def stored(tmp_path) -> list[tuple]:
    db = sqlite3.connect(tmp_path / "live.sqlite3")
    return db.execute(
        "SELECT s.endpoint, g.text, g.wake_word FROM transcription_segment g "
        "JOIN transcription_transcriptionsession s ON s.id = g.session_id ORDER BY s.started_at, g.[index]"
    ).fetchall()


def test_wake_word_mode_end_to_end(tmp_path, corpus, wake_sentence):
    sentence = wake_sentence
    reference = corpus.manifest()["ljspeech_LJ001-0002.wav"].reference
    with_wake = wake_audio.wake_then("jarvis", sentence, wake_audio.silence(2.0))
    without = wake_audio.wake_then(None, sentence, wake_audio.silence(2.0))
    with daphne_server(tmp_path, {"STT_WAKE_WORDS": "jarvis", "STT_WAKE_WORDS_SENSITIVITY": "0.7"}) as (
        base,
        env,
        _server,
    ):
        key = manage(env, "apikey", "create", "--user", "wake", "--create-user", "--scopes", "stream").strip()
        manage(env, "shell", "-c", "from django.contrib.auth.models import User; "
               "User.objects.filter(username='wake').update(is_staff=True)")  # fmt: skip
        url = base.replace("http://", "ws://") + "/ws/transcribe"

        # The server's words: the sentence after "jarvis" is transcribed, with the reference's timeline.
        events = asyncio.run(stream(url, key, with_wake, FIXED))
        (final,) = finals(events)
        print(final["text"])
        assert corpus.wer([reference], [final["text"]]) <= 0.15
        assert final["wakeWord"]["word"] == "jarvis" and final["segment"]["wakeWord"]["state"] == "recording"
        timeline = [e["event"] for e in events if e["type"] == "timeline"]
        wake_events = [t for t in timeline if t.startswith("wakeword_")]
        assert wake_events == ["wakeword_wait_started", "wakeword_detected", "wakeword_wait_ended",
                               "wakeword_wait_started"], timeline  # fmt: skip
        assert timeline.index("wakeword_wait_ended") < timeline.index("recording_started")
        detected = next(e for e in events if e.get("event") == "wakeword_detected")
        assert detected["wakeWord"]["state"] == "wake_word_detected_waiting_for_voice"
        assert (
            detected["wakeWord"]["detectedAtIso"].endswith("Z") and detected["wakeWord"]["word"] == "jarvis"
        )
        states = [e["state"] for e in events if e["type"] == "status"]
        assert states.index("wakeword_wait") < states.index("wakeword_detected") < states.index("recording")
        status = next(e for e in events if e["type"] == "status" and e["state"] == "wakeword_wait")
        assert status["wakeWordEnabled"] and status["wakeWord"]["wakeWords"] == "jarvis"

        # The same sentence without the wake word: no segment, no final, nothing stored.
        events = asyncio.run(stream(url, key, without, FIXED))
        assert not finals(events) and not [e for e in events if e.get("event") == "recording_started"]

        # The words changed at run time (newSessionOnly): the next session listens for "porcupine".
        changed = patch_config(base, key, {"wake_words": "porcupine"})
        assert changed["status"] == 200 and changed["applied"] == {"wake_words": "porcupine"}, changed
        refused = patch_config(base, key, {"wake_words": "abracadabra"})
        assert refused["status"] == 400 and "abracadabra" in json.dumps(refused)
        assert not finals(asyncio.run(stream(url, key, with_wake, FIXED)))
        porcupine = wake_audio.wake_then("porcupine", sentence, wake_audio.silence(2.0))
        assert [f["wakeWord"]["word"] for f in finals(asyncio.run(stream(url, key, porcupine, FIXED)))] == [
            "porcupine"
        ]

        # Per session: the transcript backend with a phrase of the dev corpus; the first sentence
        # (without it) is dropped, the second one's text after the phrase is kept.
        other = corpus.read_mono_float(corpus.manifest()["ljspeech_LJ001-0001.wav"].path)
        audio = np.concatenate([wake_audio.silence(0.5), sentence, wake_audio.silence(1.5), other,
                                wake_audio.silence(2.0)])  # fmt: skip
        start = {"wakewordBackend": "transcript", "wakeWords": "only sense", **FIXED}
        events = asyncio.run(stream(url, key, audio, start))
        (final,) = finals(events)
        print(final["text"])
        assert final["wakeWord"]["word"] == "only sense"
        text = final["text"].lower()
        assert "printing" not in text and "sense" not in text and "exhibition" in text
        assert final["segmentId"] == 1  # the dropped probe left no gap

        # /v1/stream: wake_word_detected on the results.
        pcm = float_to_int16(porcupine).astype("<i2").tobytes()
        run = asyncio.run(
            doc_clients.v1_stream(
                base.replace("http://", "ws://"), key, pcm, client_id="c-w", session_id="s-w",
                config={"wake_word": {"words": "porcupine", "followup_window": 2}},
            )
        )  # fmt: skip
        assert not [m for m in run.messages if m["type"] == "error"], run.messages
        results = [m["data"] for m in run.messages if m["type"] in ("partial_result", "final_result")]
        assert results and {d["wake_word_detected"] for d in results} == {"porcupine"}, results

    rows = stored(tmp_path)
    print(rows)
    assert [(r[0], r[2]) for r in rows] == [
        ("ws_transcribe", "jarvis"), ("ws_transcribe", "porcupine"),
        ("ws_transcribe", "only sense"), ("v1_stream", "porcupine"),
    ]  # fmt: skip
