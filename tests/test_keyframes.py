"""Keyframes: one new slotted action per take, written in bulk; existing actions and NLA survive;
any scene frame rate and start frame lands on the music's time; reduced density keeps the beats and
stays within its error bound; bad input is refused with a one-line reason."""

import bpy
import numpy as np
import pytest
import soundfile as sf
from bpy_extras import anim_utils

from baton_core import skeleton as sk
from baton_core.naming import take_action_name
from baton_rigs import retarget as rt
from baton_rigs.errors import RigError
from baton_rigs.keyframes import apply_take, frame_offset_for_strip, scene_frames
from baton_rigs.rotations import angle_between, angle_between_quats
from tools.rig_builder import build_rig


@pytest.fixture
def rig():
    """A fresh UE4-named armature (cheap to build) in its own collection; the scene's clock is restored."""
    scene = bpy.context.scene
    keep = scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_current
    coll = bpy.data.collections.new("keyframes test")
    scene.collection.children.link(coll)
    obj = build_rig("ue4", coll)
    yield obj
    bpy.data.objects.remove(obj)
    bpy.data.collections.remove(coll)
    scene.render.fps, scene.render.fps_base, scene.frame_start = keep[:3]
    scene.frame_set(keep[3])


def _bag(action):
    return anim_utils.action_get_channelbag_for_slot(action, action.slots[0])


def _quat_curves(bag, bone):
    path = f'pose.bones["{bone}"].rotation_quaternion'
    return [bag.fcurves.find(path, index=i) for i in range(4)]


def test_a_take_becomes_one_new_slotted_action(rig, rules_take):
    t = rules_take
    report = apply_take(rig, t["keypoints_3d"], t["fps"], t["start"], t["beats"], name="demo · seed 2",
                        scene_fps=30.0, frame_offset=1)
    action = bpy.data.actions[report.action]
    assert report.action == "demo · seed 2" and rig.animation_data.action == action
    assert rig.animation_data.action_slot == action.slots[0] and action.slots[0].target_id_type == "OBJECT"
    bag = _bag(action)
    n = len(t["keypoints_3d"])
    assert (report.frame_start, report.frame_end) == (1, n)
    rotation_curves = [fc for fc in bag.fcurves if fc.data_path.endswith("rotation_quaternion")]
    assert len(rotation_curves) == 4 * len(report.bones)
    assert all(len(fc.keyframe_points) == n for fc in rotation_curves)
    assert {fc.group.name for fc in rotation_curves} == set(report.bones.values())
    assert report.keys == report.keys_every_frame == sum(len(fc.keyframe_points) for fc in bag.fcurves)
    # the curves hold the retargeted rotations, on the hemisphere-continuous branch
    from baton_rigs.armature import bone_map_for, rig_rest
    expected = rt.retarget(t["keypoints_3d"], rig_rest(rig, bone_map_for(rig))).quats["forearm_r"]
    co = np.zeros(2 * n, np.float32)
    got = []
    for fc in _quat_curves(bag, "lowerarm_r"):
        fc.keyframe_points.foreach_get("co", co)
        got.append(co[1::2].copy())
    got = np.array(got).T
    assert np.abs(got - expected).max() < 1e-6
    selected = np.ones(n, bool)
    rotation_curves[0].keyframe_points.foreach_get("select_control_point", selected)
    assert not selected.any()  # a whole take left selected would be a trap when editing by hand
    assert np.all(np.sum(got[1:] * got[:-1], axis=1) > 0)
    assert report.max_error_deg < 0.01 and report.fk_evaluated_mean_deg < 0.1
    assert take_action_name(t["take"].provenance) == "demo · seed 2"


