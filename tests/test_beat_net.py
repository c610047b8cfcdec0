"""The beat input: phase features between beats, decoding a beat activation, and a generator that
conducts given beats — exactly in windows, differently for different beats, kept in its checkpoint."""

import math

import numpy as np
import pytest
import torch

from backend.beat_net import BEAT_FEATURES, beat_phase_features, pulse_clarity
from backend.beats import dp_beats
from backend.checkpoint import load_generator, save_checkpoint
from backend.generate import InferenceGenerator, make_noise, noise_seconds
from backend.model import Generator, GeneratorConfig


def test_phase_runs_from_each_beat_to_the_next_and_pauses_read_as_no_beat():
    beats = np.r_[np.arange(1.0, 5.01, 0.5), 8.0, 8.5, 9.0]  # a 3 s pause after 5.0
    f = beat_phase_features(beats, 12 * 30)
    assert f.shape == (360, BEAT_FEATURES) and f.dtype == np.float32
    on = np.round(beats * 30).astype(int)
    assert np.allclose(f[on, 0], 0, atol=1e-5) and np.allclose(f[on, 1], 1, atol=1e-5)  # phase 0 on a beat
    assert np.allclose(f[on[:8] + 7, 1], np.cos(2 * np.pi * 7 / 15), atol=1e-5)  # half a period on
    assert np.allclose(f[on[:8], 2], 0, atol=1e-6)  # log2(0.5 s / 0.5 s)
    assert (f[5 * 30 + 15: 8 * 30] == 0).all() and (f[5 * 30: 5 * 30 + 15, 3] == 1).all()  # the pause
    assert (f[15:30, 3] == 1).all() and (f[:15] == 0).all()  # one period extrapolated before the first beat
    assert (f[9 * 30: 9 * 30 + 15, 3] == 1).all() and (f[9 * 30 + 15:] == 0).all()  # and after the last
    assert (beat_phase_features(np.array([2.0]), 90) == 0).all()


def test_dp_decodes_a_clean_activation_to_its_beats():
    rng = np.random.default_rng(0)
    frames = np.cumsum(np.r_[20, 14 + rng.integers(0, 3, 40)])  # ≈ 0.5 s beats with a little rubato
    act = np.zeros(frames[-1] + 30)
    act[frames] = 1.0
    act += 0.05 * rng.random(len(act))
    act[frames[1::2] + 7] += 0.4  # weaker off-beats must not become beats
    got, tempo = dp_beats(act / act.std(), 30)
    assert np.array_equal(got, frames) and 110 < tempo < 130


def test_pulse_clarity_tells_beats_heard_from_a_grid_laid_over_a_flat_activation():
    frames = np.arange(10, 300, 14)
    act = np.full(320, 0.05)
    act[frames] = 0.95
    assert pulse_clarity(act, frames) == pytest.approx(0.9)
    assert pulse_clarity(np.full(320, 0.7), frames) == pytest.approx(0.0)  # noise: as high between as on
    act[frames[:-1] + 7] = 0.95  # a subdivision heard as strongly as the beat
    assert pulse_clarity(act, frames) == pytest.approx(0.0)
    assert pulse_clarity(act, frames[:2]) == 0.0


@pytest.fixture(scope="module")
def beat_model():
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(encoder="conv1d", encoder_channels=(64, 64, 64), beat_input=True,
                                      beat_channels=16, beat_layers=4))
    with torch.no_grad():
        model.beat_proj.weight.normal_(0, 0.5)
    return model.eval()


def test_a_generator_with_the_beat_input_conducts_the_beats_it_is_given(beat_model, demo):
    from backend.features import mel_features
    mel = np.ascontiguousarray(np.tile(mel_features(demo.samples), (3, 1))[: 90 * 70 + 20])
    noise = make_noise(1, noise_seconds(len(mel)), 8)
    gen = InferenceGenerator(beat_model)
    own = gen.track_beats(mel)
    assert len(own.times) > 10 and np.all(np.diff(own.times) > 0)
    out = gen(mel, noise)  # its own tracker's beats by default
    assert np.array_equal(out, gen(mel, noise, beats=own.times))
    # one pass of the plain module with the same phase (reflect-padded to whole seconds)
    s = noise_seconds(len(mel))
    mp = np.pad(mel, ((0, s * 90 - len(mel)), (0, 0)), mode="reflect")
    phase = torch.from_numpy(beat_phase_features(own.times, s * 30))[None]
    with torch.inference_mode():
        whole = beat_model(torch.from_numpy(mp)[None], torch.from_numpy(noise)[None], phase)[0].numpy()
    assert np.abs(out - whole[: math.ceil(len(mel) / 3)]).max() < 1e-4
    shifted = gen(mel, noise, beats=own.times + 0.25)
    assert np.abs(shifted - out).max() > 1e-3  # the beats reach the motion
    with pytest.raises(ValueError, match="takes the beat phase"):
        beat_model(torch.from_numpy(mp)[None], torch.from_numpy(noise)[None])
    with pytest.raises(ValueError, match="no beat input"):
        Generator(GeneratorConfig(encoder="conv1d"))(torch.from_numpy(mp)[None], torch.from_numpy(noise)[None], phase)


def test_the_tracker_travels_in_the_checkpoint(beat_model, tmp_path):
    sha = save_checkpoint(beat_model, tmp_path / "g.pt")
    loaded = load_generator(tmp_path / "g.pt")
    assert loaded.sha256 == sha and loaded.model.cfg.beat_input and loaded.model.cfg.beat_layers == 4
    a, b = beat_model.state_dict(), loaded.model.state_dict()
    assert any(k.startswith("beat_net.") for k in b) and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="beat_input must be true or false"):
        GeneratorConfig.from_dict(dict(beat_model.cfg.to_dict(), beat_input="yes"))
