"""End to end: the official `openai` SDK, unchanged but for its base_url, against a real Daphne
with the bundled model, in every response format, on the dev corpus's jfk.wav."""

from __future__ import annotations

import itertools
import sqlite3

import openai
import pytest
import srt
import webvtt

from tests.live_server import daphne_server, manage

pytestmark = pytest.mark.slow

MAX_WER = 0.15


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openai-live")
    extra = {"STT_UPLOAD_DIR": str(tmp / "uploads"), "LOG_LEVEL": "INFO"}
    with daphne_server(tmp, extra, wait_ready=True) as (base, env, _):
        key = manage(
            env, "apikey", "create", "--user", "sdk-user", "--create-user", "--scopes", "history:write"
        ).strip()
        yield (
            openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=240),
            tmp / "live.sqlite3",
        )


@pytest.fixture(scope="module")
def jfk(corpus):
    utterance = corpus.manifest()["jfk.wav"]
    return utterance.path, utterance.reference


def create(client: openai.OpenAI, path, model: str = "whisper-1", **options):
    with open(path, "rb") as file:
        return client.audio.transcriptions.create(model=model, file=file, **options)


def test_json_and_text_are_transcribed_by_the_real_model(server, jfk, corpus):
    client, _ = server
    path, reference = jfk
    result = create(client, path, language="en", temperature=0.0)
    wer = corpus.wer([reference], [result.text])
    print(f"json: {result.text!r} WER {wer:.3f}")
    assert wer <= MAX_WER
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 11
    text = create(client, path, response_format="text")
    assert isinstance(text, str) and text.endswith("\n")
    assert corpus.wer([reference], [text]) <= MAX_WER


def test_stream_true_gives_the_sdk_text_events(server, jfk, corpus):
    client, _ = server
    path, reference = jfk
    events = list(create(client, path, model="gpt-4o-transcribe", stream=True))
    assert [e.type for e in events][-1] == "transcript.text.done" and len(events) >= 2
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    assert corpus.wer([reference], [events[-1].text]) <= MAX_WER


def test_srt_and_vtt_parse_back(server, jfk, corpus):
    client, _ = server
    path, reference = jfk
    cues = list(srt.parse(create(client, path, response_format="srt")))
    assert cues and all(c.end > c.start for c in cues) and cues[-1].end.total_seconds() <= 11.1
    assert corpus.wer([reference], [" ".join(c.content for c in cues)]) <= MAX_WER
    captions = webvtt.from_string(create(client, path, response_format="vtt")).captions
    assert captions and all(c.end_in_seconds > c.start_in_seconds for c in captions)
    assert corpus.wer([reference], [" ".join(c.text for c in captions)]) <= MAX_WER


def test_verbose_json_with_word_timestamps(server, jfk, corpus):
    client, _ = server
    path, reference = jfk
    result = create(client, path, response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert result.language == "english" and result.duration == pytest.approx(11.0, abs=0.05)
    assert corpus.wer([reference], [result.text]) <= MAX_WER
    assert result.segments and all(s.end > s.start and s.text.strip() for s in result.segments)
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    words = result.words
    print(f"{len(words)} words: {[(w.word, w.start, w.end) for w in words[:4]]} ...")
    assert corpus.wer([reference], [" ".join(w.word for w in words)]) <= MAX_WER
    assert all(0 <= w.start <= w.end <= 11.1 for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))


def test_errors_and_models_reach_the_sdk_as_openai_errors(server, jfk):
    client, _ = server
    path, _ = jfk
    with pytest.raises(openai.NotFoundError) as found:
        create(client, path, model="whisper-9")
    assert found.value.code == "model_not_found" and found.value.param == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        create(client, path, language="fr")
    assert bad.value.param == "language"
    assert "whisper-1" in [m.id for m in client.models.list()]


def test_the_sessions_are_stored_under_the_keys_user(server, jfk):
    _, database = server
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT s.endpoint, s.status, u.username, s.api_key_id FROM transcription_transcriptionsession s "
            "JOIN auth_user u ON u.id = s.user_id"
        ).fetchall()
    assert rows, "no session stored"
    assert all(r[0] == "openai_transcriptions" and r[2] == "sdk-user" and r[3] is not None for r in rows)
    assert all(r[1] == "completed" for r in rows)
