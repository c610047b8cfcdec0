"""The gesture controls (size, left hand, baton hand, arms only, seating) and the lead, in the request:
obeyed by both engines, each ictus kept on its beat, bone lengths kept."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from baton_core.skeleton import L_ELBOW, L_SHOULDER, L_WRIST, NOSE, R_HIP, R_SHOULDER, R_WRIST, bone_lengths
from backend.engine import generate_take
from backend.metrics import f_measure, ictus_times
from conftest import ROOT


@pytest.fixture(scope="module")
def wav(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("gestures") / "demo.wav"
    sf.write(path, demo.samples, demo.sr)
    return path


def _span(kp3d, joint, shoulder):
    rel = kp3d[:, joint] - kp3d[:, shoulder]
    return float(np.linalg.norm(rel - rel.mean(axis=0), axis=-1).mean())


@pytest.mark.parametrize("engine", ["rules", "m2sgan"])
def test_size_left_hand_and_arms_only_shape_the_take_and_keep_its_beats(wav, engine):
    plain = generate_take(wav, engine=engine)
    shaped = generate_take(wav, engine=engine, size=1.6, left_hand=0.0, arms_only=True)
    assert _span(shaped.keypoints_3d, R_WRIST, R_SHOULDER) == pytest.approx(
        1.6 * _span(plain.keypoints_3d, R_WRIST, R_SHOULDER), rel=0.1)
    assert _span(shaped.keypoints_3d, L_WRIST, L_SHOULDER) < 0.01  # the left hand rests
    assert np.ptp(shaped.keypoints_3d[:, [NOSE, R_SHOULDER, R_HIP]], axis=0).max() < 1e-6  # head and torso still
    assert np.allclose(bone_lengths(shaped.keypoints_3d)[:, 2:], bone_lengths(plain.keypoints_3d)[:, 2:], atol=2e-3)  # arms
    assert f_measure(ictus_times(shaped.keypoints_2d), plain.beats) >= 0.95 * f_measure(
        ictus_times(plain.keypoints_2d), plain.beats)
    assert shaped.settings | {"size": 1.0, "left_hand": 1.0, "arms_only": False} == plain.settings


def test_a_left_handed_take_mirrors_the_right_handed_one(wav):
    right = generate_take(wav, engine="rules", seed=2)
    left = generate_take(wav, engine="rules", seed=2, hand="left")
    assert np.allclose(left.keypoints_3d[:, L_WRIST], right.keypoints_3d[:, R_WRIST] * [-1, 1, 1], atol=1e-5)
    assert np.allclose(left.keypoints_3d[:, L_ELBOW], right.keypoints_3d[:, 8] * [-1, 1, 1], atol=1e-5)
    assert left.settings["hand"] == "left"


def test_the_lead_moves_the_gestures_before_the_sound(wav):
    on, led = generate_take(wav, engine="rules", start=2.0, duration=6.0), \
        generate_take(wav, engine="rules", start=2.0, duration=6.0, lead_ms=80)
    assert np.allclose(on.keypoints_3d, led.keypoints_3d)  # the same performance, shown earlier
    assert led.start == pytest.approx(2.0 - 0.08) and led.lead == pytest.approx(0.08)
    assert led.start + led.lead + led.pulse[0] == pytest.approx(on.start + on.pulse[0])  # the beat where it sounds
    late = generate_take(wav, engine="rules", duration=4.0, lead_ms=-50)  # negative: after the sound
    assert late.start == pytest.approx(0.05)


def test_the_cli_takes_the_controls(wav, tmp_path):
    out = tmp_path / "t.json"
    run = subprocess.run([sys.executable, "-m", "backend", "generate", str(wav), "-o", str(out), "--engine", "rules",
                          "--duration", "5", "--hand", "left", "--arms-only", "--size", "1.5", "--lead-ms", "40"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["version"] == 2 and doc["lead"] == 0.04 and len(doc["downbeats"]) >= 1
    assert doc["settings"]["hand"] == "left" and doc["settings"]["arms_only"] and doc["settings"]["size"] == 1.5
    bad = subprocess.run([sys.executable, "-m", "backend", "generate", str(wav), "-o", str(out), "--size", "9"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "size" in bad.stderr and "0.25 … 2" in bad.stderr


@pytest.mark.parametrize("text, message", [("strings:-50,tubas:10", "unknown section 'tubas'"),
                                           ("brass", "needs degrees"), ("brass:400", "outside")])
def test_the_seating_is_checked(text, message):
    from baton_core.errors import BatonError
    from baton_core.request import ConductRequest
    with pytest.raises(BatonError, match=message):
        ConductRequest("a.wav", engine="rules", seating=text)


@pytest.fixture(scope="module")
def strings_enter(demo, tmp_path_factory):
    """The demo with a high band (the strings, as the engines hear registers) that plays from 3 s
    to 8 s and enters again at 16 s after a rest of eight seconds: an entrance to cue."""
    t = np.arange(len(demo.samples)) / demo.sr
    high = sum(np.sin(2 * np.pi * f * t) for f in (5200, 6100, 7300)) * (((t > 3) & (t < 8)) | (t > 16))
    path = tmp_path_factory.mktemp("gestures") / "strings_enter.wav"
    sf.write(path, ((demo.samples + 0.15 * high) / 1.3).astype(np.float32), demo.sr)
    return path


@pytest.mark.parametrize("engine", ["rules", "m2sgan"])
def test_both_engines_cue_the_strings_where_they_sit(strings_enter, engine):
    """Seated on the conductor's left, then on the right: half a beat before the strings enter
    the head has turned and the left hand reached toward them, and the baton's ictus are where
    they were."""
    left = generate_take(strings_enter, engine=engine, seating="strings:60")
    right = generate_take(strings_enter, engine=engine, seating="strings:-60")
    i = int(15.8 * left.fps)
    gaze = lambda m: m[i, NOSE, 0] - m[i, [L_SHOULDER, R_SHOULDER], 0].mean()  # + toward the conductor's left
    assert gaze(left.keypoints_3d) > 0.02 and gaze(right.keypoints_3d) < -0.02
    assert left.keypoints_3d[i, L_WRIST, 0] > right.keypoints_3d[i, L_WRIST, 0] + 0.2
    assert np.allclose(ictus_times(left.keypoints_2d), ictus_times(right.keypoints_2d))
    assert np.allclose(bone_lengths(left.keypoints_3d), bone_lengths(right.keypoints_3d), atol=2e-3)
    if engine == "m2sgan":
        assert left.provenance["cues"] == 2  # the two entrances the rule-based conductor hears
        assert "cues" not in generate_take(strings_enter, engine=engine).provenance  # no seating: as learned


def test_the_generator_releases_the_last_chord_and_then_stands_still(demo, tmp_path):
    """Music that ends in three seconds of silence: the baton hand stops striking within half a
    second of the last sound, both hands come down, and nothing moves after that; the arms keep
    their lengths."""
    from backend.metrics import release, rms_db
    x = np.concatenate([demo.samples, np.zeros(3 * demo.sr, np.float32)])
    path = tmp_path / "ends.wav"
    sf.write(path, x, demo.sr)
    take = generate_take(path)
    m3, fps = take.keypoints_3d, take.fps
    end = len(demo.samples) / demo.sr
    assert release(take.keypoints_2d, rms_db(x, demo.sr, fps), fps)
    assert not (ictus_times(take.keypoints_2d, fps) > end + 0.5).any()
    still = m3[int((end + 1.0) * fps):]
    assert np.ptp(still, axis=0).max() < 1e-6  # at rest
    for wrist, shoulder in ((R_WRIST, R_SHOULDER), (L_WRIST, L_SHOULDER)):
        assert still[0, wrist, 2] < still[0, shoulder, 2] - 0.3  # hands down
    assert np.allclose(bone_lengths(m3)[:, 2:], bone_lengths(m3)[:1, 2:], atol=2e-3)
