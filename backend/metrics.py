"""How conducting motion is judged (../shared/metrics.md), for tests, benchmarks and evaluation:
every measure there is one function here, with a known-answer test in tests/test_metrics.py.

Motion is (T, 13, 2) image units (y down) or (T, 13, 3) at `fps`; times are seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks, savgol_filter, welch

from baton_core.skeleton import (L_ELBOW, L_HIP, L_SHOULDER, L_WRIST, NOSE, R_ELBOW, R_HIP, R_SHOULDER, R_WRIST,
                                 bone_lengths)
from baton_core.timebase import MOTION_FPS

ICTUS_WINDOW = 0.07
PATTERN_MATCH_WINDOW = 0.10  # an ictus belongs to a reference beat within ±100 ms (pattern legibility)
BAS_SIGMA = 0.1
MIN_PROMINENCE = 1e-9  # below any real stroke: a hand at rest has rounding noise, not ictus


@dataclass(frozen=True)
class Bar:
    """One bar as the judges read it: its main beats (s), the next bar's downbeat (s), and the
    key of its standard pattern in STANDARD_PATTERNS ("" when only the beats are known)."""

    beats: np.ndarray
    next_downbeat: float
    pattern: str = ""


def bars_from_downbeats(beats: np.ndarray, downbeats: np.ndarray) -> list[Bar]:
    """Bars of reference beats between consecutive downbeats (a beat up to 50 ms early counts),
    keeping those of two or more beats whose count has a standard pattern."""
    bars = []
    for d0, d1 in zip(downbeats, downbeats[1:]):
        b = beats[(beats >= d0 - 0.05) & (beats < d1 - 0.05)]
        if len(b) >= 2 and str(len(b)) in STANDARD_PATTERNS:
            bars.append(Bar(b, float(d1), str(len(b))))
    return bars


def shoulder_width(motion_2d: np.ndarray) -> float:
    """The median distance between the shoulders: the unit of gesture size and left-hand travel."""
    return float(np.median(np.linalg.norm(motion_2d[:, L_SHOULDER] - motion_2d[:, R_SHOULDER], axis=-1)))


def ictus_times(motion_2d: np.ndarray, fps: float = MOTION_FPS) -> np.ndarray:
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
            if prom >= 0.1 * np.median(ranges[max(0, p - half): p + half + 1]) and prom > MIN_PROMINENCE]
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


def beat_align_score(ictus: np.ndarray, beats: np.ndarray, sigma: float = BAS_SIGMA) -> float:
    """BAS (dance papers' measure, for comparison only: spurious minima raise it): the mean over
    reference beats of exp(−d² / 2σ²), d the distance to the nearest ictus."""
    if len(beats) == 0 or len(ictus) == 0:
        return 0.0
    d = np.abs(np.asarray(beats)[:, None] - np.asarray(ictus)[None, :]).min(axis=1)
    return float(np.mean(np.exp(-d ** 2 / (2 * sigma ** 2))))


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


def ripple_ratio(motion: np.ndarray, fps: float = MOTION_FPS) -> float:
    """Share of the motion's velocity power in the 8–12 Hz band (the 3-frame ripple)."""
    v = np.diff(motion.reshape(len(motion), -1), axis=0)
    spec = np.abs(np.fft.rfft(v - v.mean(0), axis=0)) ** 2
    f = np.fft.rfftfreq(len(v), 1 / fps)
    return float(spec[(f >= 8) & (f <= 12)].sum() / max(spec.sum(), 1e-12))


# ---- conducting patterns (../shared/metrics.md: pattern and downbeat accuracy) ----------------------
# Each bar's main beats read as: D — beat 1, the bar's largest fall; L / R — an ictus placed to the
# conductor's left / right of the previous one; U — the last beat, after which the hand rises highest.
# The standard patterns as the conductor sees them (kept here, apart from the generator, as the judge's copy).
STANDARD_PATTERNS = {"1": "D", "2": "DU", "3": "DRU", "4": "DLRU", "6": "DLLRRU", "5:3+2": "DLLRU",
                     "5:2+3": "DLRRU", "7:3+2+2": "DLLRRRU", "7:2+2+3": "DLLLRRU", "9": "DLLRRRLLU",
                     "12": "DLLLLLRRRLLU"}


def _bar_strokes(motion_2d: np.ndarray, beats: np.ndarray, next_down: float, fps: float):
    """Frames of the lowest point near each main beat, and the fall into / rise after each."""
    y = savgol_filter(motion_2d[:, R_WRIST, 1].astype(np.float64), 5, 2) if len(motion_2d) >= 5 else \
        motion_2d[:, R_WRIST, 1].astype(np.float64)
    n = len(y)
    w = max(1, int(round(ICTUS_WINDOW * fps)))
    period = float(np.median(np.diff(np.append(beats, next_down))))
    frames = []
    for b in np.append(beats, next_down):
        c = int(round(b * fps))
        lo, hi = max(0, c - w), min(n, c + w + 1)
        frames.append(lo + int(np.argmax(y[lo:hi])) if hi > lo else min(max(c, 0), n - 1))
    prev = max(0, int(round((beats[0] - period) * fps)))
    frames = np.array(frames)
    starts = np.concatenate([[prev], frames[:-1]])
    drop = np.array([y[f] - y[min(s, f):f + 1].min() for s, f in zip(starts[:-1], frames[:-1])])
    rise = np.array([y[f] - y[f:max(g, f + 1)].min() for f, g in zip(frames[:-1], frames[1:])])
    return frames[:-1], drop, rise


def bar_labels(motion_2d: np.ndarray, beats: np.ndarray, next_down: float, fps: float = MOTION_FPS) -> str:
    """How a bar's strokes read (D/L/R/U, S for in place, '-' for a beat that is neither D nor U where
    it should be): beat 1 is D when its fall is the bar's largest, the last beat U when the rise after
    it is the largest, the others L or R by where their ictus lies relative to the previous one."""
    frames, drop, rise = _bar_strokes(motion_2d, beats, next_down, fps)
    x = savgol_filter(motion_2d[:, R_WRIST, 0].astype(np.float64), 5, 2) if len(motion_2d) >= 5 else \
        motion_2d[:, R_WRIST, 0].astype(np.float64)
    xs = x[frames]
    tau = max(0.05 * float(np.ptp(xs)), 1e-4)
    m = len(beats)
    out = []
    for j in range(m):
        if j == 0:
            out.append("D" if int(np.argmax(drop)) == 0 else "-")
        elif j == m - 1:
            out.append("U" if int(np.argmax(rise)) == m - 1 else "-")
        else:
            dx = xs[j] - xs[j - 1]  # image x grows toward the conductor's left
            out.append("L" if dx > tau else "R" if dx < -tau else "S")
    return "".join(out)


def pattern_accuracy(motion_2d: np.ndarray, bars: list[Bar], fps: float = MOTION_FPS) -> float:
    """Fraction of bars (with two or more beats) whose strokes read as their standard pattern."""
    ok = [bar_labels(motion_2d, np.asarray(b.beats), b.next_downbeat, fps) == STANDARD_PATTERNS[b.pattern.split("/")[0]]
          for b in bars if len(b.beats) >= 2]
    return float(np.mean(ok)) if ok else float("nan")


def downbeat_accuracy(motion_2d: np.ndarray, bars: list[Bar], fps: float = MOTION_FPS) -> float:
    """Fraction of bars (with two or more beats) whose largest downward stroke lands on beat 1 —
    against the score's bars, or on recordings against an independent downbeat tracker's."""
    ok = []
    for b in bars:
        if len(b.beats) >= 2:
            _, drop, _ = _bar_strokes(motion_2d, np.asarray(b.beats), b.next_downbeat, fps)
            ok.append(int(np.argmax(drop)) == 0)
    return float(np.mean(ok)) if ok else float("nan")


def pattern_legibility(motion_2d: np.ndarray, bars: list[Bar], fps: float = MOTION_FPS, shuffles: int = 20,
                       seed: int = 0) -> tuple[float, float]:
    """(R², chance): the share of the variance of the baton hand's ictus positions (x, y) explained
    by their beat in the bar (1 − within-group ÷ total sum of squares), for the ictus matched to
    each reference beat within ±100 ms; chance = the mean R² with the beat labels shuffled."""
    ictus = ictus_times(motion_2d, fps)
    points, labels = [], []
    for b in bars:
        for k, t in enumerate(np.asarray(b.beats)):
            if len(ictus) == 0:
                break
            i = int(np.argmin(np.abs(ictus - t)))
            if abs(ictus[i] - t) <= PATTERN_MATCH_WINDOW:
                points.append(motion_2d[int(round(ictus[i] * fps)), R_WRIST, :2])
                labels.append(k)
    if len(points) < 3 or len(set(labels)) < 2:
        return float("nan"), float("nan")
    points, labels = np.asarray(points, np.float64), np.asarray(labels)

    def r2(lab: np.ndarray) -> float:
        total = ((points - points.mean(axis=0)) ** 2).sum()
        within = sum(((points[lab == g] - points[lab == g].mean(axis=0)) ** 2).sum() for g in np.unique(lab))
        return float(1 - within / total) if total > 0 else 0.0

    rng = np.random.default_rng(seed)
    return r2(labels), float(np.mean([r2(rng.permutation(labels)) for _ in range(shuffles)]))


def gesture_sizes(motion_2d: np.ndarray, bars: list[Bar], fps: float = MOTION_FPS) -> np.ndarray:
    """Per bar: the bounding-box diagonal of the baton hand's path from the bar's first beat to
    the next downbeat, in shoulder widths."""
    sw = max(shoulder_width(motion_2d), 1e-9)
    sizes = []
    for b in bars:
        lo, hi = int(round(b.beats[0] * fps)), int(round(b.next_downbeat * fps)) + 1
        path = motion_2d[max(lo, 0):min(hi, len(motion_2d)), R_WRIST, :2]
        sizes.append(float(np.linalg.norm(np.ptp(path, axis=0))) / sw if len(path) else float("nan"))
    return np.asarray(sizes)


# ---- expression ------------------------------------------------------------------------------------
def rms_db(samples: np.ndarray, sr: int, fps: float = MOTION_FPS, floor_db: float = 80.0) -> np.ndarray:
    """Audio RMS level in dB at `fps`, floored `floor_db` below the loudest frame."""
    hop = sr / fps
    n = int(len(samples) * fps // sr)  # whole frames, without the rounding error of len / hop
    idx = (np.arange(n)[:, None] * hop + np.arange(int(hop))[None, :]).astype(int)
    rms = np.sqrt(np.mean(np.asarray(samples, np.float64)[np.minimum(idx, len(samples) - 1)] ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    return np.maximum(db, db.max() - floor_db) if n else db


def hand_speed(motion: np.ndarray, fps: float = MOTION_FPS, joint: int = R_WRIST) -> np.ndarray:
    """(T,) speed of a joint in motion units per second (the first frame repeats the second)."""
    v = np.linalg.norm(np.diff(motion[:, joint], axis=0), axis=-1) * fps
    return np.concatenate([v[:1], v]) if len(v) else np.zeros(len(motion))


def dynamics_correlation(motion: np.ndarray, samples: np.ndarray, sr: int, fps: float = MOTION_FPS,
                         shifts: int = 20, seed: int = 0) -> tuple[float, float]:
    """(r, chance): Pearson r between the 2 s moving averages of the baton hand's speed and of the
    audio's RMS level in dB; chance = the 95th percentile of r with the loudness circularly shifted
    by at least 10 s (20 shifts)."""
    return loudness_correlation(motion, rms_db(samples, sr, fps), fps, shifts, seed)


def loudness_correlation(motion: np.ndarray, loud_db: np.ndarray, fps: float = MOTION_FPS,
                         shifts: int = 20, seed: int = 0) -> tuple[float, float]:
    """dynamics_correlation for a loudness curve (dB, one value per motion frame) already at hand."""
    speed = hand_speed(motion, fps)
    n = min(len(loud_db), len(speed))
    if n < 3:
        return float("nan"), float("nan")
    win = int(round(2 * fps))
    a = uniform_filter1d(speed[:n], win, mode="nearest")
    b = uniform_filter1d(np.asarray(loud_db[:n], np.float64), win, mode="nearest")
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0, float("nan")
    r = float(np.corrcoef(a, b)[0, 1])
    lo = int(10 * fps)
    if n <= 2 * lo:
        return r, float("nan")
    rng = np.random.default_rng(seed)
    chance = [np.corrcoef(a, np.roll(b, int(rng.integers(lo, n - lo))))[0, 1] for _ in range(shifts)]
    return r, float(np.percentile(chance, 95))


HAND_REACH = 0.21  # shoulder widths from the wrist to the centre of the hand, along the forearm
# The face as the players see it, in shoulder widths about the nose: half its width (the head's 0.2
# and half a hand), how far it reaches below (the chin) and above (the top of the head).
FACE_HALF_WIDTH, FACE_BELOW, FACE_ABOVE = 0.25, 0.2, 0.45
ARMS = ((R_ELBOW, R_WRIST), (L_ELBOW, L_WRIST))  # the baton hand's first


def hand_centre(motion: np.ndarray, sw: float, elbow: int = R_ELBOW, wrist: int = R_WRIST) -> np.ndarray:
    """(T, D) the centre of a hand (the baton hand's by default), 2D or 3D: HAND_REACH shoulder
    widths (`sw`, in the motion's units) on from the wrist along the forearm; the skeleton ends at
    the wrist."""
    fore = motion[:, wrist] - motion[:, elbow]
    return motion[:, wrist] + HAND_REACH * sw * fore / np.maximum(np.linalg.norm(fore, axis=-1, keepdims=True), 1e-9)


def face_covered(motion_2d: np.ndarray) -> float:
    """Share of frames in which either hand is in front of the face (front view): players read the
    conductor's eyes, and conducting teachers keep the hands out of the face. Baton's own measure,
    beside ../shared/metrics.md's."""
    sw = shoulder_width(motion_2d)
    inside = np.zeros(len(motion_2d), bool)
    for elbow, wrist in ARMS:
        hand = hand_centre(motion_2d, sw, elbow, wrist)
        up = (motion_2d[:, NOSE, 1] - hand[:, 1]) / sw  # image y points down
        inside |= (np.abs(hand[:, 0] - motion_2d[:, NOSE, 0]) < FACE_HALF_WIDTH * sw) & (up > -FACE_BELOW) & (up < FACE_ABOVE)
    return float(inside.mean())


# The hip as the players see it, in shoulder widths about the left hip joint: from a little inside it
# to the waist's outline and past it (a hand set on the hip lies on the outline), from the joint's
# height up to the top of the pelvis. A hand resting before the belly lies inside; one hanging, below.
HIP_INSIDE, HIP_OUTSIDE, HIP_ABOVE = 0.1, 0.4, 0.45


def left_hand_on_hip(motion_2d: np.ndarray) -> float:
    """Share of frames in which the left hand's centre is at the hip's side (front view): a conductor's
    resting left hand is before the body at the waist or hangs, and one set on the hip reads as
    idleness (../shared/metrics.md). Baton's own measure, beside face_covered."""
    sw = shoulder_width(motion_2d)
    hand = hand_centre(motion_2d, sw, L_ELBOW, L_WRIST)
    hip = motion_2d[:, L_HIP]
    side = np.sign(np.median(hip[:, 0] - motion_2d[:, R_HIP, 0]))  # the left hip's side of the body
    out = side * (hand[:, 0] - hip[:, 0]) / sw
    up = (hip[:, 1] - hand[:, 1]) / sw  # image y points down
    return float(np.mean((out > -HIP_INSIDE) & (out < HIP_OUTSIDE) & (up > 0) & (up < HIP_ABOVE)))


def left_hand_use(motion_2d: np.ndarray, fps: float = MOTION_FPS, window_s: float = 2.0, travel: float = 0.5) -> float:
    """Share of 2 s windows in which the left wrist travels (path length) more than half a
    shoulder width: conductors use the left hand for cues, dynamics and tutti and rest it otherwise,
    so both 0 and 1 are wrong."""
    steps = np.linalg.norm(np.diff(motion_2d[:, L_WRIST, :2], axis=0), axis=-1) / max(shoulder_width(motion_2d), 1e-9)
    w = int(round(window_s * fps))
    windows = [steps[a:a + w].sum() for a in range(0, len(steps) - w + 1, w)]
    return float(np.mean(np.asarray(windows) > travel)) if windows else float("nan")


def left_hand_shaping(motion_2d: np.ndarray, loud_db: np.ndarray, fps: float = MOTION_FPS) -> float:
    """Pearson r between the left wrist's height (image y points down) and the loudness (dB, one
    value per motion frame), both as 2 s moving averages."""
    n = min(len(motion_2d), len(loud_db))
    win = int(round(2 * fps))
    a = uniform_filter1d(-motion_2d[:n, L_WRIST, 1].astype(np.float64), win, mode="nearest")
    b = uniform_filter1d(np.asarray(loud_db[:n], np.float64), win, mode="nearest")
    if n < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


CUE_TRAVEL = 0.3  # shoulder widths the left hand moves in the beat before an entrance to cue it


def cues_given(motion_2d: np.ndarray, entries: np.ndarray, periods: np.ndarray, fps: float = MOTION_FPS) -> np.ndarray:
    """(len(entries),) bool: whether the left hand cues each entrance (at `entries` s, with its
    beat's period): in the beat before it, the left wrist gets at least CUE_TRAVEL shoulder widths
    from where it was one and a half beats before — it lifts or reaches toward the section, where a
    hand at rest would not. An entrance too near the start or end to judge counts as not cued."""
    sw = max(shoulder_width(motion_2d), 1e-9)
    wrist = motion_2d[:, L_WRIST, :2].astype(np.float64)
    out = []
    for t, p in zip(np.asarray(entries, float), np.asarray(periods, float)):
        a, b, c = (int(round(x * fps)) for x in (t - 1.5 * p, t - p, t))
        if a < 0 or c >= len(wrist):
            out.append(False)
            continue
        reach = np.linalg.norm(wrist[b:c + 1] - wrist[a], axis=-1).max() / sw
        out.append(bool(reach >= CUE_TRAVEL))
    return np.array(out, bool)


SOUND_DB = 40.0  # a frame sounds within this many dB of the piece's loudest
EDGE_SILENCE = 0.5  # s of silence before the first sound (after the last) for an excerpt to start (end) in sound
EDGE_REACH = 1.5  # s before the first sound (after the last) where the preparation (release) is looked for
EDGE_TRAVEL = 0.25  # shoulder widths: the smallest preparation rise or release gesture


def sounding(loud_db: np.ndarray) -> np.ndarray:
    """Frames whose level is within SOUND_DB of the loudest."""
    loud_db = np.asarray(loud_db, np.float64)
    return loud_db >= loud_db.max() - SOUND_DB if len(loud_db) else np.zeros(0, bool)


def preparation(motion_2d: np.ndarray, loud_db: np.ndarray, fps: float = MOTION_FPS) -> bool | None:
    """Whether the baton hand prepares the first sound — rises at least EDGE_TRAVEL shoulder widths in
    the EDGE_REACH before it, above where it strikes as the sound begins (±0.1 s) — or None when the
    excerpt does not begin with EDGE_SILENCE of silence (nothing to prepare from)."""
    on = np.flatnonzero(sounding(loud_db)[: len(motion_2d)])
    if len(on) == 0 or on[0] < EDGE_SILENCE * fps:
        return None
    s, near = int(on[0]), int(round(0.1 * fps))
    y = motion_2d[:, R_WRIST, 1]
    strike = y[max(0, s - near): s + near + 1].max()
    top = y[max(0, s - int(round(EDGE_REACH * fps))): s + 1].min()
    return bool(strike - top >= EDGE_TRAVEL * shoulder_width(motion_2d))


def release(motion_2d: np.ndarray, loud_db: np.ndarray, fps: float = MOTION_FPS) -> bool | None:
    """Whether the baton hand releases the last sound — a gesture of at least EDGE_TRAVEL shoulder
    widths within EDGE_REACH of its end (the cut-off) and no stroke more than EDGE_SILENCE after it
    (it stops beating) — or None when the excerpt does not end with EDGE_SILENCE of silence."""
    n = min(len(motion_2d), len(loud_db))
    on = np.flatnonzero(sounding(loud_db[:n]))
    if len(on) == 0 or n - 1 - on[-1] < EDGE_SILENCE * fps:
        return None
    e = int(on[-1])
    reach = int(round(EDGE_REACH * fps))
    after = motion_2d[max(0, e - reach): e + reach + 1, R_WRIST]  # a held last chord's cut-off may come before its echo fades
    travel = np.linalg.norm(np.diff(after, axis=0), axis=-1).sum()
    late = ictus_times(motion_2d[:n], fps) > e / fps + EDGE_SILENCE
    return bool(travel >= EDGE_TRAVEL * shoulder_width(motion_2d) and not late.any())


def mean_wrist_speed(motion_2d: np.ndarray, fps: float = MOTION_FPS, sw: float | None = None,
                     mask: np.ndarray | None = None) -> float:
    """Mean baton-hand speed in shoulder widths per second (over `mask` frames if given)."""
    v = hand_speed(motion_2d, fps) / max(sw or shoulder_width(motion_2d), 1e-9)
    return float(v[mask].mean() if mask is not None else v.mean())


# ---- against real motion (the paper's RDE, SCE, SDP) -----------------------------------------------
def _windows(x: np.ndarray, size: int = 30 * MOTION_FPS) -> list[np.ndarray]:
    return [x[a:a + size] for a in range(0, max(len(x) - size, 0) + 1, size)] or [x]


def rde(real: np.ndarray, gen: np.ndarray, fps: float = MOTION_FPS) -> float:
    """Rhythm density error: ln(1 + 1e7 × mean over Welch bins 6..25 of the squared difference of
    the coordinates' mean power spectra), on 30 s windows, averaged."""
    vals = []
    for r, g in zip(_windows(real), _windows(gen)):
        nper = min(256, len(r))
        pr = welch(r.reshape(len(r), -1), fs=fps, nperseg=nper, axis=0)[1].mean(axis=1)
        pg = welch(g.reshape(len(g), -1), fs=fps, nperseg=nper, axis=0)[1].mean(axis=1)
        vals.append(math.log1p(1e7 * np.mean((pr[6:26] - pg[6:26]) ** 2)))
    return float(np.mean(vals))


def _strength_contour(x: np.ndarray) -> np.ndarray:
    v = np.zeros(len(x))
    v[1:] = (x[:-1] - x[1:]).reshape(len(x) - 1, -1).mean(axis=1)
    v = np.abs(v)
    return np.array([v[a:a + 60].mean() for a in range(0, len(v) - 60 + 1, 30)]) if len(v) >= 60 else v.mean(keepdims=True)


def sce(real: np.ndarray, gen: np.ndarray) -> float:
    """Strength contour error: ln(1 + 1e7 × MSE) of the mean signed step's magnitude, average-pooled
    (window 60, stride 30), on 30 s windows, averaged."""
    return float(np.mean([math.log1p(1e7 * np.mean((_strength_contour(g) - _strength_contour(r)) ** 2))
                          for r, g in zip(_windows(real), _windows(gen))]))


def sdp(real: np.ndarray, gen: np.ndarray) -> float:
    """Standard deviation percentage: mean per-coordinate std of generated ÷ real, in percent."""
    return float(100 * gen.reshape(len(gen), -1).std(axis=0).mean()
                 / max(real.reshape(len(real), -1).std(axis=0).mean(), 1e-12))
