"""From a take's 3D keypoints to local pose-bone rotations on any armature (numpy only).

The take's 13 COCO points carry no spine, no hands and no head top, so each mapped bone gets a
target *orientation* built from the points that define it:

* hips: the hip line's turn about the vertical only (legs stay planted; hips do not tilt);
* torso (spine, chest, upper chest): the shoulder centre's direction from the hip centre, turned by
  the shoulder line; the turn is shared out along the spine bones, then corrected so that the rig's
  own mid-shoulder lies in the take's direction; the clavicles take up the shoulder line's tilt;
* neck and head: the face frame (ear and eye lines, nose) relative to a face looking straight
  ahead, half of its turn relative to the chest in the neck;
* upper arm: along shoulder→elbow, twisted so that the elbow bends in the take's arm plane about
  the rig's own elbow hinge (from its rest bend, or the anatomical one for a straight rest arm);
  as the arm straightens the plane fades to the untwisted one, so a straight arm never spins;
* forearm: along elbow→wrist about the same hinge; hands follow the forearm.

Every target is a *delta*: the rotation from the rig's rest pose to the pose, in the take's frame.
The rig's rest pose enters only through its joint positions (rest directions of each segment) and
each bone's rest matrix, so roll, bone axes, A- or T-pose, facing direction and scale of the rig do
not matter. A bone's local rotation is then L = Gᵀ · D_parentᵀ · D · G, with G the bone's rest
frame in take coordinates — exactly what Blender applies when a bone inherits its parent's rotation.

Coordinates: the take's frame is Blender's convention for the conductor (metres, Z up, facing −Y,
left = +X). The rig's frame is taken from its rest pose (left from its shoulders, up from hips to
shoulders, snapped to the nearest armature axis when within AXIS_SNAP_DEG), so a rig keeps the
facing and placement the animator gave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from baton_core.skeleton import (FACE, HIP_HEIGHT, L_EAR, L_ELBOW, L_EYE, L_HIP, L_SHOULDER, L_WRIST, N_JOINTS,
                                 NOSE, R_EAR, R_ELBOW, R_EYE, R_HIP, R_SHOULDER, R_WRIST)

from .bonemap import DRIVEN, TORSO_SLOTS
from .errors import RigError
from .rotations import (angle_between, axis_angle_matrix, continuous, frame, mat_to_quat, partial,
                        rot_z, swing, unit)

# FACE (baton_core.skeleton) is the take's neutral face: the head's rest pose looks straight ahead.
NECK_SHARE = 0.5  # of the head's turn relative to the chest, taken by the neck
STRAIGHT_ARM_DEG = (5.0, 35.0)  # elbow bends over which the take's arm plane fades in
REST_BEND_MIN_DEG = 5.0  # a rest elbow bent less than this gives no hinge: use the anatomical one
AXIS_SNAP_DEG = 25.0
FORWARD = np.array([0.0, -1.0, 0.0])  # the conductor's forward in the take's frame
SIDES = ("l", "r")


def _face_vectors(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lateral, forward) of the face: ear and eye lines; nose from the ears' midpoint."""
    lateral = (p[..., L_EAR, :] - p[..., R_EAR, :]) + (p[..., L_EYE, :] - p[..., R_EYE, :])
    forward = p[..., NOSE, :] - 0.5 * (p[..., L_EAR, :] + p[..., R_EAR, :])
    return lateral, forward


def _neutral_face_frame() -> np.ndarray:
    p = np.zeros((N_JOINTS, 3))
    for j, (lat, fwd, up) in FACE.items():
        p[j] = (lat, -fwd, up)
    return frame(*_face_vectors(p))


