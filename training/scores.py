"""Scores rendered to audio whose every beat is known, with the conducting plan that goes with them.

    r = render_score("bach/bwv248.64-6", first_bar=1, n_bars=12, tempo_bpm=84, rubato=0.5, seed=3)
    r.audio, r.sr            # mono float32
    r.beats, r.downbeats     # exact seconds of the notated beats and bars in r.audio
    r.plan                   # backend.conducting.Plan, times in r.audio's seconds
    kp3d, kp2d = r.motion(style_seed=7)   # a conductor drawn from the seed beating it, 30 fps

A performance is drawn from the seed: the base tempo (or the given one; the score's metronome marks
only set relative changes, since many corpus marks are missing or odd), rubato (a slow random tempo
wander, phrase-end ritardandi and a final one), fermatas held 1.6–2.6× with a breath after, and
dynamics — the score's own marks and hairpins when it has them, else a random plan of phrase
levels, subito changes and hairpins. Instruments come from the part names (the corpus' embedded
MIDI programs are often wrong), with a random choice among fitting General MIDI programs.

The MIDI is written with notes placed at their performed seconds (one fixed MIDI tempo), so the
beat times are exact by construction — the same time map places notes and beats. fluidsynth renders
it under a timeout and a length cap: a hanging note cannot make a runaway file.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.conducting.plan import Plan
from backend.score import (DYNAMIC_LEVELS, GRID, Performance, ScoreInfo, dynamic_curves, make_performance,
                           notated_beats, plan_from_score, read_score)
from baton_core.errors import BatonError
from baton_core.timebase import MEL_FPS, MOTION_FPS

SAMPLE_RATE = 22050
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
TAIL_S = 2.0  # seconds after the last note: reverb and room for the release gesture


def find_soundfont(path: str | Path | None = None) -> Path:
    """The soundfont to render with: `path`, else the first General MIDI one installed."""
    if path is not None:
        if not Path(path).is_file():
            raise BatonError(f"soundfont {path} not found")
        return Path(path)
    for cand in SOUNDFONTS:
        if Path(cand).is_file():
            return Path(cand)
    raise BatonError("no General MIDI soundfont found: install Debian's fluid-soundfont-gm "
                     f"(looked for {', '.join(SOUNDFONTS)})")


@dataclass
class Rendered:
    audio: np.ndarray  # mono float32 at sr
    sr: int
    beats: np.ndarray  # seconds of every notated beat in the excerpt (6/8: dotted quarters)
    downbeats: np.ndarray  # seconds of every bar line
    plan: Plan  # the conducting plan, same clock
    info: dict = field(default_factory=dict)  # piece, bars, tempo, rubato, seed, programs, …

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sr

    def n_frames(self, fps: float = MOTION_FPS) -> int:
        """Motion frames for this audio, as the engine counts them (its mel frames, pooled to `fps`)."""
        mel_frames = int(len(self.audio) / self.sr * MEL_FPS)
        return int(np.ceil(mel_frames * fps / MEL_FPS))

    def motion(self, style_seed: int, fps: float = MOTION_FPS) -> tuple[np.ndarray, np.ndarray]:
        """((T, 13, 3) metres, (T, 13, 2) image units) of the conductor drawn from `style_seed`
        beating this render's plan: the motion half of a training pair."""
        from backend.conducting import conduct_plan, sample_style
        from baton_core.skeleton import project_front
        kp3d = conduct_plan(self.plan, sample_style(style_seed), self.n_frames(fps), fps)
        return kp3d, project_front(kp3d)


def _smooth_noise(rng: np.random.Generator, x: np.ndarray, corr: float) -> np.ndarray:
    """Unit-variance noise over positions x, correlated over about `corr`."""
    if len(x) < 2:
        return np.zeros(len(x))
    knots = np.arange(x[0] - corr, x[-1] + 2 * corr, corr)
    vals = rng.standard_normal(len(knots))
    from scipy.interpolate import CubicSpline
    out = CubicSpline(knots, vals)(x)
    return out / max(float(np.std(out)), 1e-9)


