"""Batch rendering (`python -m backend render`) end to end: real processes, real audio, real MP4s
checked with ffmpeg — streams, durations, and that the conductor moves on the beats."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def ffmpeg() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(video: Path) -> dict:
    """Streams and duration of a video, from ffmpeg's own description of it."""
    text = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(video)], capture_output=True, text=True).stderr
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text).groups()
    return {"duration": int(h) * 3600 + int(m) * 60 + float(s),
            "video": re.findall(r"Stream #.*Video: (\w+).*?, (\d+)x(\d+)", text),
            "audio": re.findall(r"Stream #.*Audio: (\w+)", text)}


def gray_frames(video: Path, size=(64, 36)) -> np.ndarray:
    out = subprocess.run([ffmpeg(), "-v", "error", "-i", str(video), "-vf", f"scale={size[0]}:{size[1]}",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, size[1], size[0]).astype(np.float32)


def render(*args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "backend", "render", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"render failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def short_piece(tmp_path_factory):
    """Two bars of the demo music (a second of silence, then 8 beats at 96 bpm): about 6 s."""
    from backend.demo_music import demo_piece
    piece = demo_piece(bars=2)
    path = tmp_path_factory.mktemp("music") / "two_bars.ogg"
    sf.write(path, piece.samples, piece.sr)
    return path, piece


def motion_at_beats(frames: np.ndarray, fps: float, beats: np.ndarray) -> tuple[float, float]:
    """Mean frame-to-frame change around the beats vs. in the silent lead-in (before the preparation)."""
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))
    around = np.concatenate([diff[max(0, int(b * fps) - 3): int(b * fps) + 3] for b in beats])
    still = diff[: max(1, int(0.2 * fps))]
    return float(around.mean()), float(still.mean())


def test_preview_resume_force_and_manifest(short_piece, tmp_path):
    music, piece = short_piece
    out = tmp_path / "out"
    render(music, "--preview", "--out", out, "--quiet")
    video = out / "two_bars.preview.mp4"
    info = probe(video)
    assert info["video"] and info["video"][0][0] == "h264" and info["audio"] == ["aac"]
    assert abs(info["duration"] - len(piece.samples) / piece.sr) < 0.2
    manifest = json.loads((out / "manifest.json").read_text())
    record = manifest["pieces"]["two_bars.preview"]
    assert record["status"] == "rendered" and record["video"] == video.name
    assert record["provenance"]["seed"] == 0 and record["timings"]["total_s"] > 0
    assert (out / record["take"]).exists()

    first = video.stat().st_mtime_ns
    again = render(music, "--preview", "--out", out, "--json")
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert lines[-1]["summary"]["skipped"] == ["two_bars.preview"] and video.stat().st_mtime_ns == first
    render(music, "--preview", "--out", out, "--force", "--quiet")
    assert video.stat().st_mtime_ns != first


def test_a_failing_piece_does_not_stop_the_rest(short_piece, tmp_path):
    music, _ = short_piece
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    out = tmp_path / "out"
    proc = render(broken, tmp_path / "missing.flac", music, "--preview", "--out", out, "--jobs", "2", "--json",
                  check=False)
    assert proc.returncode == 3
    summary = [json.loads(line) for line in proc.stdout.splitlines()][-1]["summary"]
    assert summary["rendered"] == ["two_bars.preview"]
    assert set(summary["failed"]) == {"broken.preview", "missing.preview"}
    assert "broken.wav" in summary["failed"]["broken.preview"]
    assert "no such file" in summary["failed"]["missing.preview"]
    manifest = json.loads((out / "manifest.json").read_text())["pieces"]
    assert manifest["broken.preview"]["status"] == "failed" and not (out / "broken.preview.mp4").exists()


def test_each_piece_strikes_its_own_given_beats(short_piece, tmp_path):
    import shutil
    from baton_core.take import load_take
    music, piece = short_piece
    mine, other = tmp_path / "mine.ogg", tmp_path / "other.ogg"
    shutil.copy(music, mine)
    shutil.copy(music, other)  # no beats beside it: that piece fails, the first goes on
    beats = [round(float(b) + 0.1, 3) for b in piece.beats]
    (tmp_path / "mine.beats.txt").write_text("\n".join(map(str, beats)))
    (tmp_path / "mine.downbeats.txt").write_text(f"{beats[1]}, {beats[4]}")  # an upbeat, then bars of three
    out = tmp_path / "out"
    proc = render(mine, other, "--preview", "--out", out, "--quiet", "--given-beats", "--engine", "rules", check=False)
    assert proc.returncode == 3  # one piece failed
    pieces = json.loads((out / "manifest.json").read_text())["pieces"]
    assert pieces["mine.preview"]["status"] == "rendered" and pieces["other.preview"]["status"] == "failed"
    assert "other.beats.txt is missing" in pieces["other.preview"]["error"]
    take = load_take(out / pieces["mine.preview"]["take"])
    assert np.allclose(take.start + take.pulse, beats, atol=1e-3) and take.settings["bars"] == "given"
    assert np.allclose(take.start + take.downbeats[:2], [beats[1], beats[4]], atol=1e-3)


