"""The Blender extension as an animator gets it: built into its zip, installed into a real `bpy`
session, enabled, and driven — the blocking Conduct operator, and the modal loop's event handling
(bpy as a module has no event loop, so its Session is fed TIMER and ESC events directly) — against a
real engine process that the add-on itself finds, starts, loses and restarts.

Runs on the bpy 5.0.1 wheel here and on the newest 4.5 LTS wheel through test_addon_blender45.py.
One zip and one engine serve the whole session.

Out of reach without a window, so for a person at a real Blender: the modal operator itself (invoke,
its timer, Esc arriving as an event), the status bar and panels as drawn (here a checking stand-in
layout runs the draw code), the file browser, Ctrl+Z after a modal run, and 'Start When Enabled' at
Blender's start-up.
"""

import importlib
import io
import importlib.util
import math
import os
import re
import signal
import socket
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import baton_core
import bpy
import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT

REPO = "baton_tests"
PKG = f"bl_ext.{REPO}.baton"


# -- the installed add-on ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("baton_build", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.build_addon(tmp_path_factory.mktemp("dist"), python=Path(sys.executable))


@pytest.fixture(scope="session")
def addon(addon_zip, tmp_path_factory):
    import addon_utils
    prefs = bpy.context.preferences
    prefs.use_preferences_save = False  # never touch the user's real preferences
    repo = prefs.extensions.repos.new(name="Baton tests", module=REPO,
                                      custom_directory=str(tmp_path_factory.mktemp("extensions")))
    result = bpy.ops.extensions.package_install_files(repo=REPO, filepath=str(addon_zip), enable_on_install=False)
    assert result == {"FINISHED"} and PKG not in prefs.addons
    bpy.ops.preferences.addon_enable(module=PKG)
    addon_utils.enable("rigify", default_set=True)
    mods = SimpleNamespace(**{m: importlib.import_module(f"{PKG}.{m}") for m in (
        "backend_life", "conduct", "operators", "preferences", "takes", "timeline", "ui")})
    mods.bonemap, mods.armature = (importlib.import_module(f"baton_rigs.{m}") for m in ("bonemap", "armature"))
    mods.dir = Path(repo.directory) / "baton"
    mods.prefs = prefs.addons[PKG].preferences
    yield mods
    backend = mods.backend_life.manager.backend
    bpy.ops.preferences.addon_disable(module=PKG)
    assert backend is None or backend.process.poll() is not None  # the engine stops with the add-on
    prefs.extensions.repos.remove(repo)  # (prints that the add-on is no longer enabled)


@pytest.fixture
def scene(addon):
    """A fresh scene, shown in the window (operators act on the window's scene), conducted by the
    rule-based engine, whose every ictus is on a beat, keyed on every frame: the tests check frame
    placement to a frame. (test_the_default_engine_is_the_shipped_generator covers the default
    engine, the beat markers' test the default density.)"""
    s = bpy.data.scenes.new("Test")
    bpy.context.window.scene = s
    s.baton.engine, s.baton.density = "rules", "all"
    addon.operators.last_error = None
    yield s


@pytest.fixture(scope="session")
def music(demo, demo_files):
    return SimpleNamespace(path=demo_files["wav"], beats=demo.beats)


@pytest.fixture(scope="session")
def long_music(demo, tmp_path_factory) -> Path:
    """Five minutes: a run that is still going when the test acts on it."""
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, np.tile(demo.samples, 8), demo.sr)
    return path


# -- scene building ---------------------------------------------------------------------------------
def sound_strip(scene, path, frame_start, trim_frames, offset_s, frames, channel=2):
    """A sound strip starting at frame_start, its first trim_frames cut, sound_offset offset_s, frames long."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strip = editor.strips.new_sound("music", str(path), channel, frame_start)
    strip.sound_offset = offset_s
    strip.frame_offset_start = trim_frames
    strip.frame_offset_end = strip.frame_duration - trim_frames - frames
    editor.active_strip = strip
    return strip


def rigify_metarig(scene):
    bpy.ops.object.armature_human_metarig_add()
    obj = bpy.context.active_object
    assert obj.type == "ARMATURE" and obj.name in scene.objects
    return obj


def conduct(addon, **options):
    result = bpy.ops.baton.conduct(**options)
    assert result == {"FINISHED"}, addon.operators.last_error
    return bpy.context.scene.baton.armature


def conduct_refused(addon) -> str:
    """Conduct fails (the operator reports an error, or its poll refuses with a reason; bpy.ops
    raises either): the message."""
    addon.operators.last_error = None
    with pytest.raises(RuntimeError) as refused:
        bpy.ops.baton.conduct()
    return addon.operators.last_error or str(refused.value)


def keys_of(action) -> dict:
    """{(data path, index): keyframe coordinates} of the action's first slot."""
    from bpy_extras.anim_utils import action_get_channelbag_for_slot
    bag = action_get_channelbag_for_slot(action, action.slots[0])
    out = {}
    for fc in bag.fcurves:
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co.reshape(-1, 2)
    return out


def heard_frames(strip, beats, fps):
    """Scene frames at which the file's beat times are heard in this strip."""
    return strip.frame_start + (np.asarray(beats) - strip.sound_offset) * fps


def hand_path(addon, scene, obj, first, last, slot=None) -> np.ndarray:
    """(frames, 3) world positions of a hand (the baton hand unless `slot`) as Blender evaluates the rig."""
    bone = addon.armature.bone_map_for(obj).bones[slot or addon.bonemap.BATON_HAND]
    path = []
    for f in range(first, last + 1):
        scene.frame_set(int(f))
        path.append(tuple(obj.matrix_world @ obj.pose.bones[bone].head))
    return np.array(path)


def ictus_frames(addon, scene, obj, first, last) -> list[int]:
    """Frames where the baton hand, as Blender evaluates the rig, falls into the bottom of a stroke and
    rebounds (lowest within ±3 frames, at least 5 mm below both ends of that span)."""
    frames = np.arange(first, last + 1)
    z = hand_path(addon, scene, obj, first, last)[:, 2]
    return [int(frames[i]) for i in range(3, len(z) - 3)
            if z[i] == z[i - 3:i + 4].min() and min(z[i - 3], z[i + 3]) - z[i] > 0.005]


def assert_ictus_on_beats(addon, scene, obj, strip, beats, n=4):
    """The first ictus is on the frame where its beat is heard: the take's first beat (file seconds)
    placed through the strip's own geometry, within a frame; that beat is a real beat of the music, and
    so are the next n-1 ictus'."""
    fps = scene.render.fps / scene.render.fps_base
    # the first beat far enough into the strip for the detector's ±3-frame window, which finds an
    # ictus from the strip's fourth frame on, so a beat heard from 2.5 frames in (the conductor hears
    # the music around a trimmed strip, so a beat may fall on its very first frames)
    take_beats = addon.takes.info(obj.animation_data.action)["beats"]
    first_beat = next(b for b in take_beats if heard_frames(strip, [b], fps)[0] >= strip.frame_final_start + 2.5)
    assert np.abs(np.asarray(beats) - first_beat).min() < 0.03  # the engine found a real beat
    heard = heard_frames(strip, beats, fps)
    expected = heard_frames(strip, [first_beat], fps)[0]
    ictus = ictus_frames(addon, scene, obj, strip.frame_final_start, min(strip.frame_final_end - 1,
                                                                         int(expected + n * 60 / 96 * fps) + 4))
    assert abs(ictus[0] - expected) <= 1.0, (ictus, expected)
    for f in ictus[:n]:
        assert np.abs(heard - f).min() <= 1.0, (ictus, heard)


