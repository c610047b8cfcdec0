"""A take becomes keyframes: one new action per take, written in bulk, on any armature.

`apply_take` is the entry point the add-on and batch rendering use. It maps the take onto the
scene's clock (any frame rate, any start frame — keys sit on whole scene frames whose values are
the take sampled at exactly those frames' music times), retargets it (retarget.py), writes the
rotations through the slotted-action API (Blender 4.4+/5.x: action → slot → channelbag → F-curves,
`keyframe_points.add` + `foreach_set`, ~5 M keys/s where `keyframe_insert` manages ~0.1 M), and
either makes the new action active or pushes it onto a new NLA track. Nothing else is touched:
other actions and NLA tracks stay as they were, and an action that was active keeps a fake user so
it survives saving.

Key density: 'all' keys every scene frame; 'reduced' keeps the frames that matter for hand editing —
the beats and the wrists' turning points (ictus and rebound tops) — plus whatever each bone needs for
its Bézier curves to stay within `tolerance_deg` of the full take, checked by evaluating the written
F-curves the way Blender will; 'animator' (the add-on's default) keys only the beats and then the
frames each curve needs to stay within 2° (the arms within `tolerance_deg` of the take around each
beat, so that every ictus stays on its beat's frame), which are its own extremes and turns — the
fewest keys a hand can move.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from .armature import bone_map_for, evaluated_errors, intermediate_bones, require_armature, rig_rest
from .errors import RigError
from baton_core.skeleton import L_WRIST, R_WRIST

from .retarget import check_keypoints, retarget
from .rotations import (angle_between_quats, continuous_euler, euler_to_mat, mat_to_euler, mat_to_quat,
                        quat_to_mat, unit)

DENSITIES = ("animator", "reduced", "all")
ANIMATOR_TOLERANCE_DEG = 2.0  # the animator density's bound: sparse keys a hand can move, the pose within 2°
BEAT_SPAN = 2  # frames each side of a beat where the animator density holds the arms to the take's tolerance
KEY_PASSES = 40  # refinement passes of the reduced density (each adds the worst frame of every gap)


@dataclass
class TakeReport:
    """What apply_take did. Angles in degrees, times in seconds, frames are scene frames."""
    action: str
    slot: str
    convention: str
    matched: str                          # what the bone map found, e.g. "Mixamo: 16 of 16 slots matched"
    bones: dict[str, str]                 # slot → bone keyed
    held_at_rest: list[str]               # unmapped bones between mapped ones, keyed once at rest
    frame_start: int
    frame_end: int
    scene_fps: float
    frame_offset: float                   # scene frame at which the take's frame 0 is heard
    density: str
    keys: int                             # keyframes written (rotation and location channels)
    keys_every_frame: int                 # what 'all' would write
    max_error_deg: float                  # worst angle between a keyed bone's curve and the take
    fk_mean_deg: float                    # forward-kinematics check, numpy, every frame
    fk_max_deg: float
    fk_evaluated_mean_deg: float | None   # the same check as Blender evaluates the rig (sampled)
    fk_evaluated_max_deg: float | None
    fk_segments_deg: dict[str, float]     # mean per segment (evaluated when available)
    nla_track: str | None
    kept_action: str | None               # the previously active action, given a fake user
    settings: list[str]                   # rig settings keyed in the take
    settings_before: list[dict]           # their values on the rig, left as they were (restore_settings)
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        fk = self.fk_evaluated_mean_deg if self.fk_evaluated_mean_deg is not None else self.fk_mean_deg
        return (f"{self.action}: {len(self.bones)} bones ({self.convention}), frames {self.frame_start}–"
                f"{self.frame_end}, {self.keys} keys ({self.density}; every frame would be "
                f"{self.keys_every_frame}), max error {self.max_error_deg:.2f}°, FK check {fk:.2f}° mean")


# -- time -----------------------------------------------------------------------------------------
def scene_frames(n_frames: int, fps: float, scene_fps: float, frame_offset: float) -> tuple[np.ndarray, np.ndarray]:
    """The whole scene frames the take covers and, for each, its position in take frames: take
    frame i is heard at scene frame frame_offset + i·scene_fps/fps."""
    last = frame_offset + (n_frames - 1) * scene_fps / fps
    first_f, last_f = math.ceil(frame_offset - 1e-6), math.floor(last + 1e-6)
    frames = np.arange(first_f, last_f + 1) if last_f >= first_f else np.array([round(frame_offset)])
    u = np.clip((frames - frame_offset) * fps / scene_fps, 0.0, n_frames - 1)
    return frames.astype(np.int64), u


def sample(kp: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Keypoints at fractional take frames u, linearly between the two nearest."""
    i0 = np.floor(u).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(kp) - 1)
    w = (u - i0)[:, None, None]
    return kp[i0] * (1 - w) + kp[i1] * w


