#!/usr/bin/env python3
"""The project's one entry point: set-up, tests, the demo, packaging the Blender extension.

    python3 build.py demo    # the engine set up, then the bundled demo music conducted: take, previews
    python3 build.py test    # everything set up, then the whole test suite (what CI runs)
    python3 build.py setup   # the engine set up, nothing run
    python3 build.py addon   # the engine set up, then dist/baton-<version>.zip, the installable extension
    python3 build.py engine-wheels FOLDER   # the engine's wheels, for Install Engine offline

Runs on any Python 3; the project itself runs in .venv (in the repository root; Scripts\\python.exe on
Windows) on Python 3.11, which bpy 5.0 needs: found as this interpreter, `py -3.11` on Windows, or
python3.11/python3 elsewhere. Each command installs only what it uses, so the main job needs no root
and no system packages on any platform: `setup`, `demo` and `addon` the engine set (the engine and bpy,
2.2 GB); `test` the full set: also the training, score and development extras, .venv-blender45 (the
newest Blender 4.5 LTS as a module, for the add-on's tests on 4.5) and, on Debian, the packages some
tests use (through apt-get: as root, or it says which to install). Set-up is idempotent: a stamp in .venv records
pyproject.toml's hash and the extras installed, so a command reinstalls only when the file changed or
its set is not yet there (demo after test installs nothing; test after demo adds the rest).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def venv_python(venv: Path) -> Path:
    """A venv's interpreter: Scripts\\python.exe on Windows, bin/python elsewhere."""
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


VENV = ROOT / ".venv"
PY = venv_python(VENV)
STAMP = VENV / ".baton-setup.json"  # what the last successful setup installed
DEMO_DIR = ROOT / "out" / "demo"
DIST = ROOT / "dist"
# What each command needs from pyproject.toml's extras. The engine set: the engine (the project's
# dependencies) and bpy, for the demo's rendered conductor and the extension's tooling. The full set adds
# what only the tests and the training use.
ENGINE_EXTRAS = ("blender",)
FULL_EXTRAS = ("blender", "dev", "score", "train")
# The add-on is tested on bpy 5.0.1 (.venv) and on the newest 4.5 LTS wheel, in a venv of its own that
# holds bpy alone and sees everything else through .venv.
VENV_LTS = ROOT / ".venv-blender45"
BPY_LTS = "4.5.15"
# Debian packages the tests use outside Python: score rendering for the conductor's evaluation and the
# training corpus (fluidsynth + a General MIDI soundfont, MIT). Checked by the file each one provides.
# Also real motion-capture skeletons (BVH, BSD-3) for the retargeting tests.
DEBIAN_PACKAGES = {"fluidsynth": "/usr/bin/fluidsynth", "fluid-soundfont-gm": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
                   "assimp-testmodels": "/usr/share/assimp/models/BVH/01_01.bvh"}
# The demo's rendered conductor: the first seconds of the demo music at a small size, so it stays a
# couple of minutes on two cores (the preview video covers the whole piece).
DEMO_RENDER = ("--frames", "1:150", "--resolution", "640x360")
# Room a new venv's installs take on disk, with pip's working room beside it: the engine set is 2.2 GB
# installed, the full set 3.2 GB, .venv-blender45 0.8 GB.
ROOM_NEEDED = {"engine": 3.0e9, "full": 4.0e9, "lts": 1.0e9}