# -- package ----------------------------------------------------------------------------------------
def test_the_zip_is_a_valid_extension_carrying_client_and_bone_maps(addon_zip):
    with zipfile.ZipFile(addon_zip) as z:
        names = set(z.namelist())
        sources = {n: z.read(n).decode() for n in names if n.endswith(".py")}
        manifest = z.read("blender_manifest.toml").decode()
        wheels = {n: set(zipfile.ZipFile(io.BytesIO(z.read(n))).namelist()) for n in names if n.endswith(".whl")}
    assert {"blender_manifest.toml", "__init__.py", "client.py", "build_info.json"} <= names
    v = baton_core.__version__
    assert set(wheels) == {f"{d}/{p}-{v}-py3-none-any.whl" for d, ps in (("wheels", ("baton_core", "baton_rigs")),
                                                                          ("engine", ("baton_core", "backend"))) for p in ps}
    assert "engine/" not in manifest and "engine_lock.txt" in names  # the engine's wheels: not for Blender's Python
    assert "backend/weights/baton_m2sgan.pt" in wheels[f"engine/backend-{v}-py3-none-any.whl"]
    core, rigs = (wheels[f"wheels/{p}-{baton_core.__version__}-py3-none-any.whl"] for p in ("baton_core", "baton_rigs"))
    assert {"baton_core/take.py", "baton_core/skeleton.py"} <= core
    assert any(n.startswith("baton_rigs/bonemaps/") and n.endswith(".json") for n in rigs)
    assert {"baton_rigs/conductor/body.npz", "baton_rigs/keyframes.py"} <= rigs
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names | core | rigs)
    assert 'blender_version_min = "4.4.0"' in manifest and addon_zip.name == f"baton-{baton_core.__version__}.zip"
    assert f'version = "{baton_core.__version__}"' in manifest and "./wheels/baton_rigs-" in manifest
    for name, text in sources.items():  # Blender's Python has neither torch nor the backend package
        for line in text.splitlines():
            assert not line.lstrip().startswith(("import torch", "from backend", "import backend")), (name, line)


def test_installed_from_the_zip_enabled_and_finding_the_engine(addon):
    assert PKG in bpy.context.preferences.addons
    assert Path(addon.conduct.__file__).parent == addon.dir  # the installed copy, not the source tree
    assert hasattr(bpy.types, "SEQUENCER_PT_baton") and hasattr(bpy.types, "VIEW3D_PT_baton")
    python, origin = addon.backend_life.find_python("")
    assert python == ROOT / ".venv" / "bin" / "python" and origin == "the repository this add-on was built from"


def test_a_missing_engine_environment_says_exactly_what_to_do(addon, monkeypatch, tmp_path):
    life = addon.backend_life
    with pytest.raises(life.BackendError, match="not an executable file.*build.py setup"):
        life.find_python(str(tmp_path / "python"))
    monkeypatch.setenv("BATON_BACKEND_PYTHON", str(tmp_path / "nope"))
    with pytest.raises(life.BackendError, match=r"\$BATON_BACKEND_PYTHON"):
        life.find_python("")
    monkeypatch.delenv("BATON_BACKEND_PYTHON")
    monkeypatch.setattr(life, "build_info", lambda: {"source": str(tmp_path / "baton")})
    with pytest.raises(life.BackendError) as e:
        life.find_python("")
    message = str(e.value)
    assert f"{tmp_path / 'baton' / '.venv' / 'bin' / 'python'}" in message
    assert f"run `python3 build.py setup` in {tmp_path / 'baton'}" in message and "Engine Python" in message


# -- conducting -------------------------------------------------------------------------------------
def test_rigify_at_24fps_on_an_offset_trimmed_strip_keeps_the_existing_action(addon, scene, music):
    scene.render.fps, scene.render.fps_base = 24, 1.0
    strip = sound_strip(scene, music.path, frame_start=100, trim_frames=48, offset_s=0.5, frames=24 * 12)
    arm = rigify_metarig(scene)
    pb = arm.pose.bones["upper_arm.R"]
    pb.rotation_mode = "QUATERNION"
    pb.rotation_quaternion = (0.9, 0.1, 0.2, 0.1)
    pb.keyframe_insert("rotation_quaternion", frame=7)
    walk = arm.animation_data.action
    before = keys_of(walk)
    strip_state = (strip.frame_start, strip.frame_final_start, strip.frame_final_duration, strip.sound_offset)
    scene.baton.armature, scene.baton.seed = arm, 3

    conduct(addon)

    take = arm.animation_data.action
    assert take != walk and take.name == "music · seed 3" and addon.takes.is_take(take)
    record = addon.takes.info(take)
    assert record["slice_start"] == pytest.approx(2.5) and record["first_frame"] == 148 and record["fps"] == 24
    # the animator's action: still there, same keys, saved with the file, reachable from the takes list
    assert walk.name in bpy.data.actions and walk.use_fake_user and addon.takes.original(arm) == walk
    assert {k: v.tolist() for k, v in keys_of(walk).items()} == {k: v.tolist() for k, v in before.items()}
    # keys on every mapped bone, from the strip's first heard frame to its last
    keys = keys_of(take)
    for slot, bone in addon.armature.bone_map_for(arm).bones.items():
        if slot in addon.bonemap.DRIVEN:
            curves = [v for (path, _), v in keys.items() if path.startswith(f'pose.bones["{bone}"].rotation')]
            assert curves, f"no keys on {bone} ({slot})"
            assert curves[0][0, 0] == 148 and curves[0][-1, 0] == 148 + 24 * 12 - 1
    assert (strip.frame_start, strip.frame_final_start, strip.frame_final_duration, strip.sound_offset) == strip_state
    assert_ictus_on_beats(addon, scene, arm, strip, music.beats)


def test_the_default_engine_is_the_shipped_generator(addon, scene, music):
    """A scene that never chose an engine conducts with the preferences' default: Baton's trained
    generator, no checkpoint to set; its take keeps time with the music."""
    del scene.baton["engine_set"]
    assert scene.baton.engine == "m2sgan" and not addon.prefs.checkpoint
    strip = sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 12)
    scene.baton.armature, scene.baton.add_conductor = None, True
    arm = conduct(addon)
    record = addon.takes.info(arm.animation_data.action)
    from backend.checkpoint import load_generator
    from backend.engines import BUNDLED_CHECKPOINT
    assert record["engine"] == "m2sgan" and record["checkpoint_sha256"] == load_generator(BUNDLED_CHECKPOINT).sha256
    fps = scene.render.fps / scene.render.fps_base
    heard = heard_frames(strip, music.beats, fps)
    ictus = ictus_frames(addon, scene, arm, 1, 24 * 12)
    on_beat = [np.abs(heard - f).min() <= 2 for f in ictus]
    assert len(ictus) >= 8 and np.mean(on_beat) >= 0.6, (ictus, heard)


