"""What the text enrichment stages (sentiment, topics, filters) cost per call, on CPU.

    python -m bench.text_enrichment [--session-words 20000]

Prints µs or ms per call of each stage on typical ~20-word final segments, extract_topics on
200, 2,000 and 20,000 words, and a SessionTopics fed 20-word segments with topics() asked
after every one (mean and worst cost per segment, how often it recomputed). The text is the
corpus references (LJSpeech read speech) where the corpus is present, repeated as needed; a
short built-in paragraph otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

from bench import corpus

FALLBACK = (
    "The committee met on Tuesday to review the budget for the new library. Most members agreed "
    "that the reading rooms needed better lighting and more seating. The architect presented two "
    "designs for the extension, one with a glass roof and one with a garden terrace. Questions "
    "about heating costs and the opening hours of the children's section took most of the "
    "afternoon. A decision on the design was put off until the next meeting in March."
)

SEGMENTS = {
    "plain": "And it is worth mention in passing that, as an example of fine typography, the earliest book",
    "numbers": "so my card number is 4111 1111 1111 1111 and you can call me at 415 555 2671 okay",
    "spelled": "my card is four one one one one one one one one one one one one one one one thanks",
    "profane": "well I think this is a fucking great idea and we should do it right now okay then",
}


def _words() -> list[str]:
    if corpus.corpus_missing_reason():
        return FALLBACK.split()
    refs = [u.reference for name, u in sorted(corpus.manifest().items()) if name.startswith("ljspeech_")]
    return " ".join(refs).split()


def _per_call(fn: Callable[[], object], *, min_time: float = 0.3) -> float:
    """Seconds per call: repeated until `min_time` has passed (after one warm-up call)."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"


def _segments(words: list[str], total: int, size: int = 20) -> list[tuple[int, str]]:
    stream = list(itertools.islice(itertools.cycle(words), total))
    return [(i, " ".join(stream[k : k + size])) for i, k in enumerate(range(0, total, size))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--session-words", type=int, default=20000)
    args = parser.parse_args(argv)

    from speech.enrich import filters, sentiment, topics

    words = _words()
    print(f"text: {'corpus references' if len(words) > 100 else 'built-in paragraph'} ({len(words)} words)")

    print("\n== sentiment (VADER) per ~20-word segment")
    start = time.perf_counter()
    sentiment.analyse("warm up")
    print(f"first call (lexicon load) {_fmt(time.perf_counter() - start)}")
    for name, text in SEGMENTS.items():
        print(f"analyse[{name}] {_fmt(_per_call(lambda t=text: sentiment.analyse(t)))}")
    text = SEGMENTS["plain"]
    print(f"by_sentence[plain] {_fmt(_per_call(lambda: sentiment.by_sentence(text)))}")
    print(f"split_sentences[plain] {_fmt(_per_call(lambda: sentiment.split_sentences(text)))}")
    session = sentiment.SessionSentiment()
    print(f"SessionSentiment.add+overall {_fmt(_per_call(lambda: (session.add(text), session.overall)))}")

    print("\n== filters per ~20-word segment")
    kinds = {
        "profanity": filters.TextFilter(profanity=True),
        "pci": filters.TextFilter(redact=frozenset({"pci"})),
        "all": filters.TextFilter(profanity=True, redact=filters.REDACT_KINDS),
    }
    for kind, flt in kinds.items():
        for name, seg in SEGMENTS.items():
            print(f"apply[{kind}][{name}] {_fmt(_per_call(lambda f=flt, s=seg: f.apply(s)))}")
    flt = kinds["all"]
    word_dicts = [
        {"word": " " + w, "start": i * 0.3, "end": i * 0.3 + 0.25, "probability": 0.9}
        for i, w in enumerate(SEGMENTS["numbers"].split())
    ]
    print(f"apply_words[all][numbers] {_fmt(_per_call(lambda: flt.apply_words(word_dicts)))}")

    print("\n== topics (YAKE, up to 2-grams)")
    start = time.perf_counter()
    topics.extract_topics([(0, "warm up the keyword extractor")])
    print(f"first call (imports yake) {_fmt(time.perf_counter() - start)}")
    for total in (200, 2000, 20000):
        segs = _segments(words, total)
        cost = _per_call(lambda s=segs: topics.extract_topics(s), min_time=1.0)
        print(f"extract_topics[{total} words] {_fmt(cost)}")
    top = topics.extract_topics(_segments(words, 2000))[:3]
    print("top of 2000 words: " + ", ".join(f"{t.topic} ({t.confidence:.2f})" for t in top))

    segs = _segments(words, args.session_words)
    tracker = topics.SessionTopics()
    costs: list[float] = []
    for index, seg in segs:
        start = time.perf_counter()
        tracker.add(index, seg)
        tracker.topics()
        costs.append(time.perf_counter() - start)
    mean = sum(costs) / len(costs)
    print(
        f"SessionTopics[{args.session_words} words, {len(segs)} segments of 20 words, topics() after each]: "
        f"mean {_fmt(mean)}/segment, worst {_fmt(max(costs))}, total {sum(costs):.2f} s, "
        f"{tracker.recomputations} recomputations (window {tracker.window_words} words)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