def frame_offset_for_strip(strip, take_start: float, scene_fps: float) -> float:
    """The scene frame at which file time `take_start` (a take's `start`) plays in a sound strip:
    the strip shows file time s at frame_start + (s − sound_offset)·fps."""
    return float(strip.frame_start) + (float(take_start) - float(strip.sound_offset)) * float(scene_fps)


def scene_fps_of(scene) -> float:
    return scene.render.fps / scene.render.fps_base


# -- channels -------------------------------------------------------------------------------------
def _channelbag(action, slot):
    """The slot's channelbag on the action's (new) keyframe layer: bpy_extras' helper on 5.x, the
    same steps by hand on 4.4/4.5, which lack it."""
    from bpy_extras import anim_utils
    ensure = getattr(anim_utils, "action_ensure_channelbag_for_slot", None)
    if ensure is not None:
        return ensure(action, slot)
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True)


def _new_fcurve(bag, path: str, index: int, group: str):
    """An F-curve in `group` (the bone's name, as Blender groups keys it inserts itself); 4.x's
    channelbag.fcurves.new takes no group, so the group is made and assigned there."""
    try:
        return bag.fcurves.new(path, index=index, group_name=group)
    except TypeError:
        fc = bag.fcurves.new(path, index=index)
        fc.group = bag.groups.get(group) or bag.groups.new(group)
        return fc


@dataclass
class _Channel:
    """One bone's rotation (or the hips' location) in the bone's own mode, per scene frame."""
    slot: str
    bone: str
    prop: str               # rotation_quaternion | rotation_euler | rotation_axis_angle | location
    values: np.ndarray      # (F, C)
    quats: np.ndarray | None  # (F, 4) the true rotation, for error measurement
    mode: str


def _rotation_channel(slot: str, bone: str, mode: str, q: np.ndarray) -> _Channel:
    if mode == "QUATERNION":
        return _Channel(slot, bone, "rotation_quaternion", q, q, mode)
    if mode == "AXIS_ANGLE":
        half = np.arccos(np.clip(q[:, 0], -1.0, 1.0))
        axis = np.where((np.sin(half) > 1e-9)[:, None], q[:, 1:] / np.maximum(np.sin(half), 1e-12)[:, None],
                        np.array([0.0, 1.0, 0.0]))
        return _Channel(slot, bone, "rotation_axis_angle", np.column_stack([2 * half, axis]), q, mode)
    e = continuous_euler(mat_to_euler(quat_to_mat(q), mode))
    return _Channel(slot, bone, "rotation_euler", e, q, mode)


def _to_quats(values: np.ndarray, mode: str) -> np.ndarray:
    if mode == "QUATERNION":
        return unit(values)
    if mode == "AXIS_ANGLE":
        half = values[:, 0] / 2
        return np.column_stack([np.cos(half), unit(values[:, 1:]) * np.sin(half)[:, None]])
    return mat_to_quat(euler_to_mat(values, mode))


def _data_path(bone: str, prop: str) -> str:
    import bpy
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'


def _write(channelbag, ch: _Channel, frames: np.ndarray, keep: np.ndarray) -> list:
    """(Re)write a channel's F-curves with keys at frames[keep]; returns the F-curves."""
    path = _data_path(ch.bone, ch.prop)
    curves = []
    co = np.empty((len(keep), 2), dtype=np.float32)
    unselected = np.zeros(len(keep), dtype=bool)
    co[:, 0] = frames[keep]
    for i in range(ch.values.shape[1]):
        fc = channelbag.fcurves.find(path, index=i)
        if fc is not None:
            channelbag.fcurves.remove(fc)
        fc = _new_fcurve(channelbag, path, i, ch.bone)
        co[:, 1] = ch.values[keep, i]
        points = fc.keyframe_points
        points.add(len(keep))
        points.foreach_set("co", co.ravel())
        for flag in ("select_control_point", "select_left_handle", "select_right_handle"):
            points.foreach_set(flag, unselected[: len(keep)])  # a whole take selected is a trap in the Graph Editor
        fc.update()
        curves.append(fc)
    return curves