def test_default_conductor_at_25fps_second_take_and_hand_edits_kept(addon, scene, music):
    scene.render.fps, scene.render.fps_base = 25, 1.0
    strip = sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=4.0, frames=25 * 10)
    scene.baton.armature, scene.baton.add_conductor, scene.baton.seed = None, True, 1
    n_objects = len(bpy.data.objects)

    arm = conduct(addon)

    assert arm is not None and arm.type == "ARMATURE" and len(bpy.data.objects) > n_objects
    first = arm.animation_data.action
    assert_ictus_on_beats(addon, scene, arm, strip, music.beats)
    # a hand edit in the first take
    path = next(iter(keys_of(first)))
    from bpy_extras.anim_utils import action_get_channelbag_for_slot
    fc = action_get_channelbag_for_slot(first, first.slots[0]).fcurves.find(path[0], index=path[1])
    fc.keyframe_points[10].co.y += 0.5
    edited = keys_of(first)

    scene.baton.seed = 2
    assert conduct(addon) == arm
    second = arm.animation_data.action
    assert second != first and addon.takes.takes_of(arm) == [first, second]
    assert second.name == "music · seed 2" and addon.takes.info(second)["seed"] == 2
    assert all(np.array_equal(edited[k], v) for k, v in keys_of(first).items())  # never overwritten
    assert not all(np.array_equal(keys_of(second)[k], v) for k, v in edited.items())  # another performance

    # re-conduct the shown take with a new seed: a third take of the same strip
    scene.sequence_editor.active_strip = None
    assert bpy.ops.baton.reconduct() == {"FINISHED"}
    third = arm.animation_data.action
    assert addon.takes.takes_of(arm) == [first, second, third]
    assert addon.takes.info(third)["seed"] not in (1, 2) and addon.takes.info(third)["strip"] == "music"
    assert scene.sequence_editor.active_strip == strip

    # the takes list: picking a row shows that take; deleting the shown one shows the newest other
    arm.baton_take = bpy.data.actions.find(first.name)
    assert arm.animation_data.action == first and arm.baton_take == bpy.data.actions.find(first.name)
    assert bpy.ops.baton.delete_take() == {"FINISHED"}
    assert "music · seed 1" not in bpy.data.actions and arm.animation_data.action == third


def test_fractional_fps_and_a_moved_strip_is_followed(addon, scene, music):
    scene.render.fps, scene.render.fps_base = 24, 1.001  # 23.976 fps
    strip = sound_strip(scene, music.path, frame_start=10, trim_frames=30, offset_s=0.0, frames=240)
    arm = rigify_metarig(scene)
    scene.baton.armature, scene.baton.seed = arm, 5
    scene.baton.follow_markers = False  # the beats heard each time (the markers' own test follows them)
    conduct(addon)
    assert_ictus_on_beats(addon, scene, arm, strip, music.beats)
    first = keys_of(arm.animation_data.action)

    strip.frame_start += 37  # moved along the timeline (and to another channel): the keys follow
    strip.channel = 4
    conduct(addon)
    moved = keys_of(arm.animation_data.action)
    assert arm.animation_data.action.name == "music · seed 5.001"
    path = next(iter(first))
    assert moved[path][0, 0] == first[path][0, 0] + 37
    assert np.allclose(moved[path][:, 1], first[path][:, 1], atol=1e-5)  # same seed, same slice: same motion
    assert_ictus_on_beats(addon, scene, arm, strip, music.beats)

    scene.baton.lead_ms, scene.baton.density = 3 * 1001 / 24, "reduced"  # gestures 3 frames ahead, fewer keys
    conduct(addon)
    led = keys_of(arm.animation_data.action)
    assert led[path][0, 0] == moved[path][0, 0] - 3 and led[path][-1, 0] == moved[path][-1, 0] - 3
    assert sum(map(len, led.values())) < sum(map(len, moved.values())) / 2


def test_one_undo_step_undoes_a_run(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=2.0, frames=24 * 5)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    name = arm.name
    bpy.ops.ed.undo_push(message="before conducting")
    assert bpy.ops.baton.conduct("EXEC_DEFAULT", True) == {"FINISHED"}  # as a button press: with an undo push
    assert bpy.data.objects[arm.name].animation_data.action is not None
    window = bpy.context.window_manager.windows[0]
    with bpy.context.temp_override(window=window, screen=window.screen, area=window.screen.areas[0]):
        assert bpy.ops.ed.undo() == {"FINISHED"}
    arm = bpy.data.objects[name]  # undo reloads the data: find it again
    assert arm.animation_data is None or arm.animation_data.action is None
    assert not any(addon.takes.info(a).get("armature") == name for a in bpy.data.actions)
    assert PKG in bpy.context.preferences.addons


# -- the modal path's events, the engine's life -----------------------------------------------------
def test_modal_session_shows_progress_passes_events_through_and_applies(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 20)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    ops = addon.operators
    run = ops.start_run(bpy.context, None)
    ops.active = session = ops.Session(run)
    assert not bpy.ops.baton.conduct.poll()  # one run at a time
    seen = []
    while True:
        assert session.on_event(bpy.context, "MOUSEMOVE") == ({"PASS_THROUGH"}, [])  # the UI keeps working
        result, messages = session.on_event(bpy.context, "TIMER")
        seen.append((run.progress, session.status_text()))
        if result != {"PASS_THROUGH"}:
            break
        time.sleep(0.05)
    assert result == {"FINISHED"} and messages[0][0] == "INFO" and "new take" in messages[0][1]
    assert ops.active is None and bpy.ops.baton.conduct.poll()
    progress = [p for p, _ in seen]
    assert progress == sorted(progress) and seen[-1][1].endswith("100%")
    assert addon.takes.is_take(arm.animation_data.action)


def test_esc_cancels_the_engine_job_and_leaves_the_scene_unchanged(addon, scene, long_music):
    sound_strip(scene, long_music, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 300)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    actions, objects = set(bpy.data.actions), set(bpy.data.objects)
    ops = addon.operators
    run = ops.start_run(bpy.context, None)
    ops.active = session = ops.Session(run)
    deadline = time.monotonic() + 120
    while run.state != "running" and time.monotonic() < deadline:
        assert session.on_event(bpy.context, "TIMER")[0] == {"PASS_THROUGH"}
        time.sleep(0.02)
    result, messages = session.on_event(bpy.context, "ESC")
    assert result == {"CANCELLED"} and "unchanged" in messages[0][1] and ops.active is None
    assert run.wait(60) and run.state == "cancelled"
    client = addon.backend_life.manager.backend.client
    assert client.wait(run.job_id, timeout=60)["state"] == "cancelled"
    assert set(bpy.data.actions) == actions and set(bpy.data.objects) == objects
    assert arm.animation_data is None


def test_a_crashed_engine_is_reported_with_its_log_and_restarted_on_the_next_run(addon, scene, long_music, music):
    sound_strip(scene, long_music, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 300)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    ops, manager = addon.operators, addon.backend_life.manager
    run = ops.start_run(bpy.context, None)
    deadline = time.monotonic() + 120
    while run.state != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(manager.backend.process.pid, signal.SIGKILL)
    assert run.wait(60) and run.state == "failed"
    assert "the Baton engine stopped (exit code -9)" in run.error and "restarts on the next run" in run.error
    assert "Its log ends:" in run.error and "job" in run.error.split("Its log ends:")[1]
    result, messages = ops.finish(bpy.context, run)
    assert result == {"CANCELLED"} and messages[0][0] == "ERROR" and ops.last_error == run.error
    assert arm.animation_data is None

    restarts = manager.restarts
    scene.sequence_editor.active_strip = sound_strip(scene, music.path, 1, 0, 0.0, 24 * 5, channel=3)
    conduct(addon)
    assert manager.restarts == restarts + 1 and "running" in manager.status()
    assert addon.takes.is_take(arm.animation_data.action)


def test_connect_mode_uploads_to_a_running_service_and_a_dead_one_is_a_clear_error(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=1.0, frames=24 * 5)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    p, manager = addon.prefs, addon.backend_life.manager
    conduct(addon)  # make sure the session's engine runs
    first = arm.animation_data.action
    b = manager.backend
    p.backend_mode, p.port, p.token_file = "CONNECT", int(b.client.base.rsplit(":", 1)[1]), str(b.token_file)
    try:
        conduct(addon)  # a service that may not read the file: the audio is uploaded
        second = arm.animation_data.action
        assert second != first and addon.takes.takes_of(arm) == [first, second]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p.port = s.getsockname()[1]  # nothing listens there
        error = conduct_refused(addon)
        assert "cannot reach the Baton service" in error and "python -m backend serve" in error
        p.token_file = str(Path(b.token_file).parent / "missing-token")
        assert "cannot read the token file" in conduct_refused(addon)
    finally:
        p.backend_mode = "AUTO"
    assert arm.animation_data.action == second