def random_dynamics(info: ScoreInfo, q: np.ndarray, bars: tuple[int, int], rng: np.random.Generator):
    """Phrase-level dynamics for a score without marks: a level per 2–4 bars, reached by a hairpin
    (two times in three) or subito."""
    a, b = bars
    level = np.zeros(len(q))
    hair = np.zeros(len(q))
    cur = float(rng.uniform(0.2, 0.8))
    i = a
    level[:] = cur
    while i < b:
        span = int(rng.integers(2, 5))
        j = min(b, i + span)
        qa = info.bars[i].offset
        qb = info.bars[j - 1].offset + info.bars[j - 1].length
        nxt = float(np.clip(cur + rng.choice([-1, 1]) * rng.uniform(0.2, 0.55), 0.1, 0.98))
        m = (q >= qa) & (q < qb)
        if rng.random() < 0.67:  # hairpin across the phrase
            frac = np.clip((q[m] - qa) / max(qb - qa, 1e-6), 0, 1)
            level[m] = cur + (nxt - cur) * frac
            hair[m] = np.sign(nxt - cur)
        else:  # subito at the phrase start
            level[m] = nxt
        level[q >= qb] = nxt
        cur = nxt
        i = j
    return np.tile(level, (len(info.parts), 1)), hair


FREE_SPREAD = 0.3  # log-sd of each quarter's length in a passage in free time


def random_performance(info: ScoreInfo, bars: tuple[int, int], rng: np.random.Generator,
                       tempo_bpm: float | None = None, rubato: float = 0.0, dynamics: str = "auto",
                       lead_in: float | None = None, free: float = 0.0) -> Performance:
    """A performance of bars [a, b) drawn from rng. `tempo_bpm` is the conducted-level tempo in
    quarter notes a minute at the first bar (default: drawn 60–140 around any marked tempo);
    `rubato` 0 (strict) … 1 (free); `dynamics` 'auto' (the score's marks if the excerpt has any,
    else random), 'score' or 'random'. `free` > 0: that share of the bars (at least two) is one
    passage in free time — colla parte, senza misura: each quarter note's length is drawn on its own
    (log-sd FREE_SPREAD, so neighbouring beats differ by a third and more) and the passage's last
    quarter is held 1.5–2.5× — within the rubato of the rest."""
    a, b = bars
    q0 = info.bars[a].offset
    q1 = info.bars[b - 1].offset + info.bars[b - 1].length
    q = np.arange(q0, q1 + 1e-9, 1.0 / GRID)
    if q[-1] < q1 - 1e-9:
        q = np.append(q, q1)
    marks = info.tempo_marks
    first = next((bpm for o, bpm in reversed(marks) if o <= q0 + 1e-6), marks[0][1] if marks else None)
    if tempo_bpm is None:
        tempo_bpm = float(np.clip((first or 100.0) * rng.uniform(0.85, 1.15), 40, 200)) if first else \
            float(rng.uniform(60, 140))
    base = np.full(len(q), float(tempo_bpm))
    if first:
        for o, v in marks:
            base[q >= o - 1e-6] = v * tempo_bpm / first
    spq_plain = 60.0 / base
    log_dev = np.zeros(len(q))
    if rubato > 0:
        bar_ql = float(np.median([info.bars[i].length for i in range(a, b)]))
        log_dev += rubato * 0.07 * _smooth_noise(rng, q, 2 * bar_ql)
        # ritardando into each phrase end (every 4 bars, or at fermatas), and at the end
        for i in range(a + 3, b, 4):
            end = info.bars[i].offset + info.bars[i].length
            width = info.bars[i].length
            log_dev += rubato * rng.uniform(0.04, 0.12) * np.clip(1 - (end - q) / width, 0, 1) ** 2 * (q < end)
        width = min(2 * bar_ql, q1 - q0)
        log_dev += rubato * rng.uniform(0.08, 0.22) * np.clip(1 - (q1 - q) / width, 0, 1) ** 2
    has_marks = any(q0 - 1e-6 <= o < q1 and v in DYNAMIC_LEVELS for p in info.parts for o, v in p.dynamics)
    use_score = dynamics == "score" or (dynamics == "auto" and has_marks)
    if use_score:
        levels, hair = dynamic_curves(info, q)
    else:
        levels, hair = random_dynamics(info, q, bars, rng)
    n_ferm = sum(1 for o, _ in info.fermatas if q0 - 1e-6 <= o < q1)
    stretch, breath = rng.uniform(1.6, 2.6, max(n_ferm, 1)), rng.uniform(0.15, 0.45, max(n_ferm, 1))
    lead_in = float(rng.uniform(1.0, 2.0) if lead_in is None else lead_in)
    if free > 0:  # drawn last, so that all else is the performance drawn without it
        n = min(b - a, max(2, round(free * (b - a))))
        first = a + int(rng.integers(0, b - a - n + 1))
        p0, p1 = info.bars[first].offset, info.bars[first + n - 1].offset + info.bars[first + n - 1].length
        quarter = np.floor(q - p0).astype(int)
        inside = (q >= p0 - 1e-9) & (q < p1 - 1e-9)
        spread = rng.normal(0.0, FREE_SPREAD, int(np.ceil(p1 - p0)) + 1)
        spread[int(np.ceil(p1 - p0)) - 1] += np.log(rng.uniform(1.5, 2.5))  # the passage's last quarter held
        log_dev[inside] += spread[quarter[inside]]
    spq = spq_plain * np.exp(log_dev)
    perf = make_performance(info, bars, spq=spq, q=q, fermata_stretch=stretch, breath_s=breath, lead_in=lead_in,
                            levels=levels, hairpin=hair)
    perf.spq = spq_plain  # bars are beaten by the written tempo, not by each rubato wobble
    return perf


