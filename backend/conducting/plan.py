"""The conducting plan: what a conductor needs to know about the music, one row per stroke.

A stroke is every ictus the conductor beats: the bar's main beats, and subdivisions when the music
is slow (so a 4/4 adagio in eight has eight strokes a bar). Both sources — a score (backend/score/)
and audio alone (plan_audio.py) — produce this, and the motion (motion.py) reads nothing else, so
the two are interchangeable and a training corpus can store plans next to its audio.

`hold[k] > 0` says the sound after stroke k is held and then cut off at times[k] + hold[k] (a
fermata, the last chord, the last sound before a long rest); 0 means the music flows on into the
next stroke. `sounding[k]` is False for a stroke in silence (rests in every part); the motion beats
short rests passively and stands still through long ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from baton_core.errors import BatonError
from baton_core.request import SECTIONS

FAMILIES = SECTIONS  # the families a plan's entries name (the request's seating places them)


@dataclass(frozen=True)
class Stroke:
    """One stroke of a bar's scheme as a plan source lays the bars out, before its features: where
    it falls (seconds when planned from audio, quarter notes in a score), its place in the bar and
    how long until the next stroke at the bar's tempo."""

    at: float
    bar: int  # from audio: bars counted from 0; from a score: the index into its bars
    beat: int
    sub: int
    pattern: str
    metre: str
    period_s: float


@dataclass
class Plan:
    times: np.ndarray  # (N,) seconds of every stroke, strictly increasing
    bar: np.ndarray  # (N,) bar index from 0
    beat: np.ndarray  # (N,) main beat within the bar, 0 = downbeat
    sub: np.ndarray  # (N,) 0 = the beat itself, 1… = its subdivisions
    pattern: np.ndarray  # (N,) str: the bar's pattern key (patterns.py), e.g. '4', '3/2', '5:2+3'
    metre: np.ndarray  # (N,) str: notated metre '6/8', or the estimated beats per bar for audio
    tempo: np.ndarray  # (N,) bpm of the conducted strokes, local
    level: np.ndarray  # (N,) dynamic level: 0 = ppp … 1 = fff
    accent: np.ndarray  # (N,) 0 … 1
    staccato: np.ndarray  # (N,) articulation: 0 = legato … 1 = staccato
    hairpin: np.ndarray  # (N,) −1 diminuendo … +1 crescendo
    phrase: np.ndarray  # (N,) bool: a phrase starts here
    section: np.ndarray  # (N,) bool: a section starts here (metre/tempo/key change, double bar, novelty)
    entries: np.ndarray  # (N, len(FAMILIES)) bool: the family enters on this stroke
    tutti: np.ndarray  # (N,) 0 … 1: how much of the ensemble sounds (1 = everyone); heard: at its climaxes only
    sounding: np.ndarray  # (N,) bool: music sounds during the stroke
    hold: np.ndarray  # (N,) seconds the sound is held after the stroke before a cut-off; 0 = flows on
    fermata: np.ndarray  # (N,) bool: the hold is a fermata
    source: str = "score"  # 'score' or 'audio'
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(np.asarray(self.times))
        conv = {"times": float, "tempo": float, "level": float, "accent": float, "staccato": float,
                "hairpin": float, "hold": float, "tutti": float, "bar": int, "beat": int, "sub": int, "phrase": bool,
                "section": bool, "sounding": bool, "fermata": bool}
        for name, kind in conv.items():
            setattr(self, name, np.asarray(getattr(self, name), dtype=kind).reshape(-1))
        self.pattern = np.asarray(self.pattern, dtype=str).reshape(-1)
        self.metre = np.asarray(self.metre, dtype=str).reshape(-1)
        self.entries = np.asarray(self.entries, dtype=bool).reshape(n, len(FAMILIES))

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def downbeats(self) -> np.ndarray:
        return self.times[(self.beat == 0) & (self.sub == 0)]

    @property
    def start(self) -> float:
        """The first sound: where the first beaten stroke lands."""
        s = np.flatnonzero(self.sounding)
        return float(self.times[s[0]]) if len(s) else float(self.times[0])

    @property
    def end(self) -> float:
        """When the last sound stops: the final release."""
        return float(np.max(self.times + self.hold))

    def period(self, k: int) -> float:
        return 60.0 / max(float(self.tempo[k]), 1e-6)

    def shifted(self, seconds: float) -> "Plan":
        """The same plan on a clock `seconds` later (negative: earlier), e.g. a slice's."""
        return replace(self, times=self.times + seconds)

    def validate(self) -> "Plan":
        """Raise BatonError naming the first thing wrong with the plan."""
        if self.n == 0:
            raise BatonError("the conducting plan has no beats: there is nothing to conduct")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray) and len(v) != self.n:
                raise BatonError(f"plan field {f.name!r} has {len(v)} rows for {self.n} strokes")
        for name in ("times", "tempo", "level", "accent", "staccato", "hairpin", "hold", "tutti"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise BatonError(f"plan field {name!r} has non-finite values")
        if np.any(np.diff(self.times) <= 0):
            raise BatonError("plan stroke times must strictly increase")
        if np.any(self.tempo <= 0):
            raise BatonError("plan tempo must be positive")
        if np.any(self.hold < 0):
            raise BatonError("plan holds must not be negative")
        return self

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as an array (source and meta as 0-d strings), for np.savez."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("source", "meta")}
        out["source"] = np.array(self.source)
        out["meta"] = np.array(repr(self.meta))
        return out

    @classmethod
    def from_arrays(cls, d) -> "Plan":
        kw = {f.name: d[f.name] for f in fields(cls) if f.name not in ("source", "meta")}
        return cls(**kw, source=str(d["source"])).validate()


def grid_plan(pattern: str, bpm: float, bars: int, start: float = 1.0, level=0.5, staccato: float = 0.0,
              metre: str = "") -> Plan:
    """A steady plan: `bars` bars of one pattern at `bpm` strokes a minute from `start`, ending on a
    downbeat held for one stroke. For pictures, tests and the engine's fallbacks. `level` is a
    number or a callable of the stroke index."""
    from . import patterns
    nb = patterns.n_beats(pattern)
    nsub = 2 if "/" in pattern else 1
    per_bar = nb * nsub
    n = bars * per_bar + 1
    k = np.arange(n)
    period = 60.0 / bpm
    lv = np.array([level(i) for i in k]) if callable(level) else np.full(n, float(level))
    hold = np.zeros(n)
    hold[-1] = period
    return Plan(times=start + k * period, bar=k // per_bar, beat=(k % per_bar) // nsub, sub=k % nsub,
                pattern=[pattern] * n, metre=[metre or str(nb)] * n, tempo=np.full(n, bpm), level=lv,
                accent=np.zeros(n), staccato=np.full(n, staccato), hairpin=np.zeros(n),
                phrase=k % (4 * per_bar) == 0, section=k == 0, entries=np.zeros((n, len(FAMILIES)), bool),
                tutti=np.ones(n), sounding=np.ones(n, bool), hold=hold, fermata=np.zeros(n, bool),
                source="grid").validate()
