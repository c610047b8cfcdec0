"""A score arranged as an orchestra or a soundtrack plays it: doublings across the sections, a
percussion section that keeps the metre, and textures in which the pulse is only implicit.

The corpus' chorales, quartets and tunes are rendered as written, one instrument a part, so every
beat the trackers learned comes with a clean attack in every part. Recordings are not like that:
basses double in octaves, timpani and bass drum mark bar lines, a snare or hi-hat ticks a level
below the beat a conductor gives, and strings hold pads or shimmer in tremolo over which the
pulse is only felt. `orchestrate` adds that to the MIDI of a rendered excerpt. Every note it adds
sits on the performance's own time map, so the labels stay exact.

Kept out of training, for evaluation only: the brass choir of `training/eval_alignment.py` (every
part played by brass alone); brass here only ever doubles.
"""

from __future__ import annotations

import numpy as np

from backend.score import Performance, ScoreInfo, notated_beats

# (GM program, octave shift) that can double a part, by the part's register.
DOUBLINGS = {
    "high": ((73, 12), (73, 0), (68, 0), (40, 0), (48, 0), (72, 12), (71, 0)),  # flute, oboe, violins, piccolo, clarinet
    "middle": ((71, 0), (60, 0), (41, 0), (48, 0), (69, 0), (56, 0), (61, 0)),  # clarinet, horn, viola, cor anglais, trumpet
    "low": ((42, 0), (43, -12), (70, 0), (58, 0), (57, 0), (32, -12)),  # cello, double bass, bassoon, tuba, trombone
}
PADS = (48, 49, 50, 52, 89, 91, 95)  # strings, slow strings, synth strings, choir, warm/choir/sweep pads
OSTINATI = (46, 45, 11, 8, 48, 0)  # harp, pizzicato, vibraphone, celesta, strings, piano
TREMOLO = 44  # tremolo strings
TIMPANI = 47
BASS_DRUM, SNARE, CLOSED_HAT, CRASH, RIDE, TRIANGLE = 36, 38, 42, 49, 51, 81
PERCUSSION_STYLES = ("none", "none", "timpani", "classical", "soundtrack")
TEXTURES = ("written", "written", "pad", "ostinato", "tremolo")


def register(pitches: np.ndarray) -> str:
    m = float(np.median(pitches)) if len(pitches) else 60.0
    return "high" if m >= 67 else "low" if m < 53 else "middle"


