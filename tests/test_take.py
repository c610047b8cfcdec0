"""The take record: round trips and validation."""

import json

import numpy as np
import pytest

from baton_core.errors import TakeError
from baton_core.take import Take, load_take


def _take(n=90):
    rng = np.random.default_rng(0)
    return Take(fps=30.0, start=1.5, keypoints_2d=rng.random((n, 13, 2), dtype=np.float32),
                keypoints_3d=rng.random((n, 13, 3), dtype=np.float32), beats=np.array([0.5, 1.0, 1.5]),
                tempo=120.0, provenance={"engine": "rules", "seed": 4}, pulse=np.array([0.5, 1.5]),
                downbeats=np.array([0.5]), lead=0.05, settings={"size": 1.5, "hand": "left"})


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_round_trip(tmp_path, suffix):
    t = _take()
    back = load_take(t.save(tmp_path / f"take{suffix}"))
    assert back.fps == 30.0 and back.start == 1.5 and back.tempo == 120.0 and back.n_frames == 90
    assert np.allclose(back.keypoints_2d, t.keypoints_2d, atol=1e-6)
    assert np.allclose(back.keypoints_3d, t.keypoints_3d, atol=1e-6)
    assert np.allclose(back.beats, t.beats) and back.provenance == t.provenance
    assert np.allclose(back.pulse, t.pulse) and np.allclose(back.downbeats, t.downbeats)
    assert back.lead == 0.05 and back.settings == t.settings


def test_a_version_1_take_still_loads(tmp_path):
    """Takes written before bars, lead and settings: the pulse is their beats, no bar lines."""
    doc = json.loads(_take().save(tmp_path / "t.json").read_text())
    for key in ("pulse", "downbeats", "lead", "settings"):
        del doc[key]
    (tmp_path / "old.json").write_text(json.dumps(doc | {"version": 1}))
    old = load_take(tmp_path / "old.json")
    assert np.allclose(old.pulse, old.beats) and len(old.downbeats) == 0 and old.lead == 0 and old.settings == {}
    (tmp_path / "broken.json").write_text(json.dumps(doc | {"version": 2}))
    with pytest.raises(TakeError, match="missing or has a malformed field"):
        load_take(tmp_path / "broken.json")


def test_invalid_takes_are_refused(tmp_path):
    t = _take()
    t.keypoints_2d = t.keypoints_2d[:, :12]
    with pytest.raises(TakeError, match="keypoints_2d"):
        t.save(tmp_path / "a.npz")
    t = _take()
    t.fps = 0
    with pytest.raises(TakeError, match="fps"):
        t.validate()
    t = _take()
    t.beats = np.array([1.0, 0.5])
    with pytest.raises(TakeError, match="beats"):
        t.validate()
    t = _take()
    t.start, t.lead = -0.1, 0.05  # frame 0's sound before the file begins
    with pytest.raises(TakeError, match="start"):
        t.validate()
    with pytest.raises(TakeError, match=".npz or .json"):
        _take().save(tmp_path / "take.txt")


def test_bad_files_are_refused(tmp_path):
    good = json.loads(_take().save(tmp_path / "t.json").read_text())
    cases = {"future.json": good | {"version": 3}, "other.json": good | {"format": "something"},
             "frames.json": good | {"n_frames": 5}, "fps.json": good | {"fps": "fast"}}
    for name, doc in cases.items():
        (tmp_path / name).write_text(json.dumps(doc))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 junk")
    (tmp_path / "junk.json").write_text("{not json")
    for name, reason in {"future.json": "version 3", "other.json": "not a Baton take",
                         "frames.json": "header says 5 frames", "fps.json": "malformed",
                         "junk.npz": "not a readable take", "junk.json": "not a readable take",
                         "missing.npz": "no such"}.items():
        with pytest.raises(TakeError, match=reason):
            load_take(tmp_path / name)


def test_tempo_must_be_a_number_of_bpm():
    t = _take()
    t.tempo = float("nan")
    with pytest.raises(TakeError, match="tempo"):
        t.validate()
    t.tempo = 0.0  # no beat in the audio
    t.beats = np.zeros(0)
    t.validate()
