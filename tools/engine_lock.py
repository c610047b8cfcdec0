"""Write blender_addon/engine_lock.txt: every package the engine needs, pinned and hashed.

The add-on's *Install Engine* makes a private environment for the engine on the animator's machine
(blender_addon/engine_env.py); that environment must be the one the tests ran, so it is installed
from this lock with `pip install --no-deps --require-hashes`. The versions are those of the project's
own `.venv` (what the tests run: `pip freeze`), and the closure is walked from pyproject.toml's
dependencies through each installed package's Requires-Dist, with the markers evaluated for Linux,
Windows and macOS alike, so one lock serves every platform (a package only one platform needs gets
that platform's marker; one the .venv lacks, e.g. colorama on Windows, takes PyPI's newest release).
The hashes are every file PyPI lists for that version, for all platforms. torch 2.13.0 is not on
pypi.org: its line carries the hash of the local CPU wheel (--torch-wheel) and is installed in a
step of its own (engine_env.torch_step) from the CPU index.

    .venv/bin/python -m tools.engine_lock [--torch-wheel /opt/wheels/torch-2.13.0+cpu-…whl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tomllib
import urllib.request
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "blender_addon" / "engine_lock.txt"
PLATFORMS = {"linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
             "win32": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
             "darwin": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"}}
PY = {"python_version": "3.11", "python_full_version": "3.11.9", "implementation_name": "cpython",
      "platform_python_implementation": "CPython", "extra": ""}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _applies(marker: Marker | None, platform: str) -> bool:
    return marker is None or marker.evaluate(PY | PLATFORMS[platform])


def closure() -> dict[str, set[str]]:
    """{package: the platforms that need it}, from pyproject's dependencies down."""
    roots = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    need: dict[str, set[str]] = {}
    todo = [(Requirement(r), set(PLATFORMS)) for r in roots]
    while todo:
        req, platforms = todo.pop()
        platforms = {p for p in platforms if _applies(req.marker, p)}
        name = canonical(req.name)
        if not platforms or platforms <= need.get(name, set()):
            continue
        need.setdefault(name, set()).update(platforms)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            requires = []  # not installed here (another platform's): its own needs are looked up no further
        todo += [(Requirement(r), platforms) for r in requires]
    return need


def pypi_files(name: str) -> tuple[str, list[str]]:
    """(the version to pin: .venv's, else PyPI's newest; the sha256 of every file of it on PyPI)."""
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as r:
        project = json.load(r)
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        version = project["info"]["version"]
    return version, sorted(f["digests"]["sha256"] for f in project["releases"].get(version, []))


def marker_for(platforms: set[str]) -> str:
    if platforms == set(PLATFORMS):
        return ""
    return " ; " + " or ".join(f'sys_platform == "{p}"' for p in sorted(platforms))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torch-wheel", type=Path, default=next(Path("/opt/wheels").glob("torch-*+cpu-*.whl"), None),
                   help="the Linux CPU torch wheel whose sha256 the lock carries")
    p.add_argument("-o", "--output", type=Path, default=LOCK)
    args = p.parse_args()
    lines = ["# The engine's environment, every package pinned and hashed: written by `python -m tools.engine_lock`",
             "# from .venv (what the tests run); installed by blender_addon/engine_env.py with --no-deps.",
             "# torch is installed in a step of its own (engine_env.torch_step)."]
    for name, platforms in sorted(closure().items()):
        if name == "torch":
            version = metadata.version("torch")
            digest = hashlib.sha256(args.torch_wheel.read_bytes()).hexdigest()
            lines.append(f'torch=={version} ; sys_platform == "linux" --hash=sha256:{digest}')
            lines.append(f'torch=={version.split("+")[0]} ; sys_platform != "linux"')
            continue
        version, hashes = pypi_files(name)
        if not hashes:
            raise SystemExit(f"error: PyPI lists no files for {name}=={version}")
        lines.append(f"{name}=={version}{marker_for(platforms)} " + " ".join(f"--hash=sha256:{h}" for h in hashes))
    args.output.write_text("\n".join(lines) + "\n")
    print(f"{args.output}: {len(lines) - 3} packages")


if __name__ == "__main__":
    main()
