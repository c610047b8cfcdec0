"""A recording aligned to its score: where each of the score's beats sounds in the recording, as a
performance (perform.Performance: the time map from score position to the recording's seconds) that
plan.plan_from_score turns into the conducting plan — metre, bars, dynamics, hairpins, fermatas and
entries by family, all in the recording's time.

How (numpy only, no extra dependency; synctoolbox's and librosa's warpings, tried on the same
performances, place beats several times less exactly: training/results/aligners.md):
1. Chroma of both at ALIGN_FPS: the recording's from its spectrum, each bin's energy given to its
   pitch class; the score's from its notes played as written (its metronome marks), with the first
   overtones a real instrument adds. Compared by cosine similarity.
2. The transposition: the score's chroma rotated by each of the 12 semitones, the one whose
   alignment costs least at a coarse rate is kept (a score in another key than the recording).
3. Subsequence dynamic time warping: the score is aligned whole, and may begin and end anywhere in
   the recording (music before or after it, a recording that starts before the music); the steps
   let tempo run at any ratio to the marked one. At COARSE_FPS over the whole recording (for each
   key), then at ALIGN_FPS within BAND_S of that path, then once more with the template played at
   the tempo found, each beat read through a local line of the path. When a beat tracker's beats
   are given, a score beat placed where none was heard costs BEAT_PULL more: chroma of slow
   polyphony can drift by half a beat and more, and says which beat it is; the tracker's beats say
   where beats are.
4. Each aligned beat snaps to the nearest beat a beat tracker heard within SNAP of its period, when
   one is given (the engine gives a learned tracker's): chroma places a beat to tens of
   milliseconds, a tracker on onsets to a few; the score says which beat it is.
5. Confidence: a score whose best key fits hardly better than the others is another piece's and is
   refused; per bar, the path's similarity against what unrelated harmony scores in this recording.
   An alignment with more than MAX_POOR of its bars below MATCH is refused, naming them: a score of
   another piece (or movement) is never conducted.

Supported: tempo changes and rubato, held fermatas, transposition, a score that covers part of the
recording. Not supported: repeats played that the score writes out once (or written repeats
skipped) — the score is aligned as written, from its first bar to its last; a recording that
covers only part of the score (cut the score's bars to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from baton_core.errors import BatonError
from .perform import GRID, Performance, dynamic_curves, make_performance
from .read import ScoreInfo, notated_beats

ALIGN_FPS = 20.0     # chroma frames a second for the warping
COARSE_FPS = 2.0     # … and for choosing the transposition
BAND_S = 3.0         # the fine warping searches this far either side of the coarse path
PASSES = 2           # warpings: the second with the template at the first one's tempo
SMOOTH_S = 1.0       # half the span of score time each beat's place is read through
STEP_PENALTY = 0.2  # extra cost of a step that holds the score or the recording still
MIN_CONTRAST = 0.45  # the best key's cost this far below the median key's, or the score is another piece's
SNAP = 0.25          # an aligned beat takes a heard beat this near (share of its period)
MIN_BEAT_S = 0.04    # the least time between aligned beats
CRUSHED = 0.3        # a bar aligned into less than this share of its expected time is not in the recording
MATCH = 0.2          # a bar's confidence below this: the recording does not play it
MAX_POOR = 0.25      # share of poorly matched bars above which the alignment is refused
FMIN, FMAX = 55.0, 5000.0
SILENCE = 1e-6       # a frame this far (60 dB) below the loudest is silence
GAMMA = 10.0         # log compression of each frame's chroma, relative to its strongest pitch class
ATTACK_S, RELEASE_S = 0.08, 0.25  # how the score's notes are imagined to sound
BEAT_PULL = 0.5     # extra cost of a score beat on a recording frame where no beat was heard
OVERTONES = ((0, 1.0), (12, 0.5), (19, 0.33), (24, 0.25), (28, 0.2))  # semitones above, weight


@dataclass
class Alignment:
    """The score's performed bars [performance.first_bar, last_bar) in the recording's seconds."""
    performance: Performance
    beat_q: np.ndarray         # each notated beat's score position (quarter notes)
    beat_s: np.ndarray         # … and its time in the recording (s)
    downbeat: np.ndarray       # bool: the beat begins a bar
    bar_confidence: np.ndarray  # one per performed bar, 0…1
    transpose: int             # semitones the recording sounds above the score


# ---- features -------------------------------------------------------------------------------------

def _pitch_class_matrix(n_fft: int, sr: int) -> np.ndarray:
    """(12, bins): each FFT bin between FMIN and FMAX to its pitch class, shared with the neighbour
    by distance so a slightly out-of-tune note still counts."""
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    m = np.zeros((12, len(f)))
    ok = (f >= FMIN) & (f <= FMAX)
    midi = 69 + 12 * np.log2(f[ok] / 440.0)
    lo = np.floor(midi).astype(int)
    w = midi - lo
    idx = np.flatnonzero(ok)
    np.add.at(m, (lo % 12, idx), 1 - w)
    np.add.at(m, ((lo + 1) % 12, idx), w)
    return m


def _pitch_class_energy(samples: np.ndarray, sr: int, fps: float, n_fft: int) -> np.ndarray:
    """(frames, 12) spectral energy per pitch class; frame k is centred on k / fps seconds."""
    hop = int(round(sr / fps))
    x = np.pad(np.asarray(samples, np.float32), (n_fft // 2, n_fft // 2))
    n = max(1, 1 + (len(x) - n_fft) // hop)
    window = np.hanning(n_fft).astype(np.float32)
    pcm = _pitch_class_matrix(n_fft, sr)
    out = np.zeros((n, 12), np.float32)
    for a in range(0, n, 512):  # in blocks, so a long recording never holds its whole spectrogram
        idx = np.arange(a, min(a + 512, n))[:, None] * hop + np.arange(n_fft)[None]
        spec = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
        out[a:a + len(idx)] = (spec @ pcm.T).astype(np.float32)
    return out


def audio_chroma(samples: np.ndarray, sr: int, fps: float) -> np.ndarray:
    """(frames, 12) chroma, each frame log-compressed relative to its strongest pitch class and
    L2-normalised (silence: zeros)."""
    e = _pitch_class_energy(samples, sr, fps, 4096)
    loud = e.sum(axis=1, keepdims=True)
    quiet = loud < SILENCE * max(float(loud.max()), 1e-12)  # silence has no pitch class
    rel = e / np.maximum(e.max(axis=1, keepdims=True), 1e-12)
    return _with_silence(np.where(quiet, 0.0, _normalise(np.log1p(GAMMA * rel))), quiet[:, 0])


def score_chroma(info: ScoreInfo, perf: Performance, fps: float) -> np.ndarray:
    """(frames, 12) chroma of the score's notes as `perf` plays them, frame k at k / fps seconds:
    each note sounds as instruments do — a short attack, a slow decay, a release that rings on past
    its end (so the template changes chord when a recording's chroma does, not earlier) — with its
    overtones; compressed and normalised like the recording's."""
    n = int(np.ceil((float(perf.sec[-1]) + 1.0) * fps))
    t = np.arange(n) / fps
    c = np.zeros((n, 12))
    q0, q1 = perf.q[0], perf.q[-1]
    for part in info.parts:
        inside = (part.onset >= q0 - 1e-6) & (part.onset < q1 - 1e-6)
        starts = perf.onset(part.onset[inside])
        ends = np.maximum(perf.offset(np.minimum(part.onset[inside] + part.dur[inside], q1)), starts + 0.05)
        for a, b, pitch in zip(starts, ends, part.pitch[inside]):
            lo, hi = int(np.floor(a * fps)), min(int(np.ceil((b + 3 * RELEASE_S) * fps)) + 1, n)
            u = t[lo:hi]
            env = np.clip((u - a) / ATTACK_S, 0.0, 1.0) * np.exp(-np.maximum(u - a, 0) / 1.5) * \
                np.exp(-np.maximum(u - b, 0) / RELEASE_S)
            for up, w in OVERTONES:
                c[lo:hi, (int(pitch) + up) % 12] += w * env
    rel = c / np.maximum(c.max(axis=1, keepdims=True), 1e-12)
    quiet = c.max(axis=1) < 0.05  # nothing sounds, or only the last of a release
    return _with_silence(np.where(quiet[:, None], 0.0, _normalise(np.log1p(GAMMA * rel))), quiet)


def _with_silence(chroma: np.ndarray, quiet: np.ndarray) -> np.ndarray:
    """(frames, 13): the chroma and a thirteenth dimension that is 1 in silence, so a rest in the
    score matches silence in the recording (and neither matches music)."""
    return np.column_stack([chroma, quiet.astype(np.float32)]).astype(np.float32)


def _normalise(c: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    return np.where(norm > 1e-9, c / np.maximum(norm, 1e-9), 0.0).astype(np.float32)


# ---- warping --------------------------------------------------------------------------------------

def subsequence_dtw(score_f: np.ndarray, audio_f: np.ndarray, penalty: float = STEP_PENALTY,
                    band: tuple[np.ndarray, int] | None = None,
                    beats: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, float]:
    """The cheapest path through the cost 1 − cosine similarity of score frames × recording frames
    that covers every score frame, starting and ending at any recording frame; steps (1, 1), and
    (1, 0) and (0, 1) at `penalty` more (without it a path would rather stand still in one and run
    through the other). Returns ((len, 2) path of (score, recording) frames, its mean cost per score
    frame). `band`: (each score frame's first recording frame, how many) to search only around an
    earlier, coarser path — a ten-minute piece at 20 frames a second is 144 MB of steps unbanded,
    0.2% of that in a ±3 s band. `beats`: (each score frame's beat bump, each recording frame's
    heard-beat bump; beat_bumps) add BEAT_PULL × score bump × (1 − heard bump) to the cost. Each
    row is a few vector operations: the horizontal steps are a running minimum."""
    n, m = len(score_f), len(audio_f)
    if band is None:
        lo, width = np.zeros(n, int), m
    else:
        width = min(int(band[1]), m)
        lo = np.clip(np.maximum.accumulate(np.asarray(band[0], int)), 0, m - width)
    af = audio_f.astype(np.float64)
    sb, ab = beats if beats is not None else (np.zeros(n), np.ones(m))
    cost_row = lambda i: 1.0 - af[lo[i]:lo[i] + width] @ score_f[i].astype(np.float64) + \
        BEAT_PULL * sb[i] * (1.0 - ab[lo[i]:lo[i] + width])
    k = np.arange(width)

    def from_prev(prev: np.ndarray, offset: int) -> np.ndarray:  # the previous row's value at band index k + offset
        idx = k + offset
        out = np.full(width, np.inf)
        ok = (idx >= 0) & (idx < width)
        out[ok] = prev[idx[ok]]
        return out

    step = np.zeros((n, width), np.uint8)  # 0: diagonal, 1: from the row above, 2: from the left
    prev = cost_row(0)  # free start anywhere in the recording
    for i in range(1, n):
        c = cost_row(i)
        d = int(lo[i] - lo[i - 1])
        diag = from_prev(prev, d - 1) + c
        up = from_prev(prev, d) + c + penalty
        a = np.minimum(diag, up)
        s = np.cumsum(c + penalty)
        row = s + np.minimum.accumulate(a - s)
        step[i] = np.where(up < diag, 1, 0)
        step[i][row < a - 1e-12] = 2
        prev = row
    j = int(np.argmin(prev))
    total = float(prev[j])
    path = []
    i = n - 1
    while True:
        path.append((i, lo[i] + j))
        if i == 0:  # the path may start anywhere in the first score frame's row
            break
        s = step[i, j]
        if s == 2:
            j -= 1
        elif s == 1:
            j += int(lo[i] - lo[i - 1])
            i -= 1
        else:
            j += int(lo[i] - lo[i - 1]) - 1
            i -= 1
    return np.array(path[::-1]), total / n


def _transposed(score_c: np.ndarray, semitones: int) -> np.ndarray:
    return np.column_stack([np.roll(score_c[:, :12], semitones, axis=1), score_c[:, 12:]])


# ---- the alignment --------------------------------------------------------------------------------

def align_score(info: ScoreInfo, samples: np.ndarray, sr: int, bars: tuple[int, int] | None = None,
                heard: np.ndarray | None = None) -> Alignment:
    """Align bars [a, b) of a score (default: all) to a recording (mono samples at `sr`); `heard`:
    beats a beat tracker found in the recording (s), which an aligned beat near one snaps to."""
    bars = bars or (0, len(info.bars))
    nominal = make_performance(info, bars, lead_in=0.0)  # as marked, fermatas held as conductors hold them
    if len(samples) < sr:
        raise BatonError("the recording is shorter than a second: nothing to align the score to")
    # the transposition, at a coarse rate
    sc, ac = score_chroma(info, nominal, COARSE_FPS), audio_chroma(samples, sr, COARSE_FPS)
    if not sc[:, :12].any():
        raise BatonError(f"{info.title}: the score has no pitched notes to align")
    if not ac[:, :12].any():
        raise BatonError("the recording is silent: nothing to align the score to")
    keys = [subsequence_dtw(_transposed(sc, k), ac, STEP_PENALTY) for k in range(12)]
    costs = np.array([cost for _, cost in keys])
    shift = int(np.argmin(costs))
    contrast = float((np.median(costs) - costs[shift]) / max(float(np.median(costs)), 1e-9))
    if contrast < MIN_CONTRAST:
        raise BatonError(f"{info.title} does not match this recording: its harmony fits the recording hardly "
                         f"better in its best key than in the others (contrast {contrast:.2f}, a score of the piece "
                         f"played gives {MIN_CONTRAST} or more); is it the score of this piece?")
    unrelated = 1.0 - float(np.median(costs))  # how alike unrelated harmony looks in this recording
    # the warping, in a band around the coarse path
    coarse = local_line(keys[shift][0], len(sc), 2) * (ALIGN_FPS / COARSE_FPS)
    sc = _transposed(score_chroma(info, nominal, ALIGN_FPS), shift)
    ac = audio_chroma(samples, sr, ALIGN_FPS)
    rows = np.arange(len(sc))
    half = int(round(BAND_S * ALIGN_FPS))
    centre = np.interp(rows * COARSE_FPS / ALIGN_FPS, np.arange(len(coarse)), coarse)
    beat_q, downbeat = notated_beats(info, bars)
    written = nominal.onset(beat_q)
    ab = None if heard is None else beat_bumps(np.asarray(heard, np.float64), len(ac))
    pull = lambda t, n: None if ab is None else (beat_bumps(t, n), ab)
    path, beat_s = warp(sc, ac, written, info, beat_q, (np.round(centre).astype(int) - half, 2 * half + 1),
                        pull(written, len(sc)))
    for _ in range(PASSES - 1):  # again, with the template played at the tempo just found (so, on the diagonal)
        again = performance(info, bars, beat_q, beat_s)
        sc2 = _transposed(score_chroma(info, again, ALIGN_FPS), shift)
        _, beat_s = warp(sc2, ac, again.onset(beat_q), info, beat_q, (np.arange(len(sc2)) - half, 2 * half + 1),
                         pull(again.onset(beat_q), len(sc2)))
    if heard is not None:
        beat_s = snap(beat_s, np.asarray(heard, np.float64))
    similarity = (sc[path[:, 0]] * ac[path[:, 1]]).sum(axis=1)
    path_q = np.interp(path[:, 0] / ALIGN_FPS, nominal.sec, nominal.q)
    conf = bar_confidence(info, bars, path_q, similarity, unrelated)
    conf[crushed(info, bars, beat_q, beat_s, written)] = 0.0
    poor = np.flatnonzero(conf < MATCH)
    if len(poor) > MAX_POOR * len(conf):
        numbers = [info.bars[bars[0] + i].number for i in poor]
        raise BatonError(f"{info.title} does not match this recording: {len(poor)} of {len(conf)} bars align "
                         f"poorly ({_ranges(numbers)}); is it the score of this piece, and the whole of it?")
    return Alignment(performance(info, bars, beat_q, beat_s), beat_q, beat_s, downbeat, conf, shift)


def warp(score_f: np.ndarray, audio_f: np.ndarray, beat_t: np.ndarray, info: ScoreInfo,
         beat_q: np.ndarray, band: tuple[np.ndarray, int], beats=None) -> tuple[np.ndarray, np.ndarray]:
    """(the path, each beat's time in the recording) for beats at `beat_t` seconds of the template."""
    path, _ = subsequence_dtw(score_f, audio_f, STEP_PENALTY, band, beats)
    rec = local_line(path, len(score_f), int(round(SMOOTH_S * ALIGN_FPS)))
    beat_s = through_rests(info, beat_q, np.interp(beat_t * ALIGN_FPS, np.arange(len(score_f)), rec) / ALIGN_FPS)
    return path, rising(beat_s)  # (a bar the path crushed is caught by `crushed`)


def beat_bumps(times: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) each beat's weight 1 shared between the two frames around its time (the nearer
    gets more; a beat on a frame gives it 1)."""
    out = np.zeros(frames)
    f = times * ALIGN_FPS
    k = np.floor(f).astype(int)
    w = f - k
    for at, weight in ((k, 1 - w), (k + 1, w)):
        ok = (at >= 0) & (at < frames)
        np.maximum.at(out, at[ok], weight[ok])
    return out


def snap(beat_s: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """Each aligned beat moved onto the nearest heard beat within SNAP of its beat period: chroma
    places a beat to a few tens of milliseconds, a beat tracker on onsets to a few; the score says
    which beat it is. Beats stay strictly rising."""
    if len(heard) == 0 or len(beat_s) < 2:
        return beat_s
    out = beat_s.copy()
    period = np.gradient(beat_s)
    i = np.clip(np.searchsorted(heard, beat_s), 1, len(heard) - 1)
    nearest = np.where(np.abs(heard[i - 1] - beat_s) < np.abs(heard[i] - beat_s), heard[i - 1], heard[i])
    close = np.abs(nearest - beat_s) <= SNAP * period
    out[close] = nearest[close]
    return rising(out)


def rising(beat_s: np.ndarray) -> np.ndarray:
    """The beats made to rise strictly: each at least MIN_BEAT_S after the one before."""
    step = MIN_BEAT_S * np.arange(len(beat_s))
    return np.maximum.accumulate(beat_s - step) + step


def local_line(path: np.ndarray, rows: int, half: int) -> np.ndarray:
    """(rows,) the recording frame of each score frame: the least-squares line through the path's
    points within `half` score frames of it, read at it. A path through a held chord runs at the
    template's tempo and catches up at the next change (a staircase); the line follows the
    performance's own tempo through both."""
    x, y = path[:, 0].astype(np.float64), path[:, 1].astype(np.float64)
    cum = lambda v: np.concatenate([[0.0], np.cumsum(v)])
    sx, sy, sxx, sxy, sn = cum(x), cum(y), cum(x * x), cum(x * y), cum(np.ones_like(x))
    r = np.arange(rows)
    lo = np.searchsorted(x, r - half, side="left")
    hi = np.searchsorted(x, r + half, side="right")
    n = sn[hi] - sn[lo]
    mx, my = (sx[hi] - sx[lo]) / n, (sy[hi] - sy[lo]) / n
    vxx = (sxx[hi] - sxx[lo]) / n - mx * mx
    vxy = (sxy[hi] - sxy[lo]) / n - mx * my
    slope = np.where(vxx > 1e-9, vxy / np.maximum(vxx, 1e-9), 1.0)
    return my + slope * (r - mx)


def through_rests(info: ScoreInfo, beat_q: np.ndarray, beat_s: np.ndarray) -> np.ndarray:
    """The beats before the score's first note and after its last onset, which the recording
    cannot place (a path through silence or a held chord may lie anywhere in it), carried on from
    the nearest beats that have notes, at those beats' own tempo."""
    notes = np.concatenate([p.onset for p in info.parts]) if info.parts else np.zeros(0)
    if len(notes) == 0 or len(beat_q) < 3:
        return beat_s
    sounding = np.flatnonzero((beat_q >= notes.min() - 1e-6) & (beat_q <= notes.max() + 1e-6))
    if len(sounding) < 2:
        return beat_s
    out = beat_s.copy()
    a, b = sounding[0], sounding[-1]
    head = sounding[: min(len(sounding), 4)]
    tail = sounding[-min(len(sounding), 4):]
    spq_a = (beat_s[head[-1]] - beat_s[head[0]]) / max(beat_q[head[-1]] - beat_q[head[0]], 1e-6)
    spq_b = (beat_s[tail[-1]] - beat_s[tail[0]]) / max(beat_q[tail[-1]] - beat_q[tail[0]], 1e-6)
    out[:a] = beat_s[a] - (beat_q[a] - beat_q[:a]) * spq_a
    out[b + 1:] = beat_s[b] + (beat_q[b + 1:] - beat_q[b]) * spq_b
    return out


def crushed(info: ScoreInfo, bars: tuple[int, int], beat_q: np.ndarray, beat_s: np.ndarray,
            written: np.ndarray) -> np.ndarray:
    """(bars,) bool: bars played in under CRUSHED of the time the performance's median tempo gives
    them — music the recording does not have (a score longer than the recording)."""
    ratio = np.diff(beat_s) / np.maximum(np.diff(written), 1e-6)
    typical = float(np.median(ratio)) if len(ratio) else 1.0
    out = np.zeros(bars[1] - bars[0], bool)
    for j, i in enumerate(range(*bars)):
        b = info.bars[i]
        k = np.flatnonzero((beat_q >= b.offset - 1e-6) & (beat_q < b.offset + b.length - 1e-6))
        k = k[k + 1 < len(beat_s)]
        if len(k):
            played = beat_s[k[-1] + 1] - beat_s[k[0]]
            out[j] = played < CRUSHED * typical * (written[k[-1] + 1] - written[k[0]])
    return out


def bar_confidence(info: ScoreInfo, bars: tuple[int, int], path_q: np.ndarray, similarity: np.ndarray,
                   unrelated: float) -> np.ndarray:
    """Each bar's mean path similarity, from 0 at what unrelated harmony scores in this recording
    (the transpositions' median) to 1 where the recording sounds exactly the score's pitch classes."""
    out = []
    for i in range(*bars):
        b = info.bars[i]
        m = (path_q >= b.offset - 1e-6) & (path_q < b.offset + b.length - 1e-6)
        sim = float(similarity[m].mean()) if m.any() else unrelated
        out.append((sim - unrelated) / max(1.0 - unrelated, 1e-9))
    return np.clip(np.array(out), 0.0, 1.0)


def performance(info: ScoreInfo, bars: tuple[int, int], beat_q: np.ndarray, beat_s: np.ndarray) -> Performance:
    """The score's time map through the aligned beats (straight between them, the first and last
    beats' tempo beyond), its tempo without holds (the median over about a bar, so a fermata's
    held beat does not slow the beating), and the dynamics as marked."""
    q0 = info.bars[bars[0]].offset
    q1 = info.bars[bars[1] - 1].offset + info.bars[bars[1] - 1].length
    q = np.arange(q0, q1 + 1e-9, 1.0 / GRID)
    if q[-1] < q1 - 1e-9:
        q = np.append(q, q1)
    if len(beat_q) == 1:
        sec = beat_s[0] + (q - beat_q[0]) * 0.5
    else:
        slope_a = (beat_s[1] - beat_s[0]) / (beat_q[1] - beat_q[0])
        slope_b = (beat_s[-1] - beat_s[-2]) / (beat_q[-1] - beat_q[-2])
        sec = np.interp(q, beat_q, beat_s)
        sec = np.where(q < beat_q[0], beat_s[0] + (q - beat_q[0]) * slope_a, sec)
        sec = np.where(q > beat_q[-1], beat_s[-1] + (q - beat_q[-1]) * slope_b, sec)
    spq = np.gradient(sec, q)
    spq = median_filter(spq, size=max(3, int(4 * GRID)) | 1, mode="nearest")
    levels, hairpin = dynamic_curves(info, q)
    return Performance(q, sec, spq, levels, hairpin, bars[0], bars[1])


def _ranges(numbers: list[int]) -> str:
    out, start = [], None
    for k, n in enumerate(numbers):
        if start is None:
            start = n
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            out.append(f"bar {start}" if start == n else f"bars {start}–{n}")
            start = None
    return ", ".join(out[:4]) + (" …" if len(out) > 4 else "")
