#!/usr/bin/env python3
"""The project's one entry point: set-up, tests, the demo (and, later, packaging the add-on).

    python3 build.py setup   # .venv in the repository root with everything installed
    python3 build.py test    # setup, then the whole test suite (what CI runs)
    python3 build.py demo    # setup, then conduct the bundled demo music: take + preview video

Runs on any Python 3; the project itself runs in .venv on Python 3.11 (bpy 5.0 needs it). Setup is
idempotent: it reinstalls only when pyproject.toml changed since the last successful setup.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".baton-setup"
DEMO_DIR = ROOT / "out" / "demo"
# Debian packages the project uses outside Python: score rendering for the conductor's evaluation and the
# training corpus (fluidsynth + a General MIDI soundfont, MIT). Checked by the file each one provides.
# Also real motion-capture skeletons (BVH, BSD-3) for the retargeting tests.
DEBIAN_PACKAGES = {"fluidsynth": "/usr/bin/fluidsynth", "fluid-soundfont-gm": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
                   "assimp-testmodels": "/usr/share/assimp/models/BVH/01_01.bvh"}


def run(*cmd: str | Path, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def find_python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    for name in ("python3.11", "python3"):
        exe = shutil.which(name)
        if exe and subprocess.run([exe, "-c", "import sys; assert sys.version_info[:2] == (3, 11)"],
                                  capture_output=True).returncode == 0:
            return exe
    sys.exit("error: Python 3.11 is needed (bpy 5.0 is built for it); install python3.11 and retry")


def debian_packages() -> None:
    missing = [pkg for pkg, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit(f"error: Debian packages missing: {' '.join(missing)}; install them with "
                 f"`sudo apt-get install -y {' '.join(missing)}` and retry")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env).returncode != 0:
        run("apt-get", "update", "-q", env=env)
        run("apt-get", "install", "-y", "-q", *missing, env=env)


def setup() -> None:
    debian_packages()
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        print("setup: .venv is up to date")
        return
    if not PY.exists():
        run(find_python311(), "-m", "venv", VENV)
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # torch first and spelled exactly, so pip takes the local CPU wheel and never the CUDA build
    run(*pip, "torch==2.13.0")
    run(*pip, "-e", f"{ROOT}[dev,train]")
    STAMP.write_text(want + "\n")
    print("setup: done")


def test(args: list[str]) -> None:
    setup()
    run(PY, "-m", "pytest", *(args or ["-q"]))


def demo() -> None:
    setup()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    music = DEMO_DIR / "demo_music.ogg"
    run(PY, "-m", "backend.demo_music", music)
    run(PY, "-m", "backend", "generate", music, "-o", DEMO_DIR / "take.npz", "-o", DEMO_DIR / "take.json",
        "--preview", DEMO_DIR / "preview.mp4")
    print(f"\ndemo: music, take (.npz and .json) and a preview video are in {DEMO_DIR.relative_to(ROOT)}/")


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("setup", "test", "demo"):
        sys.exit(__doc__)
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    try:
        {"setup": lambda: setup(), "test": lambda: test(argv[1:]), "demo": lambda: demo()}[argv[0]]()
    except subprocess.CalledProcessError as e:
        sys.exit(f"error: {' '.join(map(str, e.cmd))} exited with {e.returncode}")


if __name__ == "__main__":
    main(sys.argv[1:])
