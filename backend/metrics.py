"""How conducting motion is judged (../shared/metrics.md), for tests, benchmarks and evaluation.

Motion is (T, 13, 2) image units (y down) or (T, 13, 3) at `fps`; times are seconds.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks, savgol_filter

from .skeleton import R_WRIST, bone_lengths

ICTUS_WINDOW = 0.07


def ictus_times(motion_2d: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Lowest points of the baton hand's strokes: local maxima of its image y (smoothed with a
    Savitzky–Golay filter, window 5, order 2) at least 0.15 s apart, with prominence ≥ 10% of the
    median vertical range over the surrounding 2 s."""
    y = motion_2d[:, R_WRIST, 1].astype(np.float64)
    if len(y) < 5:
        return np.zeros(0)
    y = savgol_filter(y, 5, 2)
    peaks, props = find_peaks(y, distance=max(1, int(round(0.15 * fps))), prominence=0)
    half = int(fps)
    ranges = np.array([np.ptp(y[max(0, i - half): i + half + 1]) for i in range(len(y))])
    keep = [p for p, prom in zip(peaks, props["prominences"])
            if prom >= 0.1 * np.median(ranges[max(0, p - half): p + half + 1])]
    return np.asarray(keep, dtype=np.float64) / fps


def f_measure(est: np.ndarray, ref: np.ndarray, window: float = ICTUS_WINDOW) -> float:
    """Beat-tracking F-measure with one-to-one matching inside ±window (as mir_eval)."""
    if len(est) == 0 or len(ref) == 0:
        return 0.0
    est, ref = np.sort(est), np.sort(ref)
    used = np.zeros(len(est), bool)
    hits = 0
    for r in ref:  # greedy nearest matching is exact for windows shorter than half the beat period
        d = np.abs(est - r)
        d[used] = np.inf
        i = int(np.argmin(d))
        if d[i] <= window:
            used[i] = True
            hits += 1
    p, rcl = hits / len(est), hits / len(ref)
    return 0.0 if hits == 0 else 2 * p * rcl / (p + rcl)


def ictus_f(ictus: np.ndarray, beats: np.ndarray) -> float:
    """The better of the two metrical levels: every beat, or every other beat (either phase)."""
    return max(f_measure(ictus, beats), f_measure(ictus, beats[0::2]), f_measure(ictus, beats[1::2]))


def ictus_f_chance(ictus: np.ndarray, beats: np.ndarray, shifts: int = 20, seed: int = 0) -> float:
    """ictus_f against beats circularly shifted by 0.25–0.75 of the median period, averaged."""
    if len(beats) < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    period = float(np.median(np.diff(beats)))
    lo, hi = beats[0], beats[-1] + period
    scores = []
    for _ in range(shifts):
        shifted = lo + (beats - lo + rng.uniform(0.25, 0.75) * period) % (hi - lo)
        scores.append(ictus_f(ictus, np.sort(shifted)))
    return float(np.mean(scores))


def jitter(motion: np.ndarray) -> float:
    """Mean |second difference| ÷ mean |first difference| over all joints (lower is smoother)."""
    d1 = np.abs(np.diff(motion, axis=0)).mean()
    d2 = np.abs(np.diff(motion, n=2, axis=0)).mean()
    return float(d2 / max(d1, 1e-12))


def seam(motion: np.ndarray, at: np.ndarray | None = None, around: int = 15) -> float:
    """How much the motion jumps where windows join: the largest ratio, over the join frames `at`
    (every frame if None), of the step into that frame (mean over joints) to the median step within
    `around` frames (0.5 s) of it. A window boundary that restarts the motion shows as a step ~5×
    its neighbours (the paper's 60 s chunks); a seamless join looks like any other frame (≈ 1–2).
    metrics.md's global "largest step ÷ median step" would count every fast downbeat of a piece as
    a seam, so the comparison is made locally, at the joins."""
    steps = np.linalg.norm(np.diff(motion, axis=0), axis=-1).mean(axis=1)
    frames = np.arange(1, len(motion)) if at is None else np.asarray(at, dtype=int)
    if len(frames) == 0:
        return 0.0  # nothing joins, nothing can jump
    ratios = []
    for t in frames:
        i = t - 1  # index of the step from frame t-1 to t
        lo, hi = max(0, i - around), min(len(steps), i + around + 1)
        neighbours = np.delete(steps[lo:hi], i - lo)
        ratios.append(steps[i] / max(np.median(neighbours), 1e-12))
    return float(max(ratios))


def seed_diversity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean L2 distance between two motions ÷ mean L2 distance of a motion from its own mean pose."""
    between = np.linalg.norm(a - b, axis=-1).mean()
    spread = np.linalg.norm(a - a.mean(axis=0, keepdims=True), axis=-1).mean()
    return float(between / max(spread, 1e-12))


def bone_length_cv(motion_3d: np.ndarray) -> float:
    """Largest coefficient of variation of a bone's length over time."""
    lengths = bone_lengths(motion_3d)
    return float((lengths.std(axis=0) / lengths.mean(axis=0)).max())


def ripple_ratio(motion: np.ndarray, fps: float = 30.0) -> float:
    """Share of the motion's velocity power in the 8–12 Hz band (the 3-frame ripple)."""
    v = np.diff(motion.reshape(len(motion), -1), axis=0)
    spec = np.abs(np.fft.rfft(v - v.mean(0), axis=0)) ** 2
    f = np.fft.rfftfreq(len(v), 1 / fps)
    return float(spec[(f >= 8) & (f <= 12)].sum() / max(spec.sum(), 1e-12))