def orchestrate(pm, info: ScoreInfo, perf: Performance, bars: tuple[int, int], rng: np.random.Generator,
                max_seconds: float, transpose: int = 0, percussion: str | None = None,
                texture: str | None = None) -> dict:
    """Add doublings, percussion and a texture to `pm` (the excerpt's PrettyMIDI, one instrument per
    part as training/scores.build_midi writes it), drawn from rng unless `percussion` (one of
    PERCUSSION_STYLES) or `texture` (one of TEXTURES) is given. Returns what was drawn."""
    import pretty_midi
    parts = [inst for inst in pm.instruments if not inst.is_drum]
    drawn: dict = {"doublings": [], "percussion": str(rng.choice(PERCUSSION_STYLES)),
                   "texture": str(rng.choice(TEXTURES))}
    # drawn even when given, so a forced style leaves every later draw as it was
    drawn["percussion"] = percussion or drawn["percussion"]
    drawn["texture"] = texture or drawn["texture"]

    def note(inst, pitch, start, end, vel):
        start, end = float(start), min(float(end), max_seconds)
        if start < max_seconds - 0.02 and end > start:
            inst.notes.append(pretty_midi.Note(int(np.clip(vel, 1, 127)), int(np.clip(pitch, 0, 127)), start, end))

    # Doublings: each part is doubled by 0–2 instruments of its register, at the octave where given.
    for inst in parts:
        reg = register(np.array([n.pitch for n in inst.notes]))
        choices = DOUBLINGS[reg]
        for k in rng.choice(len(choices), size=int(rng.choice([0, 1, 1, 2])), replace=False):
            program, shift = choices[k]
            twin = pretty_midi.Instrument(program=program, name=f"{inst.name} doubled")
            gain = rng.uniform(0.7, 1.0)
            for n in inst.notes:
                p = n.pitch + shift
                note(twin, p if 28 <= p <= 100 else n.pitch, n.start, n.end, n.velocity * gain)
            pm.instruments.append(twin)
            drawn["doublings"].append(program)

    # Score positions of the beats, their place in the bar, and the level the orchestra plays at.
    a, b = bars
    beat_q, down = notated_beats(info, bars)
    place = np.zeros(len(beat_q), int)
    for i in range(1, len(beat_q)):
        place[i] = 0 if down[i] else place[i - 1] + 1
    per_bar = np.zeros(len(beat_q), int)
    starts = list(np.flatnonzero(down)) + [len(beat_q)]
    for s, e in zip(starts[:-1], starts[1:]):
        per_bar[s:e] = e - s
    if len(starts) > 1:
        place[:starts[0]] = -1  # a pickup's beats: no downbeat before them
    times = perf.onset(beat_q)
    level = np.mean([perf.level(j, beat_q) for j in range(len(info.parts))], axis=0)
    bar_of = np.cumsum(down) - 1

    # Textures: chords of the excerpt per bar, from the notes sounding at its downbeat.
    def bar_chords():
        out = []
        for i in range(a, b):
            q0, q1 = info.bars[i].offset, info.bars[i].offset + info.bars[i].length
            pitches = sorted({int(pi) + transpose for p in info.parts for on, du, pi in zip(p.onset, p.dur, p.pitch)
                              if on <= q0 + 0.5 and on + du > q0 + 1e-6 and on < q1})
            out.append((q0, q1, pitches))
        return out

    tex = drawn["texture"]
    if tex == "pad":
        pad = pretty_midi.Instrument(program=int(rng.choice(PADS)), name="pad")
        for q0, q1, pitches in bar_chords():
            v = 30 + 60 * float(np.mean([perf.level(j, q0) for j in range(len(info.parts))]))
            for p in pitches:
                note(pad, p, perf.onset(q0), perf.offset(q1), v)
        pm.instruments.append(pad)
    elif tex == "ostinato":
        ost = pretty_midi.Instrument(program=int(rng.choice(OSTINATI)), name="ostinato")
        step = float(rng.choice([0.5, 0.25, 1.0 / 3]))  # eighths, sixteenths or triplets: a level below the beat
        down_up = bool(rng.random() < 0.5)
        for q0, q1, pitches in bar_chords():
            if not pitches:
                continue
            figure = pitches + (pitches[-2:0:-1] if down_up else [])
            for k, q in enumerate(np.arange(q0, q1 - 1e-6, step)):
                v = 35 + 55 * float(np.mean([perf.level(j, q) for j in range(len(info.parts))]))
                note(ost, figure[k % len(figure)] + 12 * (figure[k % len(figure)] < 55), perf.onset(q),
                     perf.offset(q + step), v)
        pm.instruments.append(ost)
    elif tex == "tremolo":
        trem = pretty_midi.Instrument(program=TREMOLO, name="tremolo")
        for inst in parts:
            for n in inst.notes:
                note(trem, n.pitch, n.start, n.end + 0.05, n.velocity)
                n.velocity = max(1, int(n.velocity * 0.45))  # the written attacks recede behind the tremolo
        pm.instruments.append(trem)

    # Percussion: in the metre the bar lines give, louder with the music.
    style = drawn["percussion"]
    if style == "none" or len(beat_q) == 0:
        return drawn
    bass_pitches = [n.pitch for inst in parts for n in inst.notes]
    low = min(bass_pitches) if bass_pitches else 43
    timp_pitch = 41 + (low - 41) % 12  # the bass's pitch class, F2–E3
    dominant = timp_pitch + 7 if timp_pitch + 7 <= 53 else timp_pitch - 5
    timp = pretty_midi.Instrument(program=TIMPANI, name="timpani")
    kit = pretty_midi.Instrument(program=0, is_drum=True, name="percussion")
    phrase_bars = int(rng.choice([2, 4, 8]))
    for t, pl, n_bar, lv, bar in zip(times, place, per_bar, level, bar_of):
        vel = 40 + 80 * float(lv) + rng.normal(0, 4)
        strong = pl == 0 or (n_bar == 4 and pl == 2)
        phrase = pl == 0 and bar % phrase_bars == 0
        if style in ("timpani", "classical") and (pl == 0 or (strong and rng.random() < 0.5)):
            note(timp, timp_pitch if pl == 0 else dominant, t, t + 0.6, vel)
        if style == "classical" and phrase and lv > 0.5:
            note(kit, BASS_DRUM, t, t + 0.3, vel)
            note(kit, CRASH, t, t + 1.0, vel - 10)
        if style == "soundtrack":
            if strong:
                note(kit, BASS_DRUM, t, t + 0.2, vel)
            elif pl > 0:
                note(kit, SNARE, t, t + 0.15, vel - 8)
            if phrase:
                note(kit, CRASH, t, t + 1.0, vel - 5)
    if style == "soundtrack":
        # a hi-hat or ride a level below the beat, as film and game scores keep time
        cymbal, sub = int(rng.choice([CLOSED_HAT, RIDE, TRIANGLE])), int(rng.choice([2, 3, 4]))
        for i in range(len(beat_q) - 1):
            for k in range(sub):
                t = perf.onset(beat_q[i] + (beat_q[i + 1] - beat_q[i]) * k / sub)
                note(kit, cymbal, t, t + 0.08, 35 + 50 * float(level[i]) + (10 if k == 0 else 0))
    drawn["percussion_phrase_bars"] = phrase_bars
    pm.instruments += [i for i in (timp, kit) if i.notes]
    return drawn
