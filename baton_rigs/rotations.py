"""Rotation arithmetic on whole takes at once: numpy arrays with the frames as the leading axis.

Matrices are (..., 3, 3) acting on column vectors; quaternions are (..., 4) in Blender's order
(w, x, y, z); Euler angles follow Blender's rotation modes ('XYZ' applies X first, so R = Rz·Ry·Rx).
Everything is vectorised because a ten-minute take is 18,000 frames per bone, and Python loops
over frames would dominate the time.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-9


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, EPS)


def any_perpendicular(v: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to each (unit) v."""
    helper = np.where(np.abs(v[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    return unit(np.cross(v, helper))


def frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The orthonormal frame (columns e1, e2, e3) with e1 along a and e2 toward b (b's part
    perpendicular to a; any perpendicular where b is parallel to a)."""
    e1 = unit(a)
    b_perp = b - np.sum(b * e1, axis=-1, keepdims=True) * e1
    ok = np.linalg.norm(b_perp, axis=-1, keepdims=True) > 1e-6
    e2 = np.where(ok, unit(b_perp), any_perpendicular(e1))
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def skew(k: np.ndarray) -> np.ndarray:
    z = np.zeros(k.shape[:-1])
    return np.stack([np.stack([z, -k[..., 2], k[..., 1]], -1),
                     np.stack([k[..., 2], z, -k[..., 0]], -1),
                     np.stack([-k[..., 1], k[..., 0], z], -1)], -2)


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation by `angle` (radians) about unit `axis`."""
    k = skew(axis)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def swing(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction u onto direction v (both unit)."""
    c = np.sum(u * v, axis=-1)
    axis = np.cross(u, v)
    sin = np.linalg.norm(axis, axis=-1)
    opposite = c < -1 + 1e-9
    axis = np.where(opposite[..., None], any_perpendicular(u), axis / np.maximum(sin, EPS)[..., None])
    return axis_angle_matrix(axis, np.arctan2(sin, c) + np.where(opposite, np.pi - np.arctan2(sin, c), 0.0))


def rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def mat_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices → unit quaternions (w, x, y, z), by the largest of the four pivots."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    pivots = np.stack([m00 + m11 + m22, m00 - m11 - m22, m11 - m00 - m22, m22 - m00 - m11], -1)
    which = np.argmax(pivots, axis=-1)
    s = 2.0 * np.sqrt(np.maximum(1.0 + np.max(pivots, axis=-1), EPS))
    cands = np.stack([
        np.stack([s / 4, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s], -1),
        np.stack([(m21 - m12) / s, s / 4, (m01 + m10) / s, (m02 + m20) / s], -1),
        np.stack([(m02 - m20) / s, (m01 + m10) / s, s / 4, (m12 + m21) / s], -1),
        np.stack([(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, s / 4], -1)], -2)
    q = np.take_along_axis(cands, which[..., None, None], axis=-2)[..., 0, :]
    return unit(q)


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(unit(q), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def partial(m: np.ndarray, share: float | np.ndarray) -> np.ndarray:
    """The rotation `share` of the way from identity to m, about m's own axis (the short way)."""
    q = mat_to_quat(m)
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)
    half = np.arccos(np.clip(q[..., 0], -1.0, 1.0))
    axis = np.where((half > 1e-9)[..., None], unit(q[..., 1:]), np.array([1.0, 0.0, 0.0]))
    return axis_angle_matrix(axis, 2 * half * share)


def continuous(q: np.ndarray) -> np.ndarray:
    """Flip quaternion signs along axis 0 so each frame sits in the hemisphere of the one before
    (q and −q are the same rotation, but interpolating across a sign flip spins the bone); the
    first frame gets w ≥ 0."""
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.concatenate([np.where(q[:1, 0] < 0, -1.0, 1.0), np.where(dots < 0, -1.0, 1.0)])
    return q * np.cumprod(flips)[:, None]


def angle_between_quats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) taking a to b, sign-blind."""
    d = np.abs(np.sum(unit(a) * unit(b), axis=-1))
    return 2 * np.arccos(np.clip(d, 0.0, 1.0))


def angle_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle (radians) between directions, robust near 0 and π."""
    return np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), np.sum(u * v, axis=-1))


# -- Euler modes --------------------------------------------------------------------------------
_AXIS = {"X": 0, "Y": 1, "Z": 2}


def _basic(axis: int, angle: np.ndarray) -> np.ndarray:
    e = np.zeros(angle.shape + (3,))
    e[..., axis] = 1.0
    return axis_angle_matrix(e, angle)


def euler_to_mat(e: np.ndarray, order: str) -> np.ndarray:
    """Blender Euler angles (..., 3) in `order` ('XYZ' … 'ZYX') → matrices; e[..., i] is the angle
    about axis i (X, Y, Z), whatever the order."""
    m = np.broadcast_to(np.eye(3), e.shape[:-1] + (3, 3))
    for ax in order:  # the first axis in the order is applied first
        i = _AXIS[ax]
        m = _basic(i, e[..., i]) @ m
    return m


def mat_to_euler(m: np.ndarray, order: str) -> np.ndarray:
    """Matrices → Blender Euler angles in `order` (of the two solutions the one mathutils gives)."""
    i, j, k = (_AXIS[a] for a in order)
    parity = (j - i) % 3 != 1  # odd permutations (XZY, YXZ, ZYX) negate
    sgn = -1.0 if parity else 1.0
    # Write R = Rk(c)·Rj(b)·Ri(a). Its entries in the (i, j, k) basis give the angles.
    r = lambda row, col: m[..., row, col]  # noqa: E731
    cy = np.hypot(r(i, i), r(j, i))
    b = np.arctan2(-sgn * r(k, i), cy)
    a = np.where(cy > 1e-7, np.arctan2(sgn * r(k, j), r(k, k)), np.arctan2(-sgn * r(j, k), r(j, j)))
    c = np.where(cy > 1e-7, np.arctan2(sgn * r(j, i), r(i, i)), 0.0)
    out = np.empty(m.shape[:-2] + (3,))
    out[..., i], out[..., j], out[..., k] = a, b, c
    alt = np.empty_like(out)  # the other solution; keep the smaller angles, as mathutils does
    alt[..., i], alt[..., j], alt[..., k] = _wrap(a + np.pi), _wrap(np.pi - b), _wrap(c + np.pi)
    smaller = np.abs(alt).sum(-1) < np.abs(out).sum(-1)
    return np.where(smaller[..., None], alt, out)


def _wrap(x: np.ndarray) -> np.ndarray:
    return (x + np.pi) % (2 * np.pi) - np.pi


def continuous_euler(e: np.ndarray) -> np.ndarray:
    """Remove 2π jumps along axis 0 (each angle stays near the frame before)."""
    return np.unwrap(e, axis=0)
