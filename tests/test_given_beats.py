"""Beats and bars the animator gives: checked in the request, obeyed by both engines, accepted by
the CLI and the service."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from baton_core.errors import BatonError
from baton_core.request import ConductRequest
from backend.engine import generate_take
from backend.metrics import bars_from_downbeats, f_measure, ictus_times, pattern_legibility
from conftest import ROOT

FRAME = 1 / 30


@pytest.fixture(scope="module")
def piece(demo, tmp_path_factory):
    """The demo piece, and beats the animator moved a tenth of a second late (a tracker would not
    put them there)."""
    path = tmp_path_factory.mktemp("given") / "demo.wav"
    sf.write(path, demo.samples, demo.sr)
    return path, [float(b) + 0.1 for b in demo.beats]


@pytest.mark.parametrize("values, message", [
    ({"downbeats": [1.0]}, "bar lines need the beats"),
    ({"beats": [1.0, 0.5]}, "must rise"),
    ({"beats": [1.0, float("nan")]}, "finite"),
    ({"beats": "1,2,3"}, "a list of times"),
    ({"beats": [0.5, 1.0], "downbeats": [0.7]}, "0.700 s is not one of the given beats"),
])
def test_given_times_are_checked(values, message):
    with pytest.raises(BatonError, match=message):
        ConductRequest("a.wav", **values)


@pytest.mark.parametrize("metre", [2, 3, 4])
def test_the_rules_engine_strikes_the_given_beats_and_beats_the_given_bars(piece, metre):
    path, beats = piece
    downbeats = beats[1::metre]  # one upbeat before the first bar
    take = generate_take(path, engine="rules", beats=beats, downbeats=downbeats)
    assert np.allclose(take.beats, beats)
    ictus = ictus_times(take.keypoints_2d)
    assert f_measure(ictus, np.array(beats), window=1.5 * FRAME) >= 0.95  # each ictus on its frame
    r2, chance = pattern_legibility(take.keypoints_2d, bars_from_downbeats(np.array(beats), np.array(downbeats)))
    assert r2 >= 0.8 > chance + 0.3


def test_the_generator_strikes_the_given_beats(piece):
    path, beats = piece
    take = generate_take(path, beats=beats)
    assert np.allclose(take.beats, beats) and take.provenance["beats"] == "given"
    assert f_measure(ictus_times(take.keypoints_2d), np.array(beats)) >= 0.9


@pytest.mark.parametrize("metre", [2, 3, 4])
def test_the_generator_beats_the_given_bars(piece, metre):
    path, beats = piece
    downbeats = beats[1::metre]
    take = generate_take(path, beats=beats, downbeats=downbeats)
    assert take.provenance["bars"] == "given"
    assert f_measure(ictus_times(take.keypoints_2d), np.array(beats)) >= 0.9
    r2, chance = pattern_legibility(take.keypoints_2d, bars_from_downbeats(np.array(beats), np.array(downbeats)))
    assert r2 >= 0.8 > chance + 0.3, (r2, chance)


def test_onto_bars_steadies_each_beat_of_the_bar_and_keeps_its_ictus_and_arm():
    """Bars of three whose ictus points wander from bar to bar: each point comes `pull` of the way
    to its beat's mean, the lowest points stay on their frames, the arm keeps its lengths."""
    from backend.gestures import _place_arm, onto_bars
    from baton_core.skeleton import R_ELBOW, R_SHOULDER, R_WRIST, bone_lengths
    fps, period = 30.0, 0.6
    beats = 1.0 + period * np.arange(3 * 8 + 1)  # an upbeat, then eight bars of three
    downbeats = beats[1::3]
    rng = np.random.default_rng(0)
    place = np.array([[-0.10, 1.10], [0.05, 1.15], [0.20, 1.13]])  # across, up: down, right, up
    points = np.array([place[(k - 1) % 3] for k in range(len(beats))]) + rng.normal(0, 0.04, (len(beats), 2))
    t = np.arange(int((beats[-1] + 1.0) * fps)) / fps
    x = np.interp(t, beats, points[:, 0])
    z = np.interp(t, beats, points[:, 1]) + 0.15 * (1 - np.exp(-((t[:, None] - beats) / 0.12) ** 2).max(axis=1))
    p = np.zeros((len(t), 13, 3))
    p[:, R_SHOULDER] = [-0.19, 0.0, 1.45]
    p[:, R_ELBOW] = p[:, R_SHOULDER] + [-0.12, -0.18, -0.30]
    p[:, R_WRIST] = p[:, R_ELBOW] + [0.0, -0.33, 0.0]
    p = _place_arm(p, R_SHOULDER, R_ELBOW, R_WRIST, np.column_stack([x, np.full(len(t), -0.30), z]) - p[:, R_SHOULDER])
    out = onto_bars(p, beats, downbeats, fps, pull=0.6, around=8)
    frames = np.round(beats * fps).astype(int)
    for k in range(3):
        group = frames[1 + k::3]
        before = p[group, R_WRIST][:, [0, 2]]
        after = out[group, R_WRIST][:, [0, 2]]
        assert np.allclose(after - after.mean(0), 0.4 * (before - before.mean(0)), atol=1e-6)
    low = lambda m: [int(np.argmin(m[f - 5:f + 6, R_WRIST, 2])) + f - 5 for f in frames[1:-1]]
    assert low(out) == low(p) == list(frames[1:-1])
    assert np.allclose(bone_lengths(out), bone_lengths(p), atol=1e-9)


