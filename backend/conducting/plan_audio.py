"""The conducting plan from audio alone: pulse, metre, loudness, articulation, entries, silences.

From the engine's mel features (90 frames/s, 128 bands in [0, 1], row 0 = highest band):

* pulse — beats that follow a moving tempo and hold through fermatas (pulse.py); music with no
  pulse (a held sound, free time) gets slow strokes in one on its changes of sound (free_beats);
* silence — stretches quieter than SILENCE_DB below the piece's loud passages for SILENCE_S or
  more: no beats there; the conductor cuts the sound off, stands still and prepares the next entry;
* metre — a Viterbi path over (beats per bar, position in the bar) for 2, 3, 4 and 6, scoring each
  bar by how much its first beat stands out (the bass, a change of harmony, the onset) against the
  others; it may change metre between bars at a price;
* how to beat it — the same rule as for scores (patterns.bar_scheme): fast music in one or two,
  very slow music subdivided;
* per stroke — dynamic level from loudness, accents from onset strength, staccato from how far
  the sound decays between strokes, crescendo/diminuendo where the loudness trend rises or falls
  for a while (not each phrase's swell), a tutti where the registers sound at the piece's climaxes,
  phrase and section starts after holds and silences and at changes of sound, entries from a register band
  (low, middle, high) waking after a rest. Audio does not say which instruments play, so entries
  are named by register: high → strings (the violins, to the left), middle → woodwind (centre),
  low → brass (right and back, where cellos and basses also sit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from ..bars import bar_positions, decode_bar_positions, states_of
from ..beats import onset_envelope
from baton_core.errors import BatonError
from baton_core.timebase import MEL_FPS

from ..features import TOP_DB, mel_level_db
from . import patterns, pulse
from .plan import FAMILIES, Plan, Stroke

SILENCE_DB = 45.0  # below the loud passages: silence
SILENCE_S = 0.7  # shortest silence that stops the beat
END_DB = 35.0  # the music has ended when its level stays this far below its loud passages
# Median onset strength at the beats below which there is no beat at all: music measured here gives
# 0.27 dB and more, a steady tone 0.02 and white noise 0.12.
MIN_ONSET_DB = 0.15
FREE_MIN_S, FREE_MAX_S = 1.2, 3.0  # free time: strokes on changes of sound this far apart at least, and at most
DYNAMIC_RANGE_DB = 24.0  # loudness range over which the level falls from LOUD_LEVEL to 0 and below (roughly ff to pp)
LOUD_LEVEL = 0.8  # the level of its loud passages heard: between a score's f and ff, where no mark says which
MIN_RANGE_DB = 6.0  # piece_level: the least range of loudness a piece's levels 0..1 are spread over
CLIMAX = 0.8  # piece_level from which a passage is one of the piece's climaxes, where a tutti is mirrored
HAIRPIN_MIN_S, HAIRPIN_MIN_DB = 2.0, 4.0  # a heard crescendo or diminuendo lasts this long and changes this much
METRES = (2, 3, 4, 6)
METRE_PRIOR = {2: 0.0, 3: 0.0, 4: 0.0, 6: -1.0}  # per bar: six only when clear
METRE_SWITCH = 4.0  # price of changing metre between bars
BANDS = {"high": (0, 40), "mid": (40, 100), "low": (100, 128)}  # mel rows (row 0 = highest)
BAND_FAMILY = {"high": "strings", "mid": "woodwind", "low": "brass"}


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(x) == 0:
        return x
    k = np.ones(n) / n
    return np.convolve(np.pad(x, n, mode="edge"), k, mode="same")[n:-n]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def estimate_metre(accent: np.ndarray, allow_six: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(beats per bar, position in bar) per beat from a downbeat-likeness score per beat; six (a
    compound bar of two threes) only where the pulse is fast enough to be its eighths."""
    d = (accent - accent.mean()) / (accent.std() + 1e-9) if len(accent) else accent
    metres = [m for m in METRES if allow_six or m != 6]
    weights = []
    for m, p in states_of(metres):
        if m == 6:  # compound: the bar's first beat, a little its fourth, against the rest
            weights.append(2.5 if p == 0 else 0.5 if p == 3 else -0.75)
        else:
            weights.append(m / 2 if p == 0 else -(m / 2) / (m - 1))
    metre, pos, _ = decode_bar_positions(np.outer(d, weights), metres, METRE_SWITCH, METRE_PRIOR)
    return metre, pos


