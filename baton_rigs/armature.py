"""Reading an armature for retargeting, and checking what Blender actually makes of a pose.

`rig_rest` gathers the rest-pose data the math needs (retarget.RigRest). `evaluated_errors` is the
forward-kinematics check as Blender sees it: it evaluates the scene at given frames (constraints,
drivers, IK/FK switches and all) and compares the rig's joint directions with the take's. On a plain
FK rig this agrees with the numpy check in retarget.py; on a rig with mechanisms (Rigify's
generated rig) it is the only honest one.
"""

from __future__ import annotations

import numpy as np

from .bonemap import DRIVEN, BoneMap, resolve
from .errors import RigError
from .retarget import RigRest, segment_errors


def require_armature(obj) -> None:
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        kind = "nothing" if obj is None else f"{getattr(obj, 'type', type(obj).__name__).lower()} {obj.name!r}"
        raise RigError(f"a take is applied to an armature object, not {kind}")


def bone_map_for(obj, bone_map=None) -> BoneMap:
    require_armature(obj)
    return resolve(obj.name, [b.name for b in obj.data.bones], bone_map)


def _measure(bm: BoneMap, slot: str) -> str | None:
    return bm.measure.get(slot) or bm.bones.get(slot)


def rig_rest(obj, bm: BoneMap) -> RigRest:
    """The rest pose of the mapped bones (armature space) as retarget.RigRest."""
    bones = obj.data.bones
    head, tail, rest = {}, {}, {}
    for slot in DRIVEN:
        name = bm.bones.get(slot)
        if name is None:
            continue
        b = bones[name]
        head[slot] = np.array(b.head_local, dtype=np.float64)
        tail[slot] = np.array(b.tail_local, dtype=np.float64)
        m = np.array(b.matrix_local, dtype=np.float64)[:3, :3]
        rest[slot] = m / np.linalg.norm(m, axis=0, keepdims=True)
    thighs = {}
    for x in ("l", "r"):
        name = _measure(bm, f"thigh_{x}")
        if name is not None and name in bones:
            thighs[x] = np.array(bones[name].head_local, dtype=np.float64)
    if len(thighs) < 2:
        thighs = {}
    return RigRest(head, tail, rest, thighs)


def intermediate_bones(obj, bm: BoneMap, rig: RigRest) -> list[str]:
    """Unmapped bones on the parent path between a mapped bone and its semantic parent (a split
    upper arm's second half, UE5's spine_04, a neck's upper half). The math treats them as at rest,
    so the take's action keys them at rest; bones driven by constraints are left to their mechanism."""
    bones = obj.data.bones
    out: list[str] = []
    for slot, par in rig.parent.items():
        if par is None:
            continue
        stop = bones[bm.bones[par]]
        b, path = bones[bm.bones[slot]].parent, []
        while b is not None and b != stop:
            path.append(b)
            b = b.parent
        if b is None:  # the semantic parent is no ancestor (a mechanism links them): nothing to hold
            continue
        out += [x.name for x in path if not obj.pose.bones[x.name].constraints and x.name not in out]
    return out


def evaluated_errors(obj, bm: BoneMap, rig: RigRest, keypoints: np.ndarray, frames) -> dict[str, np.ndarray]:
    """Per-segment angles (degrees) between the take's directions and the rig's as Blender evaluates
    it at each scene frame in `frames` (keypoints[i] is the take at frames[i]). Restores the scene's
    current frame."""
    scene = obj.users_scene[0] if obj.users_scene else None
    if scene is None:
        raise RigError(f"armature {obj.name!r} is in no scene, so Blender cannot evaluate its pose")
    pb = obj.pose.bones
    names = {s: _measure(bm, s) for s in DRIVEN if _measure(bm, s) is not None}
    thighs = [_measure(bm, f"thigh_{x}") for x in ("l", "r")]
    use_thighs = len(rig.thighs) == 2
    C = rig.C
    keep = scene.frame_current, scene.frame_subframe
    joints = {k: [] for k in ("mid_hip", "shoulder_l", "shoulder_r", "elbow_l", "elbow_r", "wrist_l", "wrist_r")}
    head_d, hips_d = [], []

    def delta(name):  # armature-space rotation from rest to pose, in take coordinates
        m = np.array(pb[name].matrix, dtype=np.float64)[:3, :3]
        r = np.array(obj.data.bones[name].matrix_local, dtype=np.float64)[:3, :3]
        m /= np.linalg.norm(m, axis=0, keepdims=True)
        r /= np.linalg.norm(r, axis=0, keepdims=True)
        return C.T @ m @ r.T @ C

    def pos(name, tail=False):
        return C.T @ np.array(pb[name].tail if tail else pb[name].head, dtype=np.float64)

    try:
        for f in frames:
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            joints["mid_hip"].append(0.5 * (pos(thighs[0]) + pos(thighs[1])) if use_thighs else pos(names["hips"]))
            for x in ("l", "r"):
                joints[f"shoulder_{x}"].append(pos(names[f"upper_arm_{x}"]))
                joints[f"elbow_{x}"].append(pos(names[f"forearm_{x}"]))
                hand = names.get(f"hand_{x}")
                joints[f"wrist_{x}"].append(pos(hand) if hand else pos(names[f"forearm_{x}"], tail=True))
            head_d.append(delta(names["head"]))
            hips_d.append(delta(names["hips"]))
    finally:
        scene.frame_set(keep[0], subframe=keep[1])
    j = {k: np.array(v) for k, v in joints.items()}
    j["mid_shoulder"] = 0.5 * (j["shoulder_l"] + j["shoulder_r"])
    return segment_errors(np.asarray(keypoints, dtype=np.float64), j, np.array(head_d), np.array(hips_d))
