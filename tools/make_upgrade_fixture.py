"""Re-make tests/data/baton_0_1_0_dc24183.blend: a scene conducted by an earlier build of the add-on,
which test_addon.py's upgrade test opens with the current one.

The earlier build is commit dc24183 (version 0.1.0, the last commit before take format version 2:
takes of version 1, no beat markers, no gesture `settings` in a take's record; its add-on saved no
bone maps, so the fixture has none). From the repository root of a current checkout:

    git worktree add /tmp/old dc24183
    cd /tmp/old
    PYTHONPATH=/tmp/old BATON_BACKEND_PYTHON=$OLDPWD/.venv/bin/python \
        $OLDPWD/.venv/bin/python $OLDPWD/tools/make_upgrade_fixture.py /tmp/old $OLDPWD/tests/data/baton_0_1_0_dc24183.blend
    cd - && git worktree remove --force /tmp/old

PYTHONPATH puts the old baton_core / baton_rigs / backend ahead of the current checkout's, in this
process (bpy as a module, the add-on's shared packages) and in the engine process the old add-on
starts (it inherits the environment; BATON_BACKEND_PYTHON is how the old add-on finds a Python,
since the old worktree has no .venv). The script checks that the old code is the code that ran.

What it does: builds the old add-on's zip with the old build.py, installs it into a throw-away
extension repository (as the old tests' `addon` fixture did), enables it and Rigify; in an empty
file, at 24 fps, adds a 6 s sound strip of the demo piece (22.05 kHz mono WAV, packed into the
file), a Rigify human metarig with one hand-keyed rotation (its own action, upper_arm.R at frame 7),
then conducts once (engine "rules", seed 3, keys "reduced"), and saves the file compressed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

OLD = Path(sys.argv[1]).resolve()
OUT = Path(sys.argv[2]).resolve()
sys.path.insert(0, str(OLD))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OLD), os.environ.get("PYTHONPATH", "")]))
assert os.environ.get("BATON_BACKEND_PYTHON"), "set BATON_BACKEND_PYTHON to the current checkout's .venv/bin/python"

import bpy  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

REPO, PKG = "baton_old", "bl_ext.baton_old.baton"
SECONDS, FPS = 6, 24


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="baton-upgrade-fixture-"))
    spec = importlib.util.spec_from_file_location("old_build", OLD / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    zip_path = build.build_addon(tmp / "dist", python=Path(sys.executable))

    bpy.ops.wm.read_factory_settings(use_empty=True)
    import addon_utils
    prefs = bpy.context.preferences
    prefs.use_preferences_save = False
    repo = prefs.extensions.repos.new(name="Baton old", module=REPO, custom_directory=str(tmp / "extensions"))
    assert bpy.ops.extensions.package_install_files(repo=REPO, filepath=str(zip_path),
                                                    enable_on_install=False) == {"FINISHED"}
    bpy.ops.preferences.addon_enable(module=PKG)
    addon_utils.enable("rigify", default_set=True)
    operators = importlib.import_module(f"{PKG}.operators")
    takes = importlib.import_module(f"{PKG}.takes")
    import baton_core
    import baton_rigs
    for module in (baton_core, baton_rigs):  # the old shared packages, not the current checkout's
        assert Path(module.__file__).resolve().is_relative_to(OLD), module.__file__

    from backend.demo_music import demo_piece
    demo = demo_piece(sr=22050)
    wav = tmp / "music.wav"
    sf.write(wav, demo.samples[:SECONDS * demo.sr], demo.sr, subtype="PCM_16")

    scene = bpy.context.window.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.frame_start, scene.frame_end = 1, SECONDS * FPS
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_sound("music", str(wav), 2, 1)
    strip.sound.pack()
    strip.sound.filepath = "//music.wav"  # packed: the path is only a name
    editor.active_strip = strip

    bpy.ops.object.armature_human_metarig_add()
    arm = bpy.context.active_object
    pb = arm.pose.bones["upper_arm.R"]
    pb.rotation_mode = "QUATERNION"
    pb.rotation_quaternion = (0.9, 0.1, 0.2, 0.1)
    pb.keyframe_insert("rotation_quaternion", frame=7)
    arm.animation_data.action.name = "hand keyed"

    s = scene.baton
    s.armature, s.engine, s.seed, s.density = arm, "rules", 3, "reduced"
    result = bpy.ops.baton.conduct()
    assert result == {"FINISHED"}, operators.last_error
    take = arm.animation_data.action
    record = takes.info(take)
    assert takes.is_take(take) and "settings" not in record and "lead" in record, record
    print("take:", take.name, {k: record[k] for k in ("engine", "seed", "density", "audio", "first_frame")})

    bpy.ops.wm.save_as_mainfile(filepath=str(OUT), compress=True, relative_remap=True)
    print("saved", OUT, OUT.stat().st_size, "bytes")
    bpy.ops.preferences.addon_disable(module=PKG)  # stops the engine
    prefs.extensions.repos.remove(repo)


if __name__ == "__main__":
    main()
