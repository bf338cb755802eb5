"""Choose the end-of-turn knobs by measurement: every pause in the dev corpus, replayed offline.

    python -m bench.turns [--early 0.1,0.15,0.2] [--delivery 0.1]

Each dev utterance (plus 3 s of silence) goes through the real segmenter with the ordinary
close switched off. At every pause that reaches the early-transcription silence, the bundled
tiny.en transcribes the segment so far and the Smart Turn model scores it, as the server does.
Each pause is then known: its length, whether it is the utterance's end, the text's verdict,
the model's probability and how long the transcription took.

A policy (early silence, end-of-turn silence, threshold, ceiling; unsure pauses close at
0.55 s) is then replayed on those pauses: a pause inside an utterance that is at least the
silence its verdict asks for is a cut; at an utterance's end the final leaves after
max(that silence, early + transcription time) + --delivery. Printed: today's fixed rule, then
the best policies for each number of cuts (final p50/p95 in seconds, estimated).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

from bench import corpus

UNSURE_S = 0.55


def collect(early_s: float, engine, model) -> list[dict]:
    from speech.inference.jobs import TranscribeOptions
    from speech.options import SessionOptions, new_segmenter
    from speech.segmenter import EarlyTranscription, EarlyTranscriptionCancelled, SegmentClosed

    rows = []
    for utt in corpus.dev_utterances():
        audio = np.concatenate([corpus.read_mono_float(utt.path), np.zeros(16000 * 3, np.float32)])
        options = SessionOptions(interim_results=False, early_transcription_on_silence=early_s,
                                 post_speech_silence_duration=2.9, end_of_turn_silence=0.0)  # fmt: skip
        segmenter, pending = new_segmenter(options), None
        for i in range(0, len(audio), 640):
            for event in segmenter.feed(audio[i : i + 640]):
                if isinstance(event, EarlyTranscription):
                    t = time.perf_counter()
                    (out,) = engine.transcribe_batch([(event.audio, TranscribeOptions(language="en"))])
                    took = time.perf_counter() - t
                    p = model.probability(event.audio) if model is not None else None
                    pending = {"file": utt.name, "at": event.end_s, "text": out.text, "p": p, "took": took}
                elif isinstance(event, EarlyTranscriptionCancelled | SegmentClosed) and pending:
                    pending["pause_s"] = (i + 640) / 16000 - pending["at"] + early_s
                    pending["end"] = isinstance(event, SegmentClosed)
                    rows.append(pending)
                    pending = None
        if pending:
            rows.append({**pending, "pause_s": 9.0, "end": True})
    return rows


def replay(rows, early_s, turn_s, threshold, ceiling_s, delivery_s, *, use_model=True):
    from speech.turns import COMPLETE, INCOMPLETE, verdict

    cuts, latencies = 0, []
    for row in rows:
        v = verdict(row["text"], row["p"] if use_model else None, threshold)
        ready = early_s + row["took"]
        close = max({COMPLETE: turn_s, INCOMPLETE: ceiling_s}.get(v, UNSURE_S), ready)
        if row["end"]:
            latencies.append(close + delivery_s)
        elif row["pause_s"] >= close:
            cuts += 1
    latencies.sort()
    n = len(latencies)
    return cuts, latencies[n // 2], latencies[min(n - 1, round(0.95 * (n - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--early", default="0.1,0.15,0.2", help="early-transcription silences to try")
    parser.add_argument("--delivery", type=float, default=0.1, help="seconds from close to the client")
    parser.add_argument("--cpu-threads", type=int, default=2)
    args = parser.parse_args(argv)
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 2
    from speech.turn_model import SmartTurnModel

    engine = corpus.bundled_engine(args.cpu_threads)
    model = SmartTurnModel.shared()
    for early_s in (float(x) for x in args.early.split(",")):
        rows = collect(early_s, engine, model)
        inner = [r for r in rows if not r["end"]]
        took = sorted(r["took"] for r in rows)
        print(f"early={early_s}: {len(rows)} pauses ({len(inner)} inside utterances), "
              f"transcription p50 {took[len(took) // 2]:.3f} s")  # fmt: skip
        cuts, p50, p95 = replay(rows, early_s, UNSURE_S, 0.0, UNSURE_S, args.delivery, use_model=False)
        print(f"  fixed {UNSURE_S} s rule: cuts={cuts} ttfs_p50~{p50:.3f} ttfs_p95~{p95:.3f}")
        grid = itertools.product((0.3, 0.35, 0.4, 0.45, 0.5), (0.5, 0.7, 0.9), (0.8, 1.0, 1.2), (True, False))
        results = []
        for turn_s, threshold, ceiling_s, use_model in grid:
            cuts, p50, p95 = replay(rows, early_s, turn_s, threshold, ceiling_s, args.delivery,
                                    use_model=use_model)  # fmt: skip
            results.append((cuts, p50 + p95, p50, p95, turn_s, threshold, ceiling_s, use_model))
        for cuts in sorted({r[0] for r in results})[:4]:
            best = min(r for r in results if r[0] == cuts)
            print(f"  cuts={cuts} ttfs_p50~{best[2]:.3f} ttfs_p95~{best[3]:.3f} end_of_turn={best[4]} "
                  f"threshold={best[5]} ceiling={best[6]} model={best[7]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
