"""What a corpus is built from: pieces of music paired with conducting motion and a plan.

A *piece source* is any function that returns (or yields) `PieceJob`s — cheaply, in a stable order,
without rendering anything. Each job names its item and the work it renders (the corpus is split by
work, never by item, so evaluation music is unseen) and carries a `render` callable that does the
expensive part in a worker process and returns a `Piece`. `render` must be picklable: a module-level
function, or a `functools.partial` of one with plain arguments.

    def my_source(**options) -> Iterable[PieceJob]: ...
    python -m training.build_corpus --source my.module:my_source --source-opt key=value

The plan is a JSON-able dict; the builder and the evaluation rely on two keys, both in seconds from
the start of the piece's audio:

* `beats` (required): every beat the motion conducts;
* `downbeats` (optional): the beats that start a bar (downbeat and pattern accuracy need them).

Everything else in the plan is stored as given. `demo_jobs` is the built-in source: the bundled demo
music (backend/demo_music.py, exact beats) at several tempi, conducted by the rule-based conductor
with different seeds — the tests' corpus, and a quick way to try the pipeline end to end.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from baton_core.skeleton import N_JOINTS
from baton_core.timebase import MOTION_FPS, motion_frames


@dataclass
class Piece:
    audio: np.ndarray  # mono float32
    sr: int
    motion_3d: np.ndarray  # (T, 13, 3) metres at 30 fps in the engine's 3D conventions; frame 0 = audio t 0
    plan: dict  # JSON-able; "beats" required, "downbeats" optional (seconds)
    provenance: dict = field(default_factory=dict)  # JSON-able: what was rendered, how

    def check(self, item_id: str) -> None:
        """Raise ValueError naming the item and the problem when the piece cannot be stored."""
        a, m = np.asarray(self.audio), np.asarray(self.motion_3d)
        problems = []
        if a.ndim != 1 or len(a) == 0 or not np.isfinite(a).all():
            problems.append(f"audio must be a finite mono array, got shape {a.shape}")
        if not isinstance(self.sr, int) or self.sr <= 0:
            problems.append(f"sample rate must be a positive int, got {self.sr!r}")
        if m.ndim != 3 or m.shape[1:] != (N_JOINTS, 3) or not np.isfinite(m).all():
            problems.append(f"motion_3d must be finite (T, {N_JOINTS}, 3), got shape {m.shape}")
        if not isinstance(self.plan, dict) or "beats" not in self.plan:
            problems.append("plan must be a dict with 'beats'")
        if problems:
            raise ValueError(f"{item_id}: " + "; ".join(problems))


@dataclass(frozen=True)
class PieceJob:
    item_id: str  # unique and stable: how a resumed build knows what is done
    work_id: str  # the work this item renders; all items of a work land in one split
    render: Callable[[], Piece]


PieceSource = Callable[..., Iterable[PieceJob]]


def demo_jobs(works: int = 4, versions: int = 2, bars: int = 8, seed: int = 0) -> list[PieceJob]:
    """`works` × `versions` demo items: each work is the demo piece with its own length and
    percussion noise; each version plays it at a random tempo (×0.8–1.25) with a conductor seed."""
    rng = np.random.default_rng(seed)
    jobs = []
    for w in range(works):
        for v in range(versions):
            tempo = float(rng.uniform(0.8, 1.25))
            style = int(rng.integers(1 << 31))
            render = functools.partial(render_demo, work=w, bars=bars + w % 3, tempo=tempo, style_seed=style)
            jobs.append(PieceJob(item_id=f"demo-{w}-v{v}", work_id=f"demo-{w}", render=render))
    return jobs


def render_demo(work: int, bars: int, tempo: float, style_seed: int) -> Piece:
    """The demo piece played `tempo` times faster (pitch follows, as with tape), conducted by the
    rule-based conductor on its exact beats (a steady 4/4 plan: the demo has no tempo changes)."""
    import soxr

    from backend.conducting.motion import conduct_plan
    from backend.conducting.plan import grid_plan
    from backend.conducting.style import sample_style
    from backend.demo_music import BEATS_PER_BAR, BPM, demo_piece
    from backend.features import mel_features

    piece = demo_piece(bars=bars, seed=work)
    audio = soxr.resample(piece.samples, piece.sr * tempo, piece.sr).astype(np.float32)
    beats = piece.beats / tempo
    mel = mel_features(audio, piece.sr)
    n_frames = motion_frames(len(mel))
    conducted = grid_plan(str(BEATS_PER_BAR), BPM * tempo, bars, start=float(beats[0]), level=0.6)
    motion = conduct_plan(conducted, sample_style(style_seed), n_frames, MOTION_FPS)
    plan = {"beats": beats.tolist(), "downbeats": beats[::BEATS_PER_BAR].tolist(),
            "beats_per_bar": BEATS_PER_BAR, "tempo_bpm": BPM * tempo}
    prov = {"music": "backend.demo_music.demo_piece", "bars": bars, "tempo_factor": tempo,
            "conductor": "backend.conducting.conduct_plan (grid plan on the exact beats)",
            "conductor_seed": style_seed}
    return Piece(audio, piece.sr, motion, plan, prov)