def test_bad_options_are_refused_with_one_line(tmp_path):
    proc = render(tmp_path / "x.wav", "--resolution", "641x360", check=False)
    assert proc.returncode == 2 and "even" in proc.stderr
    proc = render(tmp_path / "x.wav", "--scene", tmp_path / "none.blend", check=False)
    assert proc.returncode == 2 and "none.blend" in proc.stderr.strip().splitlines()[-1]


def test_default_stage_video_has_the_music_and_moves_on_the_beats(short_piece, tmp_path):
    music, piece = short_piece
    out = tmp_path / "out"
    # the rule-based conductor stands still in the silent lead-in: the beats show against it
    render(music, "--out", out, "--resolution", "192x108", "--quiet", "--save-blend", "--engine", "rules",
           "--export", "bvh", "--export", "glb")
    video = out / "two_bars.mp4"
    info = probe(video)
    assert info["video"][0] == ("h264", "192", "108") and info["audio"] == ["aac"]
    assert abs(info["duration"] - len(piece.samples) / piece.sr) < 0.1
    record = json.loads((out / "manifest.json").read_text())["pieces"]["two_bars"]
    assert record["armature"] == "Conductor" and record["keys"] > 0 and (out / record["blend"]).exists()
    assert record["exports"] == ["two_bars.bvh", "two_bars.glb"] and (out / "two_bars.glb").stat().st_size > 1000
    bvh_frames = next(line for line in (out / "two_bars.bvh").read_text().splitlines() if line.startswith("Frames:"))
    assert abs(int(bvh_frames.split()[1]) - len(piece.samples) / piece.sr * 30) <= 2  # the whole take, at 30 fps
    around, still = motion_at_beats(gray_frames(video), 30.0, piece.beats)
    assert around > 5 * max(still, 0.01), (around, still)


def test_user_scene_with_a_rigify_armature(short_piece, tmp_path):
    music, piece = short_piece
    scene = tmp_path / "user.blend"
    script = (f"import bpy, sys; from mathutils import Vector\n"
              f"bpy.ops.wm.read_factory_settings(use_empty=True)\n"
              f"from tools.rig_builder import build_rig\n"
              f"build_rig('rigify_metarig', with_mesh=True, fit=True)\n"
              f"sc = bpy.context.scene; sc.render.fps = 25\n"
              f"cam = bpy.data.objects.new('Cam', bpy.data.cameras.new('Cam')); sc.collection.objects.link(cam)\n"
              f"sc.camera = cam; cam.location = (0.3, -3.4, 1.4)\n"
              f"cam.rotation_euler = (Vector((0, 0, 1.35)) - cam.location).to_track_quat('-Z', 'Y').to_euler()\n"
              f"bpy.ops.wm.save_as_mainfile(filepath={str(scene)!r})\n")
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True, timeout=300)
    out = tmp_path / "out"
    render(music, "--scene", scene, "--out", out, "--resolution", "192x108", "--frames", "1:150", "--quiet",
           "--engine", "rules")
    video = out / "two_bars.mp4"
    info = probe(video)
    assert info["video"] and info["audio"] == ["aac"] and abs(info["duration"] - 150 / 25) < 0.1
    record = json.loads((out / "manifest.json").read_text())["pieces"]["two_bars"]
    assert record["rig_convention"] == "rigify_metarig" and record["fps"] == 25.0 and record["frames"] == [1, 150]
    around, still = motion_at_beats(gray_frames(video), 25.0, piece.beats[piece.beats < 5.5])
    assert around > 5 * max(still, 0.01), (around, still)

    proc = render(music, "--scene", scene, "--armature", "Nobody", "--out", tmp_path / "o2", "--json", check=False)
    assert proc.returncode == 3
    error = json.loads(proc.stdout.splitlines()[-1])["summary"]["failed"]["two_bars"]
    assert "Nobody" in error and "rigify_metarig" in error
