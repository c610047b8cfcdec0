"""Install Engine as an animator meets it: a fresh Blender (bpy 5.0) session with only the zip installed
— no checkout on its paths, the zip built without a source repository, cwd and user folder
throw-away — installs the engine (from a folder of wheels; from the registry), conducts a strip with
the engine it installed, and removes it.

Each session runs in a child process with `python -S` and only the .venv's site-packages dir on its
path (no .pth files: the checkout's editable install stays out), so neither `backend` nor torch is
importable there and the engine that conducts can only be the one Install Engine made. The wheel
folder is filled once per test session from the lock, as `build.py engine-wheels` does; that
install test installs with pip's configuration switched off, so the folder is its only source. The
registry test downloads ~250 MB (torch's 190 MB): it is skipped unless BATON_TEST_REGISTRY=1 (CI has
no budget for it); it installs from pip's configured indexes, with the torch index
$BATON_TORCH_INDEX (empty, the default here, where download.pytorch.org is unreachable: none).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

SESSION = r"""
import importlib, importlib.util, json, sys, time
zip_path, wav, folder, torch_index = sys.argv[1:]
result = {"backend_importable": importlib.util.find_spec("backend") is not None}
import bpy
prefs = bpy.context.preferences
prefs.use_preferences_save = False
prefs.system.use_online_access = not folder
prefs.extensions.repos.new(name="user", module="user_test", custom_directory=str(__import__("pathlib").Path.cwd() / "ext"))
assert bpy.ops.extensions.package_install_files(repo="user_test", filepath=zip_path, enable_on_install=False) == {"FINISHED"}
bpy.ops.preferences.addon_enable(module="bl_ext.user_test.baton")
pkg = "bl_ext.user_test.baton"
life, eops, takes, ops = (importlib.import_module(f"{pkg}.{m}") for m in ("backend_life", "engine_operators", "takes", "operators"))
p = prefs.addons[pkg].preferences
home = eops.layout().home
try:
    life.find_python("", str(home))
    result["before"] = "found"
except life.BackendError as e:
    result["before"] = str(e)
p.engine_wheel_folder, p.torch_index = folder, torch_index
t0 = time.monotonic()
try:
    result["install"] = sorted(bpy.ops.baton.install_engine())
except RuntimeError as e:
    result["install"] = str(e)
result["install_s"] = time.monotonic() - t0
result["installed"] = eops.layout().installed()
result["python"], result["origin"] = map(str, life.find_python("", str(home)))
scene = bpy.context.scene
strip = scene.sequence_editor_create().strips.new_sound("music", wav, 2, 1)
scene.sequence_editor.active_strip = strip
strip.frame_offset_end = strip.frame_duration - 24 * 8
scene.baton.engine, scene.baton.add_conductor = "rules", True
t0 = time.monotonic()
try:
    result["conduct"] = sorted(bpy.ops.baton.conduct())
except RuntimeError as e:
    result["conduct"] = f"{e}: {ops.last_error}"
result["conduct_s"] = time.monotonic() - t0
arm = scene.baton.armature
result["take"] = takes.info(arm.animation_data.action) if arm else None
result["engine_python"] = life.manager.backend.process.args[0] if life.manager.backend else None
result["remove"] = sorted(bpy.ops.baton.remove_engine())
result["after"] = eops.layout().env.exists()
print("RESULT " + json.dumps(result, default=str), flush=True)
"""


def _build():
    spec = importlib.util.spec_from_file_location("baton_build", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


@pytest.fixture(scope="session")
def user_zip(tmp_path_factory) -> Path:
    """The zip an animator gets: no source repository recorded in it."""
    return _build().build_addon(tmp_path_factory.mktemp("user-dist"), python=Path(sys.executable), source=False)


@pytest.fixture(scope="session")
def wheel_folder(tmp_path_factory) -> Path:
    """Every wheel of the lock for this platform, downloaded once (hashes checked) as
    `build.py engine-wheels` does."""
    from blender_addon import engine_env
    folder = tmp_path_factory.mktemp("engine-wheels")
    engine_env.write_requirements(folder)
    for cmd in engine_env.download_commands(sys.executable, folder, torch_index=""):
        subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    return folder


def fresh_blender(tmp_path: Path, zip_path: Path, wav: Path, folder: str, torch_index: str,
                  no_pip_config: bool) -> dict:
    """Run SESSION in a bare bpy process: -S, .venv's site-packages only, cwd and user folder in tmp_path."""
    site = sysconfig.get_path("purelib")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BATON_", "PIP_"))}
    env |= {"BLENDER_USER_RESOURCES": str(tmp_path / "blender-user"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if no_pip_config:
        env["PIP_CONFIG_FILE"] = os.devnull  # no configured index or find-links: the folder is all there is
    else:
        env |= {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    code = f"import sys; sys.path.append({site!r}); sys.argv[1:] = {[str(zip_path), str(wav), folder, torch_index]!r}; exec({SESSION!r})"
    run = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=1500)
    assert "RESULT " in run.stdout, (run.returncode, run.stdout[-3000:], run.stderr[-3000:])
    return json.loads(run.stdout.split("RESULT ", 1)[1].splitlines()[0])


def check(result: dict, tmp_path: Path) -> None:
    assert result["backend_importable"] is False  # the checkout is not on the session's path
    assert "press Install Engine" in result["before"]
    assert result["install"] == ["FINISHED"], result
    home = tmp_path / "blender-user"
    env = Path(result["python"]).parents[1]
    assert home in env.parents and result["origin"] == "the engine installed from the preferences"
    assert result["conduct"] == ["FINISHED"], result
    assert result["take"]["engine"] == "rules"
    assert Path(result["engine_python"]) == Path(result["python"])  # the installed engine conducted
    assert result["remove"] == ["FINISHED"] and result["after"] is False
    print(f"\ninstall {result['install_s']:.0f} s, {result['installed']['size'] / 1e6:.0f} MB; "
          f"conduct {result['conduct_s']:.0f} s")


def test_a_fresh_blender_installs_the_engine_from_a_wheel_folder_conducts_and_removes_it(
        tmp_path, user_zip, wheel_folder, demo_files):
    result = fresh_blender(tmp_path, user_zip, demo_files["wav"], str(wheel_folder), "", no_pip_config=True)
    check(result, tmp_path)
    assert result["installed"]["source"] == f"the wheel folder {wheel_folder}"


@pytest.mark.skipif(os.environ.get("BATON_TEST_REGISTRY") != "1",
                    reason="downloads the engine's ~250 MB of packages: set BATON_TEST_REGISTRY=1")
def test_a_fresh_blender_installs_the_engine_from_the_registry(tmp_path, user_zip, demo_files):
    result = fresh_blender(tmp_path, user_zip, demo_files["wav"], "", os.environ.get("BATON_TORCH_INDEX", ""),
                           no_pip_config=False)
    check(result, tmp_path)
    assert result["installed"]["source"] == "the registry"