def _float32_error(ch: _Channel) -> float:
    """The angle lost by storing the values as float32 (the error of keys on every frame)."""
    stored = ch.values.astype(np.float32).astype(np.float64)
    return float(np.degrees(angle_between_quats(ch.quats, _to_quats(stored, ch.mode))).max())


def _evaluated_error(curves, ch: _Channel, frames: np.ndarray) -> np.ndarray:
    vals = np.array([[fc.evaluate(float(f)) for fc in curves] for f in frames])
    return np.degrees(angle_between_quats(ch.quats, _to_quats(vals, ch.mode)))


def _refine(keep: np.ndarray, err: np.ndarray, tol: float) -> np.ndarray:
    """Add, in every gap between kept frames, the worst frame if it is over `tol`."""
    seg = np.searchsorted(keep, np.arange(len(err)), side="right") - 1
    worst = np.maximum.reduceat(err, keep)
    over = (err > tol) & (err >= worst[seg])
    _, first = np.unique(seg[over], return_index=True)
    return np.union1d(keep, np.flatnonzero(over)[first])


def _moves(ch: _Channel, tol: float) -> bool:
    """Whether the bone ever turns more than tol away from its first pose."""
    return bool(np.degrees(angle_between_quats(ch.quats, ch.quats[:1])).max() > tol)


def _turning_points(z: np.ndarray) -> np.ndarray:
    dz = np.diff(z)
    return np.flatnonzero(dz[:-1] * dz[1:] < 0) + 1


