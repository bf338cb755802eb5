"""bench.stream's figures and options, without a real server or model."""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np

from bench import corpus, stream
from bench.stream import ClientResult, UtteranceRun

JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def _final(text: str, start: float, received: float) -> dict:
    return {"type": "final", "text": text, "start": start, "end": start + 1, "_received_at": received}


def _run(name, reference, finals, *, sent_start=0.0, sent_end=10.0, first_realtime=None) -> UtteranceRun:
    run = UtteranceRun(name, reference, 0.0, 10.0, sent_start=sent_start, sent_end=sent_end)
    run.finals = finals
    run.first_realtime_at = first_realtime
    return run


def test_summarize_counts_finals_and_cuts():
    runs = [
        # Two finals, cut after "Americans," (a comma cut); listed out of order on purpose.
        _run(
            "a",
            JFK,
            [
                _final(
                    "ask not what your country can do for you, ask what you can do for your country.", 3, 11.0
                ),
                _final("And so my fellow Americans,", 0, 5.0),
            ],
            first_realtime=1.0,
        ),
        # One final: no cut.
        _run(
            "b",
            "The horizon seems extremely distant.",
            [_final("The horizon seems extremely distant.", 0, 10.5)],
            first_realtime=2.0,
        ),
        # Three finals and an empty one, unpunctuated reference: two breath cuts.
        _run(
            "c",
            "HE HOPED THERE WOULD BE STEW FOR DINNER",
            [
                _final("He hoped", 0, 4),
                _final("", 1, 5),
                _final("there would be", 2, 6),
                _final("stew for dinner", 4, 10.2),
            ],
            first_realtime=3.0,
        ),
        # Nothing came back.
        _run("d", "Stuff it into you.", []),
    ]
    summary = stream.summarize([ClientResult(runs, {}, [])])
    assert summary["utterances"] == 4
    assert summary["finals_missing"] == 1
    assert summary["finals_per_utterance"] == (2 + 1 + 3 + 0) / 4
    assert (summary["cuts"], summary["mid_sentence_cuts"]) == (3, 3)
    assert (summary["comma_cuts"], summary["breath_cuts"]) == (1, 2)
    assert math.isclose(summary["ttfs_p50_s"], 0.5)
    assert math.isclose(summary["first_interim_p50_s"], 2.0)
    assert math.isclose(summary["first_interim_p95_s"], 2.9)
    assert summary["per_utterance"][0]["cuts"] == ["comma: ...my fellow americans | ask not..."]


def test_medians_and_the_last_line():
    keys = ("ttfs_p50_s", "ttfs_p95_s", "wer", "finals_per_utterance", "mid_sentence_cuts")
    runs = [
        {**dict(zip(keys, (1.0, 2.0, 0.1, 1.0, 0), strict=True)), "first_interim_p50_s": 0.5},
        {**dict(zip(keys, (3.0, 4.0, 0.3, 1.5, 3), strict=True)), "first_interim_p50_s": float("nan")},
        {**dict(zip(keys, (2.0, 9.0, 0.2, 1.2, 1), strict=True)), "first_interim_p50_s": 0.7},
    ]
    runs[0]["server_cpu_s_per_audio_s"], runs[1]["server_cpu_s_per_audio_s"] = 0.7, 0.9
    m = stream.medians(runs)
    assert m["ttfs_p50_s"] == 2.0 and m["ttfs_p95_s"] == 4.0 and m["wer"] == 0.2
    assert m["finals_per_utterance"] == 1.2 and m["mid_sentence_cuts"] == 1
    assert math.isclose(m["first_interim_p50_s"], 0.6)  # the NaN run is left out
    assert math.isclose(m["server_cpu_s_per_audio_s"], 0.8)  # so is the run without the figure
    assert stream.last_line(m) == (
        "ttfs_p50_s=2.000 ttfs_p95_s=4.000 wer=0.200 finals_per_utt=1.200 mid_sentence_cuts=1 "
        "first_interim_p50_s=0.600"
    )
    assert "mid_sentence_cuts=1.5 " in stream.last_line(stream.medians(runs[:2]))


def _wav(path: Path, seconds: float) -> None:
    samples = (np.sin(np.arange(int(16000 * seconds)) / 5) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes(samples.tobytes())


async def test_run_client_merges_the_start_options(tmp_path, monkeypatch):
    import websockets

    monkeypatch.setattr(stream, "GAP_S", 0.1)
    _wav(tmp_path / "a.wav", 0.2)
    utterance = corpus.Utterance("a.wav", tmp_path / "a.wav", "Hello there.", 0.2)
    starts = []

    async def handler(ws):
        async for message in ws:
            if isinstance(message, bytes):
                continue
            command = json.loads(message)
            if command["type"] == "start":
                starts.append(command)
                settings = {"postSpeechSilenceDuration": 0.55, **command["options"]}
                await ws.send(json.dumps({"type": "status", "state": "listening", "settings": settings}))
            elif command["type"] == "metrics":
                final = {"type": "final", "text": "hello there", "segment": {"start": 0.0, "end": 0.2}}
                await ws.send(json.dumps(final))
                await ws.send(json.dumps({"type": "metrics", "metrics": {"realtime_dropped": 0}}))

    async with websockets.serve(handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        result = await stream.run_client(
            f"ws://127.0.0.1:{port}", "key", [utterance], realtime=False,
            options={"postSpeechSilenceDuration": 0.8, "maxSegmentSeconds": 12.0},
        )  # fmt: skip
    assert starts[0]["options"] == {
        "interimResults": False,
        "postSpeechSilenceDuration": 0.8,
        "maxSegmentSeconds": 12.0,
    }
    assert result.settings["postSpeechSilenceDuration"] == 0.8
    assert [f["text"] for f in result.utterances[0].finals] == ["hello there"]


def test_options_must_be_a_json_object(capsys):
    import pytest

    with pytest.raises(SystemExit):
        stream.main(["--spawn-server", "--options", "[1, 2]"])
    assert "--options must be a JSON object" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        stream.main(["--spawn-server", "--repeat", "0"])


def test_check_options_warns_about_an_option_not_applied(capsys):
    stream._check_options(
        {"settings": {"postSpeechSilenceDuration": 0.55}}, {"postSpeechSilenceDuration": 0.8}
    )
    stream._check_options(
        {"settings": {"postSpeechSilenceDuration": 0.8}}, {"postSpeechSilenceDuration": 0.8}
    )
    err = capsys.readouterr().err
    assert err.count("warning: start option postSpeechSilenceDuration=0.8 not applied") == 1
