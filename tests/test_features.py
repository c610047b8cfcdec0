"""The paper's mel recipe, exactly, in bounded memory."""

import numpy as np

from backend import features
from backend.audio import load_audio


def test_reference_mel_matches_to_1e_4(vectors_dir):
    audio = load_audio(vectors_dir / "ref_audio.flac")
    ref = np.load(vectors_dir / "ref_audio_mel.npz")["mel"]
    mel = features.mel_features(audio.samples)
    assert mel.shape == ref.shape == (int(audio.duration * 90), 128)
    assert np.abs(mel - ref).max() < 1e-4


def test_filterbank_is_librosas():
    import librosa
    ref = librosa.filters.mel(sr=22050, n_fft=2048, n_mels=128)
    assert np.abs(features.mel_filterbank() - ref).max() < 1e-6


def test_blocked_stft_equals_one_block(demo, monkeypatch):
    whole = features.power_mel(demo.samples)
    monkeypatch.setattr(features, "_BLOCK_FRAMES", 97)  # many blocks, odd boundaries
    blocked = features.power_mel(demo.samples)
    assert whole.shape == blocked.shape
    assert np.allclose(whole, blocked, rtol=1e-4, atol=1e-6 * whole.max())


def test_range_orientation_and_length(demo):
    mel = features.mel_features(demo.samples)
    assert mel.shape == (int(len(demo.samples) / demo.sr * 90), 128)
    assert mel.min() >= 0 and 0.98 < mel.max() <= 1.0  # 1.0 is the loudest bin before resizing
    # the demo's energy is in low and middle bands: row 0 is the highest band, so it is quieter
    assert mel[:, :16].mean() < mel[:, -64:].mean()
