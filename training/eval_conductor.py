"""Evaluate the rule-based conductor on rendered scores whose every beat is known (issue 3).

    .venv/bin/python -m training.eval_conductor            # renders (cached in out/), prints the table,
                                                           # writes training/results/conductor.{md,json}
                                                           # and training/results/patterns.png

The set: short excerpts from music21's corpus in 2/4, 3/4, 4/4, 6/8 (in six and in two), a slow
2/4 beaten in subdivided two, a fast 3/4 in one, and two metre changes, at several tempi, with and
without rubato, with score dynamics or random ones. For each excerpt the conductor is run from the
score's plan and from the audio alone (the engine's path), with two style seeds.

Reference beats are the score's beats at the level a conductor beats them — the strokes of the
score plan (a 6/8 andante in six: eighths; a 6/8 allegro in two: dotted quarters; a slow 2/4:
eighths; a fast 3/4: bars) — leaving out the beats swallowed by a fermata, the rests before the
first sound and after the last, and long rests (a bar and 2 s or more), where the conductor stands
still. Metrics follow ../shared/metrics.md (backend/metrics.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "out" / "eval_conductor"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Excerpt:
    name: str  # short label
    piece: str  # music21 corpus name
    first_bar: int
    n_bars: int
    tempo: float  # quarter notes a minute at the first bar
    rubato: float
    seed: int = 1
    dynamics: str = "auto"


SET = (
    Excerpt("chorale-orch 4/4", "bach/bwv248.64-6", 9, 12, 84, 0.5),
    Excerpt("chorale-fermatas 4/4", "bach/bwv190.7-inst", 1, 12, 76, 0.0),
    Excerpt("haydn-74/1 4/4", "haydn/opus74no1/movement1", 3, 16, 126, 0.0),
    Excerpt("mozart-k155 4/4", "mozart/k155/movement1", 1, 14, 116, 0.6),
    Excerpt("haydn-1/1 3/4", "haydn/opus1no1/movement2", 1, 14, 92, 0.0),
    Excerpt("menuetto 3/4", "haydn/opus74no1/movement3", 1, 16, 138, 0.5),
    Excerpt("lindenbaum 3/4", "schubert/Lindenbaum", 1, 14, 80, 0.6, dynamics="random"),
    Excerpt("haydn-finale 2/4", "haydn/opus1no1/movement5", 1, 16, 112, 0.0),
    Excerpt("rag 2/4", "joplin/maple_leaf_rag", 1, 16, 84, 0.3),
    Excerpt("adagio 2/4 (in 4)", "beethoven/opus59no1/movement3", 1, 8, 46, 0.5),
    Excerpt("andante 6/8 (in 6)", "haydn/opus1no1/movement1", 1, 8, 64, 0.3, dynamics="random"),
    Excerpt("allegro 6/8 (in 2)", "mozart/k458/movement1", 1, 14, 132, 0.0),
    Excerpt("scherzo 3/4 (in 1)", "beethoven/opus18no1/movement3", 1, 24, 252, 0.0),
    Excerpt("metre 2/4→6/8", "schumann_robert/opus41no1/movement1", 30, 14, 38, 0.3),
    Excerpt("metre 4/4→3/4", "handel/rinaldo/Lascia_chio_pianga", 9, 9, 64, 0.4),
)
MAX_SECONDS = 32.0


def render(ex: Excerpt):
    """The excerpt's audio, beats and score plan, cached under out/eval_conductor."""
    from backend.conducting.plan import Plan
    from training.scores import Rendered, render_score
    CACHE.mkdir(parents=True, exist_ok=True)
    key = f"{ex.piece.replace('/', '_')}-{ex.first_bar}-{ex.n_bars}-{ex.tempo}-{ex.rubato}-{ex.seed}-{ex.dynamics}"
    path = CACHE / f"{key}.npz"
    if path.exists():
        d = np.load(path, allow_pickle=False)
        plan = Plan.from_arrays({k[5:]: d[k] for k in d.files if k.startswith("plan_")})
        return Rendered(d["audio"], int(d["sr"]), d["beats"], d["downbeats"], plan, json.loads(str(d["info"])))
    r = render_score(ex.piece, ex.first_bar, ex.n_bars, ex.tempo, ex.rubato, ex.seed, ex.dynamics, MAX_SECONDS)
    np.savez_compressed(path, audio=r.audio, sr=r.sr, beats=r.beats, downbeats=r.downbeats,
                        info=json.dumps(r.info), **{f"plan_{k}": v for k, v in r.plan.to_arrays().items()})
    return r