@dataclass
class RigRest:
    """What the math needs of an armature's rest pose, in armature space (Blender's `bone.head_local`,
    `tail_local` and the 3×3 of `matrix_local`), per mapped slot, plus the thighs' heads (the hip
    joints) where the map names them."""
    head: dict[str, np.ndarray]
    tail: dict[str, np.ndarray]
    rest: dict[str, np.ndarray]
    thighs: dict[str, np.ndarray] = field(default_factory=dict)  # 'l'/'r' → thigh head, if mapped

    def __post_init__(self):
        self.slots = [s for s in DRIVEN if s in self.head]
        self.torso = [s for s in TORSO_SLOTS if s in self.head]
        self.top = self.torso[-1]
        self.parent = self._parents()
        self.C = self._rig_frame()
        # everything below is in the take's coordinates
        self.h = {s: self.C.T @ self.head[s] for s in self.slots}
        self.G = {s: self.C.T @ self.rest[s] for s in self.slots}
        self.mid_hip = self.C.T @ self._mid_hip()
        self.wrist = {x: self.C.T @ self._wrist(x) for x in SIDES}
        self.torso_length = float(np.linalg.norm(self._mid_shoulder() - self._mid_hip()))

    def _parents(self) -> dict[str, str | None]:
        """Each slot's parent in the semantic chain (the nearest mapped ancestor)."""
        par: dict[str, str | None] = {"hips": None}
        chain = ["hips"] + self.torso
        par.update(zip(chain[1:], chain))
        if "neck" in self.head:
            par["neck"] = self.top
        par["head"] = "neck" if "neck" in self.head else self.top
        for x in SIDES:
            arm = [self.top] + [s for s in (f"clavicle_{x}", f"upper_arm_{x}", f"forearm_{x}", f"hand_{x}")
                                if s in self.head]
            par.update(zip(arm[1:], arm))
        return par

    def _mid_hip(self) -> np.ndarray:
        if len(self.thighs) == 2:
            return 0.5 * (self.thighs["l"] + self.thighs["r"])
        return self.head["hips"]

    def _mid_shoulder(self) -> np.ndarray:
        return 0.5 * (self.head["upper_arm_l"] + self.head["upper_arm_r"])

    def _wrist(self, x: str) -> np.ndarray:
        return self.head[f"hand_{x}"] if f"hand_{x}" in self.head else self.tail[f"forearm_{x}"]

    def _rig_frame(self) -> np.ndarray:
        """Columns: the rig's left, back and up in armature space (the take's X, Y, Z)."""
        up = unit(self._mid_shoulder() - self._mid_hip())
        axes = np.concatenate([np.eye(3), -np.eye(3)])
        best = axes[np.argmax(axes @ up)]
        if np.degrees(np.arccos(np.clip(best @ up, -1, 1))) < AXIS_SNAP_DEG:
            up = best
        left = self.head["upper_arm_l"] - self.head["upper_arm_r"]
        if np.linalg.norm(left) < 1e-9:
            raise RigError("the rig's left and right upper arms start at the same point")
        left = unit(left - (left @ up) * up)
        if not np.all(np.isfinite(left)) or np.linalg.norm(left) < 0.5:
            raise RigError("the rig's shoulders lie along its spine: cannot tell its left from its up")
        return np.stack([left, np.cross(up, left), up], axis=1)


@dataclass
class Retarget:
    """Local rotations per driven slot as quaternions (T, 4), hemisphere-continuous; hips location
    (T, 3) in the bone's rest space when root motion is on; the per-slot deltas (for FK); and the
    numpy forward-kinematics check of the result."""
    quats: dict[str, np.ndarray]
    location: np.ndarray | None
    deltas: dict[str, np.ndarray]
    fk_deg: dict[str, np.ndarray]

    def fk_summary(self) -> tuple[float, float]:
        errs = np.concatenate([v for v in self.fk_deg.values()])
        return float(errs.mean()), float(errs.max())


def check_keypoints(kp) -> np.ndarray:
    kp = np.asarray(kp)
    if kp.ndim != 3 or kp.shape[1:] != (N_JOINTS, 3) or kp.shape[0] < 1:
        raise RigError(f"keypoints_3d must have shape (T, {N_JOINTS}, 3) with T ≥ 1, got {kp.shape}")
    if not np.issubdtype(kp.dtype, np.number):
        raise RigError(f"keypoints_3d must be numbers, not {kp.dtype}")
    kp = kp.astype(np.float64)
    if not np.all(np.isfinite(kp)):
        raise RigError("keypoints_3d contain NaN or infinite values")
    for name, (a, b) in {"left upper arm": (L_SHOULDER, L_ELBOW), "left forearm": (L_ELBOW, L_WRIST),
                         "right upper arm": (R_SHOULDER, R_ELBOW), "right forearm": (R_ELBOW, R_WRIST),
                         "shoulder line": (L_SHOULDER, R_SHOULDER), "ear line": (L_EAR, R_EAR)}.items():
        short = np.linalg.norm(kp[:, a] - kp[:, b], axis=-1) < 1e-6
        if short.any():
            raise RigError(f"keypoints_3d: the {name} has zero length at frame {int(np.argmax(short))}")
    return kp


