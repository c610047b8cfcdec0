"""The rule-based conductor (`--engine rules`): audio → conducting plan → motion.

The day-one engine and the baseline: it never misses a beat because every ictus is placed on a
beat it heard. The work is done by backend/conducting/: plan_audio.py hears the pulse, metre,
dynamics, articulation, entries and silences; style.py draws a conductor from the seed; motion.py
beats the plan in that style. The take's beats are the strokes the conductor actually beats.
"""

from __future__ import annotations

import numpy as np

from .beats import Beats
from .conducting import Plan, conduct_plan, sample_style
from .conducting.motion import beaten_strokes
from .conducting.plan_audio import GivenBeats, plan_from_audio
from baton_core.timebase import MOTION_FPS


def conduct(mel: np.ndarray, n_frames: int, fps: float = MOTION_FPS, seed: int = 0,
            given: GivenBeats | None = None, seating: dict[str, float] | None = None) -> tuple[np.ndarray, Plan]:
    """((n_frames, 13, 3) motion in the engine's 3D conventions, the plan it beats) for the music
    whose mel features (90 frames/s) are given, on the `given` beats and bars when there are, cueing
    the sections where `seating` puts them."""
    plan = plan_from_audio(mel, given=given)
    return conduct_plan(plan, sample_style(seed), n_frames, fps, seating), plan


def plan_beats(plan: Plan) -> Beats:
    """The strokes the conductor beats, and their median tempo, as the take records them."""
    times = plan.times[beaten_strokes(plan)]
    tempo = float(np.median(plan.tempo[plan.sub == 0])) if len(times) > 1 else 0.0
    return Beats(times, tempo)
