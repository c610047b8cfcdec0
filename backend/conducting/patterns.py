"""The beat patterns a conductor draws, and which one a bar gets at its tempo.

A pattern is the sequence of ictus points of one bar, as the conductor sees it. Each stroke has a
label that says how it reads: D (down, the bar's biggest fall), L / R (placed to the conductor's
left / right of the previous ictus), S (in place) and U (the last beat, from which the hand rises
highest to prepare the next downbeat). The standard shapes (backend/metrics.py keeps its own copy of this table to judge motion by):

    1  D                  2  D U (rebound outward right, then in-and-up)
    3  D R U              4  D L R U (left across the body, out to the right, up)
    6  D L L R R U        (German six: the four-pattern with doubled sides)
    5  D L L R U (3+2) or D L R R U (2+3);  7  D L L R R R U (3+2+2) or D L L L R R U (2+2+3)
    9  D L L R R R L L U   12  D L L L L L R R R L L U

5 and 7 split the bar into a left and a right side at the group boundary nearest its middle;
fast 5 and 7 are beaten in their groups (2 or 3 unequal beats), fast 3 in one, fast 4 in two,
fast compound metres in their dotted beats; very slow simple metres are subdivided.

Ictus positions are (x, z) in units of the pattern's width: x toward the conductor's left (+X in
3D), z up, beat 1 at (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

FAST_S = 0.40  # pulses faster than this (150 bpm) are grouped into larger beats
VERY_FAST_S = 0.30  # 200 bpm: two-beat bars go into one, five and seven into their groups
SLOW_S = 1.10  # pulses slower than this (~55 bpm) are subdivided

_POS = {
    "1": [(0.0, 0.0)],
    "2": [(0.0, 0.0), (-0.24, 0.06)],
    "3": [(0.0, 0.0), (-0.52, 0.04), (-0.20, 0.12)],
    "4": [(0.0, 0.0), (0.40, 0.04), (-0.50, 0.04), (-0.18, 0.12)],
    "6": [(0.0, 0.0), (0.24, 0.03), (0.44, 0.06), (-0.30, 0.04), (-0.52, 0.06), (-0.18, 0.13)],
    "5:3+2": [(0.0, 0.0), (0.24, 0.03), (0.44, 0.06), (-0.50, 0.04), (-0.18, 0.12)],
    "5:2+3": [(0.0, 0.0), (0.40, 0.04), (-0.30, 0.04), (-0.52, 0.06), (-0.18, 0.12)],
    "7:3+2+2": [(0.0, 0.0), (0.24, 0.03), (0.44, 0.06), (-0.24, 0.03), (-0.40, 0.05), (-0.56, 0.07),
                (-0.18, 0.13)],
    "7:2+2+3": [(0.0, 0.0), (0.18, 0.02), (0.34, 0.04), (0.48, 0.06), (-0.32, 0.04), (-0.52, 0.06),
                (-0.18, 0.13)],
    "9": [(0.0, 0.0), (0.10, 0.03), (0.20, 0.06), (-0.26, 0.03), (-0.42, 0.05), (-0.56, 0.07),
          (-0.44, 0.12), (-0.31, 0.16), (-0.18, 0.20)],
    "12": [(0.0, 0.0), (0.08, 0.03), (0.16, 0.06), (0.30, 0.03), (0.42, 0.05), (0.52, 0.07),
           (-0.26, 0.03), (-0.42, 0.05), (-0.56, 0.07), (-0.44, 0.12), (-0.31, 0.16), (-0.18, 0.20)],
}
GROUPED = {"5:2+3": ("2", (0, 2)), "5:3+2": ("2", (0, 3)), "7:3+2+2": ("3", (0, 3, 5)),
           "7:2+2+3": ("3", (0, 2, 4))}  # fast fives and sevens: beaten in their groups


def base(pattern: str) -> str:
    """'4/2' (four, subdivided in two) → '4'."""
    return pattern.split("/")[0]


def positions(pattern: str) -> list[tuple[float, float]]:
    """Ictus points of the pattern's main beats (subdivisions are placed by the motion)."""
    return _POS[base(pattern)]


def n_beats(pattern: str) -> int:
    return len(_POS[base(pattern)])


@dataclass(frozen=True)
class BarScheme:
    """How one bar is beaten: its pattern and every stroke as (offset in the bar in quarter
    lengths, main beat index, subdivision index)."""
    pattern: str
    offsets: tuple[float, ...]
    beat: tuple[int, ...]
    sub: tuple[int, ...]


def _five_seven_key(n: int, grouping: tuple[int, ...] | None) -> str:
    if n == 5:
        return "5:3+2" if grouping and tuple(grouping)[:1] == (3,) else "5:2+3"
    if grouping and tuple(grouping) == (2, 2, 3):
        return "7:2+2+3"
    return "7:3+2+2"


def bar_scheme(numerator: int, denominator: int, quarter_s: float,
               grouping: tuple[int, ...] | None = None) -> BarScheme:
    """The conductor's choice for a bar of numerator/denominator at quarter_s seconds a quarter.

    Simple metres beat the denominator's note; compound ones (6, 9, 12) beat the eighth when it is
    slower than FAST_S and the dotted beat otherwise. Unusual numerators are grouped in twos and
    threes like seven."""
    unit = 4.0 / denominator  # quarter lengths of the notated unit
    p = unit * quarter_s
    n = numerator

    def scheme(pattern: str, starts: list[float], subdiv: int = 1) -> BarScheme:
        offs, beat, sub = [], [], []
        ends = starts[1:] + [n * unit]
        for i, (a, b) in enumerate(zip(starts, ends)):
            for s in range(subdiv):
                offs.append(a + (b - a) * s / subdiv)
                beat.append(i)
                sub.append(s)
        return BarScheme(pattern, tuple(offs), tuple(beat), tuple(sub))

    every = [i * unit for i in range(n)]
    if n in (6, 9, 12):
        if p >= FAST_S:
            return scheme(str(n), every)
        groups = n // 3
        if groups == 2 and 3 * p < 0.36:  # a very fast six goes in one
            return scheme("1", [0.0])
        return scheme(str(groups), [3 * unit * g for g in range(groups)])
    if n == 1:
        return scheme("1", [0.0])
    if n == 2:
        if p < VERY_FAST_S:
            return scheme("1", [0.0])
        return scheme("2/2", every, 2) if p > SLOW_S else scheme("2", every)
    if n == 3:
        if p < FAST_S:
            return scheme("1", [0.0])
        return scheme("3/2", every, 2) if p > SLOW_S else scheme("3", every)
    if n == 4:
        if p < 0.36:
            return scheme("2", [0.0, 2 * unit])
        return scheme("4/2", every, 2) if p > SLOW_S else scheme("4", every)
    if n in (5, 7):
        key = _five_seven_key(n, grouping)
        if p < VERY_FAST_S:
            pattern, heads = GROUPED[key]
            return scheme(pattern, [h * unit for h in heads])
        return scheme(key, every)
    # other numerators (8, 10, 11, …): groups of two, the last one of three when odd
    heads = list(range(0, n - 1, 2))  # the last group takes three when n is odd
    if len(heads) > 4:
        heads = [round(i * n / 4) for i in range(4)]
    return scheme(str(len(heads)), [h * unit for h in heads])