@dataclass
class Heard:
    """The audio's level over time, as plan_from_audio reads it."""

    fps: float
    t: np.ndarray  # (T,) seconds of each mel frame
    db: np.ndarray  # (T,) level in dB relative to the loudest bin
    smooth_db: np.ndarray  # over 0.1 s
    top: float  # the loud passages' level (98th percentile)
    silences: list[tuple[float, float]]  # (start, end) seconds
    first_sound: float
    last_sound: float

    @property
    def music_end(self) -> float:
        """When the music ends (`sound_end` over the whole piece)."""
        return self.sound_end()

    def sound_end(self, after: float = -np.inf, before: float = np.inf) -> float:
        """When the sound between `after` and `before` (a silence's start) stops: its level last
        within END_DB of the loud passages there (what rings on below that is the room, after the
        cut-off), or `before` where it never was."""
        m = (self.t > after) & (self.t < before) & (self.smooth_db >= self.top - END_DB)
        return float(self.t[m][-1]) if m.any() else float(before)


@dataclass(frozen=True)
class GivenBeats:
    """Beats the animator gave (seconds of the heard music), each struck exactly, and optionally
    the ones that begin a bar (the bars' metres follow from them)."""
    times: np.ndarray
    downbeats: np.ndarray | None = None


def plan_from_audio(mel: np.ndarray, fps: float = MEL_FPS, given: GivenBeats | None = None) -> Plan:
    """The plan of a piece heard through its mel features, on the beats (and bars) `given` when
    there are. Raises BatonError when there is no music to conduct (silence)."""
    mel = np.asarray(mel, dtype=np.float32)
    heard = listen(mel, fps)
    found = find_beats(mel, heard) if given is None else given_beats(given.times, heard)
    free = found is None  # no pulse to beat: free time
    beats, local_p, fr, clarity = free_beats(mel, heard) if free else found
    change, likeness = downbeat_likeness(mel, beats, fr)
    if given is not None and given.downbeats is not None and len(given.downbeats):
        metre, pos = bar_positions(beats, np.asarray(given.downbeats, dtype=np.float64))
    elif free:  # each stroke a bar of one
        metre, pos = np.ones(len(beats), int), np.zeros(len(beats), int)
    else:
        metre, pos = estimate_metre(likeness, allow_six=bool(np.median(local_p) < 0.5))
    hold, fermata = beat_holds(beats, local_p, heard)
    strokes = bar_strokes(beats, local_p, metre, pos, hold)
    times = np.array([s.at for s in strokes])
    s_hold, s_ferm = stroke_holds(beats, hold, fermata, times)
    level, accent, stacc, hairpin = expression(mel, heard, times)
    tutti, entries = registers(mel, heard, strokes)
    phrase, section = phrases(strokes, s_hold, heard, beats, change)
    sounding = ~in_silence(times, heard)
    plan = Plan(times=times, bar=[s.bar for s in strokes], beat=[s.beat for s in strokes],
                sub=[s.sub for s in strokes], pattern=[s.pattern for s in strokes], metre=[s.metre for s in strokes],
                tempo=60.0 / np.maximum([s.period_s for s in strokes], 1e-3), level=level, accent=accent,
                staccato=stacc, hairpin=hairpin, phrase=phrase, section=section, entries=entries,
                tutti=tutti, sounding=sounding, hold=s_hold, fermata=s_ferm, source="audio",
                meta={"first_sound": float(heard.first_sound), "last_sound": float(heard.last_sound),
                      "pulse_clarity": clarity, "free_time": free})
    return plan.validate()


