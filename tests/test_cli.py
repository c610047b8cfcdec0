"""The command line, as a user runs it: a real process, real files, exit codes and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from baton_core.take import load_take
from conftest import ROOT


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_generate_and_info(demo_files, tmp_path):
    out = tmp_path / "take.npz"
    r = cli("generate", demo_files["mp3"], "-o", out, "--seed", 5, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["frames"] == load_take(out).n_frames > 1000
    assert summary["provenance"]["engine"] == "m2sgan" and summary["provenance"]["seed"] == 5
    r = cli("info", out)
    assert r.returncode == 0 and "30 fps" in r.stdout and "bpm" in r.stdout


def test_slice_and_json_take(demo_files, tmp_path):
    out = tmp_path / "slice.json"
    r = cli("generate", demo_files["wav"], "-o", out, "--start", 10, "--duration", 6)
    assert r.returncode == 0, r.stderr
    take = load_take(out)
    assert take.start == 10 and take.n_frames == 180
    # beats are relative to the slice: the demo's beats from 10 s on, 0.625 s apart
    assert np.allclose(np.diff(take.beats), 0.625, atol=0.04)


def test_official_checkpoint_through_the_cli(official_generator_path, demo_files, tmp_path):
    out = tmp_path / "gan.npz"
    r = cli("generate", demo_files["ogg"], "-o", out, "--engine", "m2sgan", "--checkpoint", official_generator_path)
    assert r.returncode == 0, r.stderr
    take = load_take(out)
    assert take.provenance["checkpoint_kind"] == "official" and len(take.provenance["checkpoint_sha256"]) == 64
    np.save(tmp_path / "noise.npy", np.zeros((40, 8), np.float32))
    r = cli("generate", demo_files["ogg"], "-o", out, "--engine", "m2sgan", "--checkpoint", official_generator_path,
            "--noise", tmp_path / "noise.npy")
    assert r.returncode != 0 and "noise must have shape (39, 8)" in r.stderr


def test_a_baton_checkpoint_implies_the_m2sgan_engine(random_model, demo_files, tmp_path):
    from backend.checkpoint import save_checkpoint
    digest = save_checkpoint(random_model, tmp_path / "ours.pt", {"trained_on": "nothing (test)"})
    np.save(tmp_path / "noise.npy", np.ones((39, 8), np.float32))
    r = cli("generate", demo_files["ogg"], "-o", tmp_path / "a.npz", "-o", tmp_path / "a.json",
            "--checkpoint", tmp_path / "ours.pt", "--noise", tmp_path / "noise.npy")
    assert r.returncode == 0, r.stderr
    a, b = load_take(tmp_path / "a.npz"), load_take(tmp_path / "a.json")
    assert a.provenance["engine"] == "m2sgan" and a.provenance["checkpoint_sha256"] == digest
    assert a.provenance["noise"] == "given" and np.allclose(a.keypoints_3d, b.keypoints_3d, atol=1e-5)


@pytest.mark.parametrize("args, reason", [
    (["generate", "{tmp}/nope.wav", "-o", "{tmp}/t.npz"], "no such file"),
    (["generate", "{tmp}/bad.ogg", "-o", "{tmp}/t.npz"], "not a readable audio file"),
    (["generate", "{ogg}", "-o", "{tmp}/t.txt"], ".npz or .json"),
    (["generate", "{ogg}", "-o", "{tmp}/t.npz", "--engine", "m2sgan", "--checkpoint", "{tmp}/bad.ogg"], "corrupt"),
    (["generate", "{ogg}", "-o", "{tmp}/t.npz", "--start", "100"], "past the end"),
    (["info", "{tmp}/bad.ogg"], "not a readable take"),
    (["info", "{tmp}/list.json"], "not a Baton take"),
    (["info", "{tmp}/nokeys.json"], "keypoints_2d"),
    (["generate", "{ogg}", "-o", "{tmp}/dir.npz"], "is a directory"),
    (["generate", "{ogg}", "-o", "{tmp}/t.npz", "--preview", "{tmp}/p.txt"], "is an .mp4 video"),
    (["generate", "{ogg}", "-o", "{tmp}/t.npz", "--engine", "rules", "--noise", "{tmp}/noise.npy"],
     "only for the m2sgan engine"),
    (["generate", "{ogg}", "-o", "{tmp}/t.npz", "--checkpoint", "{tmp}/ours.pt", "--noise", "{tmp}/noise.npz"], "several arrays"),
    (["generate", "{ogg}", "-o", "{tmp}/t.npz", "--checkpoint", "{tmp}/ours.pt", "--noise", "{tmp}/nan.npy"], "NaN"),
    (["generate", "{ogg}", "-o", "{tmp}/t.npz", "--start", "nan"], "finite"),
])
def test_bad_input_exits_nonzero_with_one_line(demo_files, random_model, tmp_path, args, reason):
    from backend.checkpoint import save_checkpoint
    (tmp_path / "bad.ogg").write_bytes(b"OggS" + b"\x00" * 500)
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "nokeys.json").write_text('{"format": "baton-take", "version": 1, "fps": 30, "start": 0, "tempo": 90}')
    np.save(tmp_path / "noise.npy", np.zeros((39, 8), np.float32))
    np.save(tmp_path / "nan.npy", np.full((39, 8), np.nan, np.float32))
    np.savez(tmp_path / "noise.npz", a=np.zeros((39, 8)))
    save_checkpoint(random_model, tmp_path / "ours.pt")
    args = [a.format(tmp=tmp_path, ogg=demo_files["ogg"]) for a in args]
    r = cli(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["generate"], ["generate", "x.wav", "-o", "t.npz", "--seed", "-1"],
                                  ["generate", "x.wav", "-o", "t.npz", "--seed", str(2 ** 63)]])
def test_usage_errors_exit_2(args):
    r = cli(*args)
    assert r.returncode == 2 and "usage" in r.stderr