def test_a_rigs_own_settings_come_back_when_its_takes_go(addon, scene, music):
    """Rigify's IK/FK switch is keyed in the take, never left on the rig: after Conduct then Delete
    Take the animator's own IK action plays as they made it."""
    from tools.rig_builder import build_rig
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 5)
    arm = build_rig("rigify_fk", scene.collection)
    switch = arm.pose.bones["upper_arm_parent.L"]
    switch["IK_FK"] = 0.0  # the animator works in IK
    ik = arm.pose.bones["hand_ik.L"]
    ik.location = (0.0, 0.1, 0.0)
    ik.keyframe_insert("location", frame=1)
    own = arm.animation_data.action
    scene.baton.armature = arm
    conduct(addon)
    take = arm.animation_data.action
    assert take != own and switch["IK_FK"] == 0.0  # written into the take, not onto the rig
    scene.frame_set(30)
    assert switch["IK_FK"] == 1.0  # playing the take switches the arm to FK, as any animated property
    bpy.ops.baton.delete_take()
    assert arm.animation_data.action == own and switch["IK_FK"] == 0.0
    scene.frame_set(1)
    assert switch["IK_FK"] == 0.0 and np.allclose(ik.location, (0.0, 0.1, 0.0))


def beat_marker_frames(scene) -> tuple[list[int], list[int], list[str]]:
    markers = sorted((m for m in scene.timeline_markers if re.match(r"^\d+\.\d+$", m.name)), key=lambda m: m.frame)
    return [m.frame for m in markers], [m.frame for m in markers if m.name.endswith(".1")], [m.name for m in markers]


def test_beat_markers_moved_and_rebarred_are_what_the_next_take_conducts(addon, scene, music):
    """The take's beats come as bar.beat markers; the animator moves them, deletes one, makes bars
    of three; the next take strikes every marker within a frame and beats those bars in three."""
    from backend.metrics import bars_from_downbeats, pattern_legibility
    from baton_core.skeleton import R_WRIST
    fps = 24
    scene.render.fps, scene.render.fps_base, scene.baton.density = fps, 1, "animator"  # the default keys
    strip = sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=fps * 16)
    arm = conduct(addon)
    frames, bars, labels = beat_marker_frames(scene)
    heard = heard_frames(strip, music.beats, fps)
    assert len(frames) >= 20 and all(np.abs(heard - f).min() <= 1 for f in frames)  # on the music's beats
    assert len(bars) >= 5 and set(np.diff([frames.index(b) for b in bars])) == {4}  # bars of four, as played

    markers = sorted((m for m in scene.timeline_markers if m.name in labels), key=lambda m: m.frame)
    for m in markers:
        m.frame += 2  # the animator hears every beat a little later
        m.select = True
    scene.timeline_markers.remove(markers[-1])
    markers[0].select, markers[0].name = False, "0.3"  # renamed into an upbeat, then bars of three
    assert bpy.ops.baton.set_bars(beats_per_bar=3) == {"FINISHED"}
    frames, bars, labels = beat_marker_frames(scene)
    assert labels[:5] == ["0.3", "1.1", "1.2", "1.3", "2.1"]

    first, last = strip.frame_final_start, strip.frame_final_end - 1
    inner = [f for f in frames if first + 3 <= f <= last - 3]
    t = lambda fs: (np.array(fs, dtype=float) - first) / fps
    for engine in ("rules", "m2sgan"):  # the rule-based conductor, then the default engine
        scene.baton.engine = engine
        conduct(addon)
        assert beat_marker_frames(scene) == (frames, bars, labels)  # the new take's markers are the given ones
        path = hand_path(addon, scene, arm, first, last)
        ictus = ictus_frames(addon, scene, arm, first, last)
        assert all(min(abs(i - f) for i in ictus) <= 1 for f in inner), (engine, inner, ictus)  # each on its frame
        motion = np.zeros((len(path), 13, 2))
        motion[:, R_WRIST] = np.stack([path[:, 0], -path[:, 2]], axis=1)  # seen from the front, image y down
        r2, chance = pattern_legibility(motion, bars_from_downbeats(t(frames), t(bars)), fps=fps)
        assert r2 >= 0.8 > chance + 0.3, (engine, r2, chance)
        print(f"{engine}: markers moved and rebarred in three: pattern R² {r2:.2f} (chance {chance:.2f}), "
              f"{len(inner)} beats struck")
    scene.baton.engine = "rules"

    strip.frame_start += 10  # markers stay where they are: read as the music they marked, then follow
    conduct(addon)
    assert beat_marker_frames(scene) == ([f + 10 for f in frames], [b + 10 for b in bars], labels)

    for m in scene.timeline_markers:  # the last bars back as Baton heard them: on the beats, bars of four
        m.select = m.frame >= frames[-8] + 10
    assert bpy.ops.baton.beats_as_heard() == {"FINISHED"}
    after, after_bars, _ = beat_marker_frames(scene)
    tail = [f for f in after if f >= frames[-8] + 10]
    assert after[:len(after) - len(tail)] == [f + 10 for f in frames[:len(after) - len(tail)]]  # the rest kept
    assert all(np.abs(heard + 10 - f).min() <= 1 for f in tail) and len(tail) >= 7
    assert set(np.diff([after.index(b) for b in after_bars if b >= tail[0]])) <= {4}

def test_a_left_handed_take_conducts_with_the_left_hand(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 6)
    arm = conduct(addon)
    right = [np.ptp(hand_path(addon, scene, arm, 1, 144, slot), axis=0).sum() for slot in ("hand_r", "hand_l")]
    scene.baton.hand, scene.baton.follow_markers = "left", False  # the same beats as heard the first time
    conduct(addon)
    left = [np.ptp(hand_path(addon, scene, arm, 1, 144, slot), axis=0).sum() for slot in ("hand_r", "hand_l")]
    assert left[1] == pytest.approx(right[0], rel=0.1) and left[0] == pytest.approx(right[1], rel=0.1)
    assert addon.takes.info(arm.animation_data.action)["settings"]["hand"] == "left"


def house_rig(scene):
    """An in-house rig no convention knows: the UE4 skeleton with every bone renamed jnt_<n>."""
    from tools.rig_builder import build_rig
    arm = build_rig("ue4", scene.collection)
    renamed = {}
    for i, b in enumerate(list(arm.data.bones)):
        renamed[b.name], b.name = f"jnt_{i:02d}", f"jnt_{i:02d}"
    return arm, renamed


