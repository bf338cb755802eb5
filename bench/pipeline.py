"""CPU cost of the streaming audio pipeline (decode, resample, VAD, segmenter) on the dev corpus."""

from __future__ import annotations

import os

# One thread everywhere, set before numpy/torch/onnxruntime load their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import soxr  # noqa: E402

from bench import corpus  # noqa: E402
from speech.audio import AudioNormalizer, decode_packet  # noqa: E402
from speech.segmenter import SegmentClosed, Segmenter  # noqa: E402
from speech.vad import SileroModel, VoiceActivityDetector  # noqa: E402
from speech.wake.gate import new_gate  # noqa: E402
from speech.wake.options import WakeOptions  # noqa: E402

PACKET_S = 0.04
REPEATS = 3


def packets(pcm: np.ndarray, rate: int) -> list[bytes]:
    """The reference server's binary packets for int16 (frames, channels) audio."""
    step = round(rate * PACKET_S)
    out = []
    for i in range(0, len(pcm), step):
        block = np.ascontiguousarray(pcm[i : i + step], dtype="<i2")
        meta = json.dumps(
            {"sampleRate": rate, "channels": pcm.shape[1], "format": "pcm_s16le", "frames": len(block)}
        ).encode()
        out.append(struct.pack("<I", len(meta)) + meta + block.tobytes())
    return out


def to_pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")


class CountingModel:
    def __init__(self, inner: SileroModel) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, window, state):
        self.calls += 1
        return self.inner(window, state)


# The wake-word gate's backends (Porcupine spots "jarvis", which the corpus never says).
WAKE = {
    "pvporcupine": WakeOptions("pvporcupine", ("jarvis",), sensitivity=0.7),
    "transcript": WakeOptions("transcript", ("jarvis",)),
}


def run_stream(
    data: list[bytes], *, full: bool = True, wake: WakeOptions | None = None
) -> tuple[float, int, int, int]:
    """Process CPU seconds, closed segments, Silero calls and VAD frames for one pass."""
    model = CountingModel(SileroModel.shared())
    vad = VoiceActivityDetector(model=model)
    gate = new_gate(wake) if wake is not None else None
    normalizer, segmenter = AudioNormalizer(), Segmenter(vad=vad, gate=gate)
    segments = 0
    start = time.process_time()
    for packet in data:
        audio = normalizer.feed(decode_packet(packet))
        if full:
            segments += sum(isinstance(e, SegmentClosed) for e in segmenter.feed(audio))
    if full:
        segments += sum(isinstance(e, SegmentClosed) for e in segmenter.feed(normalizer.flush()))
        segments += sum(isinstance(e, SegmentClosed) for e in segmenter.stop())
    elapsed = time.process_time() - start
    return elapsed, segments, model.calls, vad.position // 512


def silero_ms_per_chunk() -> tuple[float, float]:
    """onnxruntime (what vad.py uses) against the TorchScript model, 512-sample chunks, 1 thread."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((300, 512)) * 0.1).astype(np.float32)
    model, state = SileroModel.shared(), SileroModel.initial_state()
    window = np.zeros((1, 576), dtype=np.float32)
    start = time.process_time()
    for chunk in x:
        window[0, 64:] = chunk
        _, state = model(window, state)
    onnx_ms = (time.process_time() - start) * 1000 / len(x)
    try:
        import torch
        from silero_vad import load_silero_vad
    except ImportError:
        return onnx_ms, float("nan")
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jit = load_silero_vad()
    chunks = torch.from_numpy(x)
    with torch.no_grad():
        for chunk in chunks[:20]:
            jit(chunk, 16000)
        start = time.process_time()
        for chunk in chunks:
            jit(chunk, 16000)
    return onnx_ms, (time.process_time() - start) * 1000 / len(x)


def main() -> int:
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 0
    utterances = corpus.dev_utterances()
    # Back to back, no added silence: the worst case, speech nearly all the time.
    mono = np.concatenate([corpus.read_mono_float(u.path) for u in utterances])
    seconds = len(mono) / 16000
    pcm16 = to_pcm(mono)[:, None]
    up = soxr.resample(mono, 16000, 48000)
    # Two different channels so the downmix does real work.
    pcm48 = np.stack([to_pcm(up * 0.9), to_pcm(np.roll(up, 7) * 0.6)], axis=1)
    cases = {"16k_mono": packets(pcm16, 16000), "48k_stereo": packets(pcm48, 48000)}

    onnx_ms, torch_ms = silero_ms_per_chunk()
    print(f"dev corpus: {len(utterances)} utterances, {seconds:.1f} s, packets of {PACKET_S * 1000:.0f} ms")
    print(f"silero per 512-sample chunk: onnxruntime {onnx_ms:.3f} ms, torch {torch_ms:.3f} ms (1 thread)")
    run_stream(cases["16k_mono"][:50])  # warm caches and onnxruntime's first-run allocations

    results: dict[str, float] = {}
    for name, data in cases.items():
        decode = statistics.median(run_stream(data, full=False)[0] for _ in range(REPEATS))
        runs = [run_stream(data) for _ in range(REPEATS)]
        total = statistics.median(r[0] for r in runs)
        _, segments, calls, frames = runs[0]
        results[name] = total * 1000 / seconds
        print(
            f"{name}: decode+resample {decode * 1000 / seconds:.2f} ms/s, full pipeline "
            f"{results[name]:.2f} ms/s (runs: {', '.join(f'{r[0] * 1000 / seconds:.2f}' for r in runs)}), "
            f"{segments} segments, silero on {calls / max(frames, 1):.0%} of {frames} frames"
        )
    wake_gate_costs(cases["16k_mono"], seconds, "speech back to back")
    # An always-listening room: each utterance followed by 4 s of quiet.
    quiet = np.concatenate(
        [part for u in utterances for part in (corpus.read_mono_float(u.path), np.zeros(64000, np.float32))]
    )
    wake_gate_costs(packets(to_pcm(quiet)[:, None], 16000), len(quiet) / 16000, "utterances 4 s apart")
    print(f"cpu_ms_per_audio_s_48k_stereo={results['48k_stereo']:.3f}")
    print(f"cpu_ms_per_audio_s={results['16k_mono']:.3f}")
    return 0


def wake_gate_costs(data: list[bytes], seconds: float, label: str) -> None:
    """The gate's CPU per audio second, each backend against no gate, interleaved (medians)."""
    runs: dict[str, list[float]] = {"off": [], **{name: [] for name in WAKE}}
    segments: dict[str, int] = {}
    for _ in range(REPEATS + 2):
        for name in runs:
            elapsed, closed, _, _ = run_stream(data, wake=WAKE.get(name))
            runs[name].append(elapsed * 1000 / seconds)
            segments[name] = closed
    off = statistics.median(runs["off"])
    for name in WAKE:
        cost = statistics.median(on - base for on, base in zip(runs[name], runs["off"], strict=True))
        print(
            f"wake gate {name} ({label}, {seconds:.0f} s): pipeline {statistics.median(runs[name]):.2f} ms/s "
            f"against {off:.2f} without, gate {cost:+.2f} ms/s (median of {len(runs[name])} paired runs); "
            f"{segments[name]} segments opened (without a gate {segments['off']})"
        )


if __name__ == "__main__":
    sys.exit(main())
