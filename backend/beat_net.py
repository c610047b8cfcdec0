"""A learned beat tracker, and the beat phase it gives the generator.

Why: a generator that regresses motion from the music alone averages the metrical levels the music
allows — small extra dips between the beats of slow music, two strokes a bar where a conductor
beats fast triple time in one — and stalled at ictus F ≈ 0.68 on held-out works. A tracker
trained with a classification loss on the beats a conductor beats (the corpus plans') commits to
one level, the engine's dynamic-programming tracker (beats.py) keeps its beats regular, and the
generator, given the phase between those beats, places each stroke's ictus on one.

`BeatNet`: mel (N, 3T, 128) at 90 Hz and its spectral flux → one beat logit per 30 Hz motion frame,
through a strided conv and dilated residual blocks (±34 s of context with the default nine). Small
(261k weights) and run over a whole piece in one pass; trained by training/train_beats.py and
stored inside the generator checkpoint that uses it.

Limits, as trained on the score corpus: the DP keeps its grid through a fermata (it allows gaps of up
to two beats), so the generator, which learned from the plans' beats to hold still in pauses, is
given beats there instead; and audio with no pulse at all (a steady tone, a drone, noise) still gets
a grid at 130–150 bpm, where the onset-envelope tracker finds none. The tracker never heard
unpulsed audio; teaching it that (negative examples) is the fix, not a threshold: the activation's
peaks on such audio overlap those of the quietest real music.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .bars import BAR_FEATURES, PATTERN_METRES, bar_positions
from .beats import Beats, dp_beats
from .conducting.pulse import tempo_curve
from baton_core.timebase import MEL_BINS, MEL_PER_MOTION, MOTION_FPS

BEAT_FEATURES = 4  # sin and cos of the beat phase, log2 of the beat period / 0.5 s, "beating" flag
# A beat whose activation peaks under this the DP put in to keep its grid through a hold or a rest,
# where the conductor holds still: the engine counts it in the bars but does not strike it. On the
# val split it is one in four of the tracker's beats that the conductor does not beat, and under 1 in 500
# of those it does (the model card).
WEAK_BEAT = 0.2
MAX_GAP = 2.0  # an interval over twice the median beat period is a pause (fermata, rest): no phase
# Music whose tempo changes (a slow introduction and an allegro, sections of a medley): where the
# activation's local period (conducting/pulse.tempo_curve) spans more than TEMPO_CHANGE between its
# 10th and 90th percentiles, the DP is also run following it, and those beats are taken when they
# lie on a share of the activation's clear peaks (`peak_cover`) at least COVERS_MORE larger than the
# one-tempo beats do: chosen on the val split, so that no clip of one tempo changes and val clips of
# two tempi joined end to end gain (the model card).
TEMPO_CHANGE = 1.15
COVERS_MORE = 0.1


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 5, padding=2 * dilation, dilation=dilation)
        self.norm = nn.GroupNorm(1, channels)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.dropout(F.gelu(self.norm(self.conv(x))), self.dropout, self.training)
        return x + self.mix(h)


class BeatNet(nn.Module):
    """(N, 3T, 128) mel → (N, T) beat logits at 30 Hz; with `outputs` > 1, (N, outputs, T) logits
    of as many classes (the bar tracker's: each beat's state in the bar, bars.py)."""

    def __init__(self, channels: int = 64, layers: int = 9, dropout: float = 0.0, outputs: int = 1):
        super().__init__()
        self.outputs = outputs
        self.front = nn.Sequential(nn.Conv1d(MEL_BINS + 1, channels, 3, padding=1), nn.GELU(),
                                   nn.Conv1d(channels, channels, MEL_PER_MOTION, stride=MEL_PER_MOTION), nn.GELU())
        self.blocks = nn.Sequential(*[_Block(channels, 2 ** i, dropout) for i in range(layers)])
        self.head = nn.Conv1d(channels, outputs, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(1, 2)
        flux = F.relu(torch.diff(x, dim=2, prepend=x[:, :, :1])).mean(1, keepdim=True) * 10.0
        y = self.head(self.blocks(self.front(torch.cat([x, flux], 1))))
        return y[:, 0] if self.outputs == 1 else y

    def activation(self, mel: np.ndarray) -> np.ndarray:
        """(T90, 128) mel → (ceil(T90/3),) beat probability per motion frame, or with several
        outputs (ceil(T90/3), outputs) class log-probabilities."""
        n = mel.shape[0]
        x = np.pad(np.asarray(mel, dtype=np.float32), ((0, -n % MEL_PER_MOTION), (0, 0)), mode="edge")
        with torch.inference_mode():
            y = self(torch.from_numpy(x).unsqueeze(0))[0]
            y = torch.sigmoid(y) if self.outputs == 1 else torch.log_softmax(y, dim=0).T
            return y.numpy().astype(np.float64)

    def track(self, mel: np.ndarray) -> Beats:
        """Beat times (s) of a mel: the activation decoded by the DP tracker, each beat refined to
        the vertex of a parabola through its activation peak (within half a frame), with each beat's
        strength (the activation's peak within a frame of it) and the pulse's clarity."""
        act = self.activation(mel)
        sd = act.std()  # unit deviation, as the onset envelope: the DP's tempo penalty is scaled to it
        env = act / sd if sd > 0 else act
        frames, tempo = dp_beats(env, MOTION_FPS)
        period, _ = tempo_curve(env, MOTION_FPS)
        if len(frames) and np.percentile(period, 90) > TEMPO_CHANGE * np.percentile(period, 10):
            following, _ = dp_beats(env, MOTION_FPS, period)
            if peak_cover(act, following) >= peak_cover(act, frames) + COVERS_MORE:
                frames = following
        times = frames.astype(np.float64)
        inner = (frames > 0) & (frames < len(act) - 1)
        f = frames[inner]
        a, b, c = act[f - 1], act[f], act[f + 1]
        denom = a - 2 * b + c
        times[inner] += np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1.0), 0.0).clip(-0.5, 0.5)
        peak = np.array([act[max(0, f - 1): f + 2].max() for f in frames]) if len(frames) else np.zeros(0)
        return Beats(times / MOTION_FPS, tempo, pulse_clarity(act, frames), peak)


def peak_cover(act: np.ndarray, frames: np.ndarray) -> float:
    """The share of the activation's clear peaks (local maxima of 0.5 or more) that lie within two
    frames of one of `frames`: where one tempo's grid drifts off a section at another tempo, it
    leaves most of that section's peaks uncovered."""
    peaks = np.flatnonzero((act[1:-1] >= 0.5) & (act[1:-1] > act[:-2]) & (act[1:-1] >= act[2:])) + 1
    if len(peaks) == 0 or len(frames) == 0:
        return 0.0
    return float(np.mean(np.abs(peaks[:, None] - np.asarray(frames)[None, :]).min(axis=1) <= 2))


def pulse_clarity(act: np.ndarray, frames: np.ndarray) -> float:
    """The median beat activation at the beat frames less that halfway between consecutive beats:
    near 1 where the tracker hears each beat and nothing between (a pulse, however soft its
    attacks), lower where its activation is as high between its beats as on them (noise, a held
    sound: the DP's grid is its own, not the music's). 0 for fewer than three beats."""
    if len(frames) < 3:
        return 0.0
    mid = np.round((frames[1:] + frames[:-1]) / 2).astype(int)
    return float(np.median(act[frames]) - np.median(act[mid]))


def _beat_intervals(beats: np.ndarray, n_frames: int, fps: float):
    """For each frame: the index k of the beat it follows (−1 before the first, len(beats) − 1
    after the last, on the grid extended by one period each side), its phase 0 → 1 towards the next
    beat, the interval's period (s), and whether it lies on the grid (not in a pause, not outside)."""
    b = np.sort(np.asarray(beats, dtype=np.float64))
    b = np.r_[2 * b[0] - b[1], b, 2 * b[-1] - b[-2]]
    period = np.diff(b)
    med = float(np.median(period))
    t = np.arange(n_frames) / fps
    i = np.searchsorted(b, t, side="right") - 1
    inside = (i >= 0) & (i < len(period))
    i = i.clip(0, len(period) - 1)
    period = np.where(period > MAX_GAP * med, med, period)  # a pause: one beat's phase, then none
    inside &= t - b[i] < period[i]
    return i - 1, (t - b[i]) / period[i], period[i], inside


def beat_phase_features(beats: np.ndarray, n_frames: int, fps: float = MOTION_FPS) -> np.ndarray:
    """(n_frames, BEAT_FEATURES) float32: where each frame sits between the beats around it.

    Between consecutive beats a and b the phase runs 0 → 1 (a stroke's ictus at 0); features are
    sin and cos of 2π·phase, log2((b − a)/0.5 s) and 1. The grid is extended one period before the
    first beat and after the last. A pause (an interval over MAX_GAP × the median: a fermata, a rest)
    gets one median period of phase after its beat, so that beat is still struck, then zeros, as
    frames outside the grid do: the generator learns to read them as "no beat here"."""
    out = np.zeros((n_frames, BEAT_FEATURES), np.float32)
    if len(beats) < 2:
        return out
    _, phase, period, inside = _beat_intervals(beats, n_frames, fps)
    feats = np.stack([np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase),
                      np.log2(period / 0.5), np.ones_like(phase)], axis=1)
    out[inside] = feats[inside]
    return out


