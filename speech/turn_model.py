"""Smart Turn v3: an audio end-of-turn classifier (Whisper-tiny encoder + head, ONNX, ~8 MB).

Its weights ship inside the `pipecat-ai` wheel (BSD-2-Clause), installed without its
dependencies from requirements-models.txt; only the ONNX file is read, pipecat is never
imported. The model hears the last 8 s of a turn and says how likely the speaker is done:
trailing intonation and wording, which silence length alone cannot tell.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from speech.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

DISTRIBUTION = "pipecat-ai"
WEIGHTS = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
WINDOW_S = 8


def bundled_weights() -> Path | None:
    """Where the installed wheel keeps the ONNX file (None when the package is absent)."""
    try:
        path = Path(str(metadata.distribution(DISTRIBUTION).locate_file(WEIGHTS)))
    except metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


class SmartTurnModel:
    """One onnxruntime session shared by every stream (sessions are safe to call concurrently)."""

    _lock = threading.Lock()
    _instance: SmartTurnModel | None = None
    _missing = False

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        self._samples = WINDOW_S * SAMPLE_RATE

    @classmethod
    def shared(cls) -> SmartTurnModel | None:
        """The process's instance, loaded once; None (logged once) when the weights are not installed."""
        with cls._lock:
            if cls._instance is None and not cls._missing:
                path = bundled_weights()
                if path is None:
                    cls._missing = True
                    log.warning(
                        "end-of-turn model not installed (%s): the text rule decides alone", DISTRIBUTION
                    )
                else:
                    cls._instance = cls(path)
            return cls._instance

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel features of the last 8 s (left-padded with silence), shape (1, 80, 800)."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)[-self._samples :]
        if len(x) < self._samples:
            x = np.pad(x, (self._samples - len(x), 0))
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        mel = self._features(x, padding=0)[:, : self._samples // 160]
        return mel[np.newaxis].astype(np.float32)

    def probability(self, audio: np.ndarray) -> float:
        """How likely the turn is complete, 0..1, from 16 kHz mono audio ending now."""
        (out,) = self._session.run(None, {"input_features": self.features(audio)})
        return float(np.asarray(out).reshape(-1)[0])
