"""build.py's set-up: what each command installs, who may run it, and its platform-specific paths. The
Windows branches run here with the platform faked (sys.platform, and a stand-in for the `py` launcher
that starts this very Python 3.11); the non-root runs are real, as user nobody."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_build():
    spec = importlib.util.spec_from_file_location("baton_build", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def build():
    return load_build()


# the system's own interpreters, which any user may run (a root-only pyenv's may not be)
SYSTEM_BIN = "/usr/local/bin:/usr/bin:/bin"


def as_nobody() -> list[str]:
    """The command prefix that runs a command as user nobody (65534) with no supplementary groups."""
    setpriv = shutil.which("setpriv")
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or setpriv is None:
        pytest.skip("running as another user needs root and setpriv")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_venv_interpreter_is_scripts_python_exe_on_windows(build, monkeypatch):
    assert build.venv_python(Path("v")) == Path("v/bin/python")
    monkeypatch.setattr(sys, "platform", "win32")
    assert build.venv_python(Path("v")) == Path("v/Scripts/python.exe")


def test_python311_is_found_through_the_py_launcher_on_windows(build, monkeypatch, tmp_path):
    python311 = sys.executable  # the tests run on 3.11
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "py"  # what `py -3.11 ARGS` does: start the installed 3.11 with ARGS
    launcher.write_text(f'#!/bin/sh\n: > "{tmp_path}/asked"\n[ "$1" = "-3.11" ] || exit 103\nshift\n'
                        f'exec "{python311}" "$@"\n')
    launcher.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "executable", "/bin/false")  # build.py started by some other Python
    assert build.python311_commands()[1:] == [["py", "-3.11"]]
    assert build.find_python311() == python311 and (tmp_path / "asked").exists()


@pytest.mark.parametrize("platform, says", [("win32", "from python.org (with the py launcher)"),
                                            ("linux", "(python3.11)")])
def test_no_python311_says_where_to_get_it(build, monkeypatch, tmp_path, platform, says):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither py nor python3.11 nor python3
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(SystemExit, match="Python 3.11 is needed") as stop:
        build.find_python311()
    assert says in str(stop.value)


def test_the_stamp_records_the_set_so_each_command_installs_only_what_is_missing(build, monkeypatch, tmp_path):
    monkeypatch.setattr(build, "PY", tmp_path / "python")
    monkeypatch.setattr(build, "STAMP", tmp_path / "stamp.json")
    engine, full = ["blender"], ["blender", "dev", "score", "train"]
    assert build.extras_to_install(full=False) == engine  # no venv yet
    build.PY.touch()
    assert build.extras_to_install(full=False) == engine  # a venv with no stamp (or an old one)
    assert build.extras_to_install(full=True) == full

    build.write_stamp(engine)  # after demo: demo again installs nothing, test the rest
    assert build.extras_to_install(full=False) is None
    assert build.extras_to_install(full=True) == full
    build.write_stamp(full)  # after test: neither installs anything
    assert build.extras_to_install(full=False) is None and build.extras_to_install(full=True) is None

    stale = json.loads(build.STAMP.read_text()) | {"pyproject": "0" * 64}
    build.STAMP.write_text(json.dumps(stale))  # pyproject.toml changed: demo reinstalls, keeping the full set
    assert build.extras_to_install(full=False) == full
    build.PY.unlink()  # the venv is gone: its stamp counts for nothing
    assert build.extras_to_install(full=False) == engine


def test_only_test_needs_debian_packages_and_a_non_root_user_is_told_the_command(tmp_path):
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get here")
    script = ("import importlib.util, sys\n"
              f"spec = importlib.util.spec_from_file_location('b', {str(ROOT / 'build.py')!r})\n"
              "b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)\n"
              "b.DEBIAN_PACKAGES = {'fluidsynth': '/nonexistent/fluidsynth', 'assimp-testmodels': '/nonexistent/x.bvh'}\n"
              "b.debian_packages()\n")
    proc = subprocess.run([*as_nobody(), shutil.which("python3", path=SYSTEM_BIN), "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert ("the tests need the Debian packages fluidsynth assimp-testmodels, and installing them needs root "
            "(this is user 65534); run `sudo apt-get install -y fluidsynth assimp-testmodels` and retry") in proc.stderr


def test_without_apt_get_the_missing_packages_are_named_and_set_up_goes_on(build, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(build, "DEBIAN_PACKAGES", {"fluidsynth": str(tmp_path / "fluidsynth")})
    build.debian_packages()
    assert "no apt-get here, so the Debian packages fluidsynth are not installed" in capsys.readouterr().out


def test_a_disk_without_room_for_the_venv_stops_set_up_before_pip_starts(build, monkeypatch, tmp_path):
    """Asked for more room than this disk has free (its real free space), set-up says how much it needs and
    has, and leaves no half-made venv behind."""
    venv = tmp_path / ".venv"
    monkeypatch.setattr(build, "VENV", venv)
    monkeypatch.setattr(build, "PY", build.venv_python(venv))
    monkeypatch.setattr(build, "STAMP", venv / ".baton-setup.json")
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setitem(build.ROOM_NEEDED, "engine", free + 5e9)
    with pytest.raises(SystemExit) as stop:
        build.setup(full=False)
    assert f"setting up {venv} needs about {(free + 5e9) / 1e9:.1f} GB free on its disk" in str(stop.value)
    assert "free some space and retry" in str(stop.value) and not venv.exists()


def pip_config_as_environment() -> dict[str, str]:
    """The invoking user's pip settings (indexes, find-links, constraints) as PIP_* variables, so another
    user with an empty home installs from the same places."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    env = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        env.setdefault("PIP_" + key.split(".", 1)[1].upper().replace("-", "_"), value.strip("'\""))
    return env


