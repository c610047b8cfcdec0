"""The two conducting engines behind one interface: mel features in, motion and beats out.

* `GeneratorEngine` (`m2sgan`) — a generator checkpoint: by default Baton's own, trained with
  training/ and shipped in backend/weights/baton_m2sgan.pt; or any other, the paper's file included;
* `RulesEngine` (`rules`) — the rule-based conductor (rules.py → conducting/), which also made the
  training corpus.

Both start from features, not audio, so the evaluation (training/evaluate.py, eval_conductor.py)
runs them on cached corpus mel exactly as `generate_take` runs them on a user's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy.signal import butter, filtfilt

from baton_core.errors import BatonError
from baton_core.request import ENGINES
from baton_core.skeleton import project_front
from baton_core.timebase import MEL_FPS, MOTION_FPS, motion_frames
from .beat_net import WEAK_BEAT
from .bars import Bars
from .beats import Beats, track_beats
from .checkpoint import load_generator
from .errors import CheckpointError
from .generate import InferenceGenerator, ProgressFn, make_noise, noise_seconds
from .gestures import (break_weight, broadened, clear_of_face, cue_sections, follow_loudness, onto_bars, prepared,
                       release_weight, released, rested)
from .lift3d import lift_to_3d
from .metrics import ictus_times
from .conducting import Plan, conduct_plan, sample_style
from .conducting.motion import hands_down
from .conducting.plan import FAMILIES
from .conducting.plan_audio import (MIN_ONSET_DB, GivenBeats, Heard, find_beats, free_beats, heard_bar_lines,
                                   in_silence, in_sound_span, listen, onset_support, piece_level, plan_from_audio)
from .rules import conduct, plan_beats

BUNDLED_CHECKPOINT = Path(__file__).parent / "weights" / "baton_m2sgan.pt"
RELEASE_AFTER_S = 0.5  # silence after the last sound for the generator to release it and stop
SMOOTH_HZ = 5.0  # low-pass cut-off: above beat-rate motion, well below the 10 Hz pooling ripple
# A seed's noise is drawn this much wider than the standard normal the generator trained on: takes
# from different seeds differ more, and on the val split nothing else measured moves (the model card).
NOISE_SPREAD = 1.75
# A learned tracker's pulse_clarity (beat_net.py) from which its beats are a pulse: pulsed val clips
# reach it in about half the cases, and no unpulsed sound tried (a held chord, a drone, noise, chords
# changing every 5 s) comes within 0.05 of it (the model card).
CLEAR_PULSE = 0.9
# A silence this many of the tracker's beats long is a rest the generator engine beats nothing in (a
# bar of four; the corpus' silences inside the music last at most 1.4 beats, so none is one).
LONG_REST_BEATS = 4
# A learned tracker's beat this many beats before the music's first sound is its entry's: its pulse
# runs on into the silence, where a conductor prepares.
EARLY_BEATS = 0.4
# The music's first sound this many beats or more before the first beat struck is an entry either
# engine's conductor gives on its own (entries, gestures.prepared), as for a chord held before the
# pulse sets in; a pickup nearer the beat is played inside its preparation.
ENTRY_EARLY = 0.6
# Music that begins after this much silence (s) begins out of stillness, and its entry is prepared;
# after less, the recording starts with the music under way.
ENTRY_SILENCE_S = 0.3
# A silence this long with no beat struck in it — between two movements, or before music that starts
# late — is a break: both engines' conductors lower their arms in it (gestures.break_weight). A
# general pause of a bar or two is held at the ready, as before.
BREAK_S = 8.0


@dataclass
class Music:
    """What an engine hears: the slice's mel features, and optionally the music around the slice
    (`heard`, mel of a wider stretch that holds the slice `head` motion frames in) and the beats
    and bars the animator gave, which the engines strike instead of the ones they hear."""

    mel: np.ndarray
    heard: np.ndarray | None = None
    head: int = 0
    beats: np.ndarray | None = None      # given beats, seconds from the slice's first frame
    downbeats: np.ndarray | None = None  # given bar lines among them
    seating: dict[str, float] | None = None  # where the sections sit (degrees), as the animator placed them
    plan: Plan | None = None  # the plan of an aligned score, seconds from the slice's first frame

    @property
    def frames(self) -> int:
        return motion_frames(len(self.mel))


@dataclass
class Motion:
    keypoints_2d: np.ndarray  # (T, 13, 2) at MOTION_FPS
    keypoints_3d: np.ndarray  # (T, 13, 3)
    beats: Beats  # seconds from the slice's first frame: every stroke struck
    pulse: np.ndarray  # the beats counted (no subdivisions), seconds from the slice's first frame
    downbeats: np.ndarray  # the bar lines among them
    provenance: dict = field(default_factory=dict)
    plan: object = None  # the rule-based conductor's conducting plan (for the evaluation)
    rest: np.ndarray | None = None  # (T,) 0…1: how far the hands are down at rest (breaks, the release)


class Engine(Protocol):
    name: str

    def conduct(self, music: Music, seed: int, progress: ProgressFn | None = None,
                noise: np.ndarray | None = None) -> Motion: ...


def smooth_motion(kp: np.ndarray, fps: float = MOTION_FPS) -> np.ndarray:
    """Zero-phase 4th-order Butterworth low-pass at 5 Hz: removes the generator's 10 Hz ripple
    (the 3-frame period of the 90 → 30 Hz pooling) and the jitter above it, keeps beat-rate motion,
    and adds no delay (zero phase), so a stroke's lowest point stays on its beat (tested: within a
    frame). What it does to jitter and ictus F: the README, "How the engine works"."""
    if kp.shape[0] < 30:  # filtfilt needs a few periods of the filter's own length
        return kp
    b, a = butter(4, SMOOTH_HZ, fs=fps)
    return filtfilt(b, a, kp, axis=0).astype(kp.dtype)


def onto_beats(kp: np.ndarray, beats: np.ndarray, fps: float = MOTION_FPS, reach: float = 0.35) -> np.ndarray:
    """The motion retimed so that the stroke nearest each beat bottoms out on it: each beat's nearest
    ictus (metrics.ictus_times) within `reach` of a beat period is pinned to the beat, and time between
    pins is stretched linearly (the motion resampled there). Why: given beats (an animator's) may sit
    off the music's onsets, and the generator, which hears the music too, strikes between the two; the
    rule-based conductor strikes given beats exactly, and so, after this, does the generator."""
    beats = np.asarray(beats, dtype=np.float64)
    n = len(kp)
    if len(beats) < 2 or n < 5:
        return kp
    ictus = ictus_times(kp, fps)
    if len(ictus) == 0:
        return kp
    period = float(np.median(np.diff(beats)))
    padded = np.r_[-np.inf, ictus, np.inf]  # each beat's nearest ictus, without a beats × ictus table
    i = np.searchsorted(padded, beats)
    near = np.where(beats - padded[i - 1] <= padded[i] - beats, padded[i - 1], padded[i])
    keep = np.abs(near - beats) <= reach * period
    src, dst = near[keep], beats[keep]
    order = np.flatnonzero(np.diff(np.r_[-np.inf, src]) > 0)  # one pin per stroke, in time order
    src, dst = src[order], dst[order]
    if len(src) == 0:
        return kp
    t = np.arange(n) / fps
    ends = (0.0, (n - 1) / fps)
    src, dst = np.r_[ends[0], src, ends[1]], np.r_[ends[0], dst, ends[1]]
    ok = (np.diff(dst) > 0) & (np.diff(src) > 0)
    src, dst = np.r_[src[0], src[1:][ok]], np.r_[dst[0], dst[1:][ok]]
    where = np.interp(t, dst, src) * fps  # for each output frame, the source frame it shows
    lo = np.clip(np.floor(where).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    w = (where - lo)[:, None, None]
    return ((1 - w) * kp[lo] + w * kp[hi]).astype(kp.dtype)


def music_end(heard: Heard | None, given: np.ndarray) -> float | None:
    """When the music `heard` (audible) ends (`Heard.music_end`), if the slice goes on at least
    RELEASE_AFTER_S past it, and not before a given beat; else None."""
    if heard is None:
        return None
    end = max(heard.music_end, float(given[-1]) if len(given) else 0.0)
    return end if len(heard.db) / heard.fps - end >= RELEASE_AFTER_S else None


def movement_breaks(heard: Heard | None, struck: np.ndarray) -> list[tuple[float, float, float]]:
    """The music's silences of BREAK_S or more before its first sound or between two of its sounds
    with no beat struck in them and one struck after: (start, the first beat after it, the beat
    period there) in seconds, for gestures.break_weight; a silence the slice starts in has started
    at -inf (the hands are down from the first frame, as before a concert)."""
    if heard is None or len(struck) < 2:
        return []
    out = []
    for a, e in heard.silences:
        after = struck[struck >= e]
        if e - a >= BREAK_S and len(after) > 1 and not np.any((struck > a) & (struck < e)):
            out.append((a if a > 0 else -np.inf, float(after[0]), float(np.median(np.diff(after[:4])))))
    return out


def entries(heard: Heard | None, struck: np.ndarray, period: float) -> np.ndarray:
    """When the conductor gives an entry out of stillness (s), for gestures.prepared: where the music
    begins out of silence (ENTRY_SILENCE_S or more), the first beat struck, and the music's first
    sound where it comes ENTRY_EARLY beats (of `period` s) or more before that beat (a chord held
    before the pulse sets in: given, then held); and the first beat struck after each silence of
    LONG_REST_BEATS beats or more inside the music."""
    if len(struck) == 0 or heard is None:
        return np.zeros(0)
    out = []
    if heard.first_sound >= ENTRY_SILENCE_S:
        out.append(struck[0])
        if struck[0] - heard.first_sound >= ENTRY_EARLY * period:
            out.append(heard.first_sound)
    for a, e in heard.silences:
        after = struck[struck >= e]
        if a > heard.first_sound and e - a >= LONG_REST_BEATS * period and len(after) and after[0] > struck[0]:
            out.append(after[0])
    return np.unique(np.asarray(out, np.float64))


def with_entries_prepared(kp3d: np.ndarray, heard: Heard | None, struck: np.ndarray,
                          pulse: np.ndarray) -> np.ndarray:
    """Either engine's motion with each entry out of stillness (`entries`, among the beats `struck`)
    prepared clearly over a beat of its `pulse` (gestures.prepared)."""
    if len(pulse) < 2:
        return kp3d
    period = float(np.median(np.diff(pulse)))
    return prepared(kp3d, entries(heard, struck, period), period, MOTION_FPS)


def in_long_rest(times: np.ndarray, sound: Heard, period: float) -> np.ndarray:
    """Which of `times` (s) fall in a silence of LONG_REST_BEATS beats of `period` or more: a general
    pause or the gap between movements, where neither engine strikes a beat."""
    return in_silence(times, sound, LONG_REST_BEATS * period)


def within_sound(own: Beats, sound: Heard | None) -> Beats:
    """A learned tracker's beats from 0.4 of a beat before the music's first sound to its last: its
    pulse runs on into the silence around the music, where a conductor prepares and releases."""
    if sound is None or len(own.times) < 2:
        return own
    early = EARLY_BEATS * float(np.median(np.diff(own.times)))
    return own.only(in_sound_span(own.times, sound, early))


def audible(mel: np.ndarray) -> Heard | None:
    """The music's level and silences (plan_audio.listen), or None when there is nothing to hear."""
    try:
        return listen(mel, MEL_FPS)
    except BatonError:
        return None


def with_dynamics(kp3d: np.ndarray, heard: Heard | None, beats: np.ndarray, downbeats: np.ndarray) -> np.ndarray:
    """Either engine's motion with its strokes grown and shrunk by the music's loudness over the
    piece's own range (gestures.follow_loudness): a mastered recording's few decibels are its
    whole range from pp to ff."""
    if heard is None:
        return kp3d
    return follow_loudness(kp3d, beats, downbeats, piece_level(heard.db, MEL_FPS, len(kp3d), MOTION_FPS), MOTION_FPS)


def free_time(mel: np.ndarray, heard: Heard | None, tracked: Beats) -> np.ndarray | None:
    """The strokes for music with no pulse, as the rule-based conductor finds them (no pulse:
    plan_audio.find_beats; the strokes: plan_audio.free_beats, slow, on its changes of sound),
    so both engines call the same music free; None for music with a pulse (or none to conduct).
    Music whose onsets clearly mark the beats a learned tracker heard (`tracked`) has a pulse without
    asking the rules' tracker, which costs more than the rest of the generator's request; so has
    music whose beats the learned tracker hears with CLEAR_PULSE clarity however soft their attacks
    (legato strings, an organ), where the onset-based tracker finds none."""
    if heard is None or onset_support(mel, tracked.times, MEL_FPS) >= 2 * MIN_ONSET_DB:
        return None
    if tracked.clarity is not None and tracked.clarity >= CLEAR_PULSE:
        return None
    return free_beats(mel, heard)[0] if find_beats(mel, heard) is None else None


def cue_entrances(music: Music, beats: np.ndarray, bars: np.ndarray, kp3d: np.ndarray) -> tuple[np.ndarray, int]:
    """The generator has no cue input: the entrances of the music's score, or else the ones the
    rule-based conductor hears on these beats and bars when the animator seats the sections, are
    cued toward where they sit (gestures.cue_sections; without a seating, where sections usually
    sit), and how many. Music with nothing to plan from (silence) has nothing to cue."""
    plan = music.plan
    if plan is None:
        try:
            plan = plan_from_audio(music.mel, given=GivenBeats(beats, bars if len(bars) else None))
        except BatonError:
            return kp3d, 0
    cued = [k for k in np.flatnonzero(plan.entries.any(1)) if plan.sub[k] == 0 and plan.times[k] > plan.start + 0.1]
    families = [FAMILIES[int(np.flatnonzero(plan.entries[k])[0])] for k in cued]
    periods = np.array([plan.period(k) for k in cued])
    return cue_sections(kp3d, plan.times[cued], periods, families, music.seating or {}, MOTION_FPS), len(cued)


def bars_heard(gen: InferenceGenerator, mel: np.ndarray, beats: np.ndarray, sound: Heard | None) -> Bars | None:
    """The bars a generator's trackers and readers hear over `beats` (s), each movement read on its
    own: a silence of BREAK_S or more between two sounds parts the music, and the beats on either side
    are read apart, so that the metre of one movement is not carried into the next (the readers read
    the demo parted by 30 s of silence in bars of eight, on both sides, where alone they hear four).
    Beats inside such a silence are read with neither: they begin no bar."""
    beats = np.asarray(beats, dtype=np.float64)
    gaps = [] if sound is None else [(a, e) for a, e in sound.silences
                                    if e - a >= BREAK_S and sound.first_sound < a and e < sound.last_sound]
    if not gaps or len(beats) < 2:
        return gen.track_bars(mel, beats)
    early = EARLY_BEATS * float(np.median(np.diff(beats)))  # a beat this far before a sound belongs to it
    starts, ends = [-np.inf] + [e - early for _, e in gaps], [a for a, _ in gaps] + [np.inf]
    parts = [np.flatnonzero((beats >= lo) & (beats < hi)) for lo, hi in zip(starts, ends)]
    return gen.track_bars(mel, beats, parts if any(len(p) >= 2 for p in parts) else None)


def learned_pulse(ears: InferenceGenerator, mel: np.ndarray, sound: Heard | None,
                  beats: np.ndarray | None = None) -> GivenBeats | None:
    """The beats and bars a generator's learned trackers hear in `mel` (its readers' bars over `beats`
    where they are given), for the rule-based conductor to beat; None where it should hear the music
    itself: the trackers are missing, or there is no pulse (free time, which the rules conduct in one).
    Its tracker's grid is kept whole, holds and rests included (the planner hears those and holds
    them), but for its beats in a long rest, which the generator does not strike either, and those
    after the music's end (`music_end`: its pulse runs on into the reverberation); a beat before
    the music's first sound (the tracker's pulse runs on into the silence, for the generator to prepare
    in) moves onto that sound, where the rules' entry strikes. `sound`: the music's level (`audible`)."""
    heard = beats is None
    if heard:
        own = ears.track_beats(mel)
        if own is None or len(own.times) < 2:
            return None
        own = within_sound(own, sound)
        if len(own.times) < 2 or free_time(mel, sound, own) is not None:
            return None
        beats = own.times
        end = music_end(sound, np.zeros(0))
        if end is not None:  # the pulse ends with the music, not in the reverberation after the cut-off
            beats = beats[beats < end]
    if len(beats) < 2:
        return None
    bars = bars_heard(ears, mel, beats, sound)
    downbeats = None if bars is None else bars.downbeats.copy()
    if heard and sound is not None:  # read as heard, then struck as the generator strikes them
        if beats[0] < sound.first_sound < beats[1]:
            if downbeats is not None:
                downbeats[downbeats == beats[0]] = sound.first_sound
            beats = np.concatenate([[sound.first_sound], beats[1:]])
        beats = beats[~in_long_rest(beats, sound, float(np.median(np.diff(beats))))]
        if downbeats is not None:
            downbeats = downbeats[np.isin(downbeats, beats)]
        if len(beats) < 2:
            return None
    return GivenBeats(beats, downbeats)


class RulesEngine:
    """The rule-based conductor; it plans from the music around a slice when it is given. With
    `ears` (the shipped generator's, by default: `engine_for`) it hears the beats and bars through
    their learned trackers and readers, which hear them far better than its own pulse and metre
    (the model card); without, or where they hear no pulse, it hears them itself."""

    name = "rules"

    def __init__(self, ears: InferenceGenerator | None = None):
        self.ears = ears

    def conduct(self, music: Music, seed: int, progress: ProgressFn | None = None,
                noise: np.ndarray | None = None) -> Motion:
        if noise is not None:
            raise BatonError("noise: only for the m2sgan engine, not rules")
        if progress:
            progress(0.0, "conducting")
        heard = music.mel if music.heard is None else music.heard
        sound = audible(heard)
        n = music.frames
        t0 = music.head / MOTION_FPS
        if music.plan is not None:  # a score's: conducted as it is
            plan = music.plan.shifted(t0)
            kp3d = conduct_plan(plan, sample_style(seed), music.head + n, MOTION_FPS, music.seating)
            provenance = {"beats": "score", "bars": "score"}
        else:
            given = learned = None
            if music.beats is not None:
                given = GivenBeats(music.beats + t0, None if music.downbeats is None else music.downbeats + t0)
            if self.ears is not None and (given is None or given.downbeats is None):
                learned = learned_pulse(self.ears, heard, sound, None if given is None else given.times)
            kp3d, plan = conduct(heard, music.head + n, MOTION_FPS, seed, learned or given, music.seating)
            provenance = {"beats": "given" if music.beats is not None else "heard",
                          "bars": "given" if music.downbeats is not None else "heard"}
            if music.downbeats is None:  # whose ears heard what was not given
                provenance["hearing"] = "learned" if learned is not None else "rules"
            if plan.meta.get("free_time"):
                provenance["beats"] = provenance["bars"] = "free time"
        kp3d = with_dynamics(kp3d, sound, plan.times[plan.sub == 0], plan.downbeats)
        beats = plan_beats(plan)
        rest = break_weight(movement_breaks(sound, beats.times), len(kp3d), MOTION_FPS)
        kp3d = with_entries_prepared(rested(kp3d, rest), sound, beats.times, beats.times)
        kp3d = clear_of_face(kp3d, MOTION_FPS, beats.times)[music.head:music.head + n]
        rest = np.maximum(rest, hands_down(plan, sample_style(seed), len(rest), MOTION_FPS))[music.head:music.head + n]
        within = lambda t: t[(t >= t0) & (t < t0 + n / MOTION_FPS)] - t0
        return Motion(project_front(kp3d), kp3d, Beats(within(beats.times), beats.tempo),
                      within(plan.times[plan.sub == 0]), within(plan.downbeats), provenance, plan=plan, rest=rest)

    def joins(self, frames: int) -> None:
        return None  # a conductor's gestures have no seams


class GeneratorEngine:
    """An M2S-GAN generator run as users get it: windowed inference, noise from the seed (or as given), the
    engine's smoothing, its beats (its own tracker's when it has a beat input), lifted to 3D."""

    name = "m2sgan"

    def __init__(self, gen: InferenceGenerator, smooth: bool = True, loaded=None):
        self.gen, self.smooth, self.loaded = gen, smooth, loaded

    @classmethod
    def from_model(cls, model, smooth: bool = True) -> "GeneratorEngine":
        return cls(InferenceGenerator(model), smooth)

    def conduct(self, music: Music, seed: int, progress: ProgressFn | None = None,
                noise: np.ndarray | None = None) -> Motion:
        report = progress or (lambda f, s: None)
        provenance = {}
        if self.loaded is not None:
            provenance |= {"checkpoint": self.loaded.path, "checkpoint_kind": self.loaded.kind,
                           "checkpoint_sha256": self.loaded.sha256}
        provenance["smoothed"] = bool(self.smooth)
        if noise is None:
            noise = NOISE_SPREAD * make_noise(seed, noise_seconds(len(music.mel)), self.gen.cfg.noise_dim)
        else:
            provenance["noise"] = "given"
        # A generator with a beat input conducts its own tracker's beats; for the others the take's
        # beats are the engine's DSP tracker's, for the add-on's markers.
        if music.plan is not None:  # a score's beats and bars, as if the animator had given them
            inside = lambda t: t[(t >= 0) & (t < len(music.mel) / MEL_FPS)]
            music = replace(music, beats=inside(music.plan.times[music.plan.sub == 0]),
                            downbeats=inside(music.plan.downbeats))
        sound = audible(music.mel)
        own = self.gen.track_beats(music.mel) if music.beats is None else None
        if own is not None:
            own = within_sound(own, sound)
            free = free_time(music.mel, sound, own)
            if free is not None:  # no pulse: conducted in one on the music's changes, as the rules conduct it
                music = replace(music, beats=free, downbeats=free)
                provenance["free_time"] = True
        if music.beats is not None:
            if not self.gen.cfg.beat_input:
                raise BatonError("given beats need a generator with a beat input (Baton's own) or the rules "
                                 "engine; this checkpoint hears its own")
            gaps = np.diff(music.beats)
            beats = Beats(music.beats, 60.0 / float(np.median(gaps)) if len(gaps) else 0.0)
            provenance["beats"] = "given"
        else:
            beats = track_beats(music.mel) if own is None else own
        # The bars: the animator's, else the generator's own downbeat tracker's over these beats,
        # else (a generator without one) the rule-based conductor's hearing, for the markers.
        if music.downbeats is not None:
            bars = music.downbeats
            provenance["bars"] = "given"
        else:
            heard = bars_heard(self.gen, music.mel, beats.times, sound)
            if heard is not None:
                provenance["bars"] = "heard"
                read = heard.confidence[~np.isnan(heard.confidence)]
                provenance["bar_confidence"] = round(float(np.mean(read)), 3) if len(read) else None
            bars = heard_bar_lines(music.mel, beats.times) if heard is None else heard.downbeats
        bars = np.asarray(bars, dtype=np.float64)
        # The beats its tracker hears only weakly (its grid carried through a hold or a rest) count in
        # the bars it heard over them but are not struck; the take's bar lines are the struck ones.
        grid = beats.times
        if provenance.get("bars") == "heard" and beats.strength is not None:
            beats = beats.only(beats.strength >= WEAK_BEAT)
        # Its beats in a long rest (silence for LONG_REST_BEATS of them or more: a general pause,
        # the gap between movements) count too, and none is struck: there a conductor stands still.
        # (In silence the tracker's activation does not fall to nothing, so strength cannot tell.)
        if music.beats is None and sound is not None and len(grid) > 1:
            beats = beats.only(~in_long_rest(beats.times, sound, float(np.median(np.diff(grid)))))
        if music.plan is not None:
            provenance["beats"] = provenance["bars"] = "score"
        if provenance.get("free_time"):
            provenance["beats"] = provenance["bars"] = "free time"
        kp2d = self.gen(music.mel, noise, lambda f, s: report(0.9 * f, s), beats=beats.times,
                        downbeats=bars if self.gen.cfg.bar_input else None, grid=grid)
        if self.smooth:
            kp2d = smooth_motion(kp2d)
        if music.beats is not None:
            kp2d = onto_beats(kp2d, beats.times)
        report(0.92, "lifting to 3D")
        kp3d = lift_to_3d(kp2d)
        if provenance.get("bars") in ("given", "heard", "score"):  # bars it conducts (not only the markers')
            kp3d = onto_bars(kp3d, beats.times, bars, MOTION_FPS)
        kp3d = with_dynamics(kp3d, sound, beats.times, bars)
        if not provenance.get("free_time"):  # free time's slow strokes in one are not a slow beat
            kp3d = broadened(kp3d, grid)
        if music.seating is not None or music.plan is not None:
            kp3d, provenance["cues"] = cue_entrances(music, beats.times, bars, kp3d)
        rest = break_weight(movement_breaks(sound, beats.times), len(kp3d), MOTION_FPS)
        kp3d = with_entries_prepared(rested(kp3d, rest), sound, beats.times, grid)
        end = music_end(sound, beats.times if music.beats is not None else np.zeros(0))
        if end is not None:
            kp3d = released(kp3d, end, MOTION_FPS)
            rest = np.maximum(rest, release_weight(end, len(kp3d), MOTION_FPS))
            beats = beats.only(beats.times <= end)  # after the release the hands are down: no stroke, no marker
        kp3d = clear_of_face(kp3d, MOTION_FPS, beats.times)
        # the take's front view is its 3D's, as the rig shows it (the lift keeps bone lengths, so where
        # the generator drew a bone longer than it can be, the picture it drew is not what plays)
        return Motion(project_front(kp3d), kp3d, beats, beats.times, bars[np.isin(bars, beats.times)], provenance,
                      rest=rest)

    def joins(self, frames: int) -> np.ndarray:
        """Frames where the generator's inference windows meet (where a seam could show)."""
        return self.gen.window_joins(frames)


_generators: dict[tuple[str, float | None], tuple[InferenceGenerator, object]] = {}


def generator_engine(checkpoint: str | Path | None, smooth: bool = True) -> GeneratorEngine:
    """The engine for a checkpoint path, its model cached by path and modification time (a
    long-lived service pays for loading once); None → the bundled weights."""
    path = Path(checkpoint) if checkpoint else BUNDLED_CHECKPOINT
    if checkpoint is None and not path.is_file():
        raise CheckpointError(f"Baton's bundled generator {path} is missing (a broken install?): reinstall, "
                              "pass --checkpoint PATH, or use --engine rules")
    key = (str(path.resolve()), path.stat().st_mtime if path.is_file() else None)
    if key not in _generators:
        loaded = load_generator(path)
        _generators.clear()  # keep one model in memory
        _generators[key] = (InferenceGenerator(loaded.model), loaded)
    gen, loaded = _generators[key]
    return GeneratorEngine(gen, smooth, loaded)


def loaded_checkpoints() -> list[dict]:
    """The generator(s) held in memory: path, kind and content hash."""
    return [{"path": loaded.path, "kind": loaded.kind, "sha256": loaded.sha256} for _, loaded in _generators.values()]


def engine_for(name: str, checkpoint: str | Path | None = None, smooth: bool = True) -> Engine:
    assert name in ENGINES, name  # requests are checked before they reach here
    if name == "rules":  # the shipped model's ears, where they are whole (else the rules' own)
        try:
            return RulesEngine(generator_engine(None).gen)
        except CheckpointError:
            return RulesEngine()
    return generator_engine(checkpoint, smooth)
