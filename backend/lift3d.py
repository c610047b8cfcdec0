"""Lifting front-view 2D keypoints to 3D on a skeleton of constant bone lengths.

A front view fixes every joint's X and Z; only depth (Y) is missing. Walking down the chain
mid-hip → mid-shoulder → shoulders → elbows → wrists, a bone of known length L whose image is l long
leans out of the image plane by |Δy| = √(L² − l²). The sign comes from priors a conductor obeys:

* the arms work in front of the body (upper arm and forearm point toward −Y);
* the torso leans slightly forward;
* the shoulder line turns with the head: the nose's sideways offset says which shoulder is back.

Depths are smoothed over time (a short Savitzky–Golay filter) before each bone is re-normalised to
its length, so bone lengths are constant by construction and the depth does not flicker where a bone
is nearly parallel to the image. Lengths come from the shoulder width (scaled by the skeleton's
proportions), lengthened only where the 2D data shows a
longer bone (its 98th-percentile image length), so a bone never has to shrink below its picture.
The shoulder width itself is the 90th percentile of its image: the torso faces front most of the
time and turning only ever narrows the picture.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from baton_core import skeleton as sk
from baton_core.errors import BatonError

_SMOOTH = 7  # frames of the depth smoothing window (≈ 0.23 s at 30 fps)


def _depth(l2: np.ndarray, length: float, sign: np.ndarray | float) -> np.ndarray:
    d = np.sqrt(np.maximum(length ** 2 - l2, 0.0)) * sign
    if len(d) >= _SMOOTH:
        d = savgol_filter(d, _SMOOTH, 2, axis=0, mode="interp")
    return d


def _bone(parent: np.ndarray, target_xz: np.ndarray, length: float, sign) -> np.ndarray:
    """Place a child at `length` from `parent` toward the observed (x, z), with depth from `sign`."""
    dxz = target_xz - parent[:, [0, 2]]
    dy = _depth((dxz ** 2).sum(1), length, sign)
    v = np.stack([dxz[:, 0], dy, dxz[:, 1]], axis=1)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.where(n > 1e-9, v / np.maximum(n, 1e-9), np.array([0.0, -1.0, 0.0]))
    return parent + length * v


def lift_to_3d(kp2d: np.ndarray) -> np.ndarray:
    """(T, 13, 2) image units → (T, 13, 3) metres in the engine's 3D conventions."""
    kp2d = np.asarray(kp2d, dtype=np.float64)
    t = kp2d.shape[0]
    sw_img = float(np.percentile(np.linalg.norm(kp2d[:, sk.L_SHOULDER] - kp2d[:, sk.R_SHOULDER], axis=1), 90))
    if not np.isfinite(sw_img) or sw_img <= 1e-6:
        raise BatonError("the 2D motion has no shoulder width to scale a skeleton by (its shoulders "
                         "coincide: is the checkpoint's output collapsed?)")
    metres = sk.SHOULDER_WIDTH_M / sw_img  # per image unit
    # Observed X and Z in metres; the take's median mid-hip is the origin at HIP_HEIGHT.
    hip_c_img = kp2d[:, [sk.L_HIP, sk.R_HIP]].mean(1)
    origin = np.median(hip_c_img, axis=0)
    xz = np.empty((t, sk.N_JOINTS, 2))
    xz[..., 0] = (kp2d[..., 0] - origin[0]) * metres
    xz[..., 1] = sk.HIP_HEIGHT - (kp2d[..., 1] - origin[1]) * metres

    sw = sk.SHOULDER_WIDTH_M
    hip_xz = xz[:, [sk.L_HIP, sk.R_HIP]].mean(1)
    shoulder_xz = xz[:, [sk.L_SHOULDER, sk.R_SHOULDER]].mean(1)

    def length(ratio: float, pa: np.ndarray, pb: np.ndarray) -> float:
        """The bone's length: its proportion of the shoulder width, or longer if its picture is."""
        return max(ratio * sw, float(np.percentile(np.linalg.norm(pa - pb, axis=1), 98)))

    out = np.zeros((t, sk.N_JOINTS, 3))
    hip_c = np.stack([hip_xz[:, 0], np.zeros(t), hip_xz[:, 1]], axis=1)
    sh_c = _bone(hip_c, shoulder_xz, length(sk.TORSO, shoulder_xz, hip_xz), -1.0)

    # Torso yaw: which shoulder is back follows the nose's sideways offset (turning left moves the
    # nose toward +X and the left shoulder toward +Y). tanh keeps the sign change smooth near zero.
    nose_off = (xz[:, sk.NOSE, 0] - sh_c[:, 0]) / sw
    yaw_sign = np.tanh(nose_off / 0.05)
    half_sw = length(1.0, xz[:, sk.L_SHOULDER], xz[:, sk.R_SHOULDER]) / 2
    for joint, side in ((sk.L_SHOULDER, 1.0), (sk.R_SHOULDER, -1.0)):
        out[:, joint] = _bone(sh_c, xz[:, joint], half_sw, side * yaw_sign)
    half_hw = length(sk.HIP_WIDTH, xz[:, sk.L_HIP], xz[:, sk.R_HIP]) / 2
    for joint, side in ((sk.L_HIP, 1.0), (sk.R_HIP, -1.0)):
        out[:, joint] = _bone(hip_c, xz[:, joint], half_hw, side * yaw_sign)

    for sh, el, wr in ((sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST), (sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST)):
        out[:, el] = _bone(out[:, sh], xz[:, el], length(sk.UPPER_ARM, xz[:, sh], xz[:, el]), -1.0)
        out[:, wr] = _bone(out[:, el], xz[:, wr], length(sk.FOREARM, xz[:, el], xz[:, wr]), -1.0)

    # Face points keep their observed X and Z; depth follows the face template turned by the yaw.
    yaw = np.arcsin(np.clip(out[:, sk.L_SHOULDER, 1] - out[:, sk.R_SHOULDER, 1], -2 * half_sw, 2 * half_sw)
                    / (2 * half_sw))
    for joint, (lat, fwd, _up) in sk.FACE.items():
        depth = -fwd * np.cos(yaw) + lat * np.sin(yaw)
        out[:, joint, 0] = xz[:, joint, 0]
        out[:, joint, 1] = sh_c[:, 1] + depth * sw
        out[:, joint, 2] = xz[:, joint, 1]
    return out