# -- the entry point ------------------------------------------------------------------------------
def _real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def apply_take(armature_obj, keypoints_3d, fps: float, start: float = 0.0, beats=(), *,
               scene_fps: float | None = None, frame_offset: float | None = None, name: str | None = None,
               density: str = "all", tolerance_deg: float = 1.0, bone_map=None, root_motion: bool = False,
               push_nla: bool = False, verify_frames: int = 8) -> TakeReport:
    """Retarget a take onto `armature_obj` and write it as keyframes in a new action.

    armature_obj   an armature object (in a scene, for the evaluated check).
    keypoints_3d   (T, 13, 3) float, the take's keypoints (metres, Z up, facing −Y; baton_core/take.py).
    fps            the take's frames per second; `start` its frame 0's time in the audio file
                   (seconds); `beats` beat times in seconds from frame 0 (used by density='reduced').
    scene_fps      the scene's frames per second (default: the armature's scene, fps / fps_base).
    frame_offset   the scene frame at which the take's frame 0 is heard, may be fractional (default:
                   the scene's frame_start + start·scene_fps, i.e. the audio file starts at frame_start;
                   for a sound strip use frame_offset_for_strip).
    name           the new action's name (default "Baton take"; Blender adds .001 … if taken).
    density        'all' (a key on every scene frame) or 'reduced' (beats, turning points, and what
                   keeps every keyed bone within tolerance_deg of the full take).
    bone_map       None (detect the rig's convention), a convention's name, a dict slot → bone name,
                   or a path to a JSON bone map (see bonemap.py).
    root_motion    also key the hips' location (the take's hip sway, scaled to the rig); off by default.
    push_nla       put the action on a new NLA track instead of making it the active action.
    verify_frames  how many frames to check as Blender evaluates the rig (0: skip).

    Returns a TakeReport; raises RigError with a one-line reason for anything it cannot use.
    """
    t0 = time.perf_counter()
    kp, beats = _checked_take(armature_obj, keypoints_3d, fps, start, beats, density, tolerance_deg)
    scene = armature_obj.users_scene[0] if armature_obj.users_scene else None
    scene_fps, frame_offset = _checked_timing(armature_obj, scene, start, scene_fps, frame_offset)

    bm = bone_map_for(armature_obj, bone_map)
    rig = rig_rest(armature_obj, bm)
    frames, u = scene_frames(len(kp), fps, scene_fps, frame_offset)
    kp_scene = sample(kp, u)
    result = retarget(kp_scene, rig, root_motion=root_motion)
    t_retarget = time.perf_counter() - t0

    # ---- the keys: one channel per mapped bone (and the hips' location), the bones between held at rest
    channels = [_rotation_channel(slot, bm.bones[slot], armature_obj.pose.bones[bm.bones[slot]].rotation_mode, q)
                for slot, q in result.quats.items()]
    if result.location is not None:
        channels.append(_Channel("hips", bm.bones["hips"], "location", result.location, None, "LOCATION"))
    held = intermediate_bones(armature_obj, bm, rig)
    rest_q = np.tile([1.0, 0.0, 0.0, 0.0], (len(frames), 1))
    rests = [_rotation_channel("", b, armature_obj.pose.bones[b].rotation_mode, rest_q) for b in held]

    import bpy
    action = bpy.data.actions.new(name or "Baton take")
    slot = action.slots.new(id_type="OBJECT", name=armature_obj.name)
    bag = _channelbag(action, slot)
    warnings: list[str] = []
    if density == "all":
        max_err = _write_every_frame(bag, channels, frames)
    else:
        beat_idx = np.round(frame_offset + beats * scene_fps).astype(np.int64) - frames[0]
        tol = max(tolerance_deg, ANIMATOR_TOLERANCE_DEG) if density == "animator" else tolerance_deg
        max_err = _write_reduced(bag, channels, frames, kp_scene, beat_idx, scene_fps, tol,
                                 turning_points=density == "reduced",
                                 beat_tolerance_deg=tolerance_deg if density == "animator" else None)
    for ch in rests:  # one key at rest: constant curves
        _write(bag, ch, frames, np.array([0]))
    settings, settings_before = _key_settings(armature_obj, bm, bag, frames[0], warnings)
    n_keys = sum(len(fc.keyframe_points) for fc in bag.fcurves)
    n_every = len(frames) * sum(ch.values.shape[1] for ch in channels) + len(settings) + sum(
        ch.values.shape[1] for ch in rests)
    t_write = time.perf_counter() - t0 - t_retarget

    # ---- where it goes, and how well the rig follows it
    kept, track_name = _assign(armature_obj, action, slot, frames[0], push_nla)
    fk_mean, fk_max = result.fk_summary()
    segments = {k: float(v.mean()) for k, v in result.fk_deg.items()}
    ev_mean = ev_max = None
    if verify_frames > 0:
        if scene is None:
            warnings.append("not in a scene: the evaluated FK check was skipped")
        else:
            ev_mean, ev_max, segments = _evaluated_check(armature_obj, bm, rig, kp_scene, frames, verify_frames,
                                                         warnings)
    restore_settings(armature_obj, settings_before)  # evaluating the take wrote its keyed values onto the rig
    return TakeReport(action=action.name, slot=slot.identifier, convention=bm.convention, matched=bm.summary(), bones=dict(
        (s, bm.bones[s]) for s in result.quats), held_at_rest=held, frame_start=int(frames[0]), frame_end=int(frames[-1]),
        scene_fps=float(scene_fps), frame_offset=float(frame_offset), density=density, keys=n_keys,
        keys_every_frame=n_every, max_error_deg=max_err, fk_mean_deg=fk_mean, fk_max_deg=fk_max,
        fk_evaluated_mean_deg=ev_mean, fk_evaluated_max_deg=ev_max, fk_segments_deg=segments,
        nla_track=track_name, kept_action=kept, settings=settings, settings_before=settings_before,
        timings={"retarget_s": t_retarget, "write_s": t_write, "total_s": time.perf_counter() - t0},
        warnings=warnings)


