"""Takes for the rig tests: a hard synthetic one that sweeps every joint through its range (arms
overhead and across the body, elbows straightening, torso twisting and leaning both ways, the head
turning and nodding, the hips swaying) in the take's 3D conventions (baton_core/skeleton.py)."""

import numpy as np

from baton_core import skeleton as sk


def _rot(axis: int, a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    rows = {0: [[o, z, z], [z, c, -s], [z, s, c]], 1: [[c, z, s], [z, o, z], [-s, z, c]],
            2: [[c, -s, z], [s, c, z], [z, z, o]]}[axis]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def _app(m, v):
    return np.einsum("tij,tj->ti", m, np.broadcast_to(v, m.shape[:1] + (3,)))


def hard_take(seconds: float = 12.0, fps: float = 30.0) -> np.ndarray:
    t = np.arange(int(seconds * fps)) / fps
    sw = sk.SHOULDER_WIDTH_M
    yaw = 0.5 * np.sin(2 * np.pi * t / 6)
    torso = _rot(2, yaw) @ _rot(0, -(0.15 + 0.12 * np.sin(2 * np.pi * t / 4))) @ _rot(1, 0.12 * np.sin(2 * np.pi * t / 5))
    hip = np.stack([0.03 * np.sin(t), 0.02 * np.cos(1.3 * t), sk.HIP_HEIGHT + 0.02 * np.sin(2 * t)], 1)
    p = np.zeros((len(t), 13, 3))
    hip_turn = _rot(2, 0.4 * yaw)
    for j, side in ((sk.L_HIP, 1), (sk.R_HIP, -1)):
        p[:, j] = hip + _app(hip_turn, np.array([side * sk.HIP_WIDTH * sw / 2, 0, 0]))
    sh = hip + sk.TORSO * sw * _app(torso, np.array([0, 0, 1.0]))
    for j, side in ((sk.L_SHOULDER, 1), (sk.R_SHOULDER, -1)):
        p[:, j] = sh + _app(torso, np.array([side * sw / 2, 0, 0]))
    head = _rot(2, yaw) @ _rot(2, 0.6 * np.sin(2 * np.pi * t / 5.5)) @ _rot(0, 0.3 * np.sin(2 * np.pi * t / 3.3))
    for j, (lat, fwd, up) in sk.FACE.items():
        p[:, j] = sh + _app(head, np.array([lat * sw, -fwd * sw, up * sw]))
    for (s, e, w), side, phase in (((sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST), 1, 1.3), ((sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST), -1, 0.0)):
        el = np.radians(5 + 75 * np.sin(2 * np.pi * t / 3.7 + phase))          # −70° (down) … +80° (overhead)
        az = np.radians(30 + 90 * np.sin(2 * np.pi * t / 5.3 + phase))         # −60° (across) … 120° (behind the side)
        u = np.stack([side * np.cos(el) * np.cos(az), -np.cos(el) * np.sin(az), np.sin(el)], 1)
        base = np.cross(u, np.array([0.0, 0.0, 1.0]))  # never parallel: the arm never points straight up or down
        base /= np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-9)
        twist = 0.8 * np.sin(2 * np.pi * t / 4.1 + phase)
        n = base * np.cos(twist)[:, None] + np.cross(u, base) * np.sin(twist)[:, None]
        bend = np.radians(65 + 65 * np.sin(2 * np.pi * t / 2.7 + phase))       # 0° (straight) … 130°
        f = u * np.cos(bend)[:, None] + np.cross(n, u) * np.sin(bend)[:, None]
        p[:, e] = p[:, s] + sk.UPPER_ARM * sw * _app(torso, u)
        p[:, w] = p[:, e] + sk.FOREARM * sw * _app(torso, f)
    return p
