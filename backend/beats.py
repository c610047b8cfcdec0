"""Beat times and tempo from the engine's own mel features.

A small dynamic-programming beat tracker (Ellis 2007, the method librosa's tracker implements),
written on numpy so a request does not pay for librosa's numba start-up (~3 s), and so that
evaluation can use librosa's tracker as an independent reference. The same dynamic programme
(`dp_beats`) decodes the learned tracker's beat activation (beat_net.py), and its decoder
(`decode_beats`) is the tempo-following tracker's too (conducting/pulse.py), with other costs.

The onset envelope is the mean positive dB rise across the mel bands between consecutive 90 Hz
frames; mel frame i sits at i/90 s, so beat times are in seconds from the start of the features
(plus ONSET_LATENCY, below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from baton_core.timebase import MEL_FPS

from .features import TOP_DB

MIN_BPM, MAX_BPM = 30.0, 240.0
PRIOR_BPM = 120.0
TIGHTNESS = 100.0  # how strongly consecutive beats keep to the tempo (librosa's default)
# The centred 2048-sample window sees an attack's energy rise ~2 mel frames before the attack
# itself; beat times are moved by this much so that they mark the attack (measured on the demo
# piece, whose attacks are exactly known: −22 ms before the correction).
ONSET_LATENCY = 0.022


@dataclass
class Beats:
    times: np.ndarray  # seconds from the start of the analysed audio
    tempo: float  # beats per minute (global estimate); 0 when the audio has no beat
    clarity: float | None = None  # a learned tracker's: how far its activation at the beats stands above it between them
    strength: np.ndarray | None = None  # a learned tracker's: its activation at each beat (under WEAK_BEAT: not struck)

    def only(self, keep: np.ndarray) -> "Beats":
        """These beats where `keep` (a mask over them) holds."""
        return Beats(self.times[keep], self.tempo, self.clarity, None if self.strength is None else self.strength[keep])


def onset_envelope(mel: np.ndarray, normalise: bool = True) -> np.ndarray:
    """(T90,) mean positive rise in dB per frame, normalised to unit standard deviation (or left in
    dB, to tell real onsets from the ripple of a steady sound)."""
    rise = np.diff(mel, axis=0, prepend=mel[:1]) * TOP_DB
    env = np.maximum(rise, 0.0).mean(axis=1)
    env = env - np.convolve(env, np.ones(MEL_FPS) / MEL_FPS, mode="same")  # remove slow loudness drift
    env = np.maximum(env, 0.0)
    sd = env.std()
    return env / sd if sd > 0 and normalise else env


def estimate_tempo(env: np.ndarray, fps: float = MEL_FPS) -> float:
    """Tempo (bpm) maximising the envelope's autocorrelation under a log-normal prior at 120 bpm."""
    n = len(env)
    max_lag = min(int(fps * 60 / MIN_BPM), n - 1)
    min_lag = int(fps * 60 / MAX_BPM)
    if max_lag <= min_lag:
        return PRIOR_BPM
    spec = np.fft.rfft(env - env.mean(), 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[: max_lag + 1]
    lags = np.arange(min_lag, max_lag + 1)
    bpm = 60.0 * fps / lags
    weight = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM)) ** 2)
    score = ac[min_lag: max_lag + 1] * weight
    best = int(np.argmax(score))
    # refine the lag with a parabola through the peak
    lag = float(lags[best])
    if 0 < best < len(score) - 1:
        a, b, c = score[best - 1], score[best], score[best + 1]
        denom = a - 2 * b + c
        if denom < 0:
            lag += 0.5 * (a - c) / denom
    return 60.0 * fps / lag


def track_beats(mel: np.ndarray, fps: float = MEL_FPS) -> Beats:
    """Beats of a (T90, bins) mel spectrogram in [0, 1]."""
    frames, tempo = dp_beats(onset_envelope(mel), fps)
    return Beats(frames / fps + ONSET_LATENCY, tempo)


