"""The animator's gesture controls, applied to either engine's 3D motion: the size of the baton
hand's gestures, how much the left hand does, which hand holds the baton, and arms-only motion;
and, for an engine that does not cue by itself (the generator), cues toward where the animator
seated the sections.

They act on the finished performance rather than inside an engine so that both engines obey them
the same way and an engine's timing is untouched: each ictus stays on its frame, because a stroke's
lowest point stays its lowest point when the hand's path around its mean is scaled. Arms keep
their bone lengths: the wrist goes where the scaled path says (within reach) and the elbow is
placed by two-bone IK in the plane the original arm bent in.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from baton_core.skeleton import (L_EAR, L_ELBOW, L_EYE, L_HIP, L_SHOULDER, L_WRIST, NOSE, R_EAR, R_ELBOW, R_EYE,
                                 R_HIP, R_SHOULDER, R_WRIST, rot_z)
from baton_core.timebase import MOTION_FPS
from .conducting.motion import CUE_ORIGIN, SHOULDER_Z, cue_track, seated_directions, smoothstep
from .metrics import hand_centre, shoulder_width

MIRROR = [NOSE, R_EYE, L_EYE, R_EAR, L_EAR, R_SHOULDER, L_SHOULDER, R_ELBOW, L_ELBOW, R_WRIST, L_WRIST, R_HIP, L_HIP]
BODY = [NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP]
REACH = 0.98  # the furthest a wrist is put, as a share of the arm's length (a straight arm cannot bend)
RELEASE_S = 0.6  # from the last sound to the hands at rest (released)
# A break between movements (break_weight): the hands start down this long after the silence
# begins (the cut-off is drawn), take this long to sink, hang at least this long, take this long to
# rise, and are up this long before the preparation.
BREAK_CUT_S, BREAK_LOWER_S, BREAK_HANG_S, BREAK_RAISE_S, BREAK_READY_S = 0.4, 1.5, 1.0, 1.2, 0.6
# prepared: the least rise of the baton hand above the entry in the beat before it, in shoulder
# widths (the corpus conductor's own rises before a first sound: a quarter of them lower).
PREP_RISE = 0.4
# broadened: a piece whose beat is slower than this (s) is conducted with broader strokes, by this
# power of how much slower (chosen on the training works: the generator's strokes against its
# corpus' at each tempo).
BROADEN_FROM_S, BROADEN_POWER = 0.7, 0.75
# clear_of_face, in shoulder widths: the face reaches down FACE_LOW below the nose, the push eases in
# over FACE_RAMP below that; a hand's centre (metrics.hand_centre) passes at least FACE_CLEAR to the
# side of the nose's line (half the head, 0.2, and half the hand); FACE_SOFT rounds the push's
# onset; FACE_EASE_S (s) smooths it in time. Chosen on val: the rules' and the generator's takes.
FACE_LOW, FACE_RAMP, FACE_CLEAR, FACE_SOFT, FACE_EASE_S = 0.21, 0.2, 0.32, 0.03, 0.067
LOUDNESS_DEPTH = 0.6  # follow_loudness: strokes ×0.7 at the piece's quietest, ×1.3 at its loudest (about its mean)


def is_default(size: float, left_hand: float, hand: str, arms_only: bool) -> bool:
    return size == 1.0 and left_hand == 1.0 and hand == "right" and not arms_only


def shape_gestures(kp3d: np.ndarray, size: float = 1.0, left_hand: float = 1.0, hand: str = "right",
                   arms_only: bool = False, rest: np.ndarray | None = None) -> np.ndarray:
    """(T, 13, 3) motion with the controls applied: `size` scales the baton hand's path about its
    mean (1: as conducted), `left_hand` the other hand's (0: held at its mean), `hand="left"`
    mirrors the performance (a left-handed conductor), `arms_only` holds head and torso at their
    median pose and keeps the arms' own motion. `rest` (T,) 0…1, how far each frame's hands are
    down at rest (a break, the release: the engine's Motion.rest): the controls shape the
    conducting, so the mean is the conducting frames' and hands at rest stay where they hang.
    Gestures made larger are kept clear of the face again (`clear_of_face`; motion at MOTION_FPS)."""
    p = np.array(kp3d, dtype=np.float64)
    if arms_only:
        still = np.median(p[:, BODY], axis=0)
        for s, e, w in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
            shift = p[:, s] - still[BODY.index(s)]
            p[:, e] -= shift
            p[:, w] -= shift
        p[:, BODY] = still
    conducting = np.ones(len(p)) if rest is None else 1.0 - np.clip(np.asarray(rest, np.float64), 0.0, 1.0)
    p = _scale_arm(p, R_SHOULDER, R_ELBOW, R_WRIST, size, conducting)
    p = _scale_arm(p, L_SHOULDER, L_ELBOW, L_WRIST, left_hand, conducting)
    if size > 1.0 or left_hand > 1.0:  # larger gestures may reach the face again
        p = clear_of_face(p, MOTION_FPS)
    if hand == "left":
        p = p[:, MIRROR] * np.array([-1.0, 1.0, 1.0])
    return p.astype(kp3d.dtype)


def _scale_arm(p: np.ndarray, s: int, e: int, w: int, factor: float, conducting: np.ndarray) -> np.ndarray:
    """The hand's path about its mean over the conducting frames scaled by `factor`, as far as
    each frame is conducting (`conducting` (T,) 0…1)."""
    if factor == 1.0 or conducting.sum() <= 0:
        return p
    rel = p[:, w] - p[:, s]  # the hand's path as the shoulder sees it
    mean = (rel * conducting[:, None]).sum(axis=0) / conducting.sum()
    return _place_arm(p, s, e, w, rel + conducting[:, None] * (factor - 1.0) * (rel - mean))


def _place_arm(p: np.ndarray, s: int, e: int, w: int, target: np.ndarray) -> np.ndarray:
    """The wrist put at `target` (from the shoulder; within reach) and the elbow by two-bone IK in
    the plane the arm bent in, the bone lengths kept."""
    upper = np.linalg.norm(p[:, e] - p[:, s], axis=-1)
    fore = np.linalg.norm(p[:, w] - p[:, e], axis=-1)
    dist = np.linalg.norm(target, axis=-1)
    reach = REACH * (upper + fore)
    far = dist > reach
    target[far] *= (reach[far] / dist[far])[:, None]
    dist = np.minimum(dist, reach)
    near = np.maximum(np.abs(upper - fore) * 1.02, 1e-6)
    short = dist < near  # a hand cannot come closer to its shoulder than the arm folds
    target[short] *= (near[short] / np.maximum(dist[short], 1e-9))[:, None]
    dist = np.maximum(dist, near)
    axis = target / dist[:, None]
    # the bend's direction: the original elbow's offset from the shoulder–target line
    bend = (p[:, e] - p[:, s]) - ((p[:, e] - p[:, s]) * axis).sum(-1, keepdims=True) * axis
    bend_n = np.linalg.norm(bend, axis=-1, keepdims=True)
    fallback = np.cross(axis, np.array([0.0, 0.0, 1.0]))
    bend = np.where(bend_n > 1e-6, bend / np.maximum(bend_n, 1e-9), fallback / np.maximum(
        np.linalg.norm(fallback, axis=-1, keepdims=True), 1e-9))
    along = (upper ** 2 - fore ** 2 + dist ** 2) / (2 * dist)  # law of cosines: the elbow's foot on the axis
    up = np.sqrt(np.maximum(upper ** 2 - along ** 2, 0.0))
    out = p.copy()
    out[:, e] = p[:, s] + along[:, None] * axis + up[:, None] * bend
    out[:, w] = p[:, s] + target
    return out


def cue_sections(kp3d: np.ndarray, times: np.ndarray, periods: np.ndarray, families: list[str],
                 seating: dict[str, float], fps: float) -> np.ndarray:
    """(T, 13, 3) motion whose left hand cues each entrance (at `times`, with its beat's period and
    the family entering) toward where `seating` puts that family, and whose head turns there, as
    the rule-based conductor cues (conducting.motion.cue_track: the same cue, the same timing).
    The baton hand is untouched, so every ictus stays where the engine put it."""
    p = np.array(kp3d, dtype=np.float64)
    if not len(times):
        return p.astype(kp3d.dtype)
    t = np.arange(len(p)) / fps
    chest = np.median(p[:, [L_SHOULDER, R_SHOULDER]].mean(axis=1), axis=0)
    origin = chest + CUE_ORIGIN - np.array([0.0, 0.0, SHOULDER_Z])
    cue_pos, cue_w, gaze = cue_track(t, times, periods, families, seated_directions(seating), 1.0, origin)
    lw = p[:, L_WRIST] + (cue_pos - p[:, L_WRIST]) * cue_w[:, None]
    lw = p[:, L_WRIST] + gaussian_filter1d(lw - p[:, L_WRIST], 0.05 * fps, axis=0, mode="nearest")
    p = _place_arm(p, L_SHOULDER, L_ELBOW, L_WRIST, lw - p[:, L_SHOULDER])
    neck = p[:, [L_SHOULDER, R_SHOULDER]].mean(axis=1)
    yaw = 0.9 * gaze  # as the rule-based conductor's head turns with its gaze
    for j in (NOSE, L_EYE, R_EYE, L_EAR, R_EAR):
        p[:, j] = neck + rot_z(p[:, j] - neck, yaw)
    return p.astype(kp3d.dtype)


def onto_bars(kp3d: np.ndarray, beats: np.ndarray, downbeats: np.ndarray, fps: float,
              pull: float = 0.6, around: int = 4) -> np.ndarray:
    """(T, 13, 3) motion whose baton hand strikes each given bar's beats closer to where its own
    strokes for that beat of the bar fall: each ictus point is moved `pull` of the way toward the
    mean of the same beat's points in the bars of the same length within `around` bars. The
    pattern drawn is the engine's own, only steadier, so given bars read as bars; the move is
    eased in and out between beats (no velocity added at any beat), so each ictus stays on its
    beat, and the arm keeps its bone lengths."""
    p = np.array(kp3d, dtype=np.float64)
    beats, downbeats = np.asarray(beats, np.float64), np.asarray(downbeats, np.float64)
    if len(downbeats) < 2 or len(beats) < 3:
        return p.astype(kp3d.dtype)
    bar = np.searchsorted(downbeats, beats + 1e-3, side="right") - 1  # −1: the upbeat
    first = np.searchsorted(beats, downbeats - 1e-3)
    place = np.arange(len(beats)) - first[np.maximum(bar, 0)]
    length = np.diff(np.append(first, len(beats)))[np.maximum(bar, 0)]
    frame = np.clip(np.round(beats * fps).astype(int), 0, len(p) - 1)
    point = p[frame, R_WRIST]
    move = np.zeros((len(beats), 3))
    for i in np.flatnonzero(bar >= 0):
        lo, hi = np.searchsorted(bar, bar[i] - around), np.searchsorted(bar, bar[i] + around, side="right")
        near = np.arange(lo, hi)  # the beats of the bars around (bar numbers rise with the beats)
        alike = near[(place[near] == place[i]) & (length[near] == length[i])]
        move[i, [0, 2]] = pull * (point[alike].mean(axis=0) - point[i])[[0, 2]]  # across and up, not in depth
    t = np.arange(len(p)) / fps
    k = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 2)
    u = np.clip((t - beats[k]) / (beats[k + 1] - beats[k]), 0.0, 1.0)
    ease = (0.5 - 0.5 * np.cos(np.pi * u))[:, None]  # flat at both beats
    field = move[k] + (move[k + 1] - move[k]) * ease
    wrist = p[:, R_WRIST] + field - p[:, R_SHOULDER]
    return _place_arm(p, R_SHOULDER, R_ELBOW, R_WRIST, wrist).astype(kp3d.dtype)


def follow_loudness(kp3d: np.ndarray, beats: np.ndarray, downbeats: np.ndarray, level: np.ndarray, fps: float,
                    depth: float = LOUDNESS_DEPTH) -> np.ndarray:
    """(T, 13, 3) motion whose baton hand's strokes grow with the music's loudness within the piece
    and shrink with it: between each two beats the hand's excursion from the straight, eased line
    joining its points at those beats is scaled by 1 + depth × (the bar's level − the piece's mean
    level), `level` (T,) 0…1 relative to the piece's own range (plan_audio.piece_level). The points
    at the beats are kept, so the pattern's places and every ictus stay where they were; one factor
    holds from the last beat before a bar line to the bar's own last beat, so the falls into a bar's
    beats keep their proportions (the 1 still falls furthest). Before the first beat and after the
    last the motion is untouched, and so are the preparation and the first ictus: the first beat
    counted is the first after the music first rises above its quiet passages' level (a soft
    lead-in is prepared as drawn). Arms keep their lengths."""
    p = np.array(kp3d, dtype=np.float64)
    level = np.asarray(level, np.float64)[: len(p)]
    if len(level) < len(p):
        level = np.pad(level, (0, len(p) - len(level)), mode="edge")
    rises = np.flatnonzero(level > 0.05)
    beats = np.asarray(beats, np.float64)
    beats = beats[beats > (rises[0] / fps if len(rises) else 0.0) + 0.1]
    frame = np.round(beats * fps).astype(int)
    beats, frame = beats[(frame >= 0) & (frame < len(p))], frame[(frame >= 0) & (frame < len(p))]
    if len(beats) < 2:
        return p.astype(kp3d.dtype)
    # segments [beat before a bar line, the bar's last beat): the beat indices where a factor begins
    first = np.searchsorted(beats, np.asarray(downbeats, np.float64) - 1e-3)
    starts = np.unique(np.concatenate([[0], np.clip(first - 1, 0, len(beats) - 1)]))
    seg = np.searchsorted(starts, np.arange(len(beats) - 1), side="right") - 1  # segment of each inter-beat span
    ends = np.append(starts[1:], len(beats) - 1)
    seg_level = np.array([level[frame[a]:max(frame[b], frame[a] + 1)].mean() for a, b in zip(starts, ends)])
    inside = slice(frame[0], frame[-1] + 1)
    factor_of = np.clip(1.0 + depth * (seg_level - level[inside].mean()), 0.4, 1.6)
    t = np.arange(len(p)) / fps
    k = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 2)
    factor = np.where((t >= beats[0]) & (t <= beats[-1]), factor_of[seg[k]], 1.0)[:, None]
    rel = p[:, R_WRIST] - p[:, R_SHOULDER]
    u = np.clip((t - beats[k]) / (beats[k + 1] - beats[k]), 0.0, 1.0)
    ease = (0.5 - 0.5 * np.cos(np.pi * u))[:, None]
    line = rel[frame[k]] + (rel[frame[k + 1]] - rel[frame[k]]) * ease
    return _place_arm(p, R_SHOULDER, R_ELBOW, R_WRIST, line + factor * (rel - line)).astype(kp3d.dtype)


def broadened(kp3d: np.ndarray, beats: np.ndarray, from_s: float = BROADEN_FROM_S, power: float = BROADEN_POWER,
              most: float = 1.6) -> np.ndarray:
    """(T, 13, 3) motion whose strokes are broader where the music's beat is slow, as the corpus'
    conductor's are and the generator's, which learnt them, are less: the baton hand's path about
    its mean scaled by (the beat / `from_s`) ** `power` (`most` at the most) where the piece's
    median beat is longer than `from_s`, as the animator's size control scales it, so the 1 still
    falls furthest and each ictus stays on its frame. Arms keep their lengths."""
    beats = np.asarray(beats, np.float64)
    if len(beats) < 3:
        return kp3d
    factor = float(np.clip((np.median(np.diff(beats)) / from_s) ** power, 1.0, most))
    p = np.array(kp3d, dtype=np.float64)
    return _scale_arm(p, R_SHOULDER, R_ELBOW, R_WRIST, factor, np.ones(len(p))).astype(kp3d.dtype)


def prepared(kp3d: np.ndarray, entries: np.ndarray, period: float, fps: float, rise: float = PREP_RISE) -> np.ndarray:
    """(T, 13, 3) motion whose baton hand prepares each entry out of stillness clearly: in the beat
    (`period` s) before each of `entries` (s), the hand rises at least `rise` shoulder widths above
    where it is at the entry, as a conductor lifts for the first downbeat. Where it rises less, an
    eased lift makes up the rest (none at the entry itself, so every ictus stays where it was).
    Arms keep their lengths."""
    p = np.array(kp3d, dtype=np.float64)
    sw = shoulder_width(p)
    t = np.arange(len(p)) / fps
    lift = np.zeros(len(p))
    for at in entries:
        window = np.flatnonzero((t >= at - period) & (t <= at))
        if len(window) < 3 or window[-1] >= len(p) - 1:
            continue
        height = p[window, R_WRIST, 2]
        short = rise * sw - (height.max() - height[-1])
        if short > 0:
            u = (t[window] - (at - period)) / period
            lift[window] = np.maximum(lift[window], short * np.sin(np.pi * u) ** 2)
    on = lift > 1e-9  # the window's ends (sin² of 0 and π) stay as drawn
    target = p[on, R_WRIST] - p[on, R_SHOULDER]
    target[:, 2] += lift[on]
    p[on] = _place_arm(p[on], R_SHOULDER, R_ELBOW, R_WRIST, target)
    return p.astype(kp3d.dtype)


def clear_of_face(kp3d: np.ndarray, fps: float, beats: np.ndarray | None = None, clear: float = FACE_CLEAR) -> np.ndarray:
    """(T, 13, 3) motion whose hands pass beside the face, not in front of it, as the players see
    it: they read the conductor's eyes, and a hand before them hides them (the baton hand at the top
    of an upbeat, the left hand mirroring it). Where a hand rises to the face (whole from FACE_LOW
    shoulder widths below the nose, eased in from FACE_RAMP further down, about the shoulders'
    height) within `clear` shoulder widths of the nose's line, it moves sideways until it is `clear`
    away, out to its own side unless it is well across on the other over that rise: each rise keeps
    one side, so a hand never jumps across. The push is smoothed over FACE_EASE_S so that it adds no
    jerk, and fades out over FACE_EASE_S about each of `beats` (s): each beat's ictus stays as drawn,
    as do the hands' heights and all below the shoulders. Arms keep their lengths."""
    p = np.array(kp3d, dtype=np.float64)
    out = p.copy()
    sw = shoulder_width(p)
    fade = np.ones(len(p))
    if beats is not None and len(beats):
        t, b = np.arange(len(p)) / fps, np.sort(np.asarray(beats, np.float64))
        i = np.clip(np.searchsorted(b, t), 1, len(b) - 1) if len(b) > 1 else np.zeros(len(t), int)
        to_beat = np.minimum(np.abs(t - b[i]), np.abs(t - b[i - 1])) if len(b) > 1 else np.abs(t - b[0])
        fade = smoothstep(to_beat / (2 * FACE_EASE_S))
    for shoulder, elbow, wrist, own in ((R_SHOULDER, R_ELBOW, R_WRIST, -1.0), (L_SHOULDER, L_ELBOW, L_WRIST, 1.0)):
        hand = hand_centre(p, sw, elbow, wrist)
        below = (p[:, NOSE, 2] - FACE_LOW * sw - hand[:, 2]) / sw  # shoulder widths under the face
        up = smoothstep(1.0 - below / FACE_RAMP)  # 0 at the shoulders … 1 at the face
        dx = own * (hand[:, 0] - p[:, NOSE, 0]) / sw  # + out toward the hand's own side
        shift = np.zeros(len(p))
        on = np.flatnonzero(up > 0)
        for rise in np.split(on, np.flatnonzero(np.diff(on) > 1) + 1) if len(on) else []:
            before_face = rise[np.abs(dx[rise]) < clear]
            if not len(before_face):
                continue
            side = -1.0 if np.median(dx[before_face]) < -clear / 2 else 1.0  # its own side, unless well across
            u = side * dx[rise]  # how far out on that side
            need = FACE_SOFT * np.logaddexp(0.0, (clear - u) / FACE_SOFT)  # a smooth max(0, clear - u)
            shift[rise] = own * side * need * up[rise] * smoothstep((u + clear + 0.12) / 0.12)  # none once clear on the other side
        if not shift.any():
            continue
        shift = gaussian_filter1d(shift * sw, FACE_EASE_S * fps) * fade
        on = np.abs(shift) > 1e-6
        target = p[on, wrist] - p[on, shoulder]
        target[:, 0] += shift[on]
        out[on] = _place_arm(out[on], shoulder, elbow, wrist, target)
    return out.astype(kp3d.dtype)


