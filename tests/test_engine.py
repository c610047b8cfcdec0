"""One request end to end, through the engine's API (what the CLI and the service call)."""

import numpy as np
import pytest

from backend.checkpoint import load_generator, save_checkpoint
from backend.engine import generate_take
from backend.engines import BUNDLED_CHECKPOINT, NOISE_SPREAD
from backend.generate import make_noise
from baton_core.errors import BatonError


def test_same_seed_same_take_other_seed_other_take(demo_files):
    a, b = (generate_take(demo_files["flac"], seed=3) for _ in range(2))
    c = generate_take(demo_files["flac"], seed=4)
    assert np.array_equal(a.keypoints_3d, b.keypoints_3d) and not np.allclose(a.keypoints_3d, c.keypoints_3d)
    assert a.provenance["engine"] == "m2sgan" and a.tempo > 0 and len(a.beats) > 40
    assert a.provenance["checkpoint_sha256"] == load_generator(BUNDLED_CHECKPOINT).sha256  # the shipped model


def test_a_seeds_noise_is_drawn_at_the_engines_spread(random_model, demo_files, tmp_path):
    save_checkpoint(random_model, tmp_path / "g.pt")
    opts = {"checkpoint": tmp_path / "g.pt", "start": 5, "duration": 12}
    seeded = generate_take(demo_files["ogg"], seed=2, **opts)
    spread = generate_take(demo_files["ogg"], noise=NOISE_SPREAD * make_noise(2, 12, 8), **opts)
    plain = generate_take(demo_files["ogg"], noise=make_noise(2, 12, 8), **opts)
    off = lambda take: np.abs(take.keypoints_2d - seeded.keypoints_2d).max()
    assert NOISE_SPREAD > 1 and off(plain) > 100 * max(off(spread), 1e-7)


def test_a_checkpoint_means_the_generator_and_generator_options_are_refused_for_rules(random_model, demo_files, tmp_path):
    save_checkpoint(random_model, tmp_path / "g.pt")
    take = generate_take(demo_files["ogg"], checkpoint=tmp_path / "g.pt", seed=1, start=5, duration=12)
    assert take.provenance["engine"] == "m2sgan" and take.n_frames == 360 and take.start == 5
    again = generate_take(demo_files["ogg"], checkpoint=tmp_path / "g.pt", seed=1, start=5, duration=12)
    assert np.array_equal(take.keypoints_2d, again.keypoints_2d)
    for kwargs in ({"engine": "rules", "checkpoint": tmp_path / "g.pt"},
                   {"engine": "rules", "noise": np.zeros((39, 8))}, {"engine": "rules", "smooth": False}):
        with pytest.raises(BatonError, match="only for the m2sgan engine"):
            generate_take(demo_files["ogg"], **kwargs)


def test_the_default_engine_conducts_the_demos_bars_in_four(demo, demo_files):
    """The shipped generator hears the 4/4 demo's bars itself (its bar tracker once heard it in
    three) and draws them: bar lines where the demo has them, the largest drop on each downbeat and
    the beats' places in the bar told apart by where the hand strikes them."""
    from backend import metrics as M
    take = generate_take(demo_files["flac"], seed=3)
    assert take.provenance["bars"] == "heard"
    assert M.f_measure(take.downbeats, demo.downbeats) >= 0.95
    beats_in_bar = [int(np.sum((take.beats > a - 0.05) & (take.beats < b - 0.05)))
                    for a, b in zip(take.downbeats[:-1], take.downbeats[1:])]
    assert set(beats_in_bar) == {4}  # every bar heard in four, none as a bar of eight
    bars = M.bars_from_downbeats(demo.beats, demo.downbeats)
    assert M.downbeat_accuracy(take.keypoints_2d, bars) >= 0.85
    assert M.pattern_legibility(take.keypoints_2d, bars)[0] >= 0.8