def test_existing_actions_and_nla_survive(rig, rules_take):
    t = rules_take
    ad = rig.animation_data_create()
    kept = bpy.data.actions.new("walk cycle")
    slot = kept.slots.new(id_type="OBJECT", name=rig.name)
    fc = anim_utils.action_ensure_channelbag_for_slot(kept, slot).fcurves.new('pose.bones["head"].rotation_quaternion', index=1)
    fc.keyframe_points.add(3)
    fc.keyframe_points.foreach_set("co", [1, 0.0, 10, 0.3, 20, 0.0])
    in_nla = bpy.data.actions.new("wave")
    nla_slot = in_nla.slots.new(id_type="OBJECT", name=rig.name)
    anim_utils.action_ensure_channelbag_for_slot(in_nla, nla_slot).fcurves.new("location", index=2).keyframe_points.insert(5, 1.0)
    track = ad.nla_tracks.new()
    track.name = "greeting"
    strip = track.strips.new("wave", 5, in_nla)
    ad.action, ad.action_slot = kept, slot
    kept_users = kept.users

    report = apply_take(rig, t["keypoints_3d"], t["fps"], 0.0, t["beats"], scene_fps=30.0, frame_offset=1)
    assert report.kept_action == "walk cycle" and kept.use_fake_user
    assert [tr.name for tr in ad.nla_tracks] == ["greeting"] and list(track.strips) == [strip]
    assert strip.action == in_nla and strip.frame_start == 5
    co = np.zeros(6, np.float32)
    fc.keyframe_points.foreach_get("co", co)
    assert co.tolist() == pytest.approx([1, 0.0, 10, 0.3, 20, 0.0])
    assert kept.users == kept_users  # the fake user replaces the animation data's
    assert ad.action.name == report.action

    # pushed to the NLA: a new track on top, and the active action is left alone
    ad.action, ad.action_slot = kept, slot
    pushed = apply_take(rig, t["keypoints_3d"], t["fps"], 0.0, t["beats"], scene_fps=30.0, frame_offset=101,
                        push_nla=True, name="take two")
    assert ad.action == kept and pushed.kept_action is None
    assert [tr.name for tr in ad.nla_tracks] == ["greeting", "take two"]
    new_strip = ad.nla_tracks["take two"].strips[0]
    assert new_strip.action.name == "take two" and new_strip.frame_start == 101
    assert new_strip.action_slot == bpy.data.actions["take two"].slots[0]
    assert {"walk cycle", "wave", report.action, "take two"} <= set(bpy.data.actions.keys())


def _linear_take(seconds: float, fps: float) -> np.ndarray:
    """A still conductor whose right wrist slides along a straight line at constant speed: wrist
    positions are linear in time, so a sample at any instant is exact."""
    base = hard_still()
    n = int(seconds * fps) + 1
    kp = np.repeat(base[None], n, axis=0)
    kp[:, sk.R_WRIST] += np.outer(np.arange(n) / fps, WRIST_VELOCITY)
    return kp


WRIST_VELOCITY = np.array([0.05, -0.02, 0.08])  # metres per second


def hard_still() -> np.ndarray:
    from rig_takes import hard_take
    return hard_take(0.1)[0]


