"""The GE2E voice encoder: features against librosa's figures, embeddings against resemblyzer's."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from speech.enrich import voice

RATE = 16000


@pytest.fixture(scope="module")
def encoder() -> voice.VoiceEncoder:
    try:
        return voice.VoiceEncoder.load()
    except RuntimeError as exc:
        print(f"SKIP: {exc}")
        pytest.skip(str(exc))


def _load(corpus, name: str) -> np.ndarray:
    return corpus.read_mono_float(corpus.corpus_dir() / name)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_mel_filterbank_matches_librosa():
    # Figures from librosa 0.11 filters.mel(sr=16000, n_fft=400, n_mels=40) (Slaney, htk=False).
    fb = voice.mel_filterbank()
    assert fb.shape == (40, 201)
    assert fb.sum() == pytest.approx(0.9994971752166748, rel=1e-6)
    assert int(fb[10].argmax()) == 20
    assert fb[10].max() == pytest.approx(0.01187948975712061, rel=1e-6)
    assert fb[39].sum() == pytest.approx(0.02497875690460205, rel=1e-6)


def test_mel_spectrogram_matches_librosa():
    # librosa.feature.melspectrogram(n_fft=400, hop_length=160, n_mels=40) of a 1 kHz tone, 0.5 s.
    t = np.arange(8000) / RATE
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = voice.mel_spectrogram(x)
    assert mel.shape == (51, 40) and mel.dtype == np.float32
    assert mel.sum() == pytest.approx(2450.4521484375, rel=1e-5)
    assert int(mel[20].argmax()) == 13
    assert mel[20].max() == pytest.approx(26.129993438720703, rel=1e-5)
    assert mel[0].sum() == pytest.approx(24.327404022216797, rel=1e-5)  # the zero-padded first frame


def test_partial_slices_follow_resemblyzer():
    assert voice.partial_slices(RATE // 2) == [slice(0, 160)]  # short clips: one zero-padded partial
    slices = voice.partial_slices(10 * RATE)
    assert [s.start for s in slices[:3]] == [0, 77, 154]  # 1.3 partials per second
    assert all(s.stop - s.start == 160 for s in slices)
    assert (10 * RATE - slices[-1].start * 160) / (160 * 160) >= 0.75  # last partial mostly audio


def test_embedding_matches_resemblyzer(corpus, encoder):
    # resemblyzer 0.1.4 VoiceEncoder().embed_utterance(wav) (librosa 0.11) with each file first
    # scaled to -30 dBFS RMS, as embed() does: its six largest components.
    expected = {
        "jfk.wav": ([212, 13, 203, 162, 61, 218], [0.22316, 0.22296, 0.21327, 0.18713, 0.16935, 0.16628]),
        "ljspeech_LJ001-0001.wav": (
            [169, 102, 125, 248, 207, 90],
            [0.27189, 0.21917, 0.20159, 0.18823, 0.18438, 0.18413],
        ),
    }
    for name, (idx, values) in expected.items():
        e = encoder.embed(_load(corpus, name))
        np.testing.assert_allclose(e[idx], values, atol=2e-4)


def test_embedding_is_a_unit_vector(corpus, encoder):
    e = encoder.embed(_load(corpus, "ljspeech_LJ001-0003.wav"))
    assert e.shape == (256,) and e.dtype == np.float32
    assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    assert e.min() >= 0.0  # ReLU before the norm


def test_same_voice_is_more_similar_than_a_different_voice(corpus, encoder):
    lj1, lj3, lj5 = (encoder.embed(_load(corpus, f"ljspeech_LJ001-000{i}.wav")) for i in (1, 3, 5))
    libri = encoder.embed(_load(corpus, "librispeech_1089-134686-0000.wav"))
    jfk = encoder.embed(_load(corpus, "jfk.wav"))
    same = min(_cos(lj1, lj3), _cos(lj1, lj5), _cos(lj3, lj5))
    different = max(_cos(lj1, libri), _cos(lj1, jfk), _cos(libri, jfk))
    assert same > 0.85
    assert different < 0.65
    left = encoder.embed(_load(corpus, "stereo_left.wav"))
    right = encoder.embed(_load(corpus, "stereo_right.wav"))
    assert _cos(left, right) < 0.75


def test_short_clip_gives_none(corpus, encoder):
    wav = _load(corpus, "ljspeech_LJ001-0001.wav")
    assert encoder.embed(wav[: int(0.5 * RATE)]) is None
    assert encoder.embed(np.zeros(0, dtype=np.float32)) is None
    assert encoder.embed(wav[: int(voice.MIN_SECONDS * RATE)]) is not None
    assert encoder.embed_parts(wav[: int(0.5 * RATE)]) == []
    assert encoder.embed(np.zeros(2 * RATE, dtype=np.float32)) is None  # silence is no voice
    gap = np.concatenate([wav[: 3 * RATE], np.zeros(3 * RATE, np.float32), wav[: 3 * RATE]])
    assert [(a, b) for a, b, _ in encoder.embed_parts(gap, part_s=3.0)] == [(0.0, 3.0), (6.0, 9.0)]


def test_level_does_not_change_the_embedding(corpus, encoder):
    # The network sees power spectra: unnormalised, the same clip 26 dB quieter lands at ~0.5.
    wav = _load(corpus, "ljspeech_LJ001-0001.wav")
    e = encoder.embed(wav)
    assert _cos(e, encoder.embed(wav * 0.05)) > 0.999
    assert _cos(e, encoder.embed(wav * 2.0)) > 0.99


def test_embed_parts_cover_a_long_clip(corpus, encoder):
    wav = _load(corpus, corpus.LONG_FILE)
    parts = encoder.embed_parts(wav, part_s=4.0)
    duration = len(wav) / RATE
    assert parts[0][0] == 0.0 and parts[-1][1] == pytest.approx(duration)
    for (_, end, _), (start, _, _) in itertools.pairwise(parts):
        assert end == start
    # 70.3 s: seventeen 4 s parts and the 2.3 s tail (at least half a part, so it stands alone).
    assert [round(b - a, 1) for a, b, _ in parts] == [4.0] * 17 + [2.3]
    short_tail = encoder.embed_parts(wav[: int(9.5 * RATE)], part_s=4.0)
    assert [round(b - a, 1) for a, b, _ in short_tail] == [4.0, 5.5]  # a 1.5 s tail joins the last part
    first = encoder.embed(wav[: 4 * RATE])
    np.testing.assert_allclose(parts[0][2], first, atol=1e-5)  # batching changes nothing
    centroid = np.mean([e for _, _, e in parts], axis=0)
    assert min(_cos(e, centroid) for _, _, e in parts) > 0.8  # one voice throughout


def test_embed_rejects_stereo(encoder):
    with pytest.raises(ValueError, match="mono"):
        encoder.embed(np.zeros((RATE, 2), dtype=np.float32))


def test_concurrent_calls_agree_and_leave_torch_threads_alone(corpus, encoder):
    import torch

    wav = _load(corpus, "ljspeech_LJ001-0004.wav")
    expected = encoder.embed(wav)
    before = torch.get_num_threads()
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(encoder.embed(wav))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-6)
    assert torch.get_num_threads() == before


def test_missing_weights_name_the_wheel(monkeypatch):
    monkeypatch.setattr(voice.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"Resemblyzer==0\.1\.4"):
        voice.VoiceEncoder.load()


def test_shared_encoder_is_one_instance(encoder):
    assert voice.shared_encoder() is voice.shared_encoder()
