"""A conductor's personal style, sampled from a seed.

Conductors beat the same patterns on the same beats yet look nothing alike: one works small and
low with crisp clicks, another big, high and round with a busy left hand and a swaying body. A
Style holds those choices; every one changes how the motion looks, none changes where an ictus
falls (that is the plan's, plus `lead_s`). Ranges stay inside what conductors do, so any seed is a
plausible conductor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Style:
    size: float = 1.0  # overall gesture size
    aspect: float = 1.0  # pattern height ÷ width relative to the default
    plane: float = 0.0  # metres the beat plane sits above (+) or below the default
    centre_x: float = -0.16  # beat point: metres to the conductor's left (+) of the body's midline
    reach: float = 0.42  # beat point: metres in front of the chest
    sharpness: float = 0.6  # 0 = round, flowing ictus … 1 = crisp click
    rebound: float = 1.0  # rebound height
    left_activity: float = 0.5  # how much the left hand mirrors, shapes and cues
    left_rest: int = 0  # 0 = before the navel, 1 = down by the side, 2 = at the chest
    sway: float = 0.3  # body sway with the bar
    lean: float = 1.0  # forward lean with intensity
    stance: float = 0.0  # body handedness: radians the torso turns toward the baton (+) or away
    head_tilt: float = 0.0  # radians the head tilts sideways
    nod: float = 0.5  # head nod into downbeats
    elbow_out: float = 0.8  # how far the elbows open sideways
    lead_s: float = 0.0  # the ictus this many seconds before the beat (0 = on it)
    micro: float = 0.004  # metres of slow micro-motion (breathing, settling)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def sample_style(seed: int, lead_s: float = 0.0) -> Style:
    """A plausible conductor for `seed`. The lead stays at `lead_s` (default 0: ictus on the beat)
    so that every seed is equally precise."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
    u = rng.uniform
    return Style(
        size=float(np.exp(rng.normal(0.0, 0.18))).__round__(4),
        aspect=round(u(0.8, 1.25), 4),
        plane=round(u(-0.07, 0.10), 4),
        centre_x=round(u(-0.24, -0.08), 4),
        reach=round(u(0.34, 0.50), 4),
        sharpness=round(u(0.15, 1.0), 4),
        rebound=round(u(0.75, 1.3), 4),
        left_activity=round(u(0.0, 1.0), 4),
        left_rest=int(rng.integers(0, 3)),
        sway=round(u(0.0, 1.0), 4),
        lean=round(u(0.4, 1.6), 4),
        stance=round(u(-0.14, 0.14), 4),
        head_tilt=round(u(-0.08, 0.08), 4),
        nod=round(u(0.2, 1.0), 4),
        elbow_out=round(u(0.4, 1.2), 4),
        lead_s=float(lead_s),
        micro=round(u(0.002, 0.008), 4),
        seed=int(seed),
    )