def test_a_custom_rig_mapped_in_the_panel_and_saved_as_a_preset_conducts(addon, scene, music, tmp_path):
    import json
    addon.prefs.preset_folder = str(tmp_path / "presets")
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 5)
    arm, renamed = house_rig(scene)
    scene.baton.armature = arm
    assert "Bone Map panel" in conduct_refused(addon)
    ue4 = json.loads((Path(addon.bonemap.bonemaps_dir()) / "ue4.json").read_text())["bones"]
    pg = arm.baton_bonemap
    for slot, bone in ue4.items():  # the animator picks each slot's bone
        setattr(pg, slot, renamed[bone])
    pg.use_custom, pg.preset_name = True, "house rig"
    assert bpy.ops.baton.bonemap_save() == {"FINISHED"}
    saved = json.loads((tmp_path / "presets" / "bonemaps" / "house rig.json").read_text())
    assert saved["bones"]["forearm_r"] == renamed["lowerarm_r"]
    shown = draw(importlib.import_module(f"{PKG}.bone_mapping").draw, bpy.context)
    assert "search hand_r" in shown and "op baton.bonemap_save" in shown and "prop use_custom" in shown
    pg.preset_name = "a/b"
    with pytest.raises(RuntimeError, match="file name"):
        bpy.ops.baton.bonemap_save()

    other, _ = house_rig(scene)  # the next rig of the same house: the preset maps it
    scene.baton.armature = other
    assert bpy.ops.baton.bonemap_load(preset="house rig") == {"FINISHED"}
    assert other.baton_bonemap.use_custom and other.baton_bonemap.hand_r == renamed["hand_r"]
    conduct(addon)
    info = addon.takes.info(other.animation_data.action)
    assert 0 <= info["fk_check_deg"] <= 3.0 and info["bone_map"] == "house rig"
    print(f"custom rig through a saved preset: FK check {info['fk_check_deg']:.2f}° mean")
    addon.prefs.preset_folder = ""


def test_gesture_presets_are_files_that_set_the_controls(addon, scene, tmp_path):
    addon.prefs.preset_folder = str(tmp_path)
    s = scene.baton
    s.size, s.hand, s.arms_only, s.lead_ms, s.density = 1.4, "left", True, 80.0, "reduced"
    assert bpy.ops.baton.gestures_save(name="big left") == {"FINISHED"}
    doc = __import__("json").loads((tmp_path / "gestures" / "big left.json").read_text())
    assert doc["size"] == pytest.approx(1.4) and doc["hand"] == "left" and doc["density"] == "reduced"
    s.size, s.hand, s.arms_only, s.lead_ms, s.density = 1.0, "right", False, 0.0, "animator"
    assert bpy.ops.baton.gestures_load(preset="big left") == {"FINISHED"}
    assert (s.size, s.hand, s.arms_only, s.lead_ms, s.density) == (pytest.approx(1.4), "left", True, 80.0, "reduced")
    (tmp_path / "gestures" / "broken.json").write_text('{"format": "baton-gestures", "hand": "both"}')
    with pytest.raises(RuntimeError, match="broken.json"):
        bpy.ops.baton.gestures_load(preset="broken")
    assert s.hand == "left"  # nothing changed
    addon.prefs.preset_folder = ""


def test_a_frame_range_conducts_only_that_passage(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 8)
    arm = rigify_metarig(scene)
    s = scene.baton
    s.armature = arm
    conduct(addon)  # the whole strip: its beat markers
    whole, _, labels = beat_marker_frames(scene)
    s.use_frame_range, s.frame_range_start, s.frame_range_end = True, 49, 120
    conduct(addon)  # a passage again: only its frames keyed, the strip's markers kept and counted through
    frames = {int(f) for co in keys_of(arm.animation_data.action).values() for f in co[:, 0]}
    assert min(frames) == 49 and max(frames) == 120
    assert beat_marker_frames(scene)[0] == whole and beat_marker_frames(scene)[2] == labels
    s.frame_range_start, s.frame_range_end = 300, 400  # beyond the strip
    assert "at least 1 s" in conduct_refused(addon)


def test_objects_placed_for_the_sections_are_the_seating_the_engine_cues(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 4)
    arm = rigify_metarig(scene)
    arm.location, arm.rotation_euler = (2.0, 0.0, 0.0), (0.0, 0.0, math.pi)  # facing +Y
    violins = bpy.data.objects.new("Violins", None)
    scene.collection.objects.link(violins)
    violins.location = (5.0, 3.0, 0.0)  # ahead of it and to its right (facing +Y, its right is the world's +X)
    scene.baton.armature, scene.baton.seating.strings = arm, violins
    bpy.context.view_layer.update()
    plan = addon.conduct.plan_run(bpy.context)
    assert plan.controls["seating"] == "strings:-45.0"
    scene.baton.engine = "m2sgan"
    conduct(addon)  # the generator cues there too
    assert addon.takes.info(arm.animation_data.action)["settings"]["seating"] == "strings:-45.0"


def test_a_strip_with_a_score_is_conducted_from_it_and_its_bars_become_the_markers(addon, scene, tmp_path):
    """A chorale's recording (rendered with rubato, a silence before it) and its MusicXML score chosen
    for the strip: the take's bars are the score's, laid out as markers on the recording's own bar
    lines; the markers are not followed while the score is set; a score gone missing is named."""
    music21 = pytest.importorskip("music21", reason="the engine's score extra")
    if not __import__("shutil").which("fluidsynth"):
        pytest.skip("fluidsynth is needed to render the chorale")
    import soundfile as sf
    from training.scores import render_score
    r = render_score("bach/bwv66.6.mxl", seed=5, rubato=0.3, max_seconds=30)
    wav, score = tmp_path / "chorale.wav", tmp_path / "chorale.musicxml"
    sf.write(wav, np.concatenate([np.zeros(int(1.5 * r.sr), np.float32), r.audio]), r.sr)
    music21.corpus.parse("bach/bwv66.6.mxl").measures(*r.info["bars"]).write("musicxml", fp=str(score))
    fps = 24
    scene.render.fps, scene.render.fps_base = fps, 1
    strip = sound_strip(scene, wav, frame_start=1, trim_frames=0, offset_s=0.0, frames=int((1.5 + r.duration) * fps) - 1)
    strip.baton_score = str(score)
    arm = conduct(addon)
    assert addon.takes.info(arm.animation_data.action)["settings"]["bars"] == "score"
    frames, bars, labels = beat_marker_frames(scene)
    truth = 1 + (r.downbeats + 1.5) * fps
    assert len(bars) == len(truth) and np.abs(np.array(bars) - truth).max() <= 1.5  # the score's bars, in place
    assert set(np.diff([frames.index(b) for b in bars])) == {4}  # a chorale in 4/4
    for m in scene.timeline_markers:  # markers moved: not followed while the score decides
        m.frame += 3
    conduct(addon)
    assert beat_marker_frames(scene)[1] == bars
    strip.baton_score = str(tmp_path / "gone.musicxml")
    assert "is missing" in conduct_refused(addon)


def test_a_take_exports_and_goes_onto_the_nla_without_changing_the_scene(addon, scene, music, tmp_path):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 4)
    arm = rigify_metarig(scene)
    scene.baton.armature, scene.baton.root_motion = arm, True
    other = rigify_metarig(scene)  # selected and active: the export must give that back
    conduct(addon)
    take = arm.animation_data.action
    assert any('pose.bones["spine"].location' in path for path, _ in keys_of(take))  # root motion keyed
    frames = (scene.frame_start, scene.frame_end)
    for suffix in (".bvh", ".fbx", ".glb"):
        assert bpy.ops.baton.export_take(filepath=str(tmp_path / f"take{suffix}")) == {"FINISHED"}
        assert (tmp_path / f"take{suffix}").stat().st_size > 1000
    assert bpy.context.view_layer.objects.active == other and other.select_get() and not arm.select_get()
    assert (scene.frame_start, scene.frame_end) == frames and arm.animation_data.action == take
    with pytest.raises(RuntimeError, match="exported as"):
        bpy.ops.baton.export_take(filepath=str(tmp_path / "take.obj"))
    assert bpy.ops.baton.push_take_to_nla() == {"FINISHED"}
    assert arm.animation_data.action is None and arm.animation_data.nla_tracks[-1].strips[0].action == take