def listen(mel: np.ndarray, fps: float) -> Heard:
    """The level over time and the silences, or a BatonError for audio with nothing to conduct."""
    if mel.ndim != 2 or mel.shape[0] < 2:
        raise BatonError("the audio is too short to conduct")
    if not np.all(np.isfinite(mel)):
        raise BatonError("the mel features contain non-finite values")
    db = mel_level_db(mel)
    smooth_db = _smooth(db, int(0.1 * fps))
    top = float(np.percentile(smooth_db, 98))
    if np.ptp(mel) < 1e-6 or top < -TOP_DB + 1:
        raise BatonError("the audio is silent: there is nothing to conduct")
    t = np.arange(len(db)) / fps
    silent = smooth_db < top - SILENCE_DB
    silences = [(a / fps, b / fps) for a, b in _runs(silent) if (b - a) / fps >= SILENCE_S]
    sound = np.flatnonzero(~silent)
    return Heard(fps, t, db, smooth_db, top, silences, t[sound[0]], t[sound[-1]])


def in_sound_span(beats: np.ndarray, heard: Heard, early: float = 0.1) -> np.ndarray:
    """Which beats fall from the music's first sound (`early` seconds before it: an attack's onset,
    a tracker's early beat) to its last: a pulse a tracker runs on into the silence before the music
    is where a conductor prepares, and after it where a conductor has released."""
    return (beats >= heard.first_sound - early) & (beats <= heard.last_sound)


def in_silence(times: np.ndarray, heard: Heard, min_s: float = SILENCE_S) -> np.ndarray:
    """Which of `times` (s) fall inside one of the music's silences that lasts `min_s` or more."""
    times = np.asarray(times, dtype=np.float64)
    out = np.zeros(len(times), bool)
    for a, e in heard.silences:
        if e - a >= min_s:
            out |= (times >= a) & (times < e)
    return out


def find_beats(mel: np.ndarray, heard: Heard) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """(beat times outside the silences, the local period at each, their mel frames, pulse
    clarity), or None when the onsets at the beats are too weak to be a pulse (free time)."""
    fps = heard.fps
    beats, period, clarity = pulse.track(mel, fps)
    keep = ~in_silence(beats, heard)
    beats, period = beats[keep], period[keep]
    keep = in_sound_span(beats, heard)
    beats, period = beats[keep], period[keep]
    fr = onset_frames(beats, fps, len(heard.db))
    if len(beats) < 2 or onset_support(mel, beats, fps) < MIN_ONSET_DB:
        return None
    local_p = np.array([np.median(period[max(0, k - 4): k + 5]) for k in range(len(beats))])
    return beats, local_p, fr, clarity


def onset_support(mel: np.ndarray, beats: np.ndarray, fps: float) -> float:
    """How strongly the music's onsets mark these beats: the median onset strength (dB) at them;
    below MIN_ONSET_DB they are no pulse the music has."""
    if len(beats) == 0:
        return 0.0
    raw = onset_envelope(mel, normalise=False)
    return float(np.median([raw[max(0, f - 4): f + 5].max() for f in onset_frames(beats, fps, len(raw))]))