@pytest.mark.slow
def test_demo_as_a_non_root_user_in_a_fresh_clone_with_no_debian_packages():
    """`build.py demo` as user nobody in a fresh clone of HEAD (commit first what it should see), with an
    empty home, a PATH holding python3 alone (no apt-get, no fluidsynth) and the files build.py checks the
    Debian packages by moved to where none are: it installs the engine set into a new .venv and conducts
    and renders the demo. About 3 minutes on two cores."""
    nobody, python311 = as_nobody(), shutil.which("python3.11", path=SYSTEM_BIN)
    if python311 is None:
        pytest.skip(f"no Python 3.11 in {SYSTEM_BIN} for user nobody")
    with tempfile.TemporaryDirectory(prefix="baton-fresh-") as tmp:
        tmp = Path(tmp)
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(tmp / "baton")], check=True)
        (tmp / "home").mkdir()
        (tmp / "bin").mkdir()
        (tmp / "bin" / "python3").symlink_to(python311)
        for path in [tmp, *tmp.rglob("*")]:
            os.lchown(path, 65534, 65534)
        env = {"HOME": str(tmp / "home"), "PATH": str(tmp / "bin"), "LANG": "C.UTF-8", **pip_config_as_environment()}
        clone = tmp / "baton"
        script = (clone / "build.py").read_text()
        for path in load_build().DEBIAN_PACKAGES.values():
            assert f'"{path}"' in script
            script = script.replace(f'"{path}"', f'"/nonexistent{path}"')
        (clone / "build.py").write_text(script)
        proc = subprocess.run([*nobody, str(tmp / "bin" / "python3"), "build.py", "demo"], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"-e {clone}[blender]" in proc.stdout  # the engine set, nothing for tests or training
        assert "apt-get" not in proc.stdout + proc.stderr and not (clone / ".venv-blender45").exists()
        installed = subprocess.run([str(clone / ".venv/bin/python"), "-m", "pip", "list", "--format=json"],
                                   capture_output=True, text=True, check=True).stdout
        names = {p["name"].lower() for p in json.loads(installed)}
        assert {"torch", "bpy", "baton"} <= names and not names & {"pytest", "music21", "librosa", "pretty-midi", "anny"}
        demo = clone / "out" / "demo"
        assert all((demo / name).stat().st_size > 0 for name in ("demo_music.ogg", "take.npz", "take.json",
                                                                 "preview.mp4", "conductor.mp4", "demo.blend",
                                                                 "render/demo_music.mp4", "render/demo_music.blend"))
        # the scene beside the music: its strip's sound is found there, the conductor has its keys
        scene = subprocess.run([str(clone / ".venv/bin/python"), "-c", (
            "import sys, os, bpy; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]); s = bpy.context.scene; "
            "snd = [x for x in s.sequence_editor.strips if x.type == 'SOUND'][0].sound; "
            "arm = [o for o in s.objects if o.type == 'ARMATURE'][0]; "
            "print(os.path.isfile(bpy.path.abspath(snd.filepath)), "
            "sum(len(c.keyframe_points) for c in arm.animation_data.action.layers[0].strips[0]"
            ".channelbag(arm.animation_data.action_slot).fcurves) > 0)"), demo / "demo.blend"],
            capture_output=True, text=True)
        assert scene.stdout.split()[-2:] == ["True", "True"], scene.stdout[-2000:] + scene.stderr[-2000:]
        assert json.loads((demo / "render/manifest.json").read_text())["pieces"]["demo_music"]["status"] == "rendered"
        # its stamp: demo again installs nothing, test would add the rest
        plan = subprocess.run([str(clone / ".venv/bin/python"), "-c", "import build; print(build.extras_to_install("
                               "False), build.extras_to_install(True))"], cwd=clone, capture_output=True, text=True)
        assert plan.stdout.split("\n")[0] == "None ['blender', 'dev', 'score', 'train']"
        # and test, which needs the Debian packages, tells this user what to run as root, before installing anything
        if shutil.which("apt-get") is None:
            return
        (tmp / "bin" / "apt-get").symlink_to(shutil.which("apt-get"))
        refused = subprocess.run([*nobody, str(tmp / "bin" / "python3"), "build.py", "test"], cwd=clone, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "+ " not in refused.stdout
        assert ("installing them needs root (this is user 65534); run `sudo apt-get install -y fluidsynth "
                "fluid-soundfont-gm assimp-testmodels` and retry") in refused.stderr
