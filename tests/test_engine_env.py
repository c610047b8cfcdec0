"""Install Engine's logic without Blender (blender_addon/engine_env.py): the commands for each
platform and source, the lock, progress, a failed install that keeps the working engine, removal that
never touches what the user made, sizes; how the add-on starts children on each platform; which
Python the add-on picks and how it refuses an engine of another version. Platforms not at hand are
faked by argument (the code takes `platform`); real processes run where a step is run."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import baton_core
import pytest

from blender_addon import backend_life, child_process, engine_env
from blender_addon.client import BackendError
from conftest import ROOT

PY = sys.executable


@pytest.fixture
def wheels(tmp_path) -> Path:
    folder = tmp_path / "zip-engine"
    folder.mkdir()
    for name in ("baton_core", "backend"):
        (folder / f"{name}-{baton_core.__version__}-py3-none-any.whl").write_bytes(b"")
    return folder


def fake_engine(home: Path, version: str = baton_core.__version__, platform: str = sys.platform) -> Path:
    layout = engine_env.Layout(home)
    python = layout.python(platform)
    python.parent.mkdir(parents=True)
    python.write_text("")
    python.chmod(0o755)
    (layout.env / engine_env.MARKER).write_text(json.dumps({"version": version, "size": 1234}))
    return python


@pytest.mark.parametrize("platform, python", [("linux", "bin/python"), ("darwin", "bin/python"),
                                              ("win32", "Scripts/python.exe")])
def test_the_environments_python_on_each_platform(tmp_path, platform, python):
    assert engine_env.venv_python(tmp_path, platform) == tmp_path / python
    assert engine_env.Layout(tmp_path).python(platform) == tmp_path / "engine" / python


def test_children_open_no_console_window_on_windows():
    assert child_process.background_flags("win32") == {"creationflags": 0x08000000}
    if sys.platform == "win32":
        import subprocess
        assert child_process.CREATE_NO_WINDOW == subprocess.CREATE_NO_WINDOW
    assert child_process.background_flags("linux") == child_process.background_flags("darwin") == {}


def test_the_lock_pins_every_package_with_hashes_and_torch_apart():
    deps, torch = engine_env.lock_parts()
    names = {line.split("==")[0] for line in deps}
    assert {"numpy", "scipy", "soundfile", "soxr", "pillow", "imageio-ffmpeg", "fastapi", "uvicorn", "starlette",
            "pydantic", "pydantic-core", "anyio", "h11", "click", "cffi", "sympy", "jinja2"} <= names
    assert all("--hash=sha256:" in line for line in deps)
    assert any(line.startswith("numpy==1.26.") for line in deps)
    assert [t.split(" ")[0] for t in torch] == ["torch==2.13.0+cpu", "torch==2.13.0"]
    assert engine_env.torch_hashed(torch, "linux") and not engine_env.torch_hashed(torch, "win32")
    assert not engine_env.torch_hashed(torch, "darwin")


def test_the_install_plan_from_the_registry_and_from_a_wheel_folder(tmp_path, wheels):
    layout = engine_env.Layout(tmp_path / "home")
    online = engine_env.plan(layout, "/blender/python", True, wheels=wheels, platform="win32")
    venv, deps, torch, baton, check = (s.argv for s in online)
    staged = str(layout.staging / "Scripts" / "python.exe")
    assert venv == ["/blender/python", "-m", "venv", str(layout.staging)]
    assert deps[0] == staged and "--require-hashes" in deps and "--no-deps" in deps and "--no-index" not in deps
    assert torch[torch.index("--extra-index-url") + 1] == engine_env.TORCH_INDEX
    assert "--require-hashes" not in torch  # no hash of Windows' torch is known
    assert "--no-index" in baton and sorted(baton[-2:]) == sorted(map(str, wheels.glob("*.whl")))
    assert check[0] == staged
    linux = engine_env.plan(layout, "/b/python", True, torch_index="", wheels=wheels, platform="linux")
    assert "--require-hashes" in linux[2].argv and "--extra-index-url" not in linux[2].argv
    offline = engine_env.plan(layout, "/b/python", False, str(tmp_path), wheels=wheels, platform="linux")
    for step in offline[1:3]:
        assert step.argv[step.argv.index("--no-index") + 1:][:2] == ["--find-links", str(tmp_path)]
    assert sum(s.weight for s in offline) > 0 and offline[1].packages == len(engine_env.lock_parts()[0])


def test_offline_without_a_folder_and_a_zip_without_wheels_say_what_to_do(tmp_path, wheels):
    layout = engine_env.Layout(tmp_path)
    with pytest.raises(engine_env.EngineEnvError, match="offline.*Allow Online Access.*folder of wheels"):
        engine_env.plan(layout, PY, False, wheels=wheels)
    with pytest.raises(engine_env.EngineEnvError, match="does not exist"):
        engine_env.plan(layout, PY, False, str(tmp_path / "nope"), wheels=wheels)
    with pytest.raises(engine_env.EngineEnvError, match="reinstall the add-on"):
        engine_env.plan(layout, PY, True, wheels=tmp_path)


def test_an_install_shows_progress_and_a_failure_keeps_the_working_engine_and_names_the_log(tmp_path):
    home = tmp_path / "home"
    fake_engine(home)
    layout = engine_env.Layout(home)
    say = "import sys; [print(l) for l in sys.argv[1:]]"
    python = engine_env.venv_python(Path("engine-new"))
    steps = [engine_env.Step("making", [PY, "-c", f"import os; os.makedirs({str(python.parent)!r}); "
                                                  f"open({str(python)!r}, 'w').close()"]),
             engine_env.Step("fetching", [PY, "-c", say, "Collecting a", "Processing /w/b-1.whl", "noise"], 2),
             engine_env.Step("breaking", [PY, "-c", "import sys; print('ERROR: no such package'); sys.exit(3)"])]
    install = engine_env.Install(layout, steps)
    install.run()
    assert install.finished and install.progress == pytest.approx(2 / 3)
    assert "breaking failed (exit code 3)" in install.error and str(layout.log) in install.error
    assert "ERROR: no such package" in install.error and "Collecting a" in layout.log.read_text()
    assert layout.installed()["version"] == baton_core.__version__  # the old engine is untouched

    stopped = []
    steps[2] = engine_env.Step("checking", [PY, "-c", "print('engine ok')"])
    install = engine_env.Install(layout, steps, before_replace=lambda: stopped.append(True))
    install.run()
    assert install.error is None and install.progress == 1.0 and stopped == [True]
    assert layout.installed()["version"] == baton_core.__version__ and layout.installed()["size"] >= 0
    assert not layout.staging.exists() and not (home / "engine-old").exists()
    assert not (layout.env / "requirements.txt").exists()


def test_removal_takes_only_what_install_made(tmp_path):
    layout = engine_env.Layout(tmp_path)
    mine = tmp_path / "engine"
    mine.mkdir()
    (mine / "my work.blend").write_text("precious")
    with pytest.raises(engine_env.EngineEnvError, match="not made by Install Engine"):
        engine_env.remove(layout)
    assert (mine / "my work.blend").read_text() == "precious"
    mine.rename(tmp_path / "elsewhere")
    fake_engine(tmp_path)
    layout.staging.mkdir()
    layout.log.write_text("log")
    (layout.env / "read-only").write_text("")
    (layout.env / "read-only").chmod(0o444)
    engine_env.remove(layout)
    assert not layout.env.exists() and not layout.staging.exists() and layout.log.exists()
    assert (tmp_path / "elsewhere" / "my work.blend").exists()


def test_sizes(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1500)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"x" * 500)
    assert engine_env.size_of(tmp_path) == 2000
    assert [engine_env.human_size(n) for n in (999, 2000, 3_400_000, 1_234_000_000)] == \
        ["999 bytes", "2.0 KB", "3.4 MB", "1.23 GB"]


def test_pip_lines_that_start_a_package():
    assert engine_env.package_started("Collecting numpy==1.26.4")
    assert engine_env.package_started("Processing /wheels/torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl")
    assert not engine_env.package_started("  Downloading numpy-1.26.4.whl (18 MB)")


def test_the_installed_engine_comes_after_the_preference_and_the_variable_before_the_repository(tmp_path,
                                                                                               monkeypatch):
    monkeypatch.delenv(backend_life.ENV_PYTHON, raising=False)
    home = tmp_path / "home"
    assert backend_life.find_python("", str(home))[1] != "the engine installed from the preferences"
    installed = fake_engine(home)
    assert backend_life.find_python("", str(home)) == (installed, "the engine installed from the preferences")
    assert backend_life.find_python(PY, str(home)) == (Path(PY), "the add-on's preferences")
    monkeypatch.setenv(backend_life.ENV_PYTHON, PY)
    assert backend_life.find_python("", str(home))[1] == f"${backend_life.ENV_PYTHON}"


def test_an_engine_of_another_version_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(backend_life.ENV_PYTHON, raising=False)
    fake_engine(tmp_path, version="0.0.1")
    assert "Repair Engine" in engine_env.Layout(tmp_path).version_problem()
    with pytest.raises(BackendError, match=r"Baton 0\.0\.1, this add-on is .*Repair Engine"):
        backend_life.find_python("", str(tmp_path))
    backend_life.check_version({"version": baton_core.__version__}, "here")
    with pytest.raises(BackendError, match="version 9.9.9, this add-on is .*Repair Engine"):
        backend_life.check_version({"version": "9.9.9"}, "http://127.0.0.1:1")
    with pytest.raises(BackendError, match="version unknown"):
        backend_life.check_version({"status": "ok"}, "an old engine")


def test_the_backend_wheel_carries_its_weights_and_pinned_requirements(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("baton_build", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    version = baton_core.__version__
    wheel = build.build_wheel("backend", tmp_path, version, build.engine_requires(version))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"backend-{version}.dist-info/METADATA").decode()
    assert "backend/weights/baton_m2sgan.pt" in names and "backend/service.py" in names
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert "torch==2.13.0" in requires and "numpy==1.26.4" in requires and f"baton_core=={version}" in requires
    assert len(requires) == 10 and all("==" in r for r in requires)


def test_an_installed_engine_starts_in_its_own_environment_never_in_a_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv(backend_life.ENV_PYTHON, raising=False)
    python, origin = backend_life.find_python("", str(tmp_path))
    assert origin != backend_life.INSTALLED
    installed = fake_engine(tmp_path)
    python, origin = backend_life.find_python("", str(tmp_path))
    assert backend_life.engine_cwd(python, origin) == tmp_path / "engine" == installed.parents[1]
    assert backend_life.engine_cwd(Path(PY), "the add-on's preferences") is None