def onset_frames(beats: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """The mel frame of each beat's onset: the tracker places beats where the attack is heard, its
    onset comes ONSET_LATENCY + ATTACK_LATENCY earlier."""
    return np.clip(np.round((np.asarray(beats) - pulse.ONSET_LATENCY - pulse.ATTACK_LATENCY) * fps).astype(int),
                   0, frames - 1)


def free_beats(mel: np.ndarray, heard: Heard) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Music with no pulse (a held sound, music in free time) is still conducted: a slow stroke on
    each change of its sound, FREE_MIN_S apart at least, and one at least every FREE_MAX_S while
    it sounds (a held chord is beaten slowly in one), from its first sound, none in a silence.
    The same answer as find_beats, with clarity 0."""
    fps = heard.fps
    smooth = uniform_filter1d(np.asarray(mel, np.float64), int(0.2 * fps) + 1, axis=0)
    change = np.linalg.norm(np.diff(smooth, axis=0, prepend=smooth[:1]), axis=1)
    change = uniform_filter1d(change, int(0.1 * fps) + 1)
    a, b = int(heard.first_sound * fps), int(heard.last_sound * fps)
    peaks, _ = find_peaks(change[a:b + 1], distance=max(1, int(FREE_MIN_S * fps)),
                          prominence=max(float(np.percentile(change[a:b + 1], 75)), 1e-9) if b > a else None)
    marks = [heard.first_sound] + [float((a + p) / fps) for p in peaks if (a + p) / fps - heard.first_sound >= FREE_MIN_S]
    beats = []
    for t0, t1 in zip(marks, marks[1:] + [heard.last_sound]):
        steps = max(1, int(np.ceil((t1 - t0) / FREE_MAX_S - 1e-9)))
        beats += [t0 + k * (t1 - t0) / steps for k in range(steps)]
    beats = np.array(beats, dtype=np.float64)
    beats = beats[~in_silence(beats, heard)]
    if len(beats) < 2:
        beats = np.array([heard.first_sound, max(heard.last_sound, heard.first_sound + FREE_MIN_S)])
    gaps = np.diff(beats)
    local_p = np.array([np.median(gaps[max(0, k - 2): k + 2]) for k in range(len(beats))])
    fr = np.clip(np.round(beats * fps).astype(int), 0, len(heard.db) - 1)
    return beats, local_p, fr, 0.0


def given_beats(times: np.ndarray, heard: Heard) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """find_beats' answer for given beats: those within the music, the local period at each (the
    median gap around it), their mel frames, full clarity."""
    beats = np.asarray(times, dtype=np.float64)
    beats = beats[(beats >= 0) & (beats < heard.t[-1])]
    if len(beats) < 2:
        raise BatonError(f"{len(beats)} of the given beats fall within the music; at least 2 are needed")
    gaps = np.diff(beats)
    local_p = np.array([np.median(gaps[max(0, k - 4): k + 4]) for k in range(len(beats))])
    fr = np.clip(np.round(beats * heard.fps).astype(int), 0, len(heard.db) - 1)
    return beats, local_p, fr, 1.0


def heard_bar_lines(mel: np.ndarray, beats: np.ndarray, fps: float = MEL_FPS) -> np.ndarray:
    """The beats (seconds) that begin a bar as the rule-based conductor hears the metre over these
    beats: the bar lines a take offers the animator when its engine does not plan bars itself."""
    mel = np.asarray(mel, dtype=np.float32)
    try:
        beats, local_p, fr, _ = given_beats(beats, listen(mel, fps))
    except BatonError:  # silence, or under two beats: no bars to offer
        return np.zeros(0)
    _, likeness = downbeat_likeness(mel, beats, fr)
    _, pos = estimate_metre(likeness, allow_six=bool(np.median(local_p) < 0.5))
    return beats[pos == 0]


def downbeat_likeness(mel: np.ndarray, beats: np.ndarray, fr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(change of sound into each beat, downbeat-likeness per beat): the bass's onset, the change
    of sound, the onset itself, each standardised."""
    env = onset_envelope(mel)
    low = onset_envelope(mel[:, -pulse.LOW_BANDS:])
    near = lambda x: np.array([x[max(0, f - 4): f + 5].max() for f in fr])
    onset_k, low_k = near(env), near(low)
    spec = mel[:, 40:].astype(np.float64)  # below ~2.5 kHz: where harmony lives
    seg = [spec[a:max(a + 1, b)].mean(0) for a, b in zip(fr, np.append(fr[1:], len(spec)))]
    change = np.zeros(len(beats))
    for k in range(1, len(beats)):
        u, v = seg[k - 1] - seg[k - 1].mean(), seg[k] - seg[k].mean()
        change[k] = 1 - (u @ v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9)
    z = lambda x: (x - x.mean()) / (x.std() + 1e-9)
    return change, z(np.log1p(low_k)) + z(change) + z(np.log1p(onset_k))