def test_beats_the_tracker_carries_through_a_rest_are_counted_not_struck(demo, tmp_path):
    """Two bars of the demo silenced: the generator's tracker keeps its grid through the rest, and
    the engine strikes only the beats it hears there at all (a conductor holds still in a general
    pause), while the bars run on, so after the rest the bar lines fall where the demo's do."""
    import soundfile as sf
    from backend import metrics as M
    from backend.beat_net import WEAK_BEAT
    from backend.features import mel_features
    x = demo.samples.copy()
    rest = (demo.beats[24], demo.beats[32] - 0.02)
    x[int(rest[0] * demo.sr): int(rest[1] * demo.sr)] = 0.0
    sf.write(tmp_path / "rest.wav", x, demo.sr)
    heard = load_generator(BUNDLED_CHECKPOINT).model.beat_net.track(mel_features(x, demo.sr))
    in_rest = lambda t: (t > rest[0] + 0.3) & (t < rest[1] - 0.1)
    assert (heard.strength[in_rest(heard.times)] < WEAK_BEAT).sum() >= 2  # the grid carried on
    take = generate_take(tmp_path / "rest.wav")
    assert in_rest(take.beats).sum() <= in_rest(heard.times).sum() - 2
    assert np.isin(take.downbeats, take.beats).all()  # the take's bar lines are beats it strikes
    after = demo.downbeats[demo.downbeats > rest[1]]
    heard_after = take.downbeats[(take.downbeats > rest[1] - 0.1) & (take.downbeats < demo.beats[-1])]  # not the held chord
    assert M.f_measure(heard_after, after) >= 0.95


@pytest.mark.parametrize("engine", ["rules", "m2sgan"])
def test_a_take_has_no_stroke_or_bar_line_after_its_release(demo, tmp_path, engine):
    """The demo followed by five seconds of its own music 39 dB down (a pulse that goes on below
    where the music ends, as a recording's soft percussion or echo can): the tracker hears beats
    there, but the conductor has released, so the take lists none of them (its markers would
    otherwise stand in the stillness after the cut-off)."""
    import soundfile as sf
    from backend.engines import audible
    from backend.features import mel_features
    sr = demo.sr
    x = np.r_[demo.samples, demo.samples[20 * sr: 25 * sr] * 10 ** (-39 / 20), np.zeros(2 * sr, demo.samples.dtype)]
    sf.write(tmp_path / "coda.wav", x, sr)
    end = audible(mel_features(x, sr)).music_end
    take = generate_take(tmp_path / "coda.wav", engine=engine)
    assert take.beats[-1] <= end + 0.02 and take.pulse[-1] <= end + 0.02 and take.downbeats[-1] <= end + 0.02
    assert take.beats[-1] > end - 4.0  # it conducted to the end

def test_the_generator_stands_still_between_movements_and_conducts_the_next(demo, tmp_path):
    """The demo parted by 30 s of digital silence, as two movements of one recording: the tracker's
    pulse runs on through the silence (its activation there does not fall to nothing), but the
    engine strikes no beat and draws no bar there, the hand all but stops, and the music after it
    is conducted on its beats."""
    import soundfile as sf
    from backend import metrics as M
    from conftest import demo_with_silence
    cut, gap = 16.0, 30.0
    x, beats = demo_with_silence(demo, cut, gap)
    sf.write(tmp_path / "movements.wav", x, demo.sr)
    take = generate_take(tmp_path / "movements.wav")
    inside = lambda t: (t > cut + 0.5) & (t < cut + gap - 0.5)
    assert not inside(take.beats).any() and not inside(take.downbeats).any()
    speed = M.hand_speed(take.keypoints_3d)
    t = np.arange(len(speed)) / take.fps
    assert speed[(t > cut + 2) & (t < cut + gap - 2)].mean() < 0.2 * speed[(t > 2) & (t < cut)].mean()
    ictus = M.ictus_times(take.keypoints_2d, take.fps)
    assert M.ictus_f(ictus[ictus > cut + gap - 0.5], beats[beats > cut + gap]) >= 0.85


