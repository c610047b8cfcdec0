"""The conducting plan from a score and its performance: every stroke at its exact time, with what
the score says about it — metre and how the bar is beaten at its tempo (conducting/patterns.py),
fermatas, what sounds and enters, articulation, dynamics, phrases and cut-offs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from baton_core.errors import BatonError

from ..conducting import patterns
from ..conducting.plan import FAMILIES, Plan, Stroke
from .perform import Performance
from .read import ScoreInfo, pickup_shift

ACCENT_MARKS = {"sf", "sfz", "sffz", "fz", "rf", "rfz", "sfp", "fp", "sfpp"}


@dataclass
class Texture:
    """What sounds in each stroke's span [q, q_end)."""

    sounding_parts: np.ndarray  # (n, parts) bool
    onset_parts: np.ndarray  # (n, parts) bool: a note of the part starts in the span
    staccato: np.ndarray  # (n,) the marked staccato share of the notes starting there
    accent: np.ndarray  # (n,) an accent mark on a note at the stroke
    sound_end: np.ndarray  # (n,) score position where the span's sound stops
    note_end: float  # score position where the excerpt's last note ends


def plan_from_score(info: ScoreInfo, perf: Performance) -> Plan:
    """The conducting plan of the performed bars: every stroke at its exact time."""
    strokes = bar_strokes(info, perf)
    q = np.array([s.at for s in strokes])
    last = info.bars[perf.last_bar - 1]
    q_end = np.append(q[1:], last.offset + last.length)
    times = perf.onset(q)
    keep, hold, fermata = fermata_holds(info, perf, q, q_end, times)
    tex = texture(info, q, q_end)
    sounding = tex.sounding_parts.any(1)
    tutti = tex.sounding_parts.mean(1)
    staccato = np.maximum(tex.staccato, detachment(info, q, q_end))
    staccato = np.convolve(np.pad(staccato, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    level = dynamic_level(info, perf, q, tex.sounding_parts, tutti)
    accent = np.maximum(tex.accent, accent_marks(info, q))
    hairpin = np.interp(q, perf.q, perf.hairpin)
    first_sound = int(np.flatnonzero(sounding)[0]) if sounding.any() else 0
    ent = entries(info, strokes, tex, times, first_sound)
    phrase, section = phrases(info, strokes, tex, fermata, first_sound)
    hold = cut_offs(perf, times, sounding, tex, hold)
    k = keep
    period = np.array([s.period_s for s in strokes])
    plan = Plan(times=times[k], bar=np.array([s.bar for s in strokes])[k] - perf.first_bar,
                beat=[s.beat for s, kk in zip(strokes, k) if kk], sub=[s.sub for s, kk in zip(strokes, k) if kk],
                pattern=[s.pattern for s, kk in zip(strokes, k) if kk], metre=[s.metre for s, kk in zip(strokes, k) if kk],
                tempo=60.0 / period[k], level=level[k], accent=accent[k], staccato=staccato[k], hairpin=hairpin[k],
                phrase=phrase[k], section=section[k], entries=ent[k], tutti=tutti[k], sounding=sounding[k],
                hold=hold[k], fermata=fermata[k], source="score", meta={"title": info.title, "q": q[k].tolist()})
    return plan.validate()


def bar_strokes(info: ScoreInfo, perf: Performance) -> list[Stroke]:
    """Every stroke of the performed bars at its score position, each bar beaten as its metre and
    tempo ask; a pickup keeps only its last beats (`pickup_shift`), a bar that ends early its first."""
    strokes = []
    for bi in range(perf.first_bar, perf.last_bar):
        b = info.bars[bi]
        qa, qb = b.offset, b.offset + b.length
        spq_bar = float(np.mean(np.interp(np.linspace(qa, qb, 8), perf.q, perf.spq)))
        scheme = patterns.bar_scheme(b.numerator, b.denominator, spq_bar, b.grouping)
        shift = pickup_shift(info, bi, perf.first_bar)
        offs = [o - shift for o in scheme.offsets]
        ends = offs[1:] + [b.nominal - shift]
        for o, e, beat, sub in zip(offs, ends, scheme.beat, scheme.sub):
            if o < -1e-6 or o >= b.length - 1e-6:
                continue  # a pickup's missing beats, or beats beyond a short last bar
            strokes.append(Stroke(qa + o, bi, beat, sub, scheme.pattern, f"{b.numerator}/{b.denominator}",
                                  (e - o) * spq_bar))
    if not strokes:
        raise BatonError(f"{info.title}: no beats in the chosen bars")
    return strokes


def fermata_holds(info: ScoreInfo, perf: Performance, q: np.ndarray, q_end: np.ndarray,
                  times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strokes kept, seconds held after each, whether the hold is a fermata): the held note
    swallows the strokes it covers."""
    n = len(q)
    keep = np.ones(n, bool)
    hold = np.zeros(n)
    fermata = np.zeros(n, bool)
    for o, d in info.fermatas:
        if not (q[0] - 1e-6 <= o < q_end[-1]):
            continue
        k = int(np.searchsorted(q, o + 1e-6) - 1)
        keep[(q > o + 1e-6) & (q < o + d - 1e-6)] = False
        fermata[k] = True
        hold[k] = float(perf.offset(o + d) - times[k])
    return keep, hold, fermata


def texture(info: ScoreInfo, q: np.ndarray, q_end: np.ndarray) -> Texture:
    """Which parts sound and start in each stroke's span, their marked articulation and accents,
    and where the sound stops."""
    n, n_parts = len(q), len(info.parts)
    tex = Texture(np.zeros((n, n_parts), bool), np.zeros((n, n_parts), bool), np.zeros(n), np.zeros(n),
                  np.zeros(n), 0.0)
    for j, p in enumerate(info.parts):
        if len(p.onset) == 0:
            continue
        inside = (p.onset >= q[0] - 1e-6) & (p.onset < q_end[-1] - 1e-6)
        on, du = p.onset[inside], p.dur[inside]
        du = np.minimum(du, q_end[-1] - on)  # a note tied beyond the excerpt ends with it
        if len(on):
            tex.note_end = max(tex.note_end, float((on + du).max()))
        for k in range(n):
            over = (on < q_end[k] - 1e-6) & (on + du > q[k] + 1e-6)
            tex.sounding_parts[k, j] = over.any()
            if over.any():
                tex.sound_end[k] = max(tex.sound_end[k], min(float((on + du)[over].max()), q_end[k]))
            starts = (on >= q[k] - 1e-6) & (on < q_end[k] - 1e-6)
            tex.onset_parts[k, j] = starts.any()
            if starts.any():
                tex.staccato[k] = max(tex.staccato[k], float(p.staccato[inside][starts].mean()) * starts.sum() / max(
                    1, sum(int(((pp.onset >= q[k] - 1e-6) & (pp.onset < q_end[k] - 1e-6)).sum()) for pp in info.parts)))
                at_stroke = starts & (np.abs(on - q[k]) < 1e-3)
                tex.accent[k] = max(tex.accent[k], float(p.accent[inside][at_stroke].any()))
    return tex


def detachment(info: ScoreInfo, q: np.ndarray, q_end: np.ndarray) -> np.ndarray:
    """(n,) articulation from how detached the notes are: each note's length against the time to
    the part's next note, the median over all notes starting in the stroke, 0 (legato) … 1."""
    n = len(q)
    ratios: list[list[float]] = [[] for _ in range(n)]
    for p in info.parts:
        inside = (p.onset >= q[0] - 1e-6) & (p.onset < q_end[-1] - 1e-6)
        on, du = p.onset[inside], p.dur[inside]
        if len(on) < 2:
            continue
        order = np.argsort(on, kind="stable")
        on, du = on[order], du[order]
        ioi = np.diff(on)
        k_of = np.searchsorted(q, on[:-1] + 1e-6) - 1
        for k, d, i in zip(k_of, du[:-1], ioi):
            if i > 1e-6 and 0 <= k < n:
                ratios[k].append(min(d / i, 1.0))
    detached = np.array([np.clip((0.85 - np.median(r)) / 0.4, 0, 1) if r else np.nan for r in ratios])
    return np.where(np.isnan(detached), 0.0, detached)


def dynamic_level(info: ScoreInfo, perf: Performance, q: np.ndarray, sounding_parts: np.ndarray,
                  tutti: np.ndarray) -> np.ndarray:
    """(n,) the mean level of the sounding parts, nudged by how full the texture is, smoothed over
    neighbouring strokes (a conductor shapes the whole, not each part's entry)."""
    lv = np.stack([perf.level(j, q) for j in range(len(info.parts))], axis=1)
    counts = sounding_parts.sum(1)
    dyn = np.where(counts > 0, (lv * sounding_parts).sum(1) / np.maximum(counts, 1), lv.mean(1))
    dyn = np.convolve(np.pad(dyn, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    return np.clip(dyn + 0.12 * (tutti - 0.5), 0.0, 1.0)


def accent_marks(info: ScoreInfo, q: np.ndarray) -> np.ndarray:
    """(n,) 1 where an sf, fz … mark falls on the stroke."""
    acc = np.zeros(len(q))
    for p in info.parts:
        for o, v in p.dynamics:
            if v in ACCENT_MARKS:
                k = int(np.searchsorted(q, o + 1e-6) - 1)
                if 0 <= k < len(q) and abs(q[k] - o) < 0.26:
                    acc[k] = 1.0
    return acc


def entries(info: ScoreInfo, strokes: list[Stroke], tex: Texture, times: np.ndarray, first_sound: int) -> np.ndarray:
    """(n, len(FAMILIES)) a family starting after a silence of at least a bar and 2 s."""
    n = len(strokes)
    fam_idx = np.array([FAMILIES.index(p.family) for p in info.parts])
    out = np.zeros((n, len(FAMILIES)), bool)
    per_bar = np.array([patterns.n_beats(s.pattern) * (2 if "/" in s.pattern else 1) for s in strokes])
    bar_s = np.array([s.period_s for s in strokes]) * per_bar
    for f in np.unique(fam_idx):
        cols = fam_idx == f
        fam_sounding = tex.sounding_parts[:, cols].any(1)
        fam_onset = tex.onset_parts[:, cols].any(1)
        last_sound_t = times[0] - 1.0  # silence before the excerpt
        for k in range(n):
            if fam_onset[k] and k > first_sound and times[k] - last_sound_t >= max(2.0, bar_s[k]):
                out[k, f] = True
            if fam_sounding[k]:
                last_sound_t = times[k]
    return out


def phrases(info: ScoreInfo, strokes: list[Stroke], tex: Texture, fermata: np.ndarray,
            first_sound: int) -> tuple[np.ndarray, np.ndarray]:
    """(phrase starts, section starts): sections at the score's section marks and the first sound;
    phrases there too, after a fermata, and where the top part enters after a rest."""
    section = np.array([s.beat == 0 and s.sub == 0 and info.bars[s.bar].section for s in strokes], bool)
    section[first_sound] = True
    phrase = section.copy()
    phrase[1:] |= fermata[:-1]
    top = int(np.argmax([p.pitch.mean() if len(p.pitch) else -1 for p in info.parts]))
    phrase[1:] |= (~tex.sounding_parts[:-1, top]) & tex.sounding_parts[1:, top]
    return phrase, section


def cut_offs(perf: Performance, times: np.ndarray, sounding: np.ndarray, tex: Texture,
             hold: np.ndarray) -> np.ndarray:
    """`hold` with the cut-offs before rests and the final release added."""
    hold = hold.copy()
    n = len(times)
    last_sound = int(np.flatnonzero(sounding)[-1]) if sounding.any() else n - 1
    for k in range(n):
        if sounding[k] and (k == n - 1 or not sounding[k + 1]) and hold[k] == 0:
            hold[k] = max(float(perf.offset(tex.sound_end[k]) - times[k]), 0.05)
    if hold[last_sound] == 0:
        hold[last_sound] = max(float(perf.offset(tex.note_end) - times[last_sound]), 0.1)
    return hold