def build_midi(info: ScoreInfo, perf: Performance, rng: np.random.Generator, max_seconds: float,
               transpose: int = 0, programs: tuple[int, ...] | None = None):
    """(PrettyMIDI, programs per part) with every note at its performed time, `transpose`
    semitones up; notes after max_seconds are dropped and none lasts beyond it. `programs`: one GM
    program per part (cycled), instead of a choice among those fitting each part's name."""
    import pretty_midi
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    q0 = info.bars[perf.first_bar].offset
    q1 = info.bars[perf.last_bar - 1].offset + info.bars[perf.last_bar - 1].length
    chosen = []
    for j, part in enumerate(info.parts):
        program = int(rng.choice(part.programs)) if programs is None else int(programs[j % len(programs)])
        chosen.append(program)
        inst = pretty_midi.Instrument(program=program, name=part.name)
        inside = (part.onset >= q0 - 1e-6) & (part.onset < q1 - 1e-6)
        legato = rng.uniform(0.88, 0.98)
        for on, du, pitch, st, ac in zip(part.onset[inside], part.dur[inside], part.pitch[inside],
                                         part.staccato[inside], part.accent[inside]):
            end_q = min(on + du, q1)
            start = float(perf.onset(on))
            end = float(perf.offset(end_q))
            length = (end - start) * (0.5 if st else legato)
            if start >= max_seconds:
                continue
            end = min(start + max(length, 0.05), max_seconds)
            vel = 28 + 92 * float(perf.level(j, on)) + (14 if ac else 0) + rng.normal(0, 3)
            inst.notes.append(pretty_midi.Note(int(np.clip(vel, 1, 127)), int(np.clip(pitch + transpose, 0, 127)), start, end))
        pm.instruments.append(inst)
    return pm, chosen


def fluidsynth_render(midi_path: Path, wav_path: Path, seconds: float, sr: int = SAMPLE_RATE,
                      soundfont: str | Path | None = None, gain: float = 0.4) -> np.ndarray:
    """Render a MIDI file with fluidsynth into mono float32, at most `seconds` long, killed after a
    timeout (fluidsynth renders ~100× real time here; a hanging note could otherwise run forever)."""
    import soundfile as sf
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise BatonError("fluidsynth is not installed (Debian: apt-get install fluidsynth fluid-soundfont-gm)")
    sf2 = find_soundfont(soundfont)
    cmd = [exe, "-ni", "-q", "-g", str(gain), "-r", str(sr), "-T", "wav", "-O", "s16", "-F", str(wav_path),
           str(sf2), str(midi_path)]
    timeout = 20.0 + 0.5 * seconds
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BatonError(f"fluidsynth took longer than {timeout:.0f} s on {midi_path.name}") from e
    except subprocess.CalledProcessError as e:
        raise BatonError(f"fluidsynth failed on {midi_path.name}: {e.stderr.decode(errors='replace')[-300:]}") from e
    with sf.SoundFile(str(wav_path)) as f:
        x = f.read(min(f.frames, int(seconds * f.samplerate)), dtype="float32", always_2d=True)
    return x.mean(axis=1)