def beat_holds(beats: np.ndarray, local_p: np.ndarray, heard: Heard) -> tuple[np.ndarray, np.ndarray]:
    """(seconds held after each beat, whether it is a fermata): a gap of more than 1.7 local
    periods, or a silence, after a beat, held to where the sound stops (`Heard.sound_end`); the last
    beat holds to the music's end, however long: a learned tracker may hear the pulse end well
    before the music does."""
    n, t = len(beats), heard.t
    hold = np.zeros(n)
    fermata = np.zeros(n, bool)
    for k in range(n):
        nxt = beats[k + 1] if k + 1 < n else None
        sil = [a for a, e in heard.silences if a > beats[k] and (nxt is None or a < nxt)]
        if sil:  # cut off where the sound stops, not where its echo has died away (room for the click)
            hold[k] = max(heard.sound_end(beats[k], sil[0]) - beats[k], min(0.3 * local_p[k], sil[0] - beats[k]))
        elif nxt is not None and nxt - beats[k] > 1.7 * local_p[k]:
            fermata[k] = True
            # the cut-off: where the held sound falls away before the next beat, else just before it
            m = (t > beats[k]) & (t < nxt - 0.05)
            held = heard.smooth_db[m]
            drop = np.flatnonzero(held < held.max() - 12) if len(held) else []
            hold[k] = (t[m][drop[0]] - beats[k]) if len(drop) else nxt - 0.25 * local_p[k] - beats[k]
        elif nxt is None:
            hold[k] = max(heard.music_end - beats[k], 0.3 * local_p[k])
    return hold, fermata


def bar_strokes(beats: np.ndarray, local_p: np.ndarray, metre: np.ndarray, pos: np.ndarray,
                hold: np.ndarray) -> list[Stroke]:
    """The beats grouped into bars and each bar beaten by the scheme for its tempo: strokes in
    time order, a subdivision placed between its beats, none within 50 ms of the one before."""
    n = len(beats)
    strokes = []
    bar = -1
    k = 0
    while k < n:
        m = int(metre[k])
        start = k - int(pos[k])  # a bar may begin before the first beat (an upbeat)
        end = min(n, start + m)
        bar += 1
        p = float(np.median(local_p[max(0, k):end]))
        if m == 6:
            scheme = patterns.bar_scheme(6, 8, 2 * p)
            unit = 0.5
        else:
            scheme = patterns.bar_scheme(m, 4, p)
            unit = 1.0
        offs = list(scheme.offsets) + [m * unit]
        for s_i, (off, beat, sub) in enumerate(zip(scheme.offsets, scheme.beat, scheme.sub)):
            x = start + off / unit  # fractional beat index
            i = int(np.floor(x + 1e-9))
            if i < k or i >= end:
                continue
            if sub == 0 and abs(x - i) < 1e-6:
                time = beats[i]
            else:  # a subdivision between two beats
                j = min(i + 1, n - 1)
                nxt = beats[j] if j > i and hold[i] == 0 else beats[i] + local_p[i]
                time = beats[i] + (x - i) * (nxt - beats[i])
            strokes.append(Stroke(time, bar, beat, sub, scheme.pattern, str(m), (offs[s_i + 1] - off) / unit * p))
        k = end
    times = np.array([s.at for s in strokes])
    order = np.argsort(times, kind="stable")
    keep = np.r_[True, np.diff(times[order]) > 0.05]
    return [strokes[i] for i, kk in zip(order, keep) if kk]