def dp_beats(env: np.ndarray, fps: float, period: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(beat frames, tempo in bpm) of a beat-strength curve at `fps`: the onset envelope, or a
    learned tracker's beat activation (beat_net.py). Tempo 0 when there is no pulse. Each gap is
    judged against one period for the whole clip, or with `period` (frames, one per frame of `env`)
    against the period where it ends: a tempo that changes."""
    tempo = estimate_tempo(env, fps)
    periods = np.full(len(env), 60.0 * fps / tempo) if period is None else np.asarray(period, np.float64)
    p0 = float(np.median(periods))
    n = len(env)
    # Local score: the envelope smoothed by a Gaussian about a fifth of a beat wide.
    w = np.arange(-int(p0), int(p0) + 1)
    kernel = np.exp(-0.5 * (w * 32.0 / p0) ** 2)
    local = np.convolve(env, kernel, mode="full")[len(w) // 2: len(w) // 2 + n]  # centred, n long
    if local.max() <= 0:
        return np.zeros(0, dtype=int), 0.0
    steady = {}  # the gaps allowed and their costs, per period met (one, for a steady tempo)

    def gaps(t: int) -> tuple[np.ndarray, np.ndarray]:
        p = periods[t]
        if p not in steady:
            offsets = np.arange(int(round(p / 2)), int(round(2 * p)) + 1)
            steady[p] = offsets, TIGHTNESS * np.log(offsets / p) ** 2
        offsets, cost = steady[p]
        prev = t - offsets
        valid = prev >= 0
        return prev[valid], cost[valid]

    frames = decode_beats(local, gaps, threshold=0.01 * local.max())
    frames = trim_weak_ends(frames, local[frames], 0.5)
    if len(frames) < 2:  # no pulse to speak of: no tempo either
        return frames, 0.0
    return frames, float(tempo)


def decode_beats(local: np.ndarray, gaps: Callable[[int], tuple[np.ndarray, np.ndarray]],
                 threshold: float) -> np.ndarray:
    """The dynamic programme of both beat trackers (Ellis 2007; this one and conducting/pulse.py),
    which differ only in their costs: the best chain of beats, each frame scoring its local score
    plus the best of its predecessors' cumulative scores less the cost of the gap. `gaps(t)` gives
    frame t's possible predecessors (nearest first: ties go to the shortest gap) and each gap's cost.
    Frames before `local` first reaches `threshold` start no chain (silence before the music). The
    chain ends at the latest local maximum of the cumulative score above half their median."""
    n = len(local)
    score = local.copy()
    back = np.full(n, -1)
    started = False
    for t in range(n):
        if not started:
            started = local[t] >= threshold
            continue
        prev, cost = gaps(t)
        if len(prev) == 0:
            continue
        cand = score[prev] - cost
        k = int(np.argmax(cand))
        score[t] += cand[k]
        back[t] = prev[k]
    is_max = np.r_[False, (score[1:-1] > score[:-2]) & (score[1:-1] >= score[2:]), False]
    maxima = np.flatnonzero(is_max)
    if len(maxima) == 0:
        return np.zeros(0, dtype=int)
    med = np.median(score[maxima])
    t = int(maxima[score[maxima] * 2 > med].max())
    path = []
    while t >= 0:
        path.append(t)
        t = back[t]
    return np.array(path[::-1])


def trim_weak_ends(frames: np.ndarray, strength: np.ndarray, ratio: float) -> np.ndarray:
    """Drop the weak beats at both ends (silence before the music starts or after it ends): those
    whose strength, smoothed over five beats, is under `ratio` × its RMS. A clip of a few beats has
    no "ends" to speak of, so it keeps them all."""
    if len(frames) < 5:
        return frames
    smoothed = np.convolve(strength, np.hanning(5), mode="same")
    keep = np.flatnonzero(smoothed >= ratio * np.sqrt(np.mean(smoothed ** 2)))
    return frames[keep[0]: keep[-1] + 1] if len(keep) else frames[:0]
