"""Whole pieces from 1 s to an hour: exact windows, noise under control, the ripple filter."""

import math

import numpy as np
import pytest
import torch

from backend import metrics
from backend.engines import smooth_motion
from baton_core.errors import BatonError
from backend.generate import InferenceGenerator, make_noise, noise_seconds
from baton_core.skeleton import R_WRIST


def _whole_pass(model, mel, noise):
    """The plain module over the whole (reflect-padded to whole seconds) piece in one forward."""
    s = noise_seconds(len(mel))
    mp = np.pad(mel, ((0, s * 90 - len(mel)), (0, 0)), mode="reflect")
    with torch.inference_mode():
        return model(torch.from_numpy(mp)[None], torch.from_numpy(noise)[None])[0].numpy()[: math.ceil(len(mel) / 3)]


@pytest.fixture(scope="module")
def long_mel(demo):
    from backend.features import mel_features
    mel = mel_features(demo.samples)
    return np.ascontiguousarray(np.tile(mel, (5, 1))[: 90 * 170 + 41])  # 170.46 s, not whole seconds


def test_windows_join_exactly_like_one_pass(any_model, long_mel, monkeypatch):
    import backend.generate
    monkeypatch.setattr(backend.generate, "DECODER_WINDOW", 40 * 30)  # several decoder windows too
    gen = InferenceGenerator(any_model)
    noise = make_noise(3, noise_seconds(len(long_mel)), 8)
    out = gen(long_mel, noise)
    assert out.shape == (math.ceil(len(long_mel) / 3), 13, 2)
    assert np.abs(out - _whole_pass(any_model, long_mel, noise)).max() < 1e-4
    # the paper's encoder runs in 5 s tiles, the light one in one pass; the decoder in windows
    assert len(gen.window_joins(len(out))) > (20 if any_model.cfg.encoder == "conv2d" else 2)


@pytest.mark.parametrize("seconds", [1.0, 2.2, 2.5, 5.5, 9.99, 61.3])
def test_any_length_is_one_pass_of_the_model(any_model, seconds):
    gen = InferenceGenerator(any_model)
    n90 = int(seconds * 90)
    mel = np.random.default_rng(1).random((n90, 128), dtype=np.float32)
    noise = make_noise(0, noise_seconds(n90), 8)
    out = gen(mel, noise)
    assert out.shape == (math.ceil(n90 / 3), 13, 2) and np.isfinite(out).all()
    if noise_seconds(n90) >= gen.min_seconds:  # long enough for the model's own reflect padding
        assert np.abs(out - _whole_pass(any_model, mel, noise)).max() < 1e-4


def test_seed_decides_the_noise_and_the_noise_reaches_the_motion(random_model, long_mel):
    gen = InferenceGenerator(random_model)
    mel = long_mel[: 90 * 30]
    a = gen(mel, make_noise(1, 30, 8))
    assert np.array_equal(a, gen(mel, make_noise(1, 30, 8)))
    assert not np.allclose(a, gen(mel, make_noise(2, 30, 8)))
    given = np.zeros((30, 8), np.float32)
    given[20] = 5.0  # a caller's per-second noise changes the motion around that second only
    z = gen(mel, np.zeros((30, 8), np.float32))
    d = np.abs(gen(mel, given) - z).max(axis=(1, 2))
    far = d[:600 - random_model.receptive_field_frames()].max()  # float rounding at most
    assert far < 1e-6 and d[600:630].max() > 100 * max(far, 1e-7)
    with pytest.raises(BatonError, match="noise must have shape"):
        gen(mel, np.zeros((29, 8), np.float32))


def test_official_five_minutes_without_seams(official_generator_path, long_mel):
    from backend.checkpoint import load_generator
    gen = InferenceGenerator(load_generator(official_generator_path).model)
    mel = np.tile(long_mel, (2, 1))[: 90 * 300]
    out = gen(mel, make_noise(0, 300, 8))  # the generator path's own output, before smoothing
    joins = gen.window_joins(len(out))
    assert len(joins) >= 50 and metrics.seam(out, joins) <= 2.0
    # the paper's way, independent 60 s chunks, jumps at every chunk boundary
    chunked = np.concatenate([gen(mel[a:a + 5400], make_noise(a, 60, 8)) for a in range(0, len(mel), 5400)])
    assert metrics.seam(chunked, np.arange(1800, len(chunked), 1800)) > 2.0  # fails the goal


def test_smoothing_removes_the_ripple_and_keeps_every_ictus(demo):
    from backend.features import mel_features
    from backend.rules import conduct
    from baton_core.skeleton import project_front
    mel = mel_features(demo.samples)
    clean = project_front(conduct(mel, math.ceil(len(mel) / 3))[0])
    t = np.arange(len(clean))
    rippled = clean + 0.004 * np.cos(2 * np.pi * t / 3)[:, None, None]  # the 3-frame ripple
    smoothed = smooth_motion(rippled)
    assert metrics.ripple_ratio(rippled) > 0.2 and metrics.ripple_ratio(smoothed) < 0.01
    want, got = metrics.ictus_times(clean), metrics.ictus_times(smoothed)
    want = want[want <= demo.beats[-1] + 0.1]  # every beat's ictus (the final hold has none)
    assert len(want) == len(demo.beats)
    assert max(np.abs(got - w).min() for w in want) <= 1 / 30 + 1e-9
    # and the hand's path is not smeared: its beat-rate motion is kept
    assert np.abs(smoothed[:, R_WRIST] - clean[:, R_WRIST]).max() < 0.2 * np.ptp(clean[:, R_WRIST, 1])


def test_smoothing_makes_the_papers_motion_human_smooth(official_generator_path, long_mel):
    from backend.checkpoint import load_generator
    gen = InferenceGenerator(load_generator(official_generator_path).model)
    raw = gen(long_mel[: 90 * 60], make_noise(0, 60, 8))
    assert metrics.jitter(raw) > 1.0 and metrics.ripple_ratio(raw) > 0.2  # the release's weakness
    smooth = smooth_motion(raw)
    assert metrics.jitter(smooth) < 0.7 and metrics.ripple_ratio(smooth) < 0.01


@pytest.mark.parametrize("kernel, stride, padding", [(5, (1, 2), 2), (5, (3, 2), 2), (3, (1, 2), 1)])
@pytest.mark.parametrize("rows", [7, 486, 487])
def test_fast_max_pool_equals_torchs(kernel, stride, padding, rows):
    from backend.generate import _max_pool_nhwc
    x = torch.randn(1, 16, rows, 64).contiguous(memory_format=torch.channels_last)
    assert torch.equal(_max_pool_nhwc(x, kernel, stride, padding), torch.nn.functional.max_pool2d(x, kernel, stride, padding))
