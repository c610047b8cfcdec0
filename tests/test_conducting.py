"""Beats found in real audio, and the rule-based conductor marking them."""

import math

import numpy as np

from backend import metrics
from backend.beats import track_beats
from backend.features import mel_features
from backend.rules import choose_metre, conduct, loudness_curve
from backend import skeleton as sk
from backend.skeleton import R_WRIST, SHOULDER_WIDTH_M, project_front


def test_beat_tracker_finds_the_demo_beats(demo):
    beats = track_beats(mel_features(demo.samples))
    assert abs(beats.tempo - 96.0) < 2.0
    assert metrics.f_measure(beats.times, demo.beats) >= 0.95
    offsets = [beats.times[np.abs(beats.times - b).argmin()] - b for b in demo.beats]
    assert abs(np.mean(offsets)) < 0.012  # on the attack, not a detector's latency before or after


def test_beat_tracker_copes_with_short_clips(demo):
    mel = mel_features(demo.samples)
    for start in np.arange(0.0, 30.0, 1.37):
        for seconds in (1.0, 1.6, 2.2, 3.0):
            a = int(start * 90)
            beats = track_beats(mel[a:a + int(seconds * 90)])
            assert np.all(np.diff(beats.times) > 0) and np.all(beats.times <= seconds + 0.05)
            if seconds >= 2.2 and start >= 1.0:  # inside the music: a pulse is found
                assert len(beats.times) >= 2 and beats.tempo > 0


def test_metre_and_downbeat_of_the_demo(demo):
    mel = mel_features(demo.samples)
    beats = track_beats(mel)
    metre, first = choose_metre(mel, beats.times)
    assert metre == 4
    downbeats = beats.times[first::metre]
    assert np.mean([np.abs(demo.downbeats - d).min() < 0.07 for d in downbeats]) >= 0.9


def test_rules_put_an_ictus_on_every_beat(demo):
    mel = mel_features(demo.samples)
    kp2d = project_front(conduct(mel, track_beats(mel), math.ceil(len(mel) / 3)))
    ictus = metrics.ictus_times(kp2d)
    f, chance = metrics.ictus_f(ictus, demo.beats), metrics.ictus_f_chance(ictus, demo.beats)
    assert f >= 0.9 and f > chance + 0.5


def test_louder_music_gives_bigger_gestures(demo):
    mel = mel_features(demo.samples)
    n = math.ceil(len(mel) / 3)
    kp3d = conduct(mel, track_beats(mel), n)
    loud = loudness_curve(mel, n)
    t = np.arange(n) / 30
    sizes, levels = [], []
    for a, b in zip(demo.downbeats[:-1], demo.downbeats[1:]):  # per bar: the metric's gesture size
        m = (t >= a) & (t < b)
        sizes.append(np.linalg.norm(np.ptp(kp3d[m, R_WRIST][:, [0, 2]], axis=0)) / SHOULDER_WIDTH_M)
        levels.append(loud[m].mean())
    assert np.corrcoef(sizes, levels)[0, 1] > 0.8
    assert max(sizes) > 1.4 * min(sizes)


def test_seeds_vary_the_gesture_but_not_the_beat(demo):
    mel = mel_features(demo.samples)
    beats = track_beats(mel)
    n = math.ceil(len(mel) / 3)
    a, b = (project_front(conduct(mel, beats, n, seed=s)) for s in (1, 2))
    assert metrics.seed_diversity(a, b) > 0.05
    for m in (a, b):
        assert metrics.ictus_f(metrics.ictus_times(m), demo.beats) >= 0.9


def test_rules_motion_is_in_the_engines_3d_conventions(demo):
    mel = mel_features(demo.samples)
    p = conduct(mel, track_beats(mel), math.ceil(len(mel) / 3))
    hips = p[:, [sk.L_HIP, sk.R_HIP]].mean(1)
    assert np.allclose(hips, [0.0, 0.0, sk.HIP_HEIGHT], atol=1e-6)  # metres, mid-hip at (0, 0, 1)
    assert (p[:, sk.NOSE, 2] > p[:, sk.L_SHOULDER, 2]).all()  # Z up
    assert (p[:, sk.L_SHOULDER, 0] > p[:, sk.R_SHOULDER, 0]).all()  # the person's left is +X
    chest_y = p[:, [sk.L_SHOULDER, sk.R_SHOULDER], 1].mean(1)
    assert (p[:, sk.R_WRIST, 1] < chest_y).all() and (p[:, sk.NOSE, 1] < chest_y).all()  # facing −Y
    assert metrics.bone_length_cv(p) < 1e-3  # a rigid skeleton
