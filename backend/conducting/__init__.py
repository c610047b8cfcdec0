"""The rule-based conductor: a per-beat plan of the music (from a score or from audio alone) and a
sampled style turned into expert conducting motion.

    plan = plan_from_audio(mel)                  # or backend.score.plan_from_score(score, …)
    kp3d = conduct_plan(plan, sample_style(seed), n_frames, fps=30)
    kp2d = skeleton.project_front(kp3d)
"""

from .motion import conduct_plan
from .plan import FAMILIES, Plan, grid_plan
from .style import Style, sample_style

__all__ = ["FAMILIES", "Plan", "Style", "conduct_plan", "grid_plan", "sample_style"]
