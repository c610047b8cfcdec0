"""How a score is played: the time map from score position (quarter notes) to seconds, with its
tempo, rubato, fermata holds and breaths, and each part's dynamic level over time.
`make_performance` plays the score as written (its metronome marks, its dynamics) unless told
otherwise; training/scores.py draws randomised ones and renders them to audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .read import ScoreInfo

GRID = 48  # time-map grid points per quarter note
DYNAMIC_LEVELS = {"pppp": 0.04, "ppp": 0.1, "pp": 0.2, "p": 0.33, "mp": 0.45, "mf": 0.56, "f": 0.7,
                  "ff": 0.85, "fff": 0.95, "ffff": 1.0}


@dataclass
class Performance:
    """How a score is played. `q`/`sec`: the time map (quarter notes → seconds, piecewise linear,
    including fermata holds; a breath after a fermata is a jump, see onset/offset). `spq`: seconds per
    quarter of the tempo without holds (what decides how bars are beaten). `levels`: each part's
    dynamic level on `q`; `hairpin`: −1/0/+1 on `q`."""
    q: np.ndarray
    sec: np.ndarray
    spq: np.ndarray
    levels: np.ndarray  # (parts, len(q))
    hairpin: np.ndarray
    first_bar: int  # indices into ScoreInfo.bars, [first_bar, last_bar)
    last_bar: int
    breaths: list[tuple[float, float]] = field(default_factory=list)  # (offset, seconds)

    def onset(self, q) -> np.ndarray:
        """Seconds at which something starting at score position q sounds (after any breath there)."""
        return np.interp(q, self.q, self.sec) + self._breath(q, True)

    def offset(self, q) -> np.ndarray:
        """Seconds at which something ending at score position q stops (before any breath there)."""
        return np.interp(q, self.q, self.sec) + self._breath(q, False)

    def _breath(self, q, inclusive: bool) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        add = np.zeros_like(q)
        for off, s in self.breaths:
            add += s * ((q >= off - 1e-6) if inclusive else (q > off + 1e-6))
        return add

    def level(self, part: int, q) -> np.ndarray:
        return np.interp(q, self.q, self.levels[part])


def dynamic_curves(info: ScoreInfo, q: np.ndarray, default: float = 0.56) -> tuple[np.ndarray, np.ndarray]:
    """((parts, len(q)) levels, (len(q),) hairpin sign) from the score's marks. A hairpin ramps to
    the next mark after it (or two steps, ±0.2, when none follows within a bar)."""
    levels = np.zeros((len(info.parts), len(q)))
    hair = np.zeros(len(q))
    any_marks = [d for p in info.parts for d in p.dynamics if d[1] in DYNAMIC_LEVELS]
    for i, p in enumerate(info.parts):
        marks = [(o, DYNAMIC_LEVELS[v]) for o, v in p.dynamics if v in DYNAMIC_LEVELS] or \
            [(o, DYNAMIC_LEVELS[v]) for o, v in sorted(any_marks)]
        lv = np.full(len(q), marks[0][1] if marks else default)
        for o, v in marks:
            lv[q >= o] = v
        for a, b, sign in p.hairpins:
            after = [v for o, v in marks if b - 0.01 <= o <= b + 4]
            start = float(np.interp(a, q, lv))
            target = after[0] if after else float(np.clip(start + 0.2 * sign, 0.05, 1.0))
            m = (q >= a) & (q < b)
            lv[m] = start + (target - start) * (q[m] - a) / max(b - a, 1e-6)
            if not after:  # the level reached holds until the next mark
                nxt = [o for o, _ in marks if o > b]
                lv[(q >= b) & (q < (nxt[0] if nxt else np.inf))] = target
            hair[m] = sign
        levels[i] = lv
    return levels, hair


def make_performance(info: ScoreInfo, bars: tuple[int, int], spq: np.ndarray | None = None,
                     q: np.ndarray | None = None, tempo_bpm: float | None = None,
                     fermata_stretch: float | np.ndarray = 2.0, breath_s: float | np.ndarray = 0.3,
                     lead_in: float = 1.0, levels: np.ndarray | None = None,
                     hairpin: np.ndarray | None = None) -> Performance:
    """A performance of bars [a, b): tempo from `spq` (seconds per quarter on `q`) or from the score's
    metronome marks scaled so the first is `tempo_bpm` (default: as marked, else 100 quarter bpm);
    fermatas held `fermata_stretch` times as long plus a breath; the first bar starts `lead_in`
    seconds in, so a preparation has room."""
    a, b = bars
    q0 = info.bars[a].offset
    q1 = info.bars[b - 1].offset + info.bars[b - 1].length
    if q is None:
        q = np.arange(q0, q1 + 1e-9, 1.0 / GRID)
        if q[-1] < q1 - 1e-9:
            q = np.append(q, q1)
    if spq is None:
        marks = info.tempo_marks
        first = next((bpm for o, bpm in reversed(marks) if o <= q0 + 1e-6), marks[0][1] if marks else 100.0)
        scale = (tempo_bpm / first) if tempo_bpm else 1.0
        bpm = np.full(len(q), first * scale)
        for o, v in marks:
            bpm[q >= o - 1e-6] = v * scale
        spq = 60.0 / bpm
    stretch = np.ones(len(q))
    breaths = []
    ferm = [(o, d) for o, d in info.fermatas if q0 - 1e-6 <= o < q1]
    fs = np.broadcast_to(np.asarray(fermata_stretch, float), (max(len(ferm), 1),))
    bs = np.broadcast_to(np.asarray(breath_s, float), (max(len(ferm), 1),))
    for i, (o, d) in enumerate(ferm):
        stretch[(q >= o - 1e-6) & (q < o + d - 1e-6)] = fs[i]
        if o + d < q1 - 1e-6:
            breaths.append((o + d, float(bs[i])))
    cell = np.diff(q) * spq[:-1] * stretch[:-1]  # seconds of each grid cell
    sec = lead_in + np.concatenate([[0.0], np.cumsum(cell)])
    if levels is None or hairpin is None:
        lv, hp = dynamic_curves(info, q)
        levels = lv if levels is None else levels
        hairpin = hp if hairpin is None else hairpin
    return Performance(q, sec, np.asarray(spq, float), np.asarray(levels, float), np.asarray(hairpin, float),
                       a, b, breaths)
