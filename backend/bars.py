"""Bars over beats: where each beat sits in its bar, and the metre, as one bar-position state space.

A beat's state is (beats per bar m, position p): p advances by one each beat, and after a bar's last
beat any metre may begin, a change costing `switch` (log units). One Viterbi path gives the bars,
and forward–backward the posterior of that path's state at each beat: the bars' confidence. The
rule-based conductor scores the states from its heard downbeat-likeness (conducting/plan_audio.py);
the generator's learned bar tracker (beat_net.BeatNet with one output per state, stored with the
generator) from its probability of each state at each beat, read over the whole piece by its bar
reader (bar_reader.py) where it has one (`hear_bars`), as madmom's bar tracker does over beats with
its downbeat activation.

Metres count the beats a conductor beats: 1 is a fast triple bar beaten in one, 8 a slow four
subdivided; which pattern a count is drawn with is the generator's (or the rule book's) business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Beats per bar the learned tracker hears (its classes): of the score corpus' bars as the conductor
# beats them, 14% are in one, 34% in two, 17% in three, 32% in four, and 1–2% each in six, eight
# (four subdivided) and nine; fives, sevens and twelves (0.03%) are left out.
HEARD_METRES = (1, 2, 3, 4, 6, 8, 9)
SWITCH = 3.0  # log-price of a metre change between bars (chosen on the val split)
DOWNBEAT_WINDOW = 1  # motion frames either side of a beat where its downbeat probability is read
PATTERN_METRES = (1, 2, 3, 4, 6)  # counts the generator is told by name (the others by bar phase)
BAR_FEATURES = sum(PATTERN_METRES) + 4


@dataclass
class Bars:
    """Per beat: its metre (beats in its bar), its position (0 = the downbeat) and the posterior
    probability of that reading; `downbeats` are the times of the beats at position 0."""
    downbeats: np.ndarray
    metre: np.ndarray
    position: np.ndarray
    confidence: np.ndarray


def states_of(metres) -> list[tuple[int, int]]:
    return [(m, p) for m in metres for p in range(m)]


def decode_bar_positions(loglik: np.ndarray, metres, switch: float, bar_prior: dict | None = None,
                         metre_prior: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(metre, position, confidence) per beat for per-beat log-likelihoods `loglik` (n, S) of the
    states `states_of(metres)`. `bar_prior` (log, per metre) is added where each bar begins,
    `metre_prior` (log, per metre) where a metre begins: at the start and at each change."""
    states = states_of(metres)
    n, s = loglik.shape
    if n == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    m_of = np.array([m for m, _ in states])
    p_of = np.array([p for _, p in states])
    prior = np.array([(bar_prior or {}).get(m, 0.0) if p == 0 else 0.0 for m, p in states])
    new_metre = np.array([(metre_prior or {}).get(m, 0.0) for m, _ in states])
    # trans[i, j]: log-price of state j after state i (−inf where j cannot follow i)
    trans = np.full((s, s), -np.inf)
    for i, (m, p) in enumerate(states):
        if p + 1 < m:
            trans[i, states.index((m, p + 1))] = 0.0
        else:
            for j in np.flatnonzero(p_of == 0):
                trans[i, j] = 0.0 if m_of[j] == m else new_metre[j] - switch
    trans += prior[None, :]
    emit = loglik
    start = emit[0] + prior + new_metre  # a piece may begin anywhere in a bar (an upbeat)
    # Viterbi
    score, back = start.copy(), np.zeros((n, s), int)
    for k in range(1, n):
        cand = score[:, None] + trans
        back[k] = np.argmax(cand, axis=0)
        score = cand[back[k], np.arange(s)] + emit[k]
    path = np.zeros(n, int)
    path[-1] = int(np.argmax(score))
    for k in range(n - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    # forward–backward (log domain) for the posterior of the path's states
    def lse(x, axis):
        top = np.max(x, axis=axis, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        return np.squeeze(top, axis) + np.log(np.sum(np.exp(x - top), axis=axis))
    fwd = np.zeros((n, s))
    fwd[0] = start
    for k in range(1, n):
        fwd[k] = lse(fwd[k - 1][:, None] + trans, 0) + emit[k]
    bwd = np.zeros((n, s))
    for k in range(n - 2, -1, -1):
        bwd[k] = lse(trans + (emit[k + 1] + bwd[k + 1])[None, :], 1)
    post = fwd + bwd
    post = np.exp(post - lse(post, 1)[:, None])
    return m_of[path], p_of[path], post[np.arange(n), path]


def bar_states() -> list[tuple[int, int]]:
    """The learned bar tracker's classes, in the order of its outputs: every (metre, position)."""
    return states_of(HEARD_METRES)


def beat_state_logp(logp: np.ndarray, beats: np.ndarray, fps: float) -> np.ndarray:
    """(n_beats, S) log-probabilities of each beat's state: the tracker's frame-wise (T, S)
    probabilities averaged over DOWNBEAT_WINDOW frames either side of the beat."""
    f = np.round(np.asarray(beats) * fps).astype(int).clip(0, len(logp) - 1)
    p = np.exp(logp)
    out = np.stack([p[max(0, c - DOWNBEAT_WINDOW): c + DOWNBEAT_WINDOW + 1].mean(axis=0) for c in f]) if len(f) \
        else np.zeros((0, logp.shape[1]))
    return np.log(np.clip(out, 1e-6, None))


def hear_bars(state_logp: np.ndarray, beats: np.ndarray, metres=HEARD_METRES, switch: float = SWITCH) -> Bars:
    """The bars over `beats` (s) from each beat's state log-probabilities (n, S) as the tracker
    gives them, taken as the states' scores as they are: the tracker's posteriors already hold how
    common each metre is (dividing them by the corpus' shares instead lets any stray probability on
    a rare metre win)."""
    beats = np.asarray(beats, dtype=np.float64)
    metre, pos, conf = decode_bar_positions(np.asarray(state_logp, dtype=np.float64), list(metres), switch)
    return Bars(beats[pos == 0], metre, pos, conf)


def state_labels(beats: np.ndarray, downbeats: np.ndarray, metres=HEARD_METRES) -> np.ndarray:
    """Per beat: its class among states_of(metres) for given bar lines, −1 for a metre outside them."""
    index = {s: i for i, s in enumerate(states_of(metres))}
    metre, pos = bar_positions(beats, downbeats)
    return np.array([index.get((int(m), int(p)), -1) for m, p in zip(metre, pos)], dtype=np.int64)


def bar_positions(beats: np.ndarray, downbeats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beats in its bar, position in the bar) per beat for given bar lines: a bar runs from its
    downbeat to the next; beats before the first are its upbeat; after the last bar line the metre
    before it goes on (bars of four after a lone one); no bar lines at all: bars of four."""
    beats, downbeats = np.asarray(beats, dtype=np.float64), np.asarray(downbeats, dtype=np.float64)
    n = len(beats)
    starts = sorted({int(i) for i in np.searchsorted(beats, downbeats - 1e-3) if i < n})
    if not starts:
        return np.full(n, 4), np.arange(n) % 4
    metre, pos = np.zeros(n, int), np.zeros(n, int)
    for j, a in enumerate(starts):
        b = starts[j + 1] if j + 1 < len(starts) else n
        m = b - a if j + 1 < len(starts) else (int(metre[starts[j - 1]]) if j else 4)
        metre[a:b] = m
        pos[a:b] = (np.arange(a, b) - a) % m
    first, m0 = starts[0], int(metre[starts[0]])
    metre[:first] = m0
    pos[:first] = (np.arange(first) - first) % m0
    return metre, pos
