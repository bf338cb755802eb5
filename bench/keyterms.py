"""Do key terms fix the rare words the model gets wrong, without hurting the rest?

    python -m bench.keyterms [--cpu-threads 2]

The bundled tiny.en transcribes every dev utterance three ways, offline (no server): without
key terms, with the utterance's own rare words as key terms, and with one shared vocabulary (all
of those words together, as a user would configure it) on every utterance. Prints the word
error rate of the targeted utterances and of the others, each way. The rare words are the ones
tiny.en misspells on the dev corpus (checked against the references).
"""

from __future__ import annotations

import argparse
import sys

from bench import corpus

# Utterance -> the words its reference has that tiny.en gets wrong without help.
RARE_WORDS = {
    "ljspeech_LJ001-0007.wav": ("Gutenberg",),
    "librispeech_1089-134686-0000.wav": ("flour",),
    "ljspeech_LJ001-0003.wav": ("woodcutters",),
    "ljspeech_LJ001-0016.wav": ("therefore",),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu-threads", type=int, default=2)
    args = parser.parse_args(argv)
    reason = corpus.corpus_missing_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 2
    from speech.inference.jobs import TranscribeOptions

    engine = corpus.bundled_engine(args.cpu_threads)
    shared = tuple(term for terms in RARE_WORDS.values() for term in terms)
    rows: dict[str, dict[str, list[str]]] = {"targeted": {}, "others": {}}
    for utt in corpus.dev_utterances():
        audio = corpus.read_mono_float(utt.path)
        group = "targeted" if utt.name in RARE_WORDS else "others"
        ways = {"none": (), "own": RARE_WORDS.get(utt.name, ()), "shared": shared}
        for way, terms in ways.items():
            (out,) = engine.transcribe_batch([(audio, TranscribeOptions(language="en", keyterms=terms))])
            rows[group].setdefault(way, []).append(out.text)
            if group == "targeted":
                print(f"{utt.name} [{way}] {out.text}")
        rows[group].setdefault("refs", []).append(utt.reference)
    print("group utterances wer_none wer_own_terms wer_shared_vocabulary")
    for group, data in rows.items():
        refs = data["refs"]
        figures = [corpus.wer(refs, data[way]) for way in ("none", "own", "shared")]
        print(f"{group} {len(refs)} " + " ".join(f"{f:.3f}" for f in figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
