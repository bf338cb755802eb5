"""Key terms of an upload: validated at submission, stored with it, primed into every chunk's job."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.transcription.api.conftest import signed_in, with_key
from tests.transcription.uploads.audio_files import encode
from tests.transcription.uploads.test_transcriptions import assert_nothing_stored, upload, wait_done
from transcription.models import TranscriptionSession
from transcription.streaming.service import current_service
from vocabularies.models import Vocabulary

pytestmark = pytest.mark.usefixtures("fake_engine")


def heard_with(audio, options) -> str:
    """The fake engine's text: the key terms its item was primed with."""
    return "terms: " + (" | ".join(options.keyterms) or "none")


@pytest.fixture
def terms_engine(settings):
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "ENGINE_OPTIONS": {"text_fn": heard_with}}


@pytest.fixture
def jfk(corpus):
    return corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)


def engine_options():
    """The options of every item the fake engine transcribed so far (the process-wide service)."""
    return [options for lane in current_service().lanes.values() for options in lane.engine.seen]


def test_repeated_keyterms_fields_reach_the_engine_for_every_chunk(alice, corpus, terms_engine):
    long = corpus.read_mono_float(corpus.manifest()[corpus.LONG_FILE].path)
    audio = np.concatenate([long, np.zeros(16000 * 3, np.float32), long[: 16000 * 6]])
    client = with_key(alice, ["history:read", "history:write"])
    response = upload(client, encode(audio, 16000, "flac"), keyterms=["Kubernetes", "  Istio   mesh "])
    assert response.status_code == 202, response.content
    accepted = response.json()
    # Stored as the key-term rule leaves them, and shown in the status.
    assert accepted["keyterms"] == ["Kubernetes", "Istio mesh"] and accepted["vocabulary"] is None
    done = wait_done(client, accepted["url"])
    assert done["status"] == "completed", done
    assert done["keyterms"] == ["Kubernetes", "Istio mesh"]
    assert len(done["segments"]) >= 3
    assert {s["text"] for s in done["segments"]} == {"terms: Kubernetes | Istio mesh"}
    seen = engine_options()
    assert len(seen) == len(done["segments"]) and {o.keyterms for o in seen} == {("Kubernetes", "Istio mesh")}
    session = TranscriptionSession.objects.get(pk=accepted["id"])
    assert session.options["keyterms"] == ["Kubernetes", "Istio mesh"]


def test_one_field_holding_a_json_array_is_a_list_of_terms(alice, jfk, terms_engine):
    client = signed_in(alice)
    accepted = upload(client, encode(jfk, 16000, "wav"), "jfk.wav", keyterms=json.dumps(["Kennedy", "a, b"]))
    assert accepted.status_code == 202, accepted.content
    done = wait_done(client, accepted.json()["url"])
    # A comma does not split a term.
    assert done["keyterms"] == ["Kennedy", "a, b"] and done["transcript"] == "terms: Kennedy | a, b"


def test_an_upload_without_key_terms_primes_none(alice, jfk, terms_engine):
    client = signed_in(alice)
    accepted = upload(client, encode(jfk, 16000, "wav"), "jfk.wav").json()
    assert accepted["keyterms"] == [] and accepted["vocabulary"] is None
    done = wait_done(client, accepted["url"])
    assert done["transcript"] == "terms: none"
    assert engine_options() and all(o.keyterms == () for o in engine_options())


@pytest.mark.parametrize(
    ("keyterms", "code"),
    [
        (["x" * 51], "keyterm_too_long"),
        ([f"term{i}" for i in range(51)], "too_many_keyterms"),
        ([f"{i:02d}" + "y" * 45 for i in range(13)], "too_many_keyterms"),  # over 600 characters in all
        ([""], "invalid_keyterms"),
        (["fine", "   "], "invalid_keyterms"),
        ('["unclosed"', "invalid_keyterms"),
        ('["ok", 3]', "invalid_keyterms"),
        ('["' + "z" * 51 + '"]', "keyterm_too_long"),
    ],
)
def test_bad_key_terms_answer_400_with_their_code_and_store_nothing(alice, upload_dir, keyterms, code):
    response = upload(signed_in(alice), encode(np.zeros(16000, np.float32), 16000, "wav"), keyterms=keyterms)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code and "keyterms" in body["fields"] and body["detail"].startswith("keyterms: ")
    assert_nothing_stored(upload_dir, alice)


def test_a_named_vocabulary_comes_first_then_the_inline_terms(alice, jfk, terms_engine):
    Vocabulary.objects.create(owner=alice, name="inaugural", terms=["Americans", "Country"])
    client = signed_in(alice)
    response = upload(client, encode(jfk, 16000, "wav"), "jfk.wav", vocabulary="inaugural",
                      keyterms=["fellow", "americans"])  # fmt: skip
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["vocabulary"] == "inaugural"
    assert accepted["keyterms"] == ["Americans", "Country", "fellow"]  # repeats (any case) once
    done = wait_done(client, accepted["url"])
    assert done["transcript"] == "terms: Americans | Country | fellow"
    assert {o.keyterms for o in engine_options()} == {("Americans", "Country", "fellow")}


def test_an_unknown_or_another_users_vocabulary_answers_400(alice, bob, upload_dir):
    Vocabulary.objects.create(owner=bob, name="bobs", terms=["secret"])
    client = signed_in(alice)
    silence = encode(np.zeros(16000, np.float32), 16000, "wav")
    for name in ("nope", "bobs"):
        response = upload(client, silence, vocabulary=name)
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "unknown_vocabulary" and "vocabulary" in body["fields"]
        assert "secret" not in response.content.decode()
    assert_nothing_stored(upload_dir, alice)


def test_a_vocabulary_that_overflows_the_merged_list_answers_too_many_keyterms(alice, upload_dir):
    Vocabulary.objects.create(owner=alice, name="big", terms=[f"v{i}" for i in range(40)])
    response = upload(signed_in(alice), encode(np.zeros(16000, np.float32), 16000, "wav"),
                      vocabulary="big", keyterms=[f"k{i}" for i in range(11)])  # fmt: skip
    assert response.status_code == 400 and response.json()["code"] == "too_many_keyterms"
    assert "keyterms" in response.json()["fields"]
    assert_nothing_stored(upload_dir, alice)
