"""The rule-based conductor (`--engine rules`): beats and loudness in, a conducting pattern out.

This is the day-one engine: it never misses a beat because it places every ictus on a tracked beat.

* Metre and downbeat: 3 or 4 beats a bar, whichever groups the beats' onset strengths best.
* Right hand: the standard pattern as the conductor sees it (4: down, left across the body, right,
  up; 3: down, right, up). Between two ictus points the hand follows a ballistic arc — it rebounds,
  slows, and falls with growing speed into the next ictus, so the lowest point of each stroke is
  exactly on its beat. Before the music the hand waits at the ready; a beat before the first one
  it lifts for the preparation; after the last beat it rebounds and holds.
* Dynamics: loudness scales the pattern's width, the rebound's height and the plane's height.
* Left hand: rests near the waist when the music is quiet and mirrors the right hand when loud.
* Body: the torso leans in with loudness and turns a little with the baton; elbows by two-bone IK.

Everything is in the engine's 3D conventions (skeleton.py); the 2D take is its front projection.
"""

from __future__ import annotations

import numpy as np

from . import skeleton as sk
from .beats import Beats, onset_envelope
from .features import MEL_FPS, TOP_DB

SW = sk.SHOULDER_WIDTH_M
DYNAMIC_RANGE_DB = 24.0
SHOULDER_Z = sk.HIP_HEIGHT + sk.TORSO * SW
# Ictus points of the right hand relative to its beat point, (x, z) in metres (+x = conductor's left).
PATTERNS = {
    3: [(0.0, 0.0), (-0.22, 0.03), (-0.06, 0.10)],
    4: [(0.0, 0.0), (0.17, 0.03), (-0.22, 0.03), (-0.06, 0.10)],
}
R_BEAT_POINT = np.array([-0.20, -0.42, SHOULDER_Z - 0.28])
L_REST = np.array([0.20, -0.22, sk.HIP_HEIGHT + 0.10])
R_REST = np.array([-0.20, -0.22, sk.HIP_HEIGHT + 0.10])


