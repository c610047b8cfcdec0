"""The bar-position state space (backend/bars.py): bars and metres decoded from per-beat downbeat
probabilities, their confidence, bar lines given by the animator, the bar features the generator
reads, and a generator with the bar input drawing the bars it is given or hears."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.bars import (BAR_FEATURES, PATTERN_METRES, bar_positions, bar_states, beat_state_logp, hear_bars,
                          state_labels)
from backend.beat_net import bar_features
from backend.checkpoint import load_generator, save_checkpoint
from backend.generate import InferenceGenerator, make_noise, noise_seconds
from backend.model import Generator, GeneratorConfig


def _heard(metres: list[int], upbeat: int = 0, sure: float = 0.6, rng=None) -> tuple[np.ndarray, list[bool]]:
    """Per-beat state log-probabilities of a tracker that gives the true (metre, position) of bars
    of `metres`, after an `upbeat`, probability `sure` and spreads the rest at random."""
    rng = rng or np.random.default_rng(0)
    states = bar_states()
    truth = [(metres[0], metres[0] - upbeat + k) for k in range(upbeat)] + [(m, p) for m in metres for p in range(m)]
    p = rng.dirichlet(np.ones(len(states)), len(truth)) * (1 - sure)
    for k, st in enumerate(truth):
        p[k, states.index(st)] += sure
    return np.log(p), [st[1] == 0 for st in truth]


@pytest.mark.parametrize("metre", [1, 2, 3, 4, 6])
def test_clear_bars_are_heard_with_their_metre_and_upbeat(metre):
    logp, first = _heard([metre] * 12, upbeat=metre - 1)
    beats = np.arange(len(logp)) * 0.5
    bars = hear_bars(logp, beats)
    assert np.array_equal(bars.position == 0, first)
    assert np.all(bars.metre == metre) and bars.confidence.mean() > 0.9
    assert np.allclose(bars.downbeats, beats[np.array(first)])


def test_a_metre_change_is_followed_and_a_single_odd_reading_is_not():
    logp, first = _heard([4] * 8 + [3] * 8)
    assert np.array_equal(hear_bars(logp, np.arange(len(logp)) * 0.5).position == 0, first)
    logp2, first2 = _heard([4] * 16)
    logp2[17] = np.log(np.full(logp2.shape[1], 1e-3))
    logp2[17, bar_states().index((3, 0))] = 0.0  # one beat heard as a bar line of three
    bars2 = hear_bars(logp2, np.arange(len(logp2)) * 0.5)
    assert np.array_equal(bars2.position == 0, first2) and np.all(bars2.metre == 4)


def test_a_tracker_that_cannot_tell_leaves_the_bars_unsure():
    s = len(bar_states())
    bars = hear_bars(np.full((32, s), -np.log(s)), np.arange(32) * 0.5)
    assert bars.confidence.mean() < 0.6


def test_each_beats_state_is_read_around_its_frame():
    s = len(bar_states())
    logp = np.full((300, s), np.log(1 / s))
    logp[29:32] = np.log(np.eye(s)[2] * 0.99 + 0.01 / s)
    got = beat_state_logp(logp, np.array([1.0, 5.0]), 30)
    assert got.shape == (2, s) and np.argmax(got[0]) == 2 and np.allclose(got[1], np.log(1 / s))
    labels = state_labels(np.arange(8) * 0.5, np.array([0.5, 2.0]))  # an upbeat, a bar of three, then threes
    assert [bar_states()[i] for i in labels] == [(3, 2), (3, 0), (3, 1), (3, 2), (3, 0), (3, 1), (3, 2), (3, 0)]
    assert (state_labels(np.arange(10) * 0.5, np.array([0.0, 2.5])) == -1).sum() == 10  # bars of five: none


def test_given_bar_lines_set_metre_and_position():
    beats = np.arange(14) * 0.5
    metre, pos = bar_positions(beats, beats[[1, 4, 7, 11]])  # an upbeat, bars of 3, 3, 4, then the four goes on
    assert metre.tolist() == [3] + [3] * 6 + [4] * 4 + [4] * 3
    assert pos.tolist() == [2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2]
    assert bar_positions(beats, np.zeros(0))[0].tolist() == [4] * 14


def test_bar_features_say_the_beats_place_in_its_bar():
    beats = np.arange(20) * 0.5
    f = bar_features(beats, beats[::3], 300)
    assert f.shape == (300, BAR_FEATURES)
    three = sum(PATTERN_METRES[:PATTERN_METRES.index(3)])
    for k in range(6):  # the frame of each beat: one-hot (3, k mod 3), first/last flags
        row = f[k * 15]
        assert row[three + k % 3] == 1 and row[:sum(PATTERN_METRES)].sum() == 1
        assert row[-2] == (k % 3 == 0) and row[-1] == (k % 3 == 2)
    a = 2 * math.pi * (7 / 15) / 3  # frame 7 lies 7/15 of the way from beat 0 to beat 1 of a three
    assert np.allclose(f[7, -4:-2], [math.sin(a), math.cos(a)], atol=1e-5)
    eight = bar_features(beats, beats[::8], 300)  # a count without a name: the bar's phase only
    assert not eight[:, :sum(PATTERN_METRES)].any() and eight[:, -2].sum() > 0
    assert not bar_features(beats[:1], beats[:1], 300).any()


@pytest.fixture(scope="module")
def bar_model():
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(encoder="conv1d", encoder_channels=(64, 64, 64), beat_input=True,
                                      beat_channels=16, beat_layers=4, bar_input=True, bar_channels=16, bar_layers=4))
    with torch.no_grad():
        model.beat_proj.weight.normal_(0, 0.5)
        model.bar_proj.weight.normal_(0, 0.5)
    return model.eval()


def test_a_generator_with_the_bar_input_draws_the_bars_it_is_given_or_hears(bar_model, demo, tmp_path):
    from backend.features import mel_features
    mel = np.ascontiguousarray(np.tile(mel_features(demo.samples), (2, 1)))
    noise = make_noise(1, noise_seconds(len(mel)), 8)
    gen = InferenceGenerator(bar_model)
    beats = gen.track_beats(mel).times
    heard = gen.track_bars(mel, beats)
    assert len(heard.metre) == len(beats) and np.all((heard.confidence > 0) & (heard.confidence <= 1))
    out = gen(mel, noise, beats=beats)
    assert np.array_equal(out, gen(mel, noise, beats=beats, downbeats=heard.downbeats))  # its own bars by default
    threes = gen(mel, noise, beats=beats, downbeats=beats[::3])
    assert np.abs(threes - out).max() > 1e-3  # the bars reach the motion
    sha = save_checkpoint(bar_model, tmp_path / "g.pt")
    loaded = load_generator(tmp_path / "g.pt")
    assert loaded.sha256 == sha and loaded.model.cfg.bar_input
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in bar_model.state_dict().items())
    with pytest.raises(ValueError, match="bar_input needs beat_input"):
        GeneratorConfig.from_dict(dict(bar_model.cfg.to_dict(), beat_input=False))
    with pytest.raises(ValueError, match="bar_reader needs bar_input"):
        GeneratorConfig.from_dict(dict(bar_model.cfg.to_dict(), bar_input=False, bar_reader=16))
    with pytest.raises(ValueError, match="bar_reader must be an integer"):
        GeneratorConfig.from_dict(dict(bar_model.cfg.to_dict(), bar_reader=-1))
    before = {k: v for k, v in bar_model.cfg.to_dict().items()  # a checkpoint from before them
              if k not in ("bar_reader", "spectrum_reader")}
    assert GeneratorConfig.from_dict(before).bar_reader == 0 and GeneratorConfig.from_dict(before).spectrum_reader == 0
    with pytest.raises(ValueError, match="spectrum_reader needs bar_reader"):
        GeneratorConfig.from_dict(dict(bar_model.cfg.to_dict(), bar_reader=0, spectrum_reader=16))
    mp = torch.zeros(1, 90 * 10, 128)
    with pytest.raises(ValueError, match="takes the bar phase"):
        bar_model(mp, torch.zeros(1, 10, 8), torch.zeros(1, 300, 4))


def test_the_bar_readers_measures_say_what_recurs_and_where_the_accents_fall():
    """A piece in three whose bars repeat one texture per beat of the bar and accent the downbeat:
    each beat is most like the beats three and six before and after it, the onset is largest on downbeats,
    the period is read, and a louder or quieter take of the same music gives the same measures."""
    from backend.bar_reader import BANDS, BEAT_FEATURES, ONSET_BANDS, SIM_LAGS, beat_features
    rng = np.random.default_rng(3)
    fps, period, n = 90, 0.6, 30
    beats = 1.0 + np.arange(n) * period
    colours = rng.uniform(0.2, 0.6, (3, 128))  # one texture per place in the bar
    mel = np.full((int((beats[-1] + 1.0) * fps), 128), 0.1, np.float32)
    for k, b in enumerate(beats):
        a = int(round(b * fps))
        mel[a: a + int(period * fps)] = colours[k % 3] + rng.normal(0, 0.02, 128)
        mel[a: a + 3] += 0.3 if k % 3 == 0 else 0.05  # the accent
    x = beat_features(mel, beats)
    assert x.shape == (n, BEAT_FEATURES)
    like = x[8:-8, BANDS + len(ONSET_BANDS) + 1: BANDS + len(ONSET_BANDS) + 1 + SIM_LAGS]
    assert like[:, [2, 5]].min() > like[:, [0, 1, 3, 4, 6, 7]].max() + 0.5  # lags 3 and 6 are the likest
    onset = x[:, BANDS: BANDS + len(ONSET_BANDS)].mean(1)
    assert onset[::3].min() > np.delete(onset, np.arange(0, n, 3)).max()
    assert np.allclose(x[:-1, -1], np.log2(period / 0.5), atol=0.02)
    assert np.allclose(beat_features(np.clip(mel + 0.05, 0, 1), beats), x, atol=1e-3)
    assert beat_features(mel, beats[:1]).shape == (1, BEAT_FEATURES)


def test_the_spectrum_readers_spectra_show_each_beats_notes_whatever_the_level():
    """A piece whose every third beat strikes a high note for half a beat: that beat's quarter-beat
    spans show it from the beat on, its quarter before does not, nor do the other beats; a louder
    take gives the same spectra; a spectrum reader reads them through its encoder."""
    from backend.bar_reader import (BEAT_FEATURES, SPECTRUM_SPANS, BarReader, beat_spectra, read_bars,
                                    reader_features)
    rng = np.random.default_rng(4)
    fps, period, n = 90, 0.6, 24
    beats = 1.0 + np.arange(n) * period
    mel = rng.uniform(0.2, 0.3, (int((beats[-1] + 1.0) * fps), 128)).astype(np.float32)
    for b in beats[::3]:
        a = int(round(b * fps))
        mel[a: a + int(period * fps / 2), 100:110] += 0.5
    s = beat_spectra(mel, beats).reshape(n, SPECTRUM_SPANS, 128)[:, :, 100:110].mean(2)
    struck, others = s[::3], np.delete(s, np.arange(0, n, 3), axis=0)
    assert struck[:, 1:3].min() > others[:, 1:3].max() + 1  # the quarters after the beat: the note
    assert struck[1:, 0].max() < struck[:, 1:3].min() - 1  # the quarter before the beat: not yet
    assert np.allclose(beat_spectra(mel + 0.1, beats), beat_spectra(mel, beats), atol=1e-4)
    assert reader_features(mel, beats).shape == (n, BEAT_FEATURES)
    assert reader_features(mel, beats, spectrum=True).shape == (n, BEAT_FEATURES + SPECTRUM_SPANS * 128)
    assert beat_spectra(mel, beats[:1]).shape == (1, SPECTRUM_SPANS * 128)
    torch.manual_seed(0)
    plain, spectral = BarReader(8).eval(), BarReader(8, spectrum=True).eval()
    tracker = np.zeros((n, len(bar_states())))
    both = read_bars([plain, spectral], mel, beats, tracker)
    one = [r.read(reader_features(mel, beats, r.spectrum is not None)) for r in (plain, spectral)]
    assert np.allclose(np.exp(both).sum(1), 1) and not np.allclose(one[0], one[1])
    mean = (one[0] + one[1]) / 2
    assert np.allclose(both, mean - np.log(np.exp(mean).sum(1, keepdims=True)), atol=1e-6)