def run(*cmd: str | Path, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def python311_commands() -> list[list[str]]:
    """Where Python 3.11 may be, in order: this interpreter; on Windows the launcher `py -3.11` (python.org's
    installers put it on PATH, and `python3.11` does not exist there); elsewhere python3.11, python3."""
    others = [["py", "-3.11"]] if sys.platform == "win32" else [["python3.11"], ["python3"]]
    return [[sys.executable], *others]


def find_python311() -> str:
    """The path of a Python 3.11 interpreter (bpy 5.0 is built for 3.11 alone)."""
    probe = "import sys; assert sys.version_info[:2] == (3, 11); print(sys.executable)"
    for cmd in python311_commands():
        try:
            found = subprocess.run([*cmd, "-c", probe], capture_output=True, text=True)
        except OSError:  # not installed
            continue
        if found.returncode == 0:
            return found.stdout.strip()
    where = "from python.org (with the py launcher)" if sys.platform == "win32" else "(python3.11)"
    sys.exit(f"error: Python 3.11 is needed (bpy 5.0 is built for it); install it {where} and retry")


def debian_packages() -> None:
    """The tests' Debian packages, installed through apt-get when missing; that needs root, so anyone else
    is told the exact command. Where there is no apt-get, the tests that need them are skipped."""
    missing = [pkg for pkg, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        print(f"setup: warning: no apt-get here, so the Debian packages {' '.join(missing)} are not installed; "
              "the tests that need them are skipped", flush=True)
        return
    if os.geteuid() != 0:
        sys.exit(f"error: the tests need the Debian packages {' '.join(missing)}, and installing them needs root "
                 f"(this is user {os.geteuid()}); run `sudo apt-get install -y {' '.join(missing)}` and retry")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env).returncode != 0:
        run("apt-get", "update", "-q", env=env)
        run("apt-get", "install", "-y", "-q", *missing, env=env)


def check_room(venv: Path, need: float) -> None:
    """Stop before pip starts where the disk lacks room for a new venv, rather than minutes into the
    install with pip's "No space left on device" and half a venv left behind."""
    free = shutil.disk_usage(venv.parent).free
    if free < need:
        sys.exit(f"error: setting up {venv} needs about {need / 1e9:.1f} GB free on its disk, and "
                 f"{free / 1e9:.1f} GB is free there; free some space and retry")


def _pyproject_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def extras_to_install(full: bool) -> list[str] | None:
    """The extras setup installs: None when the stamp (pyproject.toml's hash and the extras installed)
    already covers the command's set; else that set with those the stamp records, so a smaller set
    after a larger one (demo after test) never drops what is there."""
    try:
        stamp = json.loads(STAMP.read_text()) if PY.exists() else {}
    except (OSError, ValueError):
        stamp = {}
    want, have = set(FULL_EXTRAS if full else ENGINE_EXTRAS), set(stamp.get("extras", []))
    if stamp.get("pyproject") == _pyproject_hash() and want <= have:
        return None
    return sorted(want | have)


def write_stamp(extras: list[str]) -> None:
    STAMP.write_text(json.dumps({"pyproject": _pyproject_hash(), "extras": extras}) + "\n")


def setup(full: bool = False) -> None:
    """.venv with the engine set (full: the full set, the Debian packages and .venv-blender45 too).
    Idempotent: it installs only when the stamp does not already cover the set."""
    if full:
        debian_packages()
    extras = extras_to_install(full)
    if extras is None:
        print("setup: .venv is up to date")
    else:
        if not PY.exists():
            check_room(VENV, ROOM_NEEDED["full" if full else "engine"])
            run(find_python311(), "-m", "venv", VENV)
        pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        # torch first and spelled exactly, so pip takes the local CPU wheel and never the CUDA build
        run(*pip, "torch==2.13.0")
        run(*pip, "-e", f"{ROOT}[{','.join(extras)}]")
        write_stamp(extras)
        print(f"setup: done ({', '.join(extras)})")
    if full:
        blender_lts_venv()


def _site_packages(python: Path) -> str:
    return subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   text=True).strip()