def loudness_curve(mel: np.ndarray, n_frames: int, fps: float = 30.0) -> np.ndarray:
    """(n_frames,) loudness in [0, 1] from the scaled mel, smoothed over one second: 1 at the piece's
    loud passages, 0 at DYNAMIC_RANGE_DB below them (roughly ff to pp) or quieter."""
    level = 10 * np.log10(np.mean(10.0 ** ((mel - 1.0) * TOP_DB / 10), axis=1) + 1e-10)  # dB re max
    t90 = np.arange(len(level)) / MEL_FPS
    frames = np.interp(np.arange(n_frames) / fps, t90, level)
    k = int(fps)
    smooth = np.convolve(np.pad(frames, k, mode="edge"), np.ones(k) / k, mode="same")[k:-k]
    top = np.percentile(smooth, 98)  # the piece's loud passages
    return np.clip((smooth - (top - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0.0, 1.0)


def choose_metre(mel: np.ndarray, beat_times: np.ndarray) -> tuple[int, int]:
    """(beats per bar, index of the first downbeat) that best groups the beats' accents."""
    if len(beat_times) < 6:
        return 4, 0
    env = onset_envelope(mel)
    idx = np.clip(np.round(beat_times * MEL_FPS).astype(int), 0, len(env) - 1)
    strength = np.array([env[max(0, i - 4): i + 5].max() for i in idx])
    best = (-np.inf, 4, 0)
    for metre in (4, 3):
        for phase in range(metre):
            on = strength[phase::metre]
            contrast = on.mean() - np.delete(strength, np.arange(phase, len(strength), metre)).mean()
            if contrast > best[0] + (0.05 if metre == 3 else 0.0):  # prefer 4 when it is a tie
                best = (contrast, metre, phase)
    return best[1], best[2]


def _ik_elbow(shoulder: np.ndarray, wrist: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK: elbow placed out to the side and down; the wrist is pulled in if out of reach."""
    a, b = sk.UPPER_ARM * SW, sk.FOREARM * SW
    d_vec = wrist - shoulder
    d = np.linalg.norm(d_vec, axis=1, keepdims=True)
    d_c = np.clip(d, abs(a - b) + 1e-3, a + b - 1e-3)
    u = d_vec / np.maximum(d, 1e-9)
    wrist = shoulder + u * d_c
    pole = np.array([side * 0.8, 0.3, -1.0])
    v = pole - (u @ pole)[:, None] * u
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cos_a = np.clip((a * a + d_c ** 2 - b * b) / (2 * a * d_c), -1, 1)
    elbow = shoulder + a * (cos_a * u + np.sqrt(1 - cos_a ** 2) * v)
    return elbow, wrist


def right_hand_path(beat_times: np.ndarray, metre: int, first_downbeat: int, loud: np.ndarray,
                    fps: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 3) baton-hand positions with each ictus on its beat."""
    n = len(loud)
    t = np.arange(n) / fps
    pattern = np.array(PATTERNS[metre])
    width = rng.uniform(0.85, 1.15)
    point = R_BEAT_POINT + np.array([0.0, 0.0, rng.uniform(-0.03, 0.03)])
    if len(beat_times) == 0:
        return np.tile(R_REST, (n, 1))

    def loud_at(time: float) -> float:
        return float(np.interp(time, t, loud))

    def ictus(k: int, time: float) -> np.ndarray:
        x, z = pattern[(k - first_downbeat) % metre]
        g = 0.35 + 1.2 * loud_at(time)
        return point + np.array([x * width * g, 0.0, z * g + 0.12 * loud_at(time)])

    period = float(np.median(np.diff(beat_times))) if len(beat_times) > 1 else 0.6
    times = np.concatenate([[beat_times[0] - period], beat_times])
    points = np.array([ictus(k - 1, tb) for k, tb in enumerate(times)])
    heights = np.array([0.07 + 0.25 * loud_at(tb) for tb in times])
    # Hands still at the ready (just above the first ictus) until the preparation: one beat up and
    # down into the first ictus.
    points[0] = points[1] + np.array([0.0, 0.0, 0.02])
    pos = np.tile(points[0], (n, 1))
    for i in range(len(times) - 1):
        a, b = times[i], times[i + 1]
        m = (t >= a) & (t < b)
        u = (t[m] - a) / (b - a)
        s = u * u * (3 - 2 * u)
        arc = points[i] + (points[i + 1] - points[i]) * s[:, None]
        if i == 0:  # preparation: rise from rest to above the first ictus, then fall into it
            top = points[1, 2] + heights[0]
            rise = np.clip(2 * u, 0, 1)
            arc[:, 2] = np.where(u < 0.5, points[0, 2] + (top - points[0, 2]) * rise * rise * (3 - 2 * rise),
                                 top - heights[0] * (2 * u - 1) ** 2)
        else:
            arc[:, 2] = points[i, 2] + (points[i + 1, 2] - points[i, 2]) * u + heights[i] * 4 * u * (1 - u)
        pos[m] = arc
    # after the last ictus: rebound and hold
    m = t >= times[-1]
    u = np.clip((t[m] - times[-1]) / period, 0, 1)
    pos[m] = points[-1] + np.array([0.0, 0.0, 1.0]) * (heights[-1] * np.sin(0.5 * np.pi * u))[:, None]
    return pos


def conduct(mel: np.ndarray, beats: Beats, n_frames: int, fps: float = 30.0, seed: int = 0) -> np.ndarray:
    """(n_frames, 13, 3) conducting motion for the music whose mel features and beats are given."""
    rng = np.random.default_rng(seed)
    loud = loudness_curve(mel, n_frames, fps)
    metre, first = choose_metre(mel, beats.times)
    r_wrist = right_hand_path(beats.times, metre, first, loud, fps, rng)
    mirror = np.clip((loud - 0.6) / 0.3, 0, 1) ** 2
    mirrored = r_wrist * np.array([-1.0, 1.0, 1.0])
    l_wrist = L_REST + (mirrored - L_REST) * mirror[:, None]

    hip_c = np.tile([0.0, 0.0, sk.HIP_HEIGHT], (n_frames, 1))
    lean = 0.05 + 0.10 * loud
    yaw = 0.25 * (r_wrist[:, 0] - R_BEAT_POINT[0])
    sh_c = hip_c + sk.TORSO * SW * np.stack([np.zeros(n_frames), -np.sin(lean), np.cos(lean)], axis=1)
    p = np.zeros((n_frames, 13, 3))
    for joint, side in ((sk.L_SHOULDER, 1.0), (sk.R_SHOULDER, -1.0)):
        p[:, joint] = sh_c + sk.rot_z(np.array([side * SW / 2, 0.0, 0.0]), yaw)
    for joint, side in ((sk.L_HIP, 1.0), (sk.R_HIP, -1.0)):
        p[:, joint] = hip_c + sk.rot_z(np.array([side * sk.HIP_WIDTH * SW / 2, 0.0, 0.0]), yaw * 0.3)
    for joint, (lat, fwd, up) in sk.FACE.items():
        p[:, joint] = sh_c + sk.rot_z(np.array([lat * SW, -fwd * SW, up * SW]), yaw)
    for sh, el, wr, wrist, side in ((sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST, l_wrist, 1.0),
                                    (sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST, r_wrist, -1.0)):
        p[:, el], p[:, wr] = _ik_elbow(p[:, sh], wrist, side)
    return p
