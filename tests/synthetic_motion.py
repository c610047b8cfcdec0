"""Synthetic 3D conducting-like motion on the engine's skeleton, for testing the 2D→3D lift."""

import numpy as np

from baton_core import skeleton as sk


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def synthetic_conducting(seconds: float = 20.0, fps: int = 30, seed: int = 0) -> np.ndarray:
    """(T, 13, 3): torso yaw and lean, both arms beating in front of the body at 100 bpm."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    sw = sk.SHOULDER_WIDTH_M
    beat = 2 * np.pi * t * 100 / 60
    yaw = 0.3 * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 6))
    lean = 0.15 + 0.05 * np.sin(2 * np.pi * t / 5)
    p = np.zeros((len(t), 13, 3))
    hip_c = np.stack([0.02 * np.sin(t), np.zeros_like(t), sk.HIP_HEIGHT + 0.01 * np.sin(2 * t)], 1)
    torso_dir = np.stack([np.zeros_like(t), -np.sin(lean), np.cos(lean)], 1)
    sh_c = hip_c + sk.TORSO * sw * torso_dir
    for j, side in ((sk.L_SHOULDER, 1), (sk.R_SHOULDER, -1)):
        p[:, j] = sh_c + sk.rot_z(np.array([side * sw / 2, 0, 0]), yaw)
    for j, side in ((sk.L_HIP, 1), (sk.R_HIP, -1)):
        p[:, j] = hip_c + sk.rot_z(np.array([side * sk.HIP_WIDTH * sw / 2, 0, 0]), yaw)
    for sh, el, wr, side, phase in ((sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST, 1, 0.4), (sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST, -1, 0.0)):
        up = _unit(np.stack([side * (0.5 + 0.2 * np.sin(beat + phase)), -0.6 - 0.2 * np.cos(beat / 2),
                             -0.6 + 0.3 * np.sin(beat + phase)], 1))
        p[:, el] = p[:, sh] + sk.UPPER_ARM * sw * sk.rot_z(up, yaw)
        fore = _unit(np.stack([side * 0.2 * np.cos(beat), -0.9 + 0.1 * np.sin(beat),
                               0.1 + 0.5 * np.abs(np.sin(beat / 2 + phase))], 1))
        p[:, wr] = p[:, el] + sk.FOREARM * sw * sk.rot_z(fore, yaw)
    for j, (lat, fwd, up_) in sk.FACE.items():
        p[:, j] = sh_c + sk.rot_z(np.array([lat * sw, -fwd * sw, up_ * sw]), yaw)
    return p