def _apply(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("...ij,...j->...i", m, v)


class _Pose:
    """Forward kinematics of the mapped chain for given deltas (take coordinates)."""

    def __init__(self, rig: RigRest, deltas: dict[str, np.ndarray], offset: np.ndarray | None = None):
        self.rig, self.D = rig, deltas
        self.p: dict[str, np.ndarray] = {}
        for s in rig.slots:
            par = rig.parent[s]
            if par is None:
                self.p[s] = rig.h[s] + (0.0 if offset is None else offset)
            else:
                self.p[s] = self.point(par, rig.h[s])

    def point(self, slot: str, x: np.ndarray) -> np.ndarray:
        """Where rest point x, carried by `slot`, is posed."""
        return self.p[slot] + _apply(self.D[slot], x - self.rig.h[slot])

    def joints(self) -> dict[str, np.ndarray]:
        r = self.rig
        j = {"mid_hip": self.point("hips", r.mid_hip)}
        for x in SIDES:
            j[f"shoulder_{x}"] = self.p[f"upper_arm_{x}"]
            j[f"elbow_{x}"] = self.p[f"forearm_{x}"]
            j[f"wrist_{x}"] = self.point(f"forearm_{x}", r.wrist[x])
        j["mid_shoulder"] = 0.5 * (j["shoulder_l"] + j["shoulder_r"])
        return j


def segment_errors(kp: np.ndarray, joints: dict[str, np.ndarray], head_delta: np.ndarray,
                   hips_delta: np.ndarray) -> dict[str, np.ndarray]:
    """Angles (degrees, per frame) between the rig's segments and the take's: torso, shoulder line,
    upper arms, forearms, the face's forward direction and the hips' turn (in the ground plane)."""
    H = 0.5 * (kp[:, L_HIP] + kp[:, R_HIP])
    S = 0.5 * (kp[:, L_SHOULDER] + kp[:, R_SHOULDER])
    take = {"torso": S - H, "shoulders": kp[:, L_SHOULDER] - kp[:, R_SHOULDER],
            "upper_arm_l": kp[:, L_ELBOW] - kp[:, L_SHOULDER], "forearm_l": kp[:, L_WRIST] - kp[:, L_ELBOW],
            "upper_arm_r": kp[:, R_ELBOW] - kp[:, R_SHOULDER], "forearm_r": kp[:, R_WRIST] - kp[:, R_ELBOW]}
    rig = {"torso": joints["mid_shoulder"] - joints["mid_hip"], "shoulders": joints["shoulder_l"] - joints["shoulder_r"],
           "upper_arm_l": joints["elbow_l"] - joints["shoulder_l"], "forearm_l": joints["wrist_l"] - joints["elbow_l"],
           "upper_arm_r": joints["elbow_r"] - joints["shoulder_r"], "forearm_r": joints["wrist_r"] - joints["elbow_r"]}
    out = {k: np.degrees(angle_between(rig[k], take[k])) for k in take}
    face = head_target(kp)
    out["head"] = np.degrees(angle_between(_apply(head_delta, FORWARD), _apply(face, FORWARD)))
    hip_line = kp[:, L_HIP] - kp[:, R_HIP]
    flat = lambda v: v * np.array([1.0, 1.0, 0.0])  # noqa: E731
    out["hips"] = np.degrees(angle_between(flat(_apply(hips_delta, np.array([1.0, 0.0, 0.0]))), flat(hip_line)))
    return out


def head_target(kp: np.ndarray) -> np.ndarray:
    """The head's delta from looking straight ahead, from the face points (T, 3, 3)."""
    return frame(*_face_vectors(kp)) @ _neutral_face_frame().T


def _rest_hinge(r_ua: np.ndarray, r_fa: np.ndarray) -> np.ndarray:
    """The rig's elbow hinge axis at rest (take coordinates): from its rest bend when the arm is bent
    the natural way, else the anatomical one (the forearm folds forward)."""
    anatomical = unit(np.cross(r_ua, FORWARD))
    bend = np.cross(r_ua, r_fa)
    if np.degrees(angle_between(r_ua, r_fa)) > REST_BEND_MIN_DEG and bend @ anatomical > 0:
        return unit(bend)
    if np.linalg.norm(np.cross(r_ua, FORWARD)) < 1e-6:  # a rest arm pointing straight ahead
        anatomical = unit(np.cross(r_ua, np.array([0.0, 0.0, 1.0])))
    return unit(anatomical - (anatomical @ unit(r_ua)) * unit(r_ua))


def _blend_branch(phi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The twist angle from the untwisted hinge to the arm's plane, kept continuous wherever it is
    blended (0 < w < 1): unwrapped in time within each such run of frames and moved to the run's
    nearest whole turn, so a plane opposite the untwisted one never flips w·φ from +π·w to −π·w.
    Where w is 0 or 1 the branch does not matter (no twist, or the full turn)."""
    out = np.unwrap(phi)
    blending = (w > 0) & (w < 1)
    starts = np.flatnonzero(blending & ~np.concatenate([[False], blending[:-1]]))
    run = np.cumsum(np.isin(np.arange(len(w)), starts))
    for r in np.unique(run[blending]):
        sel = blending & (run == r)
        out[sel] -= 2 * np.pi * np.round(np.median(out[sel]) / (2 * np.pi))
    return out


def retarget(keypoints_3d, rig: RigRest, root_motion: bool = False) -> Retarget:
    """Local rotations for every driven slot of `rig` that make it strike the take's poses."""
    kp = check_keypoints(keypoints_3d)
    D: dict[str, np.ndarray] = {}  # slot → (T, 3, 3) rotation from rest, in take coordinates
    offset = _pose_torso(kp, rig, D, root_motion)
    _pose_clavicles(kp, rig, D, offset)
    _pose_head(kp, rig, D)
    for x in SIDES:
        _pose_arm(kp, rig, D, x)
    quats = {}
    for s in rig.slots:
        par = rig.parent[s]
        rel = D[s] if par is None else np.swapaxes(D[par], -1, -2) @ D[s]
        local = np.swapaxes(rig.G[s], -1, -2) @ rel @ rig.G[s]
        quats[s] = continuous(mat_to_quat(local))
    location = None
    if offset is not None:
        location = _apply(np.swapaxes(rig.G["hips"], -1, -2), offset)
    pose = _Pose(rig, D, offset)
    fk = segment_errors(kp, pose.joints(), D["head"], D["hips"])
    return Retarget(quats, location, D, fk)


def _pose_torso(kp: np.ndarray, rig: RigRest, D: dict[str, np.ndarray], root_motion: bool) -> np.ndarray | None:
    """Hips and spine into D; returns the hips' offset (T, 3) for root motion, else None.

    The hips take the hip line's turn about the vertical (the shoulders' where the hip line is
    vertical); the spine shares the torso's turn along its bones, then is corrected onto the take's
    hip→shoulder direction. Everything above the torso rides on it until posed."""
    H = 0.5 * (kp[:, L_HIP] + kp[:, R_HIP])
    S = 0.5 * (kp[:, L_SHOULDER] + kp[:, R_SHOULDER])
    up, lat_s = S - H, kp[:, L_SHOULDER] - kp[:, R_SHOULDER]
    lat_h = kp[:, L_HIP] - kp[:, R_HIP]
    flat = np.where((np.hypot(lat_h[:, 0], lat_h[:, 1]) > 1e-6)[:, None], lat_h, lat_s)
    D["hips"] = rot_z(np.arctan2(flat[:, 1], flat[:, 0]))
    rest_up = unit(0.5 * (rig.h["upper_arm_l"] + rig.h["upper_arm_r"]) - rig.mid_hip)
    rest_lat = rig.h["upper_arm_l"] - rig.h["upper_arm_r"]
    torso = frame(up, lat_s) @ frame(rest_up, rest_lat).T
    rel = np.swapaxes(D["hips"], -1, -2) @ torso
    n = len(rig.torso)
    for i, s in enumerate(rig.torso):
        D[s] = D["hips"] @ partial(rel, (i + 1) / n)
    offset = None
    if root_motion:
        scale = rig.torso_length / max(float(np.median(np.linalg.norm(up, axis=1))), 1e-6)
        offset = (H - np.array([0.0, 0.0, HIP_HEIGHT])) * scale
    for s in DRIVEN:
        if s in rig.head and s not in D:
            D[s] = D[rig.top]
    target_up = unit(up)
    for _ in range(3):
        j = _Pose(rig, D, offset).joints()
        q = swing(unit(j["mid_shoulder"] - j["mid_hip"]), target_up)
        for s in rig.slots:
            if s != "hips":
                D[s] = q @ D[s]
    return offset


def _pose_clavicles(kp: np.ndarray, rig: RigRest, D: dict[str, np.ndarray], offset: np.ndarray | None) -> None:
    """Turn each clavicle (when the rig has both) so the rig's shoulder line lies along the take's."""
    if not all(f"clavicle_{x}" in rig.head for x in SIDES):
        return
    want = unit(kp[:, L_SHOULDER] - kp[:, R_SHOULDER])
    for _ in range(2):
        pose = _Pose(rig, D, offset)
        pl, pr = pose.p["upper_arm_l"], pose.p["upper_arm_r"]
        mid, half = 0.5 * (pl + pr), 0.5 * np.linalg.norm(pl - pr, axis=1, keepdims=True)
        for x, p, sign in (("l", pl, 1.0), ("r", pr, -1.0)):
            c = pose.p[f"clavicle_{x}"]
            q = swing(unit(p - c), unit(mid + sign * half * want - c))
            for s in (f"clavicle_{x}", f"upper_arm_{x}", f"forearm_{x}", f"hand_{x}"):
                if s in D:
                    D[s] = q @ D[s]


def _pose_head(kp: np.ndarray, rig: RigRest, D: dict[str, np.ndarray]) -> None:
    """Neck and head from the face: the neck takes NECK_SHARE of the head's turn."""
    face = head_target(kp)
    if "neck" in rig.head:
        D["neck"] = D[rig.top] @ partial(np.swapaxes(D[rig.top], -1, -2) @ face, NECK_SHARE)
    D["head"] = face


def _pose_arm(kp: np.ndarray, rig: RigRest, D: dict[str, np.ndarray], x: str) -> None:
    """One arm: the upper arm and forearm onto the take's, twisted about the upper arm so the elbow
    hinges in the arm's plane (blended in as the arm bends, so a straight arm does not spin), the
    hand riding on the forearm."""
    sh, el, wr = (L_SHOULDER, L_ELBOW, L_WRIST) if x == "l" else (R_SHOULDER, R_ELBOW, R_WRIST)
    lo, hi = np.radians(STRAIGHT_ARM_DEG)
    ua, fa, hand = f"upper_arm_{x}", f"forearm_{x}", f"hand_{x}"
    d_ua, d_fa = unit(kp[:, el] - kp[:, sh]), unit(kp[:, wr] - kp[:, el])
    r_ua = unit(rig.h[fa] - rig.h[ua])
    r_fa = unit(rig.wrist[x] - rig.h[fa])
    hinge = _rest_hinge(r_ua, r_fa)
    # the untwisted hinge: the rest hinge carried to a neutral arm (forward and down), then swung
    # with the arm onto the take's upper arm; the swing is singular only for an arm pointing up,
    # back and across the body, where a conductor's arm never goes
    neutral = unit(np.array([0.35 if x == "l" else -0.35, -0.6, -0.72]))
    neutral_hinge = swing(r_ua, neutral) @ hinge
    par = D[rig.parent[ua]]
    untwisted = _apply(swing(_apply(par, neutral), d_ua), _apply(par, neutral_hinge))
    bend = angle_between(d_ua, d_fa)
    plane = unit(np.cross(d_ua, d_fa))
    w = np.clip((bend - lo) / (hi - lo), 0.0, 1.0)
    w = w * w * (3 - 2 * w)
    phi = np.arctan2(np.sum(d_ua * np.cross(untwisted, plane), -1), np.sum(untwisted * plane, -1))
    hinge_now = _apply(axis_angle_matrix(d_ua, w * _blend_branch(phi, w)), untwisted)
    D[ua] = frame(d_ua, hinge_now) @ frame(r_ua, hinge).T
    D[fa] = frame(d_fa, hinge_now) @ frame(r_fa, hinge).T
    if hand in rig.head:
        D[hand] = D[fa]