def release_weight(last_sound: float, frames: int, fps: float) -> np.ndarray:
    """(T,) how far the hands are down in `released`: 0 until `last_sound`, 1 from RELEASE_S after."""
    return smoothstep((np.arange(frames) / fps - last_sound) / RELEASE_S)


def released(kp3d: np.ndarray, last_sound: float, fps: float) -> np.ndarray:
    """(T, 13, 3) motion that stops conducting when the music has ended: from `last_sound` (s) the
    figure holds where it was and both hands come down to rest over RELEASE_S — the cut-off, then
    stillness, as a conductor releases the last chord. Arms keep their lengths."""
    p = np.array(kp3d, dtype=np.float64)
    i = int(round(last_sound * fps))
    if i >= len(p) - 1:
        return p.astype(kp3d.dtype)
    tail = np.repeat(p[i:i + 1], len(p) - i, axis=0)
    p[i:] = _hands_down(tail, release_weight(last_sound, len(p), fps)[i:, None])
    return p.astype(kp3d.dtype)


def break_weight(breaks: list[tuple[float, float, float]], frames: int, fps: float) -> np.ndarray:
    """(T,) how far the hands are down in each break between movements — (silence starts, the first
    beat after it, the beat period there) in seconds — as a conductor lowers the arms between
    movements and raises them again before the next: from BREAK_CUT_S after the cut-off the hands
    sink over BREAK_LOWER_S, hang, and rise over BREAK_RAISE_S, to be up BREAK_READY_S before the
    preparation (a beat before that beat), so the conductor stands ready, then prepares. A break
    that starts at -inf has them down from the first frame; one too short for all that is 0."""
    t = np.arange(frames) / fps
    w = np.zeros(frames)
    for start, beat, period in breaks:
        a, b = start + BREAK_CUT_S, beat - period - BREAK_READY_S
        if b - a >= BREAK_LOWER_S + BREAK_RAISE_S + BREAK_HANG_S:
            w = np.maximum(w, smoothstep((t - a) / BREAK_LOWER_S) * smoothstep((b - t) / BREAK_RAISE_S))
    return w


def rested(kp3d: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(T, 13, 3) motion with both hands brought the share `weight` (T,) of the way down to hang at
    rest (break_weight), and the rest of the figure as drawn. Arms keep their lengths."""
    on = np.asarray(weight) > 0
    if not on.any():
        return kp3d
    p = np.array(kp3d, dtype=np.float64)
    p[on] = _hands_down(p[on], np.asarray(weight, np.float64)[on, None])
    return p.astype(kp3d.dtype)


def _hands_down(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Both wrists moved the share `w` (T, 1) of the way from where they are to hanging at rest, a
    little forward of the body."""
    for s, e, wr, side in ((L_SHOULDER, L_ELBOW, L_WRIST, 1.0), (R_SHOULDER, R_ELBOW, R_WRIST, -1.0)):
        arm = np.linalg.norm(p[:, e] - p[:, s], axis=-1) + np.linalg.norm(p[:, wr] - p[:, e], axis=-1)
        rest = p[:, s] + arm[:, None] * np.array([side * 0.08, -0.25, -0.9])
        target = p[:, wr] + (rest - p[:, wr]) * w
        p = _place_arm(p, s, e, wr, target - p[:, s])
    return p