def test_a_deleted_armature_is_never_a_target_and_the_active_one_is_used(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 5)
    gone = rigify_metarig(scene)
    scene.baton.armature = gone
    for c in list(gone.users_collection):  # deleted in the viewport: the field still holds it
        c.objects.unlink(gone)
    assert gone.name in bpy.data.objects
    chosen = rigify_metarig(scene)  # the armature the animator now has selected
    objects = set(bpy.data.objects)
    conduct(addon)
    assert scene.baton.armature == chosen and addon.takes.is_take(chosen.animation_data.action)
    assert gone.animation_data is None and set(bpy.data.objects) == objects  # no second conductor either


def test_a_rig_in_edit_mode_is_refused_before_the_engine_works(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 5)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        b = addon.backend_life.manager.backend
        jobs = sum(b.client.health()["jobs"].values()) if b else None
        assert "Edit Mode" in conduct_refused(addon)
        assert (sum(b.client.health()["jobs"].values()) if b else None) == jobs  # nothing was sent
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")


def test_reconduct_keeps_the_scenes_seed_and_conduct_is_in_the_menus_and_needs_music(addon, scene, music):
    strip = sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 5)
    arm = rigify_metarig(scene)
    scene.baton.armature, scene.baton.seed = arm, 11
    conduct(addon)
    first = arm.animation_data.action
    assert bpy.ops.baton.reconduct() == {"FINISHED"}
    second = arm.animation_data.action
    assert second != first and addon.takes.info(second)["seed"] != 11 and scene.baton.seed == 11
    for menu in addon.operators.MENUS:
        assert addon.operators.menu_entry in getattr(bpy.types, menu)._dyn_ui_initialize()
    assert "REGISTER" not in addon.operators.BATON_OT_conduct.bl_options  # no redo of a whole job
    scene.sequence_editor.strips.remove(strip)
    assert not bpy.ops.baton.conduct.poll()
    assert "needs a sound strip" in conduct_refused(addon)
    arm.name = "Renamed Rig"  # renaming the rig keeps its takes
    assert addon.takes.takes_of(arm) == [first, second]


def test_the_default_conductor_joins_the_active_collection_at_the_cursor_and_the_scene_fits(addon, scene, music):
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_sound("whole file", str(music.path), 1, 1)  # plays to its file's end
    editor.active_strip = strip
    stage = bpy.data.collections.new("Stage")
    scene.collection.children.link(stage)
    bpy.context.view_layer.active_layer_collection = bpy.context.view_layer.layer_collection.children["Stage"]
    scene.cursor.location = (2.0, 3.0, 0.0)
    scene.baton.armature, scene.baton.add_conductor = None, True
    scene.frame_start, scene.frame_end, scene.sync_mode = 1, 10, "NONE"
    bpy.context.view_layer.objects.active = None
    arm = conduct(addon)
    assert list(arm.users_collection) == [stage] and np.allclose(arm.location, (2.0, 3.0, 0.0))
    last = max(co[-1, 0] for co in keys_of(arm.animation_data.action).values())
    assert last <= strip.frame_final_end - 1  # no key past the music
    assert scene.frame_end >= strip.frame_final_end - 1 and scene.sync_mode == "AUDIO_SYNC"


def test_esc_during_playback_stops_playback_not_the_run_and_the_takes_list_filters(addon, scene, music):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 5)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    ops = addon.operators
    run = ops.start_run(bpy.context, None)
    ops.active = session = ops.Session(run)
    try:
        playing = SimpleNamespace(screen=SimpleNamespace(is_animation_playing=True, areas=[]))
        assert session.on_event(playing, "ESC") == ({"PASS_THROUGH"}, [])
        assert not run._cancel.is_set()
    finally:
        session.on_event(bpy.context, "ESC")
        run.wait(60)
    conduct(addon)
    conduct(addon, seed=5)
    takes = addon.takes.takes_of(arm)
    lists = addon.ui.BATON_UL_takes
    for invert in (False, True):
        ui = SimpleNamespace(filter_name=f"*{takes[1].name}*", bitflag_filter_item=1 << 30, use_filter_invert=invert)
        flags, _ = lists.filter_items(ui, bpy.context, bpy.data, "actions")
        shown = {a for a, f in zip(bpy.data.actions, flags) if bool(f) != invert}  # Blender applies the invert
        assert shown == ({takes[1]} if not invert else {takes[0]})


def test_an_engine_that_cannot_see_the_file_gets_only_the_strips_slice(addon, scene, long_music):
    """A 5 s strip of a 13 MB file, to a service that may not read it and takes uploads of 2 MB
    at most: the slice (with the music the engine hears around it) is cut and sent, and the take
    is the one the engine makes from the file itself."""
    from blender_addon.client import start_backend
    assert long_music.stat().st_size > 8 << 20
    sound_strip(scene, long_music, frame_start=10, trim_frames=24 * 100, offset_s=0.5, frames=24 * 5)
    arm = rigify_metarig(scene)
    scene.baton.armature, scene.baton.follow_markers = arm, False  # the beats heard, both times
    conduct(addon, seed=3)  # the session's engine reads the file itself
    direct = keys_of(arm.animation_data.action)
    p = addon.prefs
    b = start_backend(sys.executable, [], cwd=ROOT, extra_args=["--max-upload-mb", "2"])
    p.backend_mode, p.port, p.token_file = "CONNECT", int(b.client.base.rsplit(":", 1)[1]), str(b.token_file)
    try:
        conduct(addon, seed=3)
        sliced = keys_of(arm.animation_data.action)
        assert b.client.health()["status"] == "ok"
        uploads = [line for line in b.log_file.read_text().splitlines() if "queued" in line]
        assert len(uploads) == 1 and "baton-uploads-" in uploads[0]
    finally:
        p.backend_mode = "AUTO"
        b.stop()
    assert direct.keys() == sliced.keys()
    for channel, co in direct.items():
        assert np.allclose(co, sliced[channel], atol=1e-3), channel


def test_switching_scene_during_a_run_leaves_no_conductor_behind(addon, scene, music):
    ops = addon.operators
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 4)
    scene.baton.armature, scene.baton.add_conductor = None, True
    objects = set(bpy.data.objects)
    run = ops.start_run(bpy.context, None)
    other = bpy.data.scenes.new("Other")
    bpy.context.window.scene = other  # the animator switches scene while the engine works
    try:
        assert run.wait(120) and run.state == "done"
        result, messages = ops.finish(bpy.context, run)
        assert result == {"CANCELLED"} and "switched to scene 'Other'" in messages[0][1]
        assert set(bpy.data.objects) == objects and scene.baton.armature is None  # nothing left behind
    finally:
        bpy.context.window.scene = scene


def test_a_run_is_finished_only_once_its_take_or_its_error_is_there(addon, scene, tmp_path, music):
    """The worker thread publishes a run's end after its result: the UI, polling from the main
    thread, never sees a run done without its take or failed without its error."""
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + os.urandom(4000))
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 4)
    scene.baton.armature = rigify_metarig(scene)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the interpreter back and forth as often as it can
    try:
        for source, ends in (("FILE", "failed"), ("STRIP", "done")):
            scene.baton.source, scene.baton.audio_file = source, str(bad)
            run = addon.operators.start_run(bpy.context, None)
            seen = []
            while not run.wait(0):
                seen.append((run.finished, run.state, run.take is not None, run.error is not None))
            seen.append((run.finished, run.state, run.take is not None, run.error is not None))
            assert run.state == ends and seen[-1][0]
            # each observation reads the state before the take and the error: an end is never seen before its result
            torn = [s for s in seen if (s[1] == "done" and not s[2]) or (s[1] == "failed" and not s[3])]
            assert not torn, torn[:3]
    finally:
        sys.setswitchinterval(interval)
        scene.baton.source = "STRIP"