def _strokes(times: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """(10 s, 13, 2) a figure whose baton hand falls to its lowest point at each time."""
    t = np.arange(int(10 * fps)) / fps
    kp = np.zeros((len(t), 13, 2))
    kp[:, :, 0] = 0.5
    kp[:, 10, 1] = 0.5 + 0.2 * np.exp(-((t[:, None] - times[None]) / 0.08) ** 2).sum(axis=1)
    return kp


def test_onto_beats_moves_each_stroke_onto_its_beat_and_leaves_far_ones_alone():
    from backend.engines import onto_beats
    beats = np.arange(1.0, 9.0, 0.6)
    kp = _strokes(beats + np.where(np.arange(len(beats)) % 2, 0.1, -0.08))  # strokes off their beats
    assert f_measure(ictus_times(kp), beats) < 0.6
    moved = onto_beats(kp, beats)
    assert np.abs(ictus_times(moved)[:, None] - beats[None]).min(axis=0).max() <= 1.01 * FRAME
    regular = _strokes(beats)
    assert np.allclose(onto_beats(regular, beats + 0.3), regular)  # half a period from every stroke: none pinned


def test_a_slice_keeps_the_given_beats_within_it(piece):
    path, beats = piece
    take = generate_take(path, engine="rules", start=5.0, duration=10.0, beats=beats)
    inside = np.array([b for b in beats if 5.0 <= b < 15.0])
    assert np.allclose(take.start + take.beats, inside)


def test_the_cli_takes_beats_from_a_file_and_bars_from_a_list(piece, tmp_path):
    path, beats = piece
    listed = tmp_path / "beats.txt"
    listed.write_text("\n".join(f"{b:.4f}" for b in beats))
    out = tmp_path / "take.json"
    downbeats = ",".join(f"{b:.4f}" for b in beats[::3])
    run = subprocess.run([sys.executable, "-m", "backend", "generate", str(path), "-o", str(out), "--engine", "rules",
                          "--beats", str(listed), "--downbeats", downbeats], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert np.allclose(json.loads(out.read_text())["beats"], beats, atol=1e-3)
    bad = subprocess.run([sys.executable, "-m", "backend", "generate", str(path), "-o", str(out),
                          "--beats", "2,1"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "must rise" in bad.stderr
