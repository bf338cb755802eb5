"""Inference benchmark: engine overhead against plain faster-whisper, dev-corpus WER, batch throughput."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from bench import corpus


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__)
    parser.add_argument("--model", default=os.environ.get("STT_MODEL", ""), help="default: bundled tiny.en")
    parser.add_argument("--device", default=os.environ.get("STT_DEVICE", "auto"))
    parser.add_argument("--compute-type", default=os.environ.get("STT_COMPUTE_TYPE", "auto"))
    parser.add_argument("--cpu-threads", type=int, default=int(os.environ.get("STT_CPU_THREADS", "0") or 0))
    parser.add_argument("--repeats", type=int, default=3, help="overhead repeats (the median is reported)")
    parser.add_argument("--items", type=int, default=16, help="segments per batch-size throughput run")
    parser.add_argument("--batch-sizes", default="", help="default: 1,2,4,8,16 (CUDA: up to 64)")
    args = parser.parse_args(argv)
    if not args.batch_sizes:
        args.batch_sizes = "1,2,4,8,16,32,64" if args.device == "cuda" else "1,2,4,8,16"
    return args


def _plain_transcribe(whisper, audio: np.ndarray) -> str:
    # The same decoding the engine does: greedy, English, no timestamps, no temperature fallback, no VAD.
    segments, _ = whisper.transcribe(
        audio,
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return "".join(s.text for s in segments).strip()


def _explain_gpu(device: str, compute_type: str) -> None:
    """What `manage.py doctor` says of the GPU: devices, compute types, the CUDA libraries."""
    from transcription.ops import doctor

    count = doctor.cuda_device_count()
    for check in (
        doctor.check_cuda(device, compute_type, count),
        doctor.check_cuda_libraries(True, f"--device {device}"),
    ):
        fix = f" -> {check.fix}" if check.fix else ""
        print(f"{check.status}: {check.name}: {check.finding}{fix}", file=sys.stderr)


def measure_overhead(engine, audios: list[np.ndarray], repeats: int) -> tuple[float, list[str], list[float]]:
    """Median over repeats of (engine wall time / faster-whisper wall time), interleaved file by file."""
    from speech.inference.jobs import TranscribeOptions

    options = TranscribeOptions(language="en", beam_size=1)
    ratios: list[float] = []
    texts: list[str] = []
    for repeat in range(repeats):
        ours = theirs = 0.0
        texts = []
        for index, audio in enumerate(audios):
            # Alternate which runs first so neither side systematically gets the warmer cache.
            order = ("ours", "theirs") if (index + repeat) % 2 == 0 else ("theirs", "ours")
            for side in order:
                started = time.perf_counter()
                if side == "ours":
                    texts.append(engine.transcribe_batch([(audio, options)])[0].text)
                    ours += time.perf_counter() - started
                else:
                    _plain_transcribe(engine.whisper, audio)
                    theirs += time.perf_counter() - started
        ratios.append(ours / theirs)
        print(
            f"repeat {repeat + 1}: engine {ours:.3f}s faster-whisper {theirs:.3f}s ratio {ours / theirs:.4f}"
        )
    return statistics.median(ratios), texts, ratios


def measure_throughput(engine, audios: list[np.ndarray], batch_size: int, items: int) -> float:
    from speech.inference.jobs import TranscribeOptions

    options = TranscribeOptions(language="en", beam_size=1)
    work = [audios[i % len(audios)] for i in range(items)]
    audio_s = sum(len(a) for a in work) / 16000
    started = time.perf_counter()
    for i in range(0, len(work), batch_size):
        engine.transcribe_batch([(a, options) for a in work[i : i + batch_size]])
    return audio_s / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    from speech.inference.engine import WhisperEngine

    started = time.perf_counter()
    try:
        engine = WhisperEngine(
            args.model, device=args.device, compute_type=args.compute_type, cpu_threads=args.cpu_threads
        )
    except Exception as exc:  # CUDA: say exactly what is missing, as `manage.py doctor` does
        print(f"cannot load the model on device={args.device}: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.device != "cpu":
            _explain_gpu(args.device, args.compute_type)
        return 1
    print(
        f"model={engine.name} device={engine.device} compute_type={engine.compute_type} "
        f"cpu_threads={args.cpu_threads or 'default'} load+warmup={time.perf_counter() - started:.2f}s"
    )
    utterances = corpus.dev_utterances()
    audios = [corpus.read_mono_float(u.path) for u in utterances]
    print(f"dev corpus: {len(audios)} utterances, {sum(len(a) for a in audios) / 16000:.1f}s of audio")

    ratio, texts, _ = measure_overhead(engine, audios, args.repeats)
    try:
        wer = corpus.wer([u.reference for u in utterances], texts)
    except ImportError as exc:  # jiwer / whisper-normalizer are dev requirements
        print(f"wer unavailable: {exc}")
        wer = float("nan")

    throughput = {}
    for size in [int(s) for s in args.batch_sizes.split(",") if s.strip()]:
        throughput[size] = measure_throughput(engine, audios, size, max(args.items, size))
    print(f"engine_overhead_ratio={ratio:.4f}")
    print(f"wer={wer:.4f}")
    for size, value in throughput.items():
        print(f"batch_throughput_bs{size}={value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
