"""Speaker embeddings: Resemblyzer's pretrained GE2E voice encoder, rebuilt without librosa."""

from __future__ import annotations

import importlib.util
import itertools
import threading
from functools import cache
from pathlib import Path

import numpy as np

from speech.audio import SAMPLE_RATE

# Resemblyzer's hparams.py: the network was trained on these features; changing any breaks it.
N_FFT = SAMPLE_RATE * 25 // 1000  # 25 ms window
HOP = SAMPLE_RATE * 10 // 1000  # 10 ms step
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s per partial utterance
HIDDEN = 256
EMBEDDING = 256
LAYERS = 3
PARTIAL_RATE = 1.3  # partials per second (resemblyzer's embed_utterance default)
MIN_COVERAGE = 0.75  # keep a zero-padded last partial only if this much of it is audio
NORM_TARGET_DBFS = -30.0  # resemblyzer's normalize_volume target (it only ever raises; see below)

# Shorter clips are mostly zero padding (a partial is 1.6 s) and drift towards one another: pairs
# of different voices reach 0.83 at 0.8 s against 0.74 at 1 s, and the best threshold misjudges
# 10.6% of pairs at 0.5 s, 4.7% at 0.7 s, 2.2% at 0.8 s, 1.1% at 1.0 s (`python -m bench.speakers`).
MIN_SECONDS = 1.0