def blender_lts_venv() -> None:
    """.venv-blender45: bpy 4.5 LTS only; a .pth file adds .venv's packages after it (numpy, pytest,
    the backend), so the add-on's tests run there without a second copy of everything."""
    py, stamp = venv_python(VENV_LTS), VENV_LTS / ".baton-setup"
    if py.exists() and stamp.exists() and stamp.read_text().strip() == BPY_LTS:
        return
    if not py.exists():
        check_room(VENV_LTS, ROOM_NEEDED["lts"])
        run(find_python311(), "-m", "venv", VENV_LTS)
    run(py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", f"bpy=={BPY_LTS}")
    Path(_site_packages(py), "zz_baton_venv.pth").write_text(
        f"import site; site.addsitedir({_site_packages(PY)!r})\n")
    stamp.write_text(BPY_LTS + "\n")
    print(f"setup: .venv-blender45 has bpy {BPY_LTS}")


# Runs inside bpy: the extension tooling Blender ships (`blender --command extension build|validate`).
_EXTENSION_TOOL = """
import sys
import bpy
from bl_pkg.bl_extension_cli import cli_extension_handler
source, zip_path = sys.argv[1:]
for args in (["build", "--source-dir", source, "--output-filepath", zip_path], ["validate", zip_path]):
    if cli_extension_handler(args) != 0:
        sys.exit(f"error: `extension {args[0]}` failed for {source}")
"""


def _version() -> str:
    """The project's one version number, baton_core.__version__."""
    text = (ROOT / "baton_core" / "__init__.py").read_text()
    return re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M).group(1)


