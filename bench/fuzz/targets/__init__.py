"""The fuzz targets by name. A target module is imported only in the process that runs it (after
django.setup()); `module:ATTRIBUTE` names a Target outside this list (the tests' broken parser)."""

from __future__ import annotations

import importlib

from bench.fuzz.harness import Target

_HERE = "bench.fuzz.targets"
TARGETS: dict[str, str] = {
    "packet": f"{_HERE}.audio:PACKET",
    "pcm16": f"{_HERE}.audio:PCM16",
    "mulaw": f"{_HERE}.audio:MULAW",
    "api_v1": f"{_HERE}.audio:API_V1",
    "ws_transcribe": f"{_HERE}.ws_transcribe:COMMANDS",
    "reference_dialect": f"{_HERE}.ws_transcribe:REFERENCE",
    "stt_v3": f"{_HERE}.stt_v3:STT_V3",
    "v1_stream_control": f"{_HERE}.v1_stream:CONTROL",
    "v1_stream_audio": f"{_HERE}.v1_stream:AUDIO",
    "deepgram_query": f"{_HERE}.deepgram:QUERY",
    "deepgram_wav": f"{_HERE}.deepgram:WAV",
    "deepgram_message": f"{_HERE}.deepgram:MESSAGE",
    "assemblyai_query": f"{_HERE}.assemblyai:QUERY",
    "assemblyai_message": f"{_HERE}.assemblyai:MESSAGE",
    "upload_sniff": f"{_HERE}.uploads:SNIFF",
}


def load(name: str) -> Target:
    spec = TARGETS.get(name, name)
    if ":" not in spec:
        raise SystemExit(f"unknown fuzz target {name!r}; known: {', '.join(TARGETS)}")
    module, attribute = spec.split(":", 1)
    target = getattr(importlib.import_module(module), attribute)
    if not isinstance(target, Target):
        raise SystemExit(f"{spec} is not a bench.fuzz.harness.Target")
    return target