def _checked_take(armature_obj, keypoints_3d, fps, start, beats, density: str,
                  tolerance_deg) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints, beat times) once every argument about the take is usable, else a RigError."""
    require_armature(armature_obj)
    kp = check_keypoints(keypoints_3d)
    if not (_real(fps) and fps > 0):
        raise RigError(f"fps must be a positive number, got {fps!r}")
    if not (_real(start) and start >= 0):
        raise RigError(f"start must be a non-negative number of seconds, got {start!r}")
    try:
        beats = np.zeros(0) if beats is None else np.asarray(beats, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RigError("beats must be a sequence of times in seconds") from None
    if not np.all(np.isfinite(beats)):
        raise RigError("beats must be finite times in seconds")
    if density not in DENSITIES:
        raise RigError(f"density must be one of {', '.join(DENSITIES)}, not {density!r}")
    if not (_real(tolerance_deg) and tolerance_deg > 0):
        raise RigError(f"tolerance_deg must be a positive angle, got {tolerance_deg!r}")
    return kp, beats


def _checked_timing(armature_obj, scene, start: float, scene_fps, frame_offset) -> tuple[float, float]:
    """(scene fps, frame at which the take's frame 0 is heard), from the scene where not given;
    a RigError when neither says, or when the armature cannot take keys now."""
    if scene_fps is None:
        if scene is None:
            raise RigError(f"armature {armature_obj.name!r} is in no scene: pass scene_fps and frame_offset")
        scene_fps = scene_fps_of(scene)
    if not (_real(scene_fps) and scene_fps > 0):
        raise RigError(f"scene_fps must be a positive number, got {scene_fps!r}")
    if frame_offset is None:
        if scene is None:
            raise RigError(f"armature {armature_obj.name!r} is in no scene: pass frame_offset")
        frame_offset = scene.frame_start + start * scene_fps
    if not _real(frame_offset):
        raise RigError(f"frame_offset must be a finite frame number, got {frame_offset!r}")
    if armature_obj.mode == "EDIT":
        raise RigError(f"armature {armature_obj.name!r} is in edit mode; leave it before applying a take")
    ad = armature_obj.animation_data
    if ad is not None and ad.use_tweak_mode:
        raise RigError(f"armature {armature_obj.name!r} is in NLA tweak mode; leave it before applying a take")
    return scene_fps, frame_offset


def _write_every_frame(bag, channels: list[_Channel], frames: np.ndarray) -> float:
    """density='all': a key on every frame; returns the worst angle float32 storage costs."""
    every = np.arange(len(frames))
    max_err = 0.0
    for ch in channels:
        _write(bag, ch, frames, every)
        if ch.quats is not None:
            max_err = max(max_err, _float32_error(ch))
    return max_err


def _write_reduced(bag, channels: list[_Channel], frames: np.ndarray, kp_scene: np.ndarray, beat_idx: np.ndarray,
                   scene_fps: float, tolerance_deg: float, turning_points: bool = True,
                   beat_tolerance_deg: float | None = None) -> float:
    """density='reduced': keys on the beats and the arms' turning points, then wherever the curve
    strays more than `tolerance_deg` from the take; 'animator' (turning_points False): keys on the
    beats, then only the frames each curve needs (its own extremes and turns, found as its worst
    errors), the arms held to `beat_tolerance_deg` within BEAT_SPAN frames of each beat: where a
    stroke bottoms out slowly, the looser bound let the curve between two keys dip below the beat's
    own key, and the ictus moved two frames off its beat; returns the worst angle left."""
    F = len(frames)
    every = np.arange(F)
    max_err = 0.0
    arm_cand = np.union1d(_turning_points(kp_scene[:, R_WRIST, 2]), _turning_points(kp_scene[:, L_WRIST, 2]))
    beat_idx = beat_idx[(beat_idx >= 0) & (beat_idx < F)]
    near_beat = np.zeros(F, bool)
    near_beat[np.clip((beat_idx[:, None] + np.arange(-BEAT_SPAN, BEAT_SPAN + 1)).ravel(), 0, F - 1)] = True
    for ch in channels:
        if ch.quats is None:  # root motion: the beats and a key every sixth of a second
            _write(bag, ch, frames, np.union1d(np.union1d(beat_idx, [0, F - 1]),
                                              every[:: max(1, int(round(scene_fps / 6)))]).astype(np.int64))
            continue
        arm = ch.slot.startswith(("upper_arm", "forearm"))
        bound = np.full(F, tolerance_deg)
        if beat_tolerance_deg is not None and arm:
            bound[near_beat] = min(beat_tolerance_deg, tolerance_deg)
        keep = np.unique([0, F - 1])
        if _moves(ch, tolerance_deg):  # a still bone keeps its two ends
            keep = np.union1d(keep, beat_idx)
            if turning_points and arm:
                keep = np.union1d(keep, arm_cand)
        keep = keep.astype(np.int64)
        for _ in range(KEY_PASSES):  # errors in units of each frame's bound
            curves = _write(bag, ch, frames, keep)
            err = _evaluated_error(curves, ch, frames) / bound
            grown = _refine(keep, err, 1.0)
            if len(grown) == len(keep):
                break
            keep = grown
        else:  # passes spent (a small jittering bone creeps down for ever): key every frame still over,
            while err.max() > 1.0:  # and its neighbours, whose handles the new keys bend
                over = np.flatnonzero(err > 1.0)
                keep = np.union1d(keep, np.clip(np.concatenate([over - 1, over, over + 1]), 0, F - 1))
                curves = _write(bag, ch, frames, keep)
                err = _evaluated_error(curves, ch, frames) / bound
        max_err = max(max_err, float((err * bound).max()))
    return max_err


def _evaluated_check(armature_obj, bm, rig, kp_scene: np.ndarray, frames: np.ndarray, verify_frames: int,
                     warnings: list[str]) -> tuple[float, float, dict[str, float]]:
    """(mean, max, per segment) angle between the rig as Blender evaluates it and the take, at
    `verify_frames` frames; a warning when the rig does not follow its keys."""
    F = len(frames)
    pick = np.unique(np.linspace(0, F - 1, min(verify_frames, F)).round().astype(np.int64))
    ev = evaluated_errors(armature_obj, bm, rig, kp_scene[pick], frames[pick])
    allv = np.concatenate(list(ev.values()))
    ev_mean, ev_max = float(allv.mean()), float(allv.max())
    segments = {k: float(v.mean()) for k, v in ev.items()}
    if ev_mean > 3.0:
        worst = max(segments, key=segments.get)
        warnings.append(f"the rig does not follow its keys (FK check {ev_mean:.1f}° mean, worst: "
                        f"{worst}); is an IK/FK switch or a constraint overriding the mapped bones?")
    return ev_mean, ev_max, segments


def _key_settings(obj, bm, bag, frame: int, warnings: list[str]) -> tuple[list[str], list[dict]]:
    """Key the bone map's rig settings (e.g. Rigify's IK/FK switch) once in the take's action, so
    the action carries them wherever it plays; the rig's own values are not touched. Returns (what
    was keyed, the rig's values before) — whoever stops showing the take restores those
    (restore_settings), since playing a take writes its keyed values onto the rig, as Blender does
    for any animated property."""
    import bpy
    done, before = [], []
    for s in bm.settings:
        pb = obj.pose.bones.get(s["bone"])
        if pb is None or s["property"] not in pb.keys():
            warnings.append(f"setting {s['bone']}[{s['property']!r}] not found on this rig")
            continue
        before.append({"bone": s["bone"], "property": s["property"], "value": float(pb[s["property"]])})
        path = f'pose.bones["{bpy.utils.escape_identifier(s["bone"])}"]["{bpy.utils.escape_identifier(s["property"])}"]'
        fc = _new_fcurve(bag, path, 0, s["bone"])
        fc.keyframe_points.add(1)
        fc.keyframe_points.foreach_set("co", [float(frame), float(s["value"])])
        fc.keyframe_points[0].interpolation = "CONSTANT"
        fc.update()
        done.append(f"{s['bone']}[{s['property']!r}] = {s['value']}")
    return done, before


def restore_settings(obj, before: list[dict]) -> None:
    """Put back the rig settings a take keyed (_key_settings' record of their values before)."""
    for s in before:
        pb = obj.pose.bones.get(s["bone"])
        if pb is not None and s["property"] in pb.keys():
            kind = type(pb[s["property"]])
            pb[s["property"]] = kind(s["value"]) if kind in (int, float, bool) else s["value"]


def _assign(obj, action, slot, first_frame: int, push_nla: bool) -> tuple[str | None, str | None]:
    """Make the take's action active (keeping the old one alive with a fake user), or put it on a new
    NLA track on top of the others. Returns (kept action's name, new track's name)."""
    ad = obj.animation_data or obj.animation_data_create()
    if push_nla:
        track = ad.nla_tracks.new()
        track.name = action.name
        strip = track.strips.new(action.name, int(first_frame), action)
        strip.action_slot = slot
        return None, track.name
    kept = None
    old = ad.action
    if old is not None and old != action:
        if not old.use_fake_user:
            old.use_fake_user = True
        kept = old.name
    ad.action = action
    ad.action_slot = slot
    return kept, None