def render_score(source, first_bar: int | None = None, n_bars: int | None = None,
                 tempo_bpm: float | None = None, rubato: float = 0.0, seed: int = 0,
                 dynamics: str = "auto", max_seconds: float = 40.0, sr: int = SAMPLE_RATE,
                 soundfont: str | Path | None = None, info: ScoreInfo | None = None,
                 transpose: int = 0, programs: tuple[int, ...] | None = None, arrange=None,
                 free: float = 0.0) -> Rendered:
    """Render bars of a score (a music21 corpus name, a file, a music21 Score, or an already read
    ScoreInfo via `info`) with a performance drawn from `seed`. The excerpt is cut at the last bar
    that ends before `max_seconds` (lead-in included); the audio adds a short tail. `programs`:
    an orchestration of one's own (build_midi). `arrange(pm, info, perf, bars, rng, seconds,
    transpose) -> dict` may add to the MIDI before it is rendered (training/orchestra.py); what it
    returns is kept in `info["arrangement"]`. `free`: the share of bars in one passage in free time
    (random_performance)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5C0E])
    info = info or read_score(source)
    a, b = info.bar_range(first_bar, n_bars)
    perf = random_performance(info, (a, b), rng, tempo_bpm, rubato, dynamics, free=free)
    # cut to the bars that fit
    ends = [float(perf.offset(info.bars[i].offset + info.bars[i].length)) for i in range(a, b)]
    fit = [i for i, e in zip(range(a, b), ends) if e <= max_seconds - TAIL_S]
    if not fit:
        raise BatonError(f"{info.title}: bar {info.bars[a].number} alone is longer than {max_seconds} s")
    if fit[-1] + 1 < b:
        b = fit[-1] + 1
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5C0E])
        perf = random_performance(info, (a, b), rng, tempo_bpm, rubato, dynamics, free=free)
    plan = plan_from_score(info, perf)
    seconds = float(perf.offset(info.bars[b - 1].offset + info.bars[b - 1].length)) + TAIL_S
    pm, chosen = build_midi(info, perf, rng, seconds, transpose, programs)
    arranged = arrange(pm, info, perf, (a, b), np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xA77]), seconds,
                       transpose) if arrange is not None else None
    if not any(inst.notes for inst in pm.instruments):
        raise BatonError(f"{info.title}: bars {info.bars[a].number}–{info.bars[b - 1].number} have no notes")
    with tempfile.TemporaryDirectory(prefix="baton-render-") as d:
        mid, wav = Path(d) / "score.mid", Path(d) / "score.wav"
        pm.write(str(mid))
        audio = fluidsynth_render(mid, wav, seconds, sr, soundfont)
    if len(audio) < int(seconds * sr):
        audio = np.pad(audio, (0, int(seconds * sr) - len(audio)))
    peak = float(np.abs(audio).max())
    if peak <= 1e-6:
        raise BatonError(f"{info.title}: the render is silent (soundfont or fluidsynth problem)")
    audio = (audio * (0.89 / peak)).astype(np.float32)
    beat_q, down = notated_beats(info, (a, b))
    beats, downbeats = perf.onset(beat_q), perf.onset(beat_q[down])
    meta = {"piece": info.title, "bars": [info.bars[a].number, info.bars[b - 1].number], "seed": int(seed),
            "tempo_bpm": float(60.0 / perf.spq[0]), "rubato": float(rubato), "free": float(free),
            "programs": dict(zip([p.name for p in info.parts], chosen)),
            "families": sorted({p.family for p in info.parts}),
            "metres": list(dict.fromkeys(f"{info.bars[i].numerator}/{info.bars[i].denominator}" for i in range(a, b))),
            "patterns": list(dict.fromkeys(plan.pattern.tolist()))}
    if arranged is not None:
        meta["arrangement"] = arranged
    return Rendered(audio, sr, np.array(beats), np.array(downbeats), plan, meta)