def stroke_holds(beats: np.ndarray, hold: np.ndarray, fermata: np.ndarray,
                 times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each beat's hold (and fermata) moved to the last stroke before the next beat: the beat's own
    last stroke or, where the bar's scheme strikes none on it (a bar beaten in one, a fast four in
    two, an eight in four), the stroke that covers it, so that a held chord or the last sound is
    still held to its end and released there. A stroke whose own beat, or a beat after it, is held
    already (a silence, a fermata) does not carry a later hold across that one."""
    s_hold = np.zeros(len(times))
    s_ferm = np.zeros(len(times), bool)
    for k in np.flatnonzero(hold > 0):
        until = beats[k + 1] if k + 1 < len(beats) else np.inf
        i = int(np.searchsorted(times, until - 1e-6)) - 1
        if i < 0:
            continue
        on = max(int(np.searchsorted(beats, times[i] + 1e-6)) - 1, 0)  # the beat stroke i is on or after
        if np.any(hold[on:k] > 0):
            continue
        s_hold[i] = max(s_hold[i], beats[k] + hold[k] - times[i], 0.05)
        s_ferm[i] |= fermata[k]
    return s_hold, s_ferm


def expression(mel: np.ndarray, heard: Heard, times: np.ndarray) -> tuple[np.ndarray, ...]:
    """(level, accent, staccato, hairpin) per stroke: level from loudness, accents from onset
    strength against its neighbours', staccato from how far the sound decays between strokes,
    crescendo/diminuendo from the loudness trend."""
    fps, t, db = heard.fps, heard.t, heard.db
    ns = len(times)
    lvl_db = np.interp(times + 0.15, t, _smooth(db, int(0.5 * fps)))
    level = np.clip(LOUD_LEVEL - (heard.top - lvl_db) / DYNAMIC_RANGE_DB, 0, 1)
    fr_s = np.clip(np.round(times * fps).astype(int), 0, len(db) - 1)
    env = onset_envelope(mel)
    strength = np.array([env[max(0, f - 4): f + 5].max() for f in fr_s])
    med = np.array([np.median(strength[max(0, i - 8): i + 9]) for i in range(ns)])
    accent = np.clip((strength / (med + 1e-9) - 2.0) / 3.0, 0, 1)
    stacc = np.zeros(ns)
    for i in range(ns):
        a = fr_s[i]
        b = fr_s[i + 1] if i + 1 < ns else a + int(0.5 * fps)
        if b - a >= 4:
            seg_db = heard.smooth_db[a:b]
            head = seg_db[: max(2, (b - a) // 4)].max()
            stacc[i] = np.clip((head - seg_db.min() - 6.0) / 12.0, 0, 1)
    stacc = _smooth(stacc, 3)
    trend = _smooth(db, int(2 * fps))
    slope = np.gradient(trend, 1 / fps)
    hairpin = np.clip(np.interp(times, t, _smooth(slope, int(fps))) / 3.0, -1, 1)
    return level, accent, stacc, sustained(hairpin, times, np.interp(times, t, trend))


def sustained(hairpin: np.ndarray, times: np.ndarray, trend_db: np.ndarray) -> np.ndarray:
    """`hairpin` with only the crescendos and diminuendos a conductor shapes: runs of strokes
    (|hairpin| over the left hand's 0.3) lasting HAIRPIN_MIN_S or more over which the loudness
    trend changes by HAIRPIN_MIN_DB or more. Music's level rises and falls by a few dB with every
    phrase, and a left hand that shaped each swell would never rest."""
    out = hairpin.copy()
    for sign in (1.0, -1.0):
        for a, b in _runs(sign * hairpin > 0.3):
            if times[b - 1] - times[a] < HAIRPIN_MIN_S or sign * (trend_db[b - 1] - trend_db[a]) < HAIRPIN_MIN_DB:
                out[a:b] = 0.0
    return out


def piece_level(db: np.ndarray, db_fps: float, frames: int, fps: float) -> np.ndarray:
    """(frames,) the music's loudness at `fps`, 0 at its quiet passages and 1 at its loud ones (the
    10th and 95th percentiles of its level over a second), as a conductor hears dynamics: within
    the piece, so a mastered recording that spans 8 dB is conducted from pp to ff as a render that
    spans 30 is; a range under MIN_RANGE_DB counts as that, so music of even loudness stays even.
    Both engines' strokes follow it (gestures.follow_loudness, on the finished motion), and the
    rules' left hand mirrors a tutti only where it reaches CLIMAX (registers). The rules' plan keeps
    its own levels below the loud passages (DYNAMIC_RANGE_DB): they also set its preparation, height
    and left hand, which lost more than the dynamics gained when planned from this instead
    (backend/weights/README.md)."""
    smooth = uniform_filter1d(np.asarray(db, np.float64), max(1, int(db_fps)), mode="nearest")
    lo, hi = np.percentile(smooth, [10, 95])
    rel = np.clip((smooth - lo) / max(hi - lo, MIN_RANGE_DB), 0.0, 1.0)
    return np.interp(np.arange(frames) / fps, np.arange(len(rel)) / db_fps, rel)


def registers(mel: np.ndarray, heard: Heard, strokes: list[Stroke]) -> tuple[np.ndarray, np.ndarray]:
    """(tutti, entries) per stroke from the register bands: how many sound where the piece is at
    one of its own climaxes (piece_level CLIMAX or more; elsewhere none), and a band waking after a
    rest of at least a bar and 2 s, named by its family (BAND_FAMILY). The climaxes are the piece's
    own because what is heard is loud only against the piece's loud passages: every piece reaches the
    levels at which the left hand mirrors a score's tutti, and the hand would mirror all its loud music."""
    fps, t = heard.fps, heard.t
    times = np.array([s.at for s in strokes])
    ns = len(times)
    band_db = {b: _smooth(mel_level_db(mel, slice(*r)), int(0.2 * fps)) for b, r in BANDS.items()}
    band_top = {b: float(np.percentile(v, 98)) for b, v in band_db.items()}
    active = np.array([[np.interp(x, t, band_db[b]) > band_top[b] - 18 for b in BANDS] for x in times + 0.1])
    climax = np.interp(times + 0.1, t, piece_level(heard.db, fps, len(t), fps)) >= CLIMAX
    tutti = active.mean(1) * climax if ns else np.zeros(0)
    entries = np.zeros((ns, len(FAMILIES)), bool)
    for j, b in enumerate(BANDS):
        quiet_since = None
        for i in range(ns):
            if not active[i, j]:
                quiet_since = times[i] if quiet_since is None else quiet_since
                continue
            bar_s = strokes[i].period_s * max(1, patterns.n_beats(strokes[i].pattern))
            if quiet_since is not None and times[i] - quiet_since >= max(2.0, bar_s) and i > 0:
                entries[i, FAMILIES.index(BAND_FAMILY[b])] = True
            quiet_since = None
    return tutti, entries


def phrases(strokes: list[Stroke], s_hold: np.ndarray, heard: Heard, beats: np.ndarray,
            change: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(phrase starts, section starts): after holds and silences, and at big changes of sound on a
    downbeat."""
    times = np.array([s.at for s in strokes])
    ns = len(times)
    phrase = np.zeros(ns, bool)
    section = np.zeros(ns, bool)
    phrase[0] = section[0] = True
    phrase[1:] |= s_hold[:-1] > 0
    section[1:] |= np.array([any(times[i - 1] < a < times[i] for a, _ in heard.silences) for i in range(1, ns)])
    chg = np.interp(times, beats, change)
    down = np.array([s.beat == 0 and s.sub == 0 for s in strokes])
    if down.sum() > 2:
        thr = np.percentile(chg[down], 85)
        section |= down & (chg >= thr) & (chg > 0.3)
    phrase |= section
    return phrase, section