@pytest.mark.parametrize("engine", ["rules", "m2sgan"])
def test_each_movement_s_bars_are_heard_on_their_own(demo, tmp_path, engine):
    """The demo parted by 30 s of silence: the bars of each movement are read apart from the other's
    (read together, across the silence's beats, the readers heard both movements in bars of eight),
    so each is conducted in four, as the demo alone is."""
    import soundfile as sf
    from backend import metrics as M
    from conftest import demo_with_silence
    cut, gap = 16.0, 30.0
    x, beats = demo_with_silence(demo, cut, gap)
    sf.write(tmp_path / "movements.wav", x, demo.sr)
    take = generate_take(tmp_path / "movements.wav", engine=engine)
    assert take.provenance["bars"] == "heard"
    down = demo.downbeats
    assert M.f_measure(take.downbeats, np.where(down < cut, down, down + gap)) >= 0.9
    for lo, hi in ((0, cut), (cut + gap, np.inf)):
        lines = take.downbeats[(take.downbeats >= lo) & (take.downbeats < hi)]
        counts = [int(np.sum((take.beats > a - 0.05) & (take.beats < b - 0.05))) for a, b in zip(lines[:-1], lines[1:])]
        assert len(counts) >= 3 and set(counts) == {4}


def test_the_rule_based_conductor_hears_beats_and_bars_through_the_shipped_models_ears(tmp_path):
    """A Bach chorale rendered with rubato (the score's beats and bars known): the rule-based
    conductor's own pulse and metre found none of its bar lines and 0.72 of its beats; through the
    shipped generator's trackers and readers it hears the bars the generator hears, and its beats."""
    pytest.importorskip("music21", reason="music21 (the score extra) renders the chorale")
    if not __import__("shutil").which("fluidsynth"):
        pytest.skip("fluidsynth is needed to render the score")
    import soundfile as sf
    from backend import metrics as M
    from training.scores import render_score
    r = render_score("bach/bwv66.6.mxl", seed=5, rubato=0.3, max_seconds=30)
    sf.write(tmp_path / "chorale.wav", r.audio, r.sr)
    rules = generate_take(tmp_path / "chorale.wav", engine="rules")
    heard = generate_take(tmp_path / "chorale.wav")
    assert rules.provenance["hearing"] == "learned"
    assert M.f_measure(rules.beats, r.beats) >= 0.85
    assert M.f_measure(rules.downbeats, r.downbeats) >= 0.6
    assert M.f_measure(rules.downbeats, heard.downbeats) >= 0.9


def test_without_the_bundled_weights_the_rule_based_conductor_hears_with_its_own_ears(demo, demo_files, monkeypatch, tmp_path):
    """A broken install (the shipped model missing or corrupt): the default engine refuses with what
    to do, and the rule-based conductor still conducts, hearing the demo's beats and bars itself."""
    from backend import engines
    from backend import metrics as M
    for broken in (tmp_path / "missing.pt", tmp_path / "corrupt.pt"):
        if broken.name == "corrupt.pt":
            broken.write_bytes(b"not a checkpoint")
        monkeypatch.setattr(engines, "BUNDLED_CHECKPOINT", broken)
        with pytest.raises(BatonError, match="engine rules|corrupt"):
            generate_take(demo_files["flac"])
        take = generate_take(demo_files["flac"], engine="rules")
        assert take.provenance["hearing"] == "rules" and take.provenance["bars"] == "heard"
        assert M.f_measure(take.beats, demo.beats) >= 0.9 and M.f_measure(take.downbeats, demo.downbeats) >= 0.9


def test_a_tempo_change_is_followed(monkeypatch, tmp_path):
    """20 s of the demo at 96 bpm, then 20 s of it at 70: the tracker's activation follows the
    change, and so do the beats the generator strikes and the bars it draws (one tempo for the whole
    piece once struck only every third beat of the second section)."""
    import soundfile as sf
    import backend.demo_music as dm
    from backend import metrics as M
    audio, beats, downbeats = [], [], []
    for k, bpm in enumerate((96, 70)):
        monkeypatch.setattr(dm, "BPM", bpm)
        piece = dm.demo_piece()
        audio.append(piece.samples[: 20 * piece.sr])
        beats.append(piece.beats[piece.beats < 19.9] + 20 * k)
        downbeats.append(piece.downbeats[piece.downbeats < 19.9] + 20 * k)
    sf.write(tmp_path / "two_tempi.wav", np.concatenate(audio), piece.sr)
    take = generate_take(tmp_path / "two_tempi.wav")
    for k in range(2):
        part = lambda t: t[(t > 20 * k + 1) & (t < 20 * k + 19.5)]
        assert M.f_measure(part(take.beats), part(beats[k])) >= 0.9
        assert M.f_measure(part(take.downbeats), part(downbeats[k])) >= 0.8