def build_wheel(package: str, folder: Path, version: str, requires: list[str] = ()) -> Path:
    """A pure-Python wheel of one of the repository's packages (code and data, no caches), written by
    hand: the extension carries the packages it shares with the engine this way, and Blender installs
    them from its own zip (no pip, no network); the engine's own wheel rides along for the engine's
    environment. `requires`: its Requires-Dist lines."""
    import base64
    import zipfile
    dist = f"{package}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    files = sorted(f for f in (ROOT / package).rglob("*")
                   if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc")
    metadata = f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    meta = {f"{dist}.dist-info/METADATA": metadata,
            f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: baton build.py\nRoot-Is-Purelib: true\n"
                                       "Tag: py3-none-any\n"}
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        entries = [(f.relative_to(ROOT).as_posix(), f.read_bytes()) for f in files]
        entries += [(name, text.encode()) for name, text in meta.items()]
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{dist}.dist-info/RECORD,,")
        z.writestr(zipfile.ZipInfo(f"{dist}.dist-info/RECORD", date_time=(2020, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
    return path


# The packages the extension shares with the engine: the core (take format, skeleton, the request's
# schema) and the rig library (bone maps, retargeting, keys, the default conductor and its data).
EXTENSION_WHEELS = ("baton_core", "baton_rigs")
# The engine's own packages, which the zip carries in engine/ for the environment *Install Engine* makes
# (never installed into Blender's Python): the backend with its shipped weights, and the core it imports.
ENGINE_WHEELS = ("baton_core", "backend")
ENGINE_LOCK = ROOT / "blender_addon" / "engine_lock.txt"


def engine_requires(version: str) -> list[str]:
    """The backend wheel's Requires-Dist: pyproject's dependencies pinned to the versions of the lock
    (tools/engine_lock.py; torch without its local `+cpu`, which the pin then matches), and baton_core."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;+]+)", ENGINE_LOCK.read_text(), re.M))
    canon = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    # pyproject's `dependencies = [...]`, read without tomllib (build.py runs on any Python 3)
    block = re.search(r"^dependencies = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S).group(1)
    names = re.findall(r'^\s*"([A-Za-z0-9_.-]+)', block, re.M)
    return [f"{n}=={canon[re.sub(r'[-_.]+', '-', n).lower()]}" for n in names] + [f"baton_core=={version}"]


def build_addon(dist: Path = DIST, python: Path = PY, source: bool = True) -> Path:
    """dist/baton-<version>.zip: blender_addon/ (the extension's UI, with the engine's lock), wheels of
    the packages it shares with the engine (EXTENSION_WHEELS, which Blender installs with it), the
    engine's wheels in engine/ (ENGINE_WHEELS, for *Install Engine*), the manifest with the version and
    the wheels written in, and build_info.json (version, source repository and commit: the add-on
    finds the repository's .venv through it; `source=False` leaves the repository out, as for a zip
    handed to animators); built and validated by bpy's own extension tooling."""
    version = _version()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    zip_path = Path(dist) / f"baton-{version}.zip"
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    zip_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="baton-addon-") as tmp:
        stage = Path(tmp) / "baton"
        shutil.copytree(ROOT / "blender_addon", stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (stage / "wheels").mkdir()
        wheels = [build_wheel(pkg, stage / "wheels", version).name for pkg in EXTENSION_WHEELS]
        (stage / "engine").mkdir()
        for pkg in ENGINE_WHEELS:
            build_wheel(pkg, stage / "engine", version, engine_requires(version) if pkg == "backend" else ())
        manifest = (stage / "blender_manifest.toml").read_text()
        written = f'version = "{version}"\nwheels = {json.dumps(["./wheels/" + w for w in wheels])}\n'
        (stage / "blender_manifest.toml").write_text(manifest.replace("# version and wheels: written by build.py\n", written))
        (stage / "build_info.json").write_text(json.dumps({"version": version, "source": str(ROOT) if source else None,
                                                           "commit": commit or None}, indent=1) + "\n")
        run(python, "-c", _EXTENSION_TOOL, stage, zip_path.resolve())
    return zip_path


def engine_wheels(folder: Path) -> None:
    """FOLDER filled with every wheel of the engine's lock for this platform, hashes checked: what
    *Install Engine* installs from on a machine where Blender works offline."""
    sys.path.insert(0, str(ROOT))
    from blender_addon import engine_env
    engine_env.write_requirements(folder)
    for cmd in engine_env.download_commands(find_python311(), folder):  # the engine's Python's wheels
        run(*cmd)
    print(f"engine-wheels: {folder} (choose it as Wheel Folder in Preferences > Add-ons > Baton)")


def test(args: list[str]) -> None:
    setup(full=True)
    run(PY, "-m", "pytest", *(args or ["-q"]))


def demo() -> None:
    setup()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    music = DEMO_DIR / "demo_music.ogg"
    run(PY, "-m", "backend.demo_music", music)
    run(PY, "-m", "backend", "generate", music, "-o", DEMO_DIR / "take.npz", "-o", DEMO_DIR / "take.json",
        "--preview", DEMO_DIR / "preview.mp4")
    run(PY, "-m", "backend", "render", music, "--out", DEMO_DIR / "render", *DEMO_RENDER, "--force",
        "--save-blend")
    shutil.copyfile(DEMO_DIR / "render" / "demo_music.mp4", DEMO_DIR / "conductor.mp4")
    # Saved again beside the music, its relative paths remapped (a copied .blend would lose its sound).
    run(PY, "-c", "import sys, bpy; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]); "
        "bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2], relative_remap=True)",
        DEMO_DIR / "render" / "demo_music.blend", DEMO_DIR / "demo.blend")
    print(f"\ndemo: music, take (.npz and .json), a stick-figure preview (preview.mp4), and the default "
          f"conductor rendered in Blender (conductor.mp4, music on its sound track) with its scene (demo.blend: "
          f"conductor, keys, music strip) are in {DEMO_DIR.relative_to(ROOT)}/; render/ holds the batch "
          "renderer's own output")


def addon() -> None:
    setup()
    print(f"addon: {build_addon().relative_to(ROOT)}")


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("setup", "test", "demo", "addon", "engine-wheels") or (
            argv[0] == "engine-wheels" and len(argv) != 2):
        sys.exit(__doc__)
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    try:
        {"setup": lambda: setup(), "test": lambda: test(argv[1:]), "demo": lambda: demo(),
         "addon": lambda: addon(), "engine-wheels": lambda: engine_wheels(Path(argv[1]).resolve())}[argv[0]]()
    except subprocess.CalledProcessError as e:
        sys.exit(f"error: {' '.join(map(str, e.cmd))} exited with {e.returncode}")


if __name__ == "__main__":
    main(sys.argv[1:])
