"""/ws/transcribe in the reference server's dialect, played the way its browser console reads it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accounts.services import api_key_create
from bench.packets import packets
from tests.transcription.streaming.test_ws_transcribe import open_session, receive_until, receive_until_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

# What the console's settings strip reads (static/index.html applySettings).
STRIP_KEYS = {"tuning_profile": str, "model": str, "realtime_model": str, "transcription_engine": str,
              "device": str, "compute_type": str, "realtime_processing_pause": float,
              "realtime_batch_size": int, "post_speech_silence_duration": float,
              "min_length_of_recording": float, "beam_size": int, "beam_size_realtime": int,
              "use_main_model_for_realtime": bool, "wake_word_enabled": bool, "wakeword_backend": str,
              "wake_words": str}  # fmt: skip
STATUS_KEYS = {"state": str, "timestamp": float, "timestampIso": str, "queueDepth": int,
               "droppedChunks": int, "coalescedRealtime": int, "activeSessions": int,
               "activeSpeakers": int, "wakeWordEnabled": bool, "wakeWord": dict}  # fmt: skip


@pytest.fixture
def key(django_user_model):
    user = django_user_model.objects.create_user("dialect-user", password="pw-dialect-1")
    return api_key_create(owner=user, scopes=["stream"])[1]


class Console:
    """The reference page's transcript logic: blocks keyed by Number(segmentId), finals replace."""

    def __init__(self) -> None:
        self.blocks: dict[float, dict] = {}
        self.states: list[str] = []

    def handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "status":
            self.states.append(message["state"])
        elif kind in ("realtime", "final"):
            segment_id = float(message["segmentId"])  # Number(id): NaN for a non-numeric id
            assert segment_id == segment_id and segment_id >= 1, message
            block = self.blocks.setdefault(segment_id, {})
            if kind == "realtime":
                assert not block.get("final"), "an interim after its final"
                shown = message.get("displayText") or message["text"]
                stable, unstable = (
                    message["stableText"],
                    message.get("visualUnstableText") or message["unstableText"],
                )
                assert stable + unstable == shown, message  # the parts carry their own spacing
                block.update(text=shown, final=False)
            else:
                block.update(text=message["text"], final=True)


def assert_types(message: dict, spec: dict) -> None:
    for name, kind in spec.items():
        assert isinstance(message.get(name), kind), (name, message.get(name), message["type"])


async def test_the_console_sees_one_block_per_segment_and_status_follows_the_speech(key, corpus):
    comm, hello = await open_session(key)
    assert_types(hello["settings"], STRIP_KEYS)
    assert hello["settings"]["realtime_batch_size"] >= 1 and hello["settings"]["device"] in ("cpu", "cuda")
    console = Console()
    await comm.send_to(text_data=json.dumps({"type": "start"}))
    first, _ = await receive_until(comm, "status")
    jfk = corpus.read_mono_float(corpus.manifest()["jfk.wav"].path)
    for packet in packets(np.concatenate([jfk, np.zeros(32000, np.float32)])):
        await comm.send_to(bytes_data=packet)
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    _, rest = await receive_until_status(comm, "idle")
    await comm.disconnect()
    messages = [first, *rest]
    for message in messages:
        console.handle(message)
        assert isinstance(message["timestamp"], float) and message["timestampIso"].endswith("Z"), message
        assert message["sessionId"] == hello["sessionId"]
    finals = [m for m in messages if m["type"] == "final"]
    assert finals and all(block["final"] for block in console.blocks.values())
    assert len(console.blocks) == len(finals)  # one block per segment, each final in place of its interim
    assert [f["segmentId"] for f in finals] == list(range(1, len(finals) + 1))
    # idle/listening -> recording -> transcribing -> listening, for every utterance, then idle.
    states = [s for i, s in enumerate(console.states) if i == 0 or s != console.states[i - 1]]
    assert states[0] == "listening" and states[-1] == "idle"
    assert states[1:4] == ["recording", "transcribing", "listening"], states
    for message in (m for m in messages if m["type"] == "status"):
        assert_types(message, STATUS_KEYS)
    timeline = [m for m in messages if m["type"] == "timeline"]
    started = next(m for m in timeline if m["event"] == "recording_started")
    assert started["segment"]["recordingStartedAt"] == pytest.approx(started["timestamp"], abs=1.0)
    assert isinstance(started["segment"]["preRecordingBuffer"]["includedSeconds"], float)
    ended = next(m for m in timeline if m["event"] == "recording_ended")
    assert ended["durationSeconds"] > 0 and ended["segment"]["recordingEndedAtIso"].endswith("Z")
    assert "realtime_transcript" in {m["event"] for m in timeline}
    assert finals[0]["recordingStartedAt"] <= finals[0]["recordingEndedAt"]


async def test_clear_tells_the_next_segment_id_and_the_waiting_state(key):
    comm, _ = await open_session(key)
    await comm.send_to(text_data=json.dumps({"type": "start"}))
    await receive_until(comm, "status")
    await comm.send_to(text_data=json.dumps({"type": "clear"}))
    cleared, _ = await receive_until(comm, "clear")
    status, _ = await receive_until(comm, "status")
    assert cleared["nextSegmentId"] == 1 and status["state"] == "listening"
    await comm.disconnect()


@pytest.mark.parametrize("rate", [96000, 192000])
async def test_sample_rates_up_to_192_khz_are_taken(key, rate):
    from bench.packets import encode_packet

    comm, _ = await open_session(key)
    await comm.send_to(text_data=json.dumps({"type": "start"}))
    await receive_until(comm, "status")
    await comm.send_to(bytes_data=encode_packet(np.zeros(rate // 25, np.int16), rate))
    await comm.send_to(bytes_data=encode_packet(np.zeros(160, np.int16), 200000))
    error, seen = await receive_until(comm, "error")
    assert error["code"] == "invalid_sample_rate" and "192000" in error["message"]
    assert not [e for e in seen if e["type"] == "error" and e is not error]
    await comm.disconnect()