def test_an_engine_error_names_the_users_file_not_the_upload(addon, scene, tmp_path):
    """A file the engine must be sent (a service that cannot see it) and cannot read: the error
    names the animator's file, not the service's copy of it."""
    from blender_addon.client import start_backend
    bad = tmp_path / "my song.wav"
    bad.write_bytes(b"RIFF" + os.urandom(4000))
    scene.baton.source, scene.baton.audio_file = "FILE", str(bad)
    scene.baton.armature = rigify_metarig(scene)
    p = addon.prefs
    b = start_backend(sys.executable, [], cwd=ROOT)
    p.backend_mode, p.port, p.token_file = "CONNECT", int(b.client.base.rsplit(":", 1)[1]), str(b.token_file)
    try:
        message = conduct_refused(addon)
        assert b.client.health()["status"] == "ok"  # the service goes on serving
    finally:
        p.backend_mode = "AUTO"
        b.stop()
    assert str(bad) in message and "baton-uploads" not in message, message


def test_a_packed_sound_and_a_chosen_file(addon, scene, music):
    scene.render.fps = 24
    strip = sound_strip(scene, music.path, frame_start=20, trim_frames=0, offset_s=3.0, frames=24 * 6, channel=1)
    strip.sound.pack()
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    conduct(addon)  # packed: its bytes are sent to the engine
    assert addon.takes.info(arm.animation_data.action)["audio"] == "(packed)"
    assert_ictus_on_beats(addon, scene, arm, strip, music.beats)

    scene.baton.source, scene.baton.audio_file = "FILE", str(music.path)
    scene.frame_current = 100  # channel 1 is taken there: the file goes on channel 2
    conduct(addon)
    added = scene.sequence_editor.active_strip
    assert added != strip and added.frame_final_start == 100 and added.channel == 2
    assert bpy.path.abspath(added.sound.filepath) == str(music.path)
    assert keys_of(arm.animation_data.action)[next(iter(keys_of(arm.animation_data.action)))][0, 0] == 100
    assert_ictus_on_beats(addon, scene, arm, added, music.beats)


def test_scenes_that_cannot_be_conducted_are_refused_before_any_work(addon, scene, music):
    ops = addon.operators
    before = (set(bpy.data.actions), set(bpy.data.objects))

    def refused(pattern):
        assert pattern in conduct_refused(addon), ops.last_error
        assert (set(bpy.data.actions), set(bpy.data.objects)) == before

    refused("select one in the sequencer")  # no strip at all
    editor = scene.sequence_editor_create()
    editor.active_strip = editor.strips.new_effect("red", "COLOR", 1, 1, length=10) \
        if bpy.app.version >= (5, 0) else editor.strips.new_effect("red", "COLOR", 1, 1, frame_end=10)
    refused("a color strip")
    strip = sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=12)
    refused("at least 1 s")
    strip.frame_offset_end = 0
    scene.baton.add_conductor = False
    refused("choose an armature")
    odd = bpy.data.objects.new("odd", bpy.data.armatures.new("odd"))
    scene.collection.objects.link(odd)
    before = (set(bpy.data.actions), set(bpy.data.objects))
    scene.baton.armature = odd
    refused("armature 'odd'")
    scene.baton.armature = None
    scene.baton.add_conductor = True


def test_scene_settings_show_the_preferences_defaults_until_changed(addon, scene):
    p = addon.prefs
    del scene.baton["engine_set"]  # as a scene that never chose
    p.default_seed, p.default_engine = 11, "m2sgan"
    try:
        assert scene.baton.seed == 11 and scene.baton.engine == "m2sgan"
        scene.baton.seed, scene.baton.engine = 4, "rules"
        p.default_seed = 12
        assert scene.baton.seed == 4 and scene.baton.engine == "rules"
        assert bpy.data.scenes.new("Untouched").baton.seed == 12
        assert bpy.ops.baton.roll_seed() == {"FINISHED"} and scene.baton.seed != 4
    finally:
        p.default_seed, p.default_engine = 0, "m2sgan"


def test_an_engine_error_shows_its_message_and_the_log(addon, scene, music, tmp_path):
    sound_strip(scene, music.path, frame_start=1, trim_frames=0, offset_s=0.0, frames=24 * 5)
    arm = rigify_metarig(scene)
    scene.baton.armature, scene.baton.engine = arm, "m2sgan"
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a checkpoint")
    addon.prefs.checkpoint = str(bad)
    try:
        error = conduct_refused(addon)  # the engine restarts to read the checkpoint's folder, then fails
    finally:
        addon.prefs.checkpoint = ""
    assert error.startswith("the engine could not conduct music:") and "weights.pt" in error
    assert "The engine's log ends:" in error and "failed" in error.split("The engine's log ends:")[1]
    assert addon.backend_life.manager.allows(tmp_path, folder=True)
    assert arm.animation_data is None


class Layout:
    """Stands in for Blender's UILayout, which bpy as a module cannot make (no window to draw in): it
    records what a panel's draw function shows and checks that every property, operator, icon and
    list it names exists."""

    ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())

    def __init__(self, log):
        self.log, self.alert, self.enabled = log, False, True

    def row(self, **_):
        return Layout(self.log)

    column = box = row

    def separator(self, **_):
        pass

    def label(self, text="", icon="NONE", **_):
        assert icon in self.ICONS, icon
        self.log.append(text)

    def prop(self, data, name, **_):
        assert name in data.bl_rna.properties, name
        self.log.append(f"prop {name}")

    def operator(self, idname, icon="NONE", **_):
        module, name = idname.split(".")
        assert icon in self.ICONS and getattr(getattr(bpy.ops, module), name).get_rna_type(), idname
        self.log.append(f"op {idname}")

    def prop_search(self, data, name, search_data, search_name, **_):
        assert name in data.bl_rna.properties and hasattr(search_data, search_name), name
        self.log.append(f"search {name}")

    def progress(self, factor=0.0, type="BAR", text=""):
        assert 0 <= factor <= 1 and type in ("BAR", "RING")
        self.log.append(f"progress {text}")

    def template_list(self, list_type, list_id, data, propname, active_data, active_propname, **_):
        assert hasattr(bpy.types, list_type) and hasattr(data, propname) and hasattr(active_data, active_propname)
        self.log.append(f"list {list_type}")


def draw(function, *args) -> list[str]:
    log = []
    function(Layout(log), *args)
    return log


