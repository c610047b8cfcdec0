"""The engine's own environment, which *Install Engine* makes from Blender's bundled Python.

Blender's Python has no torch and must not get it (the engine's packages would clash with Blender's),
so the engine gets a private virtual environment in the add-on's user folder, made with
`python -m venv` (pip from ensurepip) and filled from engine_lock.txt (tools/engine_lock.py: every
package the engine needs, pinned to what the tests ran, with PyPI's hashes) with
`pip install --no-deps --require-hashes --only-binary :all:`, so what lands there is exactly what was
tested. torch has a step of its own, from its CPU index (Linux: `torch==…+cpu`, hashed; the index is
a preference, since it is unreachable in some places), then the zip's own wheels (engine/: baton_core
and the backend with its weights). Offline (Blender's "Allow Online Access" off, or a folder chosen)
everything comes from a folder of wheels (`python3 build.py engine-wheels FOLDER` makes one).

No bpy here, so all of it is unit-tested; preferences.py is the thin operator layer. Layout:

    <home>/engine/               the environment; engine/baton-engine.json: Baton made it, version, when
    <home>/engine-new/           an install under way: it becomes engine/ only once every step passed,
                                 so a failed install or repair leaves the working engine as it was
    <home>/engine-install.log    the last install's log: each command and everything pip said
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import baton_core
from baton_core.errors import BatonError

from .child_process import background_flags

HERE = Path(__file__).resolve().parent
LOCK = HERE / "engine_lock.txt"
WHEELS = HERE / "engine"  # the zip's baton_core and backend wheels (build.py ENGINE_WHEELS)
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
MARKER = "baton-engine.json"
PIP = ["-m", "pip", "--disable-pip-version-check", "--no-input"]
PIP_INSTALL = [*PIP, "install", "--no-deps", "--only-binary", ":all:", "--progress-bar", "off"]


class EngineEnvError(BatonError):
    """Installing or removing the engine failed; the message says why and where its log is."""


def venv_python(env: Path, platform: str = sys.platform) -> Path:
    """The Python of the virtual environment `env` on `platform`."""
    return env / ("Scripts/python.exe" if platform == "win32" else "bin/python")


@dataclass(frozen=True)
class Layout:
    """Where the engine lives under `home` (the add-on's user folder)."""
    home: Path

    @property
    def env(self) -> Path:
        return self.home / "engine"

    @property
    def staging(self) -> Path:
        return self.home / "engine-new"

    @property
    def log(self) -> Path:
        return self.home / "engine-install.log"

    def python(self, platform: str = sys.platform) -> Path:
        return venv_python(self.env, platform)

    def installed(self) -> dict | None:
        """What baton-engine.json says of the installed engine (None: none is, or it is unfinished)."""
        try:
            info = json.loads((self.env / MARKER).read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) and self.python().is_file() else None

    def version_problem(self) -> str | None:
        """Why the installed engine does not fit this add-on (another version), with the fix."""
        info = self.installed()
        if info is None or info.get("version") == baton_core.__version__:
            return None
        return (f"the engine installed in {self.env} is Baton {info.get('version')}, this add-on is "
                f"{baton_core.__version__}: press Repair Engine in Preferences > Add-ons > Baton")


def lock_parts(lock: Path = LOCK) -> tuple[list[str], list[str]]:
    """The lock's requirement lines: (everything but torch, torch's lines)."""
    lines = [ln for ln in lock.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [ln for ln in lines if not ln.startswith("torch==")], [ln for ln in lines if ln.startswith("torch==")]


def torch_hashed(torch_lines: list[str], platform: str = sys.platform) -> bool:
    """Whether the lock has torch's hash for `platform` (only the Linux CPU wheel's is known)."""
    return any(f'sys_platform == "{platform}"' in ln and "--hash=" in ln for ln in torch_lines)


@dataclass(frozen=True)
class Step:
    title: str
    argv: list[str]
    packages: int = 0  # how many packages pip handles in it: progress within the step
    weight: float = 1.0  # its share of the whole install's time


def plan(layout: Layout, base_python: str, online: bool, wheel_folder: str = "", torch_index: str = TORCH_INDEX,
         platform: str = sys.platform, lock: Path = LOCK, wheels: Path = WHEELS) -> list[Step]:
    """The install's commands, in order; they install into layout.staging. Sources: `wheel_folder`
    when given (nothing downloaded), else the registry (pip's configured indexes; torch also from
    `torch_index`), which needs `online`."""
    if not wheel_folder and not online:
        raise EngineEnvError("Blender is set to work offline (Preferences > System > Network > Allow Online "
                             "Access), so the engine cannot be downloaded: allow online access, or choose a "
                             "folder of wheels (made with `python3 build.py engine-wheels FOLDER` on a machine "
                             "that is online) and install from it")
    if wheel_folder and not Path(wheel_folder).is_dir():
        raise EngineEnvError(f"the wheel folder {wheel_folder} does not exist")
    deps, torch = lock_parts(lock)
    baton = sorted(wheels.glob("*.whl"))
    if len(baton) != 2:
        raise EngineEnvError(f"the add-on's engine wheels are missing from {wheels} (found {len(baton)} of 2): "
                             "reinstall the add-on from its zip")
    py = str(venv_python(layout.staging, platform))
    source = ["--no-index", "--find-links", str(wheel_folder)] if wheel_folder else []
    torch_source = source or (["--extra-index-url", torch_index] if torch_index else [])
    return [
        Step("making the environment", [base_python, "-m", "venv", str(layout.staging)], 0, 1.0),
        Step("installing the engine's packages", [py, *PIP_INSTALL, "--require-hashes", *source,
                                                  "-r", str(layout.staging / "requirements.txt")], len(deps), 3.0),
        Step("installing torch", [py, *PIP_INSTALL, *(["--require-hashes"] if torch_hashed(torch, platform) else []),
                                  *torch_source, "-r", str(layout.staging / "torch.txt")], 1, 4.0),
        Step("installing Baton's engine", [py, *PIP_INSTALL, "--no-index", *map(str, baton)], len(baton), 0.5),
        Step("checking the engine", [py, "-c", "import torch, backend.service; print('engine ok', torch.__version__)"],
             0, 1.0),
    ]


def download_commands(python: str, folder: Path, lock: Path = LOCK, platform: str = sys.platform,
                      torch_index: str = TORCH_INDEX) -> list[list[str]]:
    """The commands that fill `folder` with every wheel the lock names for this platform (an
    offline install's source), with the lock's hashes checked; they read the lock's parts from the
    files write_requirements put in `folder`."""
    _, torch = lock_parts(lock)
    download = [python, *PIP, "download", "--no-deps", "--only-binary", ":all:", "--progress-bar", "off",
                "-d", str(folder)]
    return [[*download, "--require-hashes", "-r", str(folder / "requirements.txt")],
            [*download, *(["--require-hashes"] if torch_hashed(torch, platform) else []),
             *(["--extra-index-url", torch_index] if torch_index else []), "-r", str(folder / "torch.txt")]]


def write_requirements(folder: Path, lock: Path = LOCK) -> None:
    """The lock split in two files in `folder`: requirements.txt (all but torch) and torch.txt."""
    deps, torch = lock_parts(lock)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_text("\n".join(deps) + "\n")
    (folder / "torch.txt").write_text("\n".join(torch) + "\n")


def package_started(line: str) -> bool:
    """Whether a line of pip's output says it has started on one more package."""
    return line.startswith(("Collecting ", "Processing ", "Obtaining "))


def child_env() -> dict:
    """The environment pip and the engine run in: the user's site-packages and any PYTHONPATH or
    PYTHONHOME Blender was started with kept out, so the environment holds only what was installed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return env | {"PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1"}


@dataclass
class Install:
    """One install (or repair): `run()` blocks; `start()` runs it on a thread while the UI polls
    `progress` (0–1), `message`, and, once `finished`, `error` (None: it worked). `before_replace`
    runs just before the new environment takes the old one's place (the add-on stops the engine)."""
    layout: Layout
    steps: list[Step]
    source: str = "the registry"
    before_replace: Callable[[], None] | None = None
    progress: float = 0.0
    message: str = "waiting"
    finished: bool = False
    error: str | None = None
    seconds: float = 0.0
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="baton-install-engine", daemon=True)
        self._thread.start()

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            self._run()
        except EngineEnvError as e:
            self.error = str(e)
        except OSError as e:
            self.error = f"installing the engine failed ({e}); the log is {self.layout.log}"
        finally:
            self.seconds = time.monotonic() - t0
            self.finished = True

    def _run(self) -> None:
        t0 = time.monotonic()
        layout = self.layout
        layout.home.mkdir(parents=True, exist_ok=True)
        if layout.staging.exists():
            _rmtree(layout.staging)  # a crashed earlier install's: never a working engine
        total = sum(s.weight for s in self.steps)
        done = 0.0
        with open(layout.log, "w", encoding="utf-8", errors="replace") as log:
            log.write(f"Baton {baton_core.__version__}: installing the engine into {layout.env} from {self.source}\n")
            for i, step in enumerate(self.steps):
                self.message = f"{step.title} ({i + 1}/{len(self.steps)})"
                if i == 1:
                    write_requirements(layout.staging)
                seen = 0
                log.write(f"\n+ {subprocess.list2cmdline(step.argv)}\n")
                log.flush()
                process = subprocess.Popen(step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                           errors="replace", env=child_env(), cwd=layout.home, **background_flags())
                for line in process.stdout:
                    log.write(line)
                    if step.packages and package_started(line):
                        seen += 1
                        self.progress = (done + step.weight * min(seen / step.packages, 0.95)) / total
                        self.message = f"{step.title} ({i + 1}/{len(self.steps)}): {line.split()[1][-60:]}"
                code = process.wait()
                log.flush()
                if code != 0:
                    raise EngineEnvError(f"{step.title} failed (exit code {code}); the log {layout.log} ends:\n"
                                         + "\n".join(layout.log.read_text(errors="replace").splitlines()[-12:]))
                done += step.weight
                self.progress = done / total
            for name in ("requirements.txt", "torch.txt"):
                (layout.staging / name).unlink(missing_ok=True)
            size = size_of(layout.staging)
            (layout.staging / MARKER).write_text(json.dumps({
                "version": baton_core.__version__, "installed": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "source": self.source, "base_python": self.steps[0].argv[0], "size": size}, indent=1) + "\n")
            if self.before_replace is not None:
                self.before_replace()
            replace_env(layout)
            log.write(f"\ndone in {time.monotonic() - t0:.0f} s: {layout.env} ({human_size(size)})\n")
        self.message = "installed"


def replace_env(layout: Layout) -> None:
    """Put the finished staging environment in the place of the installed one (if any)."""
    old = layout.home / "engine-old"
    if old.exists():
        _rmtree(old)
    if layout.env.exists():
        layout.env.rename(old)
    layout.staging.rename(layout.env)
    if old.exists():
        _rmtree(old)


def remove(layout: Layout) -> None:
    """Remove the installed engine (and an unfinished install), only folders Baton made: a folder
    at that place without Baton's marker is the user's and is refused. The install log is kept."""
    if layout.env.exists() and not (layout.env / MARKER).is_file():
        raise EngineEnvError(f"{layout.env} was not made by Install Engine (it has no {MARKER}); "
                             "refusing to remove it: remove it yourself if it is not needed")
    for folder in (layout.env, layout.staging, layout.home / "engine-old"):
        if folder.exists():
            _rmtree(folder)


def _rmtree(folder: Path) -> None:
    """Remove a folder tree; read-only files (Windows refuses to delete them) are made writable."""
    def retry(func, path, _exc):
        os.chmod(path, stat.S_IWRITE)
        func(path)
    try:
        shutil.rmtree(folder, onerror=retry)
    except OSError as e:
        raise EngineEnvError(f"cannot remove {folder} ({e.strerror or e}): if the engine is running from it, stop "
                             "it (or quit Blender) and try again") from None


def size_of(folder: Path) -> int:
    """Bytes the files under `folder` take (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"
