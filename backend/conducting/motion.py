"""A plan and a style turned into the conductor's motion: 13 joints in 3D, at any frame rate.

The baton hand (right wrist) carries the beat:

* every stroke of the plan is an ictus — the hand's lowest point of the stroke — at the stroke's
  time minus the style's lead; the pattern of the bar places the ictus points (patterns.py);
* between two ictus points the hand moves like a ball: it rebounds (decelerating), peaks and falls
  with growing speed into the next ictus. Legato bends the path through the ictus and rounds it;
  staccato rebounds quickly, stops dead, and drops late;
* size, plane height and rebound follow the dynamic level, accents and downbeats strike harder, and
  the rise after the bar's last beat is the largest, so the downbeat falls from the highest point;
* a preparation — one beat, from stillness — before the first sound and after every silence; a
  fermata or last chord is sustained with a slowly rising hand, then cut off; the end is released
  and both hands lower; long rests stand still and short ones are beaten small.

The left hand rests, mirrors the baton in loud tutti, rises through a crescendo and sinks through a
diminuendo, and cues a family entering after a rest a beat ahead, toward where it sits. The head
nods into downbeats and looks toward cues; the torso leans with intensity and sways with the bar.
Elbows come from two-bone IK, so every bone keeps its length.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from baton_core import skeleton as sk
from baton_core.timebase import MOTION_FPS
from . import patterns
from .plan import FAMILIES, Plan
from .style import Style

SW = sk.SHOULDER_WIDTH_M
SHOULDER_Z = sk.HIP_HEIGHT + sk.TORSO * SW
# Where each family sits, as a direction from the conductor's chest: strings to the left (+X),
# woodwinds in the centre, brass and percussion right and back, voices behind at the centre, the
# keyboard (continuo, piano) centre-left.
FAMILY_DIRECTION = {
    "strings": (0.75, -0.60, 0.05), "woodwind": (0.05, -1.0, 0.12), "brass": (-0.55, -0.85, 0.22),
    "percussion": (-0.40, -0.90, 0.28), "voices": (0.0, -0.90, 0.38), "keyboard": (0.35, -0.85, -0.05),
}
REST_POSES = (np.array([0.09, -0.34, sk.HIP_HEIGHT + 0.22]),  # before the navel, inside the hip's outline
              np.array([0.24, -0.06, sk.HIP_HEIGHT + 0.02]),  # down by the side
              np.array([0.10, -0.20, SHOULDER_Z - 0.22]))  # at the chest
HANDS_DOWN = np.array([0.24, -0.06, sk.HIP_HEIGHT + 0.0])  # after the final release (x mirrored for the right)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 up to 0, 1 from 1, and between them an S that starts and ends with no speed (easing)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _ramp(t: np.ndarray, a: float, b: float) -> np.ndarray:
    """0 before a, 1 after b, smooth between."""
    return smoothstep((t - a) / max(b - a, 1e-6))


def beaten_strokes(plan: Plan) -> np.ndarray:
    """(N,) bool: the strokes the baton beats. Every sounding stroke, and the strokes of a short
    rest (under a bar or 2 s) between sounding ones, beaten small; not the strokes of a long rest,
    before the first sound or after the last (the conductor stands still), nor those a hold swallows."""
    return _Strokes(plan).beaten


class _Strokes:
    """The strokes the right hand actually beats, grouped into passages that each start with a
    preparation and end with a cut-off (or run into the end)."""

    def __init__(self, plan: Plan):
        n = plan.n
        beaten = plan.sounding.copy()
        # short rests between sounding strokes are beaten (small); long ones stand still
        k = 0
        while k < n:
            if not plan.sounding[k]:
                j = k
                while j < n and not plan.sounding[j]:
                    j += 1
                if 0 < k and j < n:
                    bar_s = plan.period(k) * patterns.n_beats(plan.pattern[k]) * (1 + (plan.sub[k:j].max() > 0))
                    if plan.times[j] - plan.times[k] < max(bar_s, 2.0) + 1e-6:
                        beaten[k:j] = True
                k = j
            else:
                k += 1
        # strokes under a hold are not beaten
        for k in np.flatnonzero(plan.hold > 0):
            under = (plan.times > plan.times[k]) & (plan.times < plan.times[k] + plan.hold[k] - 0.05)
            beaten[under] = False
        self.beaten = beaten
        idx = np.flatnonzero(beaten)
        passages, cur = [], []
        for i in idx:
            # a passage ends at a gap (a long rest) or a fermata; a short rest is beaten through
            if cur and (i != cur[-1] + 1 or (plan.hold[cur[-1]] > 0 and plan.fermata[cur[-1]])):
                passages.append(cur)
                cur = []
            cur.append(int(i))
        if cur:
            passages.append(cur)
        self.passages = passages


def _vertical(u: np.ndarray, z0: float, z1: float, apex: float, stacc: float, from_rest: bool) -> np.ndarray:
    """Height over one stroke, u in [0, 1]: rebound (decelerating) to the apex, an optional dead
    stop (staccato), then a fall accelerating into the next ictus."""
    ua = 0.5 if from_rest else 0.44
    r = ua + (0.22 - ua) * stacc
    f = ua + (0.64 - ua) * stacc
    rise = np.clip(u / r, 0, 1)
    fall = np.clip((u - f) / (1 - f), 0, 1)
    if from_rest:
        up = z0 + (apex - z0) * smoothstep(rise)
    else:
        up = z0 + (apex - z0) * (1 - (1 - rise) ** 2)
    return np.where(u < f, up, apex - (apex - z1) * fall ** 2)


def _horizontal(u: np.ndarray, legato: float, stacc: float, lateral: float, end: float = 1.0) -> np.ndarray:
    """Progress from one ictus point to the next. Staccato travels during the rebound and drops
    straight down; legato travels late and enters a sideways ictus sideways (the scoop of a
    legato pattern), which bends the path through the ictus."""
    end = min(end, 1.0 - 0.45 * stacc)
    g = smoothstep(u / end)
    e = 0.85 * legato * (1 - stacc) * lateral
    return g + e * (np.clip(u, 0, 1) ** 1.7 - g)


def seated_directions(seating: dict[str, float] | None) -> dict[str, tuple[float, float, float]]:
    """FAMILY_DIRECTION with the given sections moved to their azimuths (degrees, + toward the
    conductor's left), each at its usual height and distance."""
    out = dict(FAMILY_DIRECTION)
    for family, degrees in (seating or {}).items():
        x, y, z = FAMILY_DIRECTION[family]
        h, a = float(np.hypot(x, y)), np.radians(degrees)
        out[family] = (h * np.sin(a), -h * np.cos(a), z)
    return out


CUE_ORIGIN = np.array([0.05, -0.05, SHOULDER_Z - 0.10])  # where a cue reaches out from: before the chest


def cue_track(t: np.ndarray, times: np.ndarray, periods: np.ndarray, families: list[str],
              directions: dict[str, tuple[float, float, float]], activity: float,
              origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The left hand's cues and the eyes' turn, for entrances at `times` (each with its beat's
    period and the family entering): the hand rises toward where the family sits (`directions`)
    about a beat ahead, gives a small click down on the entrance and lets go over the next beat;
    the gaze turns there a little earlier. Returns (T, 3) where the hand cues, (T,) how much the
    cue holds it (0 … 1), and (T,) the gaze's yaw (radians, + toward the conductor's left). One
    implementation for both engines: the rule-based conductor's left hand, and the seating the
    animator gives any engine (gestures.cue_sections)."""
    n = len(t)
    cue_w, cue_pos, gaze = np.zeros(n), np.zeros((n, 3)), np.zeros(n)
    for tau, per, fam in zip(times, periods, families):
        d = np.array(directions[fam])
        d = d / np.linalg.norm(d)
        target = origin + 0.50 * d
        target[0] = max(target[0], origin[0] - 0.07)  # toward the right side the left hand points, the eyes do the rest
        w = _ramp(t, tau - 1.3 * per, tau - 0.4 * per) * (1 - _ramp(t, tau + 0.8 * per, tau + 1.8 * per))
        click = np.exp(-0.5 * ((t - tau) / (0.12 * per)) ** 2)
        tgt = target + np.outer(-0.04 * click, [0, 0, 1.0])
        cue_pos = np.where((w > cue_w)[:, None], tgt, cue_pos)
        cue_w = np.maximum(cue_w, w * (0.5 + 0.5 * activity))
        gaze_w = _ramp(t, tau - 1.6 * per, tau - 0.6 * per) * (1 - _ramp(t, tau + 0.6 * per, tau + 1.6 * per))
        yaw = np.arctan2(d[0], -d[1]) * 0.6
        gaze = np.where(np.abs(gaze_w * yaw) > np.abs(gaze), gaze_w * yaw, gaze)
    return cue_pos, cue_w, gaze


class _Conductor:
    def __init__(self, plan: Plan, style: Style, n_frames: int, fps: float, seating: dict[str, float] | None = None):
        self.plan, self.style, self.fps = plan, style, fps
        self.directions = seated_directions(seating)
        self.t = np.arange(n_frames) / fps
        self.n = n_frames
        self.tau = plan.times - style.lead_s  # ictus times
        self.point = np.array([style.centre_x, -style.reach, SHOULDER_Z - 0.31 + style.plane])
        self.strokes = _Strokes(plan)
        self.level_t = np.interp(self.t, self.tau, plan.level) if plan.n else np.zeros(n_frames)

    # ---- geometry of one stroke -------------------------------------------------------------
    def width(self, k: int) -> float:
        p = self.plan
        w = self.style.size * (0.34 + 0.72 * p.level[k]) * (1 + 0.15 * p.accent[k])
        return min(w, 0.95) * (1.0 if p.sounding[k] else 0.5)

    def ictus_point(self, k: int) -> np.ndarray:
        p = self.plan
        pos = patterns.positions(p.pattern[k])
        i = min(int(p.beat[k]), len(pos) - 1)
        x, z = pos[i]
        if p.sub[k] > 0:  # a subdivision: a small stroke a little on the way to the next beat
            nx, nz = pos[i + 1] if i + 1 < len(pos) else (0.0, pos[i][1] + 0.12)
            nsub = max(int(p.sub[k]) + 1, 2)
            frac = 0.32 * p.sub[k] / nsub
            x, z = x + frac * (nx - x), z + frac * (nz - z) + 0.03
        w = self.width(k)
        lift = 0.10 * p.level[k] - 0.02 * p.accent[k]
        return self.point + np.array([x * w, 0.0, z * w * self.style.aspect + lift])

    def rebound(self, a: int, b: int) -> float:
        """Height the hand rises over the stroke from a to b, above the higher of the two points."""
        p = self.plan
        period = self.tau[b] - self.tau[a]
        h = self.style.rebound * (0.095 + 0.26 * p.level[a]) * np.clip(period / 0.6, 0.5, 1.4) ** 0.6
        h *= 1 + 0.4 * p.accent[b]
        if p.beat[b] == 0 and p.sub[b] == 0:
            h *= 1.65 if p.phrase[b] else 1.5  # the rise before the downbeat is the largest; more to start a phrase
        elif p.sub[b] > 0:
            h *= 0.5
        if not p.sounding[b]:
            h *= 0.45  # a passive beat in a short rest; the stroke into the next sound is its preparation
        return float(h)

    def apex(self, high: float, h: float, k: int) -> float:
        """Top of a stroke: `h` above the higher ictus, eased below a ceiling at the forehead
        (softly, so a higher stroke stays higher than a lower one)."""
        ceiling = SHOULDER_Z + 0.22 + 0.10 * self.plan.level[k]
        knee = 0.15
        x = high + h
        return x if x < ceiling - knee else ceiling - knee + knee * np.tanh((x - ceiling + knee) / knee)

    def ready_point(self, k: int) -> np.ndarray:
        """Where the hand waits before a preparation: at the ictus before stroke k, a little up."""
        p = self.plan
        pos = patterns.positions(p.pattern[k])
        i = (int(p.beat[k]) - 1) % len(pos)
        x, z = pos[i]
        w = self.width(k)
        return self.point + np.array([x * w, 0.0, z * w * self.style.aspect + 0.06 + 0.10 * p.level[k]])

    # ---- the baton hand -------------------------------------------------------------------
    def right_hand(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(T, 3) wrist path, (T,) legato weight, (T,) activity (0 when the hand is still)."""
        p, t = self.plan, self.t
        pos = np.full((self.n, 3), np.nan)
        legato = np.full(self.n, 0.5)
        active = np.zeros(self.n)
        passages = self.strokes.passages
        if not passages:
            pos[:] = REST_POSES[0] * np.array([-1, 1, 1])
            return pos, legato, active
        here = self.ready_point(passages[0][0])  # the hand waits here before the first preparation
        here_t = -np.inf
        for pi, strokes in enumerate(passages):
            first = strokes[0]
            period = p.period(first)
            p0 = self.ictus_point(first)
            prep_start = self.tau[first] - period
            if np.isfinite(here_t):
                prep_start = max(min(prep_start, max(here_t, self.tau[first] - 0.6 * period)),
                                 here_t - 0.4 * period)
            still = (t >= here_t) & (t < prep_start)
            pos[still] = here
            # the preparation: from stillness up and into the first ictus; a preparation for a beat
            # other than the downbeat rises less (it stands for the previous beat's rebound)
            h = self.rebound(first, first)
            down = p.beat[first] == 0 and p.sub[first] == 0
            lift = (1.1 if down else 0.7) * h
            apex = self.apex(max(here[2] + 0.25 * h - lift, p0[2]), lift, first)
            self._stroke(prep_start, self.tau[first], here, p0, apex, 0.0, 0.6, from_rest=True,
                         pos=pos, legato=legato, active=active)
            dx_in = 0.0
            for a, b in zip(strokes[:-1], strokes[1:]):
                pa, pb = self.ictus_point(a), self.ictus_point(b)
                dx = pb[0] - pa[0]
                lateral = float(np.clip(abs(dx) / (0.25 * self.width(a)), 0, 1))
                into_down = bool(p.beat[b] == 0 and p.sub[b] == 0)
                if into_down:
                    lateral = 0.0  # the downbeat falls straight down
                # a sideways stroke arches less: it travels more than it rises
                apex = self.apex(max(pa[2], pb[2]), self.rebound(a, b) * (1 - 0.2 * lateral), a)
                from_down = bool(p.beat[a] == 0 and p.sub[a] == 0)
                hook = 0.0 if from_down else 0.10 * self.width(a) * np.sign(dx_in) * (1 - p.staccato[a])
                self._stroke(self.tau[a], self.tau[b], pa, pb, apex, p.staccato[a], 1 - p.staccato[a],
                             from_rest=False, pos=pos, legato=legato, active=active, lateral=lateral,
                             hook=hook, end=0.62 if into_down else 1.0)
                dx_in = dx
            last = strokes[-1]
            final = pi == len(passages) - 1
            hold = float(p.hold[last]) if p.hold[last] > 0 else 0.9 * p.period(last)
            here, here_t = self._sustain(last, hold, final, None if final else passages[pi + 1][0],
                                         pos, legato, active)
        # after the end: hands down
        rest_r = HANDS_DOWN * np.array([-1, 1, 1])
        after = t >= here_t
        if after.any():
            lower = _ramp(t[after], here_t + 0.5, here_t + 2.0)[:, None]
            pos[after] = here + (rest_r - here) * lower
        first_t = self.tau[passages[0][0]] - p.period(passages[0][0])
        pos[np.isnan(pos[:, 0]) & (t < first_t)] = self.ready_point(passages[0][0])
        # anything still unset (cannot happen with ordered passages) holds the previous frame
        for i in range(self.n):
            if np.isnan(pos[i, 0]):
                pos[i] = pos[i - 1] if i else self.ready_point(passages[0][0])
        return pos, legato, active

    def _stroke(self, ta, tb, pa, pb, apex, stacc, leg, from_rest, pos, legato, active, lateral=0.0, hook=0.0,
                end=1.0):
        """One stroke from ictus (or rest) pa at ta into ictus pb at tb; `hook` carries the rebound
        on in the direction the hand came from before it turns (the loops of a legato pattern)."""
        m = (self.t >= ta) & (self.t < tb)
        if not m.any() or tb <= ta:
            return
        u = (self.t[m] - ta) / (tb - ta)
        z = _vertical(u, pa[2], pb[2], apex, stacc, from_rest)
        g = _horizontal(u, leg, stacc, lateral, end)
        xy = pa[:2] + (pb[:2] - pa[:2]) * g[:, None]
        xy[:, 0] += hook * 6.75 * u * (1 - u) ** 2
        # the hand comes a little forward as it strikes and back at the top
        depth = 0.035 * np.clip((z - np.minimum(pa[2], pb[2])) / max(apex - min(pa[2], pb[2]), 1e-6), 0, 1)
        pos[m] = np.column_stack([xy[:, 0], xy[:, 1] + depth - 0.035, z])
        legato[m] = leg
        active[m] = 1.0

    def _sustain(self, k, hold, final, nxt, pos, legato, active):
        """After the passage's last ictus: the hand rises gently and sustains until the cut-off at
        tau + hold, which is a small click when silence or the end follows, and the start of the next
        preparation when the music goes on at once. Returns where and when the hand comes to rest."""
        p, t = self.plan, self.t
        ta = self.tau[k]
        tc = ta + hold
        pk = self.ictus_point(k)
        period = p.period(k)
        rise = 0.3 * self.rebound(k, k) + 0.02
        s = pk + np.array([-0.03 * self.width(k), 0.0, rise])  # sustain point, a little outward
        # the held sound is kept alive: the hand sways slowly out and back while it keeps rising
        # (never dipping, which would read as a beat), wider and faster when loud
        radius = (0.04 + 0.10 * p.level[k]) * self.style.size
        speed = (0.06 + 0.30 * p.level[k]) * self.style.size  # metres a second
        flows_on = nxt is not None and self.tau[nxt] - tc < 1.3 * p.period(nxt)
        end_t = tc if flows_on else tc + 0.12 * period + 0.1
        m = (t >= ta) & (t < end_t)
        if m.any():
            tt = t[m]
            r = min(0.35 * hold, 0.35 * period)  # a quick rebound, then the slow sustain
            up = 1 - (1 - np.clip((tt - ta) / max(r, 1e-6), 0, 1)) ** 2
            since = np.maximum(tt - ta - r, 0.0)
            theta = speed / radius * (since - 0.3 * (1 - np.exp(-since / 0.3)))  # eased start
            lift = 0.5 * radius * (1 - np.exp(-since / max(hold, 1e-6)))
            circle = np.column_stack([-radius * (1 - np.cos(theta)), np.zeros(len(tt)), lift])
            path = pk + (s - pk) * up[:, None] + circle
            if not flows_on:  # cut-off: a small loop up and in, then a click down that stops dead on the cut
                loop = _ramp(tt, tc - 0.35 * period, tc - 0.12 * period)
                click = np.clip((tt - (tc - 0.12 * period)) / (0.12 * period), 0, 1)
                h = 0.05 + 0.07 * p.level[k]
                path[:, 0] += 0.03 * loop
                path[:, 2] += h * loop - h * 1.5 * click ** 2
            pos[m] = path
            legato[m] = 1.0
            active[m] = np.where(tt < tc - 0.35 * period, 0.5, 1.0)
        last = pos[np.flatnonzero(m)[-1]] if m.any() else s
        return last.copy(), end_t

    # ---- left hand, body, head ---------------------------------------------------------------
    def left_hand(self, rw: np.ndarray, active: np.ndarray, rested: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, 3) left wrist and (T,) gaze yaw (radians, + toward the conductor's left)."""
        p, st = self.plan, self.style
        rest = REST_POSES[st.left_rest]
        act = st.left_activity
        sm = lambda x, s=0.35: gaussian_filter1d(x, s * self.fps, mode="nearest")
        # mirror in loud tutti and climaxes: a score's tutti where its level is loud; music heard
        # has its tutti only at its own climaxes already (plan_audio.registers), since its levels
        # say how loud a passage is against the piece's loud passages, not how loud it is
        tutti = np.interp(self.t, self.tau, p.tutti)
        loud = np.ones(self.n, bool) if p.source == "audio" else self.level_t > 0.78 - 0.18 * act
        mirror_w = sm((loud & (tutti > 0.6) & (active > 0)).astype(float), 0.4)
        mirrored = rw * np.array([-1.0, 1.0, 1.0]) + np.array([0.0, 0.02, -0.02])
        # hairpins: rise through a crescendo, sink through a diminuendo
        shape_w = np.zeros(self.n)
        shape_z = np.zeros(self.n)
        if act > 0.15:
            hp = np.interp(self.t, self.tau, p.hairpin)
            on = sm((np.abs(hp) > 0.3).astype(float) * (active > 0), 0.4)
            # progress through each hairpin, signed: 0 → 1 through a crescendo, 0 → −1 through a diminuendo
            prog = np.zeros(self.n)
            for sign in (1.0, -1.0):
                d = np.diff(np.concatenate([[0], (sign * hp > 0.3).astype(int), [0]]))
                for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
                    prog[a:b] = sign * np.arange(1, b - a + 1) / (b - a)
            shape_z = SHOULDER_Z - 0.30 + 0.28 * np.where(prog >= 0, prog, 1 + prog)
            shape_w = on * min(1.0, 0.4 + act) * (1 - mirror_w)
        shaped = np.column_stack([np.full(self.n, 0.24), np.full(self.n, -0.36), shape_z])
        # cues: a beat ahead of a family's entrance, toward where it sits
        cued = [k for k in np.flatnonzero(p.entries.any(1)) if self.tau[k] > p.start + 0.1 and self.strokes.beaten[k]]
        cue_pos, cue_w, gaze = cue_track(self.t, self.tau[cued], np.array([p.period(k) for k in cued]),
                                         [FAMILIES[int(np.flatnonzero(p.entries[k])[0])] for k in cued],
                                         self.directions, act, CUE_ORIGIN)
        cue_w *= 1 - 0.6 * mirror_w  # while mirroring the tutti, cue with the eyes more than the hand
        lw = rest + (mirrored - rest) * mirror_w[:, None]
        lw = lw + (shaped - lw) * shape_w[:, None]
        lw = lw + (cue_pos - lw) * cue_w[:, None]
        lw = lw + (HANDS_DOWN - lw) * rested[:, None]
        return lw, gaze

    def body(self, rw: np.ndarray, lw: np.ndarray, gaze: np.ndarray, active: np.ndarray, rested: np.ndarray) -> np.ndarray:
        p, t, st = self.plan, self.t, self.style
        n = self.n
        loud = gaussian_filter1d(self.level_t * (active > 0), self.fps * 0.8, mode="nearest")
        # sway: a slow side-to-side rock, one cycle every two bars
        bar_phase = np.interp(t, self.tau, p.bar + p.beat / np.maximum(
            [patterns.n_beats(x) for x in p.pattern], 1)) if p.n else np.zeros(n)
        roll = 0.035 * st.sway * np.sin(np.pi * bar_phase) * gaussian_filter1d(active, self.fps, mode="nearest")
        lean = 0.04 + 0.11 * st.lean * loud
        yaw = st.stance + 0.22 * (rw[:, 0] - self.point[0]) + 0.35 * gaze
        yaw = gaussian_filter1d(yaw, 0.08 * self.fps, mode="nearest")
        # the head nods into downbeats
        nod = np.zeros(n)
        down = (p.beat == 0) & (p.sub == 0) & self.strokes.beaten
        for k in np.flatnonzero(down):
            nod += (0.04 + 0.05 * p.level[k]) * st.nod * np.exp(-0.5 * ((t - self.tau[k] - 0.03) / 0.09) ** 2)
        pitch = 0.08 + nod - 0.05 * loud  # chin slightly down; lifts with intensity
        micro = self._noise(n, 3, 0.6) * st.micro * (1 - rested)[:, None]  # at rest after the release: still
        hip_c = np.tile([0.0, 0.0, sk.HIP_HEIGHT], (n, 1))
        up = np.stack([np.sin(roll), -np.sin(lean) * np.cos(roll), np.cos(lean) * np.cos(roll)], axis=1)
        sh_c = hip_c + sk.TORSO * SW * up + micro[:, 0:1] * np.array([0.3, 0.5, 1.0])
        p3 = np.zeros((n, 13, 3))
        for joint, side in ((sk.L_SHOULDER, 1.0), (sk.R_SHOULDER, -1.0)):
            p3[:, joint] = sh_c + sk.rot_z(np.array([side * SW / 2, 0.0, 0.0]), yaw)
        for joint, side in ((sk.L_HIP, 1.0), (sk.R_HIP, -1.0)):
            p3[:, joint] = hip_c + sk.rot_z(np.array([side * sk.HIP_WIDTH * SW / 2, 0.0, 0.0]), yaw * 0.3)
        head_yaw = yaw + gaze * 0.9 + micro[:, 1] * 3
        for joint, (lat, fwd, upz) in sk.FACE.items():
            v = np.array([lat * SW, -fwd * SW, upz * SW])
            c, s = np.cos(pitch + lean), np.sin(pitch + lean)
            vy = v[1] * c - v[2] * s  # nod: tip the head forward about the shoulder line
            vz = v[1] * s + v[2] * c
            ct, stt = np.cos(st.head_tilt), np.sin(st.head_tilt)  # sideways tilt
            off = np.column_stack([v[0] * ct - vz * stt, vy, v[0] * stt + vz * ct])
            p3[:, joint] = sh_c + sk.rot_z(off, head_yaw)
        lw = lw + micro * np.array([1.0, 1.0, 1.0])
        # the baton hand settles only while it moves, and never vertically: the ictus is the baton's
        moving = gaussian_filter1d(active, 0.05 * self.fps, mode="nearest")[:, None]
        rw = rw + micro[:, [2, 1, 0]] * np.array([1.0, 1.0, 0.0]) * 0.7 * moving
        for sh, el, wr, wrist, side in ((sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST, lw, 1.0),
                                        (sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST, rw, -1.0)):
            p3[:, el], p3[:, wr] = _ik_elbow(p3[:, sh], wrist, side, st.elbow_out)
        return p3

    def _noise(self, n: int, dims: int, hz: float) -> np.ndarray:
        rng = np.random.default_rng([self.style.seed & 0xFFFFFFFF, 0xB0D1])
        x = rng.standard_normal((n + 200, dims))
        x = gaussian_filter1d(x, self.fps / (2 * np.pi * hz), axis=0, mode="wrap")[100:100 + n]
        return x / max(float(x.std()), 1e-9)

    def run(self) -> np.ndarray:
        rw, legato, active = self.right_hand()
        # round the ictus: a short Gaussian in legato, shorter in staccato, shorter still for a crisp style
        sig_leg = (0.018 + 0.045 * (1 - self.style.sharpness)) * self.fps
        sig_sta = (0.010 + 0.012 * (1 - self.style.sharpness)) * self.fps
        a = gaussian_filter1d(rw, sig_leg, axis=0, mode="nearest")
        b = gaussian_filter1d(rw, sig_sta, axis=0, mode="nearest")
        w = gaussian_filter1d(legato, 0.1 * self.fps, mode="nearest")[:, None]
        rw = b + (a - b) * w
        rested = _hands_down(self.plan, self.strokes, self.tau, self.t)  # after the final release
        lw, gaze = self.left_hand(rw, active, rested)
        lw = gaussian_filter1d(lw, 0.05 * self.fps, axis=0, mode="nearest")
        return self.body(rw, lw, gaze, active, rested)


def _ik_elbow(shoulder: np.ndarray, wrist: np.ndarray, side: float, out: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK: the elbow out to the side and down; a wrist out of reach is pulled in."""
    a, b = sk.UPPER_ARM * SW, sk.FOREARM * SW
    d_vec = wrist - shoulder
    d = np.linalg.norm(d_vec, axis=1, keepdims=True)
    d_c = np.clip(d, abs(a - b) + 1e-3, a + b - 1e-3)
    u = d_vec / np.maximum(d, 1e-9)
    wrist = shoulder + u * d_c
    pole = np.array([side * out, 0.3, -1.0])
    v = pole - (u @ pole)[:, None] * u
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
    cos_a = np.clip((a * a + d_c ** 2 - b * b) / (2 * a * d_c), -1, 1)
    elbow = shoulder + a * (cos_a * u + np.sqrt(1 - cos_a ** 2) * v)
    return elbow, wrist


def hands_down(plan: Plan, style: Style, n_frames: int, fps: float = MOTION_FPS) -> np.ndarray:
    """(n_frames,) 0…1: how far conduct_plan's hands have come down to rest after the final release
    (the animator's gesture controls leave them there)."""
    return _hands_down(plan, _Strokes(plan), plan.times - style.lead_s, np.arange(int(n_frames)) / fps)


def _hands_down(plan: Plan, strokes: "_Strokes", tau: np.ndarray, t: np.ndarray) -> np.ndarray:
    """After the final release both hands come down: from half a second after the last cut-off
    to two seconds after it."""
    end = strokes.passages[-1][-1] if strokes.passages else None
    if end is None:
        return np.zeros(len(t))
    tc = tau[end] + (plan.hold[end] if plan.hold[end] > 0 else 0.9 * plan.period(end))
    return _ramp(t, tc + 0.5, tc + 2.0)


def conduct_plan(plan: Plan, style: Style, n_frames: int, fps: float = MOTION_FPS,
                 seating: dict[str, float] | None = None) -> np.ndarray:
    """(n_frames, 13, 3) motion in the engine's 3D conventions for a plan and a style; `seating`
    (section → degrees, + toward the conductor's left) moves the sections it cues and looks at."""
    plan.validate()
    if n_frames <= 0:
        return np.zeros((0, sk.N_JOINTS, 3))
    return _Conductor(plan, style, int(n_frames), float(fps), seating).run()