WHEEL = "Resemblyzer==0.1.4"


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's auditory mel scale (librosa's default, htk=False): linear below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(
        f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp
    )


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@cache
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) with norm='slaney', htk=False: (n_mels, n_fft//2+1)."""
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney normalisation: each triangle has unit area, so bands are comparable in energy.
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


@cache
def _hann(n: int = N_FFT) -> np.ndarray:
    # Periodic ("fftbins") Hann, what librosa.stft uses via scipy.signal.get_window.
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """resemblyzer.audio.wav_to_mel_spectrogram: linear power mels (no log), (frames, 40) float32.

    librosa.stft with center=True pads n_fft//2 zeros each side (librosa >= 0.10's default
    pad_mode='constant'), so there are 1 + len(wav) // HOP frames.
    """
    x = np.pad(np.asarray(wav, dtype=np.float64), N_FFT // 2)
    n_frames = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, N_FFT), strides=(x.strides[0] * HOP, x.strides[0]), writeable=False
    )
    spectrum = np.fft.rfft(frames * _hann(), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    # einsum without optimize stays out of BLAS: a BLAS matmul here wakes OpenBLAS's worker
    # threads, which then spin for ~0.1 s and doubled the CPU time of every embed() call.
    return np.einsum("ft,mt->fm", power, mel_filterbank()).astype(np.float32)


def normalize_volume(wav: np.ndarray, target_dbfs: float = NORM_TARGET_DBFS) -> np.ndarray:
    """Scale to target_dbfs RMS, up or down.

    The network sees power spectra, so its output depends on level: without this a clip 26 dB
    quieter lands at ~0.5 similarity to itself. resemblyzer only raises quiet audio to -30 dBFS,
    which still leaves 0.82 between one clip at two levels; scaling both ways gives >= 0.97, keeps
    the input at the level the network was trained with, and separates voices no worse
    (measured on the corpus with `python -m bench.speakers`' pieces).
    """
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 0.0:
        return wav
    return (wav * (10.0 ** (target_dbfs / 20.0) / rms)).astype(np.float32)


def partial_slices(n_samples: int) -> list[slice]:
    """Mel-frame ranges of the 1.6 s partials covering n_samples (resemblyzer's compute_partial_slices)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / PARTIAL_RATE) / HOP))
    slices = [
        slice(i, i + PARTIAL_FRAMES) for i in range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    ]
    last = slices[-1]
    coverage = (n_samples - last.start * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(slices) > 1:
        slices.pop()
    return slices


def weights_path() -> Path:
    """pretrained.pt inside the installed resemblyzer package, found without importing it.

    Importing resemblyzer would pull in librosa and webrtcvad's preprocessing; only the file is needed.
    """
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"speaker embeddings need the voice encoder weights from the {WHEEL} wheel "
            f"(pip install --no-deps {WHEEL}); the resemblyzer package is not installed"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: reinstall {WHEEL} (pip install --no-deps {WHEEL})")
    return path


class VoiceEncoder:
    """GE2E speaker encoder: LSTM(40, 256, 3 layers) -> Linear(256, 256) -> ReLU -> L2 norm.

    A clip is cut into 1.6 s partials (1.3 per second, zero-padded at the end); each gives a unit
    vector, and the clip embedding is their renormalised mean, exactly like resemblyzer's
    embed_utterance. resemblyzer's webrtcvad silence trimming is skipped (callers pass VAD-cut
    speech); its volume normalisation to -30 dBFS is kept, but applied both ways (see
    normalize_volume). For audio at -30 dBFS the output equals resemblyzer's.

    Calls are serialised by a lock and run on at most `threads` torch threads; the previous
    thread count is restored after each call so other torch users in the process are unaffected.
    One instance serves every session (see `shared_encoder()`).

    Measured on the 2-core development machine (threads=1, warm, median of 30 calls, CPU time;
    wall time is the same on an idle core): 1 s clip ~15 ms, 2 s ~20 ms, 5 s ~30 ms, 10 s ~60 ms,
    about 5 ms per 1.6 s partial (`python -m bench.speakers`). threads=2 cut a 10 s clip to ~45 ms
    wall for ~90 ms CPU and was erratic while other jobs ran, so the default is one thread.
    """

    def __init__(self, state_dict: dict, threads: int = 1) -> None:
        import torch
        from torch import nn

        self._torch = torch
        self.threads = max(1, int(threads))
        self._lock = threading.Lock()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBEDDING)
        self.lstm.load_state_dict({k[5:]: v for k, v in state_dict.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state_dict.items() if k.startswith("linear.")})
        self.lstm.eval()
        self.linear.eval()

    @classmethod
    def load(cls, threads: int = 1) -> VoiceEncoder:
        """The pretrained encoder; RuntimeError naming the Resemblyzer wheel when the weights are absent."""
        import torch

        path = weights_path()
        # weights_only: the checkpoint holds tensors and plain numbers, nothing needs unpickling code.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        return cls(checkpoint["model_state"], threads=threads)

    def _forward(self, mels: np.ndarray) -> np.ndarray:
        """(batch, 160, 40) mels -> (batch, 256) unit vectors."""
        torch = self._torch
        with self._lock:
            previous = torch.get_num_threads()
            if previous != self.threads:
                torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    _, (hidden, _) = self.lstm(torch.from_numpy(mels))
                    raw = torch.relu(self.linear(hidden[-1]))
                    out = raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-12)
                    return out.numpy().copy()
            finally:
                if previous != self.threads:
                    torch.set_num_threads(previous)

    @staticmethod
    def _partials(wav: np.ndarray) -> np.ndarray:
        slices = partial_slices(len(wav))
        needed = slices[-1].stop * HOP
        if needed > len(wav):
            wav = np.pad(wav, (0, needed - len(wav)))
        mel = mel_spectrogram(wav)
        return np.stack([mel[s] for s in slices])

    @staticmethod
    def _mono(audio: np.ndarray) -> np.ndarray:
        wav = np.asarray(audio, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"expected mono audio shaped (samples,), got {wav.shape}")
        return wav

    def embed(self, audio: np.ndarray) -> np.ndarray | None:
        """256-d unit vector for a 16 kHz mono float32 clip; None below MIN_SECONDS (too short to tell)."""
        wav = self._mono(audio)
        # Digital silence would still give a vector (the network's answer to zeros), not a voice.
        if len(wav) < MIN_SECONDS * SAMPLE_RATE or not np.any(wav):
            return None
        return _mean_unit(self._forward(self._partials(normalize_volume(wav))))

    def embed_parts(self, audio: np.ndarray, part_s: float = 3.0) -> list[tuple[float, float, np.ndarray]]:
        """(start_s, end_s, embedding) for consecutive ~part_s pieces of a clip, in one forward pass.

        For segments where the speaker may change inside. A tail shorter than half a part joins
        the previous piece rather than giving a weak embedding of its own. A clip under
        MIN_SECONDS gives [], and pieces of digital silence are left out.
        """
        if part_s <= 0:
            raise ValueError("part_s must be positive")
        wav = self._mono(audio)
        n, step = len(wav), max(int(part_s * SAMPLE_RATE), int(MIN_SECONDS * SAMPLE_RATE))
        if n < MIN_SECONDS * SAMPLE_RATE:
            return []
        bounds = [*range(0, n, step), n]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < max(step / 2, MIN_SECONDS * SAMPLE_RATE):
            del bounds[-2]
        pieces = [(a, b) for a, b in itertools.pairwise(bounds) if np.any(wav[a:b])]  # silence: no voice
        if not pieces:
            return []
        # Each piece is normalised on its own, as if the VAD had cut it: levels differ across speakers.
        stacks = [self._partials(normalize_volume(wav[a:b])) for a, b in pieces]
        embeds = self._forward(np.concatenate(stacks))
        out: list[tuple[float, float, np.ndarray]] = []
        i = 0
        for (a, b), stack in zip(pieces, stacks, strict=True):
            out.append((a / SAMPLE_RATE, b / SAMPLE_RATE, _mean_unit(embeds[i : i + len(stack)])))
            i += len(stack)
        return out


def _mean_unit(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


_shared: VoiceEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> VoiceEncoder:
    """The process-wide encoder, loaded on first use (~17 MB of weights, a fraction of a second)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = VoiceEncoder.load()
        return _shared