@pytest.mark.parametrize("scene_fps, fps_base", [(24, 1.0), (25, 1.0), (30, 1.001), (50, 1.0), (60, 1.0)])
@pytest.mark.parametrize("offset", [1.0, 37.5])
def test_scene_frames_land_on_the_musics_time(rig, scene_fps, fps_base, offset):
    """A key at scene frame f shows the take at music time (f − offset) / scene fps exactly."""
    scene = rig.users_scene[0]
    scene.render.fps, scene.render.fps_base = scene_fps, fps_base
    fps_scene = scene_fps / fps_base
    kp = _linear_take(4.0, 30.0)
    report = apply_take(rig, kp, 30.0, 0.0, (), frame_offset=offset, verify_frames=0)
    assert report.scene_fps == pytest.approx(fps_scene)
    frames = np.arange(report.frame_start, report.frame_end + 1)
    assert frames[0] == np.ceil(offset) and (frames[-1] - offset) / fps_scene <= 4.0 + 1e-9
    assert (frames[-1] + 1 - offset) / fps_scene > 4.0
    pb = rig.pose.bones
    for f in frames[:: max(1, len(frames) // 7)]:
        scene.frame_set(int(f))
        time = (f - offset) / fps_scene
        want = kp[0, sk.R_WRIST] - kp[0, sk.R_ELBOW] + WRIST_VELOCITY * time
        got = np.array(pb["hand_r"].head) - np.array(pb["lowerarm_r"].head)
        assert np.degrees(angle_between(got, want)) < 0.01, (f, time)


def test_the_default_offset_starts_the_audio_file_at_the_scenes_first_frame(rig, rules_take):
    scene = rig.users_scene[0]
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start = 10
    report = apply_take(rig, rules_take["keypoints_3d"][:60], 30.0, 2.5, verify_frames=0)
    assert report.frame_offset == 10 + 2.5 * 24 and report.frame_start == 70


def test_a_sound_strips_offset(rig, tmp_path):
    import soundfile as sf
    wav = tmp_path / "tone.wav"
    sf.write(wav, np.zeros(22050 * 6, np.float32), 22050)
    scene = rig.users_scene[0]
    seq = scene.sequence_editor_create()
    strip = seq.strips.new_sound("music", str(wav), 1, 48)
    strip.sound_offset = 1.5  # the strip starts playing 1.5 s into the file
    # file time 4.0 s is 2.5 s after the strip's start: frame 48 + 2.5 · 24
    assert frame_offset_for_strip(strip, 4.0, 24.0) == pytest.approx(48 + 2.5 * 24)


def test_reduced_density_keeps_beats_and_its_error_bound(rig, rules_take):
    t = rules_take
    report = apply_take(rig, t["keypoints_3d"], t["fps"], 0.0, t["beats"], scene_fps=30.0, frame_offset=1,
                        density="reduced", tolerance_deg=1.0)
    assert report.keys < 0.25 * report.keys_every_frame and report.max_error_deg <= 1.0
    bag = _bag(bpy.data.actions[report.action])
    from baton_rigs.armature import bone_map_for, rig_rest
    truth = rt.retarget(t["keypoints_3d"], rig_rest(rig, bone_map_for(rig))).quats
    frames = np.arange(1, len(t["keypoints_3d"]) + 1)
    beat_frames = set(np.round(1 + t["beats"] * 30).astype(int).tolist()) & set(frames.tolist())
    for slot, bone in report.bones.items():
        curves = _quat_curves(bag, bone)
        q = np.array([[fc.evaluate(float(f)) for fc in curves] for f in frames])
        err = np.degrees(angle_between_quats(q, truth[slot]))  # independently of apply_take's own check
        assert err.max() <= 1.0 + 1e-3, (slot, err.max())
        keyed = {int(round(k.co[0])) for k in curves[0].keyframe_points}
        if np.degrees(angle_between_quats(truth[slot], truth[slot][:1])).max() > 1.0:  # a moving bone
            assert beat_frames <= keyed, slot


def test_animator_density_on_a_five_minute_take(rig, tmp_path):
    """The add-on's default: on average at most 3 keys per moving channel per beat, every driven
    bone within 2° of the take as Blender evaluates its curves (checked here, not by apply_take)."""
    from backend.demo_music import demo_piece
    from backend.engine import generate_take
    piece = demo_piece()
    wav = tmp_path / "five.wav"
    sf.write(wav, np.tile(piece.samples, 9)[: int(300 * piece.sr)], piece.sr)
    take = generate_take(wav, engine="rules")
    assert take.duration >= 299
    report = apply_take(rig, take.keypoints_3d, take.fps, 0.0, take.beats, scene_fps=30.0, frame_offset=1,
                        density="animator")
    bag = _bag(bpy.data.actions[report.action])
    from baton_rigs.armature import bone_map_for, rig_rest
    truth = rt.retarget(take.keypoints_3d.astype(np.float64), rig_rest(rig, bone_map_for(rig))).quats
    frames = np.arange(1, take.n_frames + 1)
    moving = [slot for slot in report.bones if np.degrees(angle_between_quats(truth[slot], truth[slot][:1])).max() > 2]
    per_beat, worst = [], 0.0
    for slot in moving:
        curves = _quat_curves(bag, report.bones[slot])
        per_beat += [len(fc.keyframe_points) / len(take.beats) for fc in curves]
        q = np.stack([np.array([fc.evaluate(float(f)) for f in frames]) for fc in curves], axis=1)
        worst = max(worst, float(np.degrees(angle_between_quats(q, truth[slot])).max()))
    assert len(moving) >= 6 and np.mean(per_beat) <= 3.0 and worst <= 2.0 + 1e-3, (np.mean(per_beat), worst)
    assert report.keys <= 0.15 * report.keys_every_frame
    print(f"animator density, {take.duration:.0f} s, {len(take.beats)} beats: {np.mean(per_beat):.2f} keys per moving "
          f"channel per beat, {report.keys / report.keys_every_frame:.1%} of every-frame keys, worst {worst:.2f}°")


def test_rigify_settings_are_keyed_and_the_rigs_own_are_left_alone(blender_rigs, rules_take):
    obj = blender_rigs["rigify_fk"]
    obj.pose.bones["upper_arm_parent.R"]["IK_FK"] = 0.0  # the animator's own choice: IK
    report = apply_take(obj, rules_take["keypoints_3d"][:90], 30.0, 0.0, scene_fps=30.0, frame_offset=1)
    assert "upper_arm_parent.L['IK_FK'] = 1.0" in report.settings and obj.pose.bones["upper_arm_parent.R"]["IK_FK"] == 0.0
    assert {"bone": "upper_arm_parent.R", "property": "IK_FK", "value": 0.0} in report.settings_before
    assert report.fk_evaluated_max_deg is not None and report.fk_evaluated_mean_deg < 3.0  # played, the take is FK
    bag = _bag(bpy.data.actions[report.action])
    assert bag.fcurves.find('pose.bones["upper_arm_parent.L"]["IK_FK"]').evaluate(50) == 1.0
    assert bag.fcurves.find('pose.bones["shoulder.L"].rotation_euler', index=0) is not None  # YXZ bones keep their mode
    assert obj.pose.bones["shoulder.L"].rotation_mode == "YXZ"


def test_bad_input_gives_one_line_errors(rig, rules_take):
    kp = rules_take["keypoints_3d"][:30]
    mesh = bpy.data.objects.new("a mesh", bpy.data.meshes.new("m"))
    n_actions = len(bpy.data.actions)
    cases = [((mesh, kp, 30.0), {}, "a take is applied to an armature object, not mesh 'a mesh'"),
             ((None, kp, 30.0), {}, "not nothing"),
             ((rig, kp[:, :, :2], 30.0), {}, r"keypoints_3d must have shape \(T, 13, 3\)"),
             ((rig, kp, 0.0), {}, "fps must be a positive number"),
             ((rig, kp, 30.0), {"density": "sparse"}, "density must be one of animator, reduced, all"),
             ((rig, kp, 30.0), {"scene_fps": -1.0}, "scene_fps must be a positive number"),
             ((rig, kp, 30.0, -2.0), {}, "start must be a non-negative number of seconds"),
             ((rig, kp, 30.0), {"tolerance_deg": "1"}, "tolerance_deg must be a positive angle"),
             ((rig, kp, 30.0, 0.0, ["x"]), {}, "beats must be a sequence of times"),
             ((rig, kp, 30.0), {"bone_map": {"hips": "nope"}}, r"no bone for hips \(nope\)")]
    for args, kw, message in cases:
        with pytest.raises(RigError, match=message) as e:
            apply_take(*args, **kw)
        assert "\n" not in str(e.value)
    assert len(bpy.data.actions) == n_actions  # nothing was made
    ad = rig.animation_data_create()
    track = ad.nla_tracks.new()
    strip = track.strips.new("held", 1, bpy.data.actions.new("held"))
    ad.nla_tracks.active, strip.select = track, True
    ad.use_tweak_mode = True
    assert ad.use_tweak_mode
    n_actions = len(bpy.data.actions)
    try:
        with pytest.raises(RigError, match="NLA tweak mode"):
            apply_take(rig, kp, 30.0)
    finally:
        rig.animation_data.use_tweak_mode = False
    assert len(bpy.data.actions) == n_actions  # nothing was made
    bpy.data.objects.remove(mesh)
    from tools.rig_builder import edit_mode
    with edit_mode(rig):
        with pytest.raises(RigError, match="is in edit mode"):
            apply_take(rig, kp, 30.0)


def test_scene_frames_cover_the_take():
    frames, u = scene_frames(31, 30.0, 24.0, 0.5)
    assert frames[0] == 1 and frames[-1] == 24 and np.allclose(u, (frames - 0.5) * 30 / 24)
    frames, u = scene_frames(1, 30.0, 24.0, 3.2)  # a one-frame take still gets a key
    assert frames.tolist() == [3] and u.tolist() == [0.0]