def test_the_panels_and_preferences_draw_what_the_animator_needs(addon, scene, music):
    ui, ops = importlib.import_module(f"{PKG}.ui"), addon.operators
    scene.render.fps, scene.render.fps_base = 24, 1.001
    shown = draw(ui.draw_conduct, bpy.context)
    assert "select one in the sequencer" in " ".join(shown) and "prop add_conductor" in shown
    assert "op baton.conduct" in shown and "op baton.roll_seed" in shown

    sound_strip(scene, music.path, frame_start=100, trim_frames=48, offset_s=0.5, frames=240)
    arm = rigify_metarig(scene)
    scene.baton.armature = arm
    shown = draw(ui.draw_conduct, bpy.context)
    assert "music" in shown and "Frames 148–387 at 23.976 fps" in shown and "File 2.50–12.51 s" in shown
    assert any(line.startswith(addon.armature.bone_map_for(arm).label) for line in shown)
    assert {"prop engine", "prop seed", "prop lead_ms", "prop density", "prop armature", "prop size", "prop left_hand",
            "prop hand", "prop arms_only", "prop follow_markers", "op baton.set_bars", "prop root_motion",
            "prop use_frame_range", "op baton.gestures_save"} <= set(shown)

    ops.active = ops.Session(ops.start_run(bpy.context, None))  # while a run goes on: its progress
    try:
        assert any(line.startswith("progress Baton: music") for line in draw(ui.draw_conduct, bpy.context))
        assert ops.active.run.wait(120)
    finally:
        ops.active = None
    ops.last_error = "the engine could not conduct music: boom\nThe engine's log ends:\nline one"
    assert "line one" in draw(ui.draw_conduct, bpy.context)

    conduct(addon)
    assert draw(ui.draw_takes, bpy.context) == ["list BATON_UL_takes", "op baton.reconduct", "op baton.delete_take",
                                               "op baton.export_take", "op baton.push_take_to_nla"]
    flags, order = ui.BATON_UL_takes.filter_items(SimpleNamespace(bitflag_filter_item=1 << 30, filter_name="",
                                                                  use_filter_invert=False), bpy.context,
                                                   bpy.data, "actions")
    listed = [a for a, f in zip(bpy.data.actions, flags) if f]
    assert listed == [arm.animation_data.action] and sorted(order) == list(range(len(bpy.data.actions)))

    class Prefs:  # the preferences' draw, with the stand-in layout
        layout = Layout([])

        def __getattr__(self, name):
            return getattr(addon.prefs, name)

    prefs = Prefs()
    type(addon.prefs).draw(prefs, bpy.context)
    assert any(line.startswith(f"Using {ROOT / '.venv' / 'bin' / 'python'}") for line in prefs.layout.log)
    assert any(line.startswith("Engine: running") for line in prefs.layout.log)


# -- upgrades ---------------------------------------------------------------------------------------
EARLIER_BUILD = ROOT / "tests" / "data" / "baton_0_1_0_dc24183.blend"


def test_a_scene_conducted_by_an_earlier_build_still_works(addon, tmp_path):
    """Upgrades: a scene conducted by 0.1.0 at commit dc24183 (take record before take version 2: no
    gesture `settings`, lead in frames; no beat markers; that add-on saved no bone maps), made by
    tools/make_upgrade_fixture.py (its docstring says how to re-make it): 24 fps, a packed 6 s sound
    strip, a Rigify metarig with a hand-keyed action and one take (rules, seed 3, reduced keys).
    Opened with the current add-on, its take is listed on its armature with its keys, its scene
    settings read back as set, Re-conduct makes a current take beside it, and deleting that take
    leaves the old take, the hand-keyed action and the rig as they were."""
    assert EARLIER_BUILD.is_file(), f"the upgrade fixture {EARLIER_BUILD} is missing (tools/make_upgrade_fixture.py)"
    takes = addon.takes
    bpy.ops.wm.open_mainfile(filepath=str(EARLIER_BUILD))  # as an animator opens it: replaces bpy.data
    addon.operators.last_error = None
    scene = bpy.context.scene
    arm = bpy.data.objects["metarig"]
    old, hand = bpy.data.actions["music · seed 3"], bpy.data.actions["hand keyed"]

    # the earlier take: listed, shown, recorded as that build wrote it, its keys all there
    assert arm.animation_data.action == old and takes.takes_of(arm) == [old] and takes.original(arm) == hand
    record = takes.info(old)
    assert "settings" not in record and record["lead"] == 0 and record["rig"] == arm["baton_rig"]
    assert (record["engine"], record["seed"], record["density"], record["audio"], record["first_frame"],
            record["fps"]) == ("rules", 3, "reduced", "(packed)", 1, 24)
    old_keys = keys_of(old)
    assert sum(len(v) for v in old_keys.values()) == 1352  # as the earlier build reported writing them
    for slot, bone in addon.armature.bone_map_for(arm).bones.items():
        if slot in addon.bonemap.DRIVEN:
            curves = [v for (path, _), v in old_keys.items() if path.startswith(f'pose.bones["{bone}"].rotation')]
            assert curves and curves[0][0, 0] == 1 and curves[0][-1, 0] == 144, (slot, bone)
    hand_keys = {k: v.tolist() for k, v in keys_of(hand).items()}
    assert hand.use_fake_user and np.allclose(hand_keys[('pose.bones["upper_arm.R"].rotation_quaternion', 0)], [[7, 0.9]])
    # the scene's settings, as the earlier build stored them
    s = scene.baton
    assert (s.armature, s.engine, s.seed, s.density, s.source) == (arm, "rules", 3, "reduced", "STRIP")

    def rig_state():
        """The rig's own custom properties (not the add-ons' registered ones, which 4.5 lists too)."""
        def own(owner):
            return {k: v for k, v in owner.items() if k not in owner.bl_rna.properties}
        return own(arm), {pb.name: (pb.rotation_mode, own(pb)) for pb in arm.pose.bones}

    rig_before = rig_state()

    # Re-conduct: a take of the current version, beside the earlier one, on the same armature
    assert bpy.ops.baton.reconduct() == {"FINISHED"}, addon.operators.last_error
    new = arm.animation_data.action
    assert new not in (old, hand) and takes.takes_of(arm) == [old, new] and takes.original(arm) == hand
    info, new_name = takes.info(new), new.name
    assert {"settings", "lead_ms", "bone_map"} <= info.keys() and isinstance(info["settings"], dict)
    assert info["rig"] == record["rig"] and info["strip"] == "music" and info["density"] == "reduced"
    assert info["seed"] != 3 and s.seed == 3 and info["first_frame"] == 1 and info["fps"] == 24

    # deleting it: the earlier take shows again, keys, hand-keyed action and rig as they were
    assert bpy.ops.baton.delete_take() == {"FINISHED"}
    assert arm.animation_data.action == old and takes.takes_of(arm) == [old] and new_name not in bpy.data.actions
    assert {k: v.tolist() for k, v in keys_of(old).items()} == {k: v.tolist() for k, v in old_keys.items()}
    assert {k: v.tolist() for k, v in keys_of(hand).items()} == hand_keys and rig_state() == rig_before
    arm.baton_take = bpy.data.actions.find(hand.name)  # and back to the animator's own action
    assert arm.animation_data.action == hand and rig_state() == rig_before

    # a lead that build stored in frames (its fixture kept the default, 0) opens as the same lead in ms
    s["lead_frames"] = 6
    s.property_unset("lead_ms")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "lead.blend"), copy=True)
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "lead.blend"))
    s = bpy.context.scene.baton
    assert s.lead_ms == pytest.approx(250.0) and "lead_frames" not in s  # 6 frames at 24 fps


EXIT_SCRIPT = """
import importlib, sys, tempfile
import bpy
prefs = bpy.context.preferences
prefs.use_preferences_save = False
prefs.extensions.repos.new(name="exit test", module="baton_exit", custom_directory=tempfile.mkdtemp())
bpy.ops.extensions.package_install_files(repo="baton_exit", filepath=sys.argv[1], enable_on_install=False)
bpy.ops.preferences.addon_enable(module="bl_ext.baton_exit.baton")
life = importlib.import_module("bl_ext.baton_exit.baton.backend_life")
life.manager.client(importlib.import_module("bl_ext.baton_exit.baton.preferences").backend_settings())
print("ENGINE", life.manager.backend.process.pid, flush=True)
"""  # and quits, disabling nothing itself


def test_the_engine_stops_when_blender_quits(addon_zip):
    run = __import__("subprocess").run([sys.executable, "-c", EXIT_SCRIPT, str(addon_zip)], capture_output=True,
                                       text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    pid = int(run.stdout.split("ENGINE ")[1].split()[0])
    assert not Path(f"/proc/{pid}").exists()
