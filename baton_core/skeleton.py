"""The 13-joint upper-body skeleton and the engine's two coordinate systems.

2D (the data set's image units): COCO joints 0..12, (x, y) in (0, 1), y pointing down, seen from the
front, so the person's left shoulder (5) has the larger x; hips near (0.5, 0.75), shoulders about
0.19 apart.

3D (Blender's conventions): metres, right-handed, Z up, the conductor facing −Y, so the person's
left is +X. The mid-hip point sits at (0, 0, HIP_HEIGHT) on average. The front view is an
orthographic projection along +Y: image x ↔ +X, image y ↔ −Z, IMAGE_PER_METRE image units a metre.
"""

from __future__ import annotations

import numpy as np

N_JOINTS = 13
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, L_HIP, R_HIP = range(13)

SHOULDER_WIDTH_M = 0.38  # between the COCO shoulder points of an adult
HIP_HEIGHT = 1.0  # metres above the floor
IMAGE_SHOULDER_WIDTH = 0.19
IMAGE_PER_METRE = IMAGE_SHOULDER_WIDTH / SHOULDER_WIDTH_M
IMAGE_HIP_CENTRE = (0.5, 0.75)

# Bone lengths in shoulder widths (close to the proportions seen in the data set's 2D poses).
HIP_WIDTH = 0.70
TORSO = 1.50  # mid-hip to mid-shoulder
UPPER_ARM = 0.80
FOREARM = 0.75
# Face points relative to mid-shoulder, in shoulder widths: (lateral +left, forward, up).
FACE = {NOSE: (0.0, 0.30, 0.45), L_EYE: (0.08, 0.24, 0.56), R_EYE: (-0.08, 0.24, 0.56),
        L_EAR: (0.22, 0.0, 0.52), R_EAR: (-0.22, 0.0, 0.52)}

ARM_BONES = ((L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST))
BONES = ((L_SHOULDER, R_SHOULDER), (L_HIP, R_HIP)) + ARM_BONES


def project_front(p3d: np.ndarray) -> np.ndarray:
    """(..., 13, 3) metres → (..., 13, 2) image units, orthographic front view."""
    x = IMAGE_HIP_CENTRE[0] + p3d[..., 0] * IMAGE_PER_METRE
    y = IMAGE_HIP_CENTRE[1] - (p3d[..., 2] - HIP_HEIGHT) * IMAGE_PER_METRE
    return np.stack([x, y], axis=-1)


def rot_z(v: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotate offsets `v` — one (3,) or one per frame (T, 3) — about Z by each frame's yaw (T,),
    giving (T, 3); positive yaw turns the conductor toward their left."""
    c, s = np.cos(yaw), np.sin(yaw)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([x * c - y * s, x * s + y * c, np.broadcast_to(z, c.shape)], axis=-1)


def bone_lengths(p: np.ndarray) -> np.ndarray:
    """(T, 13, D) → (T, len(BONES)) lengths of the skeleton's bones."""
    return np.stack([np.linalg.norm(p[:, a] - p[:, b], axis=-1) for a, b in BONES], axis=1)