def bar_features(beats: np.ndarray, downbeats: np.ndarray, n_frames: int, fps: float = MOTION_FPS) -> np.ndarray:
    """(n_frames, BAR_FEATURES) float32: where each frame sits in its bar, on the frames
    beat_phase_features marks as on the grid (zeros elsewhere).

    Per frame, from the beat it follows (m beats in its bar, at position p): a one-hot of (m, p)
    for the counts of bars.PATTERN_METRES, then for every count sin and cos of 2π·(p + phase)/m (the
    bar's own phase), "first beat" and "last beat" flags. Before the first beat and after the last
    the bar goes on by one beat."""
    out = np.zeros((n_frames, BAR_FEATURES), np.float32)
    beats = np.sort(np.asarray(beats, dtype=np.float64))
    if len(beats) < 2:
        return out
    k, phase, _, inside = _beat_intervals(beats, n_frames, fps)
    metre, pos = bar_positions(beats, downbeats)
    kk = k.clip(0, len(beats) - 1)
    m = metre[kk]
    p = (pos[kk] + (k - kk)) % m  # the extension's beats continue the bar
    offset = {mm: sum(PATTERN_METRES[:j]) for j, mm in enumerate(PATTERN_METRES)}
    rows = np.flatnonzero(inside)
    named = np.array([mm in offset for mm in m[rows]], bool)
    cols = np.array([offset.get(mm, 0) for mm in m[rows]]) + p[rows]
    out[rows[named], cols[named]] = 1.0
    g = sum(PATTERN_METRES)
    bar_phase = 2 * np.pi * (p + phase) / m
    generic = np.stack([np.sin(bar_phase), np.cos(bar_phase), (p == 0).astype(float), (p == m - 1).astype(float)], 1)
    out[rows, g:] = generic[rows]
    return out
