"""The synthetic, score-informed corpus: excerpts of music21's corpus rendered with known beats,
each conducted by the rule-based conductor planned from the score with a random style.

    python -m training.build_corpus --out data/corpus --source training.score_source:corpus_jobs \
        --source-opt works=450 --jobs 2

Works come from the corpus collections that carry real metre, tempo and orchestration variety:
instrumental Bach chorales and four-part chorales, string quartets (Beethoven, Mozart, Haydn,
Schumann), Corelli, Handel, Joplin, Schubert and others, Monteverdi madrigals and Palestrina
masses (2/2 and 4/4 polyphony), and Ryan's Mammoth Collection (reels in 2/4, jigs in 6/8, slip
jigs in 9/8, waltzes, hornpipes). Each work gives one or more *versions*: an excerpt at a random
bar, a random tempo (60–140 quarters a minute, or around the score's metronome mark), rubato,
transposition, General MIDI programs among those fitting each part's name, one of two soundfonts
(FluidR3 and pretty_midi's TimGM6mb, where installed), and the score's dynamics or random phrase
dynamics. The conductor's style comes from the same seed. The builder then adds room, EQ and noise.

Listing the jobs is cheap (file names only); scores are parsed in the workers. Everything is
drawn from the job's seed, so a rebuild gives the same corpus.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from .pieces import Piece, PieceJob

# collection → (how many works to take at most, versions per work). Long multi-movement works give
# several excerpts; one-page chorales and tunes give one.
COLLECTIONS = {
    "bach": (160, 1),
    "ryansMammoth": (120, 1),
    "monteverdi": (30, 1),
    "palestrina": (30, 1),
    "beethoven": (40, 3),
    "mozart": (20, 3),
    "haydn": (12, 3),
    "schumann_robert": (8, 3),
    "corelli": (2, 2),
    "handel": (2, 2),
    "joplin": (2, 3),
    "schubert": (2, 2),
    "verdi": (2, 2),
    "weber": (2, 2),
    "cpebach": (2, 2),
    "schumann_clara": (6, 1),
    "beach": (2, 2),
    "chopin": (2, 2),
    "johnson_j_r": (2, 2),
}
SKIP_SUFFIXES = (".txt", ".py")  # not scores
MAX_SECONDS = 40.0
MIN_BARS_LEFT = 6  # an excerpt starts at least this many bars before the end


def _seed(*parts) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def corpus_works(works: int = 0, further: int = 0) -> list[str]:
    """music21 corpus names, a stable spread over COLLECTIONS (capped at `works` overall when > 0).
    With `further` > 0, instead the works after those: up to `further` times each collection's cap
    more, from the same stable shuffle, leaving out every kin (`kin_of`) of the first ones, so that
    no part of a held-out work is learnt from (more works for the networks that learn from the
    sound alone, such as the bar reader)."""
    from music21 import corpus
    by_collection: dict[str, list[str]] = {}
    paths = {}
    for p in corpus.getCorePaths():
        rel = str(p).split("/corpus/", 1)[-1]
        top = rel.split("/", 1)[0]
        if top in COLLECTIONS and not rel.endswith(SKIP_SUFFIXES):
            by_collection.setdefault(top, []).append(rel)
            paths[rel] = Path(p)
    names = []
    for top, (cap, _) in COLLECTIONS.items():
        one_format = {}  # some scores ship in two formats: keep one file per score
        for rel in sorted(by_collection.get(top, [])):
            one_format.setdefault(rel.rsplit(".", 1)[0], rel)
        files = sorted(one_format.values(), key=lambda r: _seed("pick", r))  # a stable shuffle
        if further > 0:
            taken = {kin_of(r, paths[r]) for r in files[:cap]}
            names += [r for r in files[cap:] if kin_of(r, paths[r]) not in taken][: further * cap]
        else:
            names += files[:cap]
    if works > 0:
        names = sorted(names, key=lambda r: _seed("cap", r))[:works]
    return sorted(names)


def kin_of(name: str, path: Path) -> str:
    """What ties corpus files together as one piece beyond `work_of`: a Bach chorale's cantata or
    oratorio (its BWV number, whatever the setting), a Palestrina mass (the title its Humdrum file
    gives, `!!!OPR`, read from its file `path`: the files' numbers do not say which mass); any other
    file stands alone."""
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("bach/"):
        m = re.match(r"bach/(bwv\d+)", stem)
        return m.group(1) if m else stem
    if stem.startswith("palestrina/"):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.startswith("!!"):
                    break
                if line.startswith("!!!OPR:"):
                    return "palestrina " + line.split(":", 1)[1].strip()
    return stem


def corpus_jobs(works: int = 0, versions: int = 0, seed: int = 0, further: int = 0) -> Iterable[PieceJob]:
    """One job per (work, version); `versions` > 0 overrides each collection's count; `further` > 0
    takes the works beyond the default ones (`corpus_works`)."""
    for name in corpus_works(works, further):
        top = name.split("/", 1)[0]
        count = versions or COLLECTIONS[top][1]
        work_id = work_of(name)
        for v in range(count):
            render = functools.partial(render_item, name=name, seed=_seed(seed, name, v))
            yield PieceJob(item_id=f"{name.rsplit('.', 1)[0]}@v{v}", work_id=work_id, render=render)


def work_of(name: str) -> str:
    """The work a corpus file belongs to: the movements of one quartet are one work, so that they
    land in one split."""
    stem = name.rsplit(".", 1)[0]
    head, _, last = stem.rpartition("/")
    return head if last.startswith("movement") and head.count("/") >= 1 else stem


@functools.lru_cache(maxsize=8)
def _score(name: str):
    from backend.score import read_score
    return read_score(name)


# Debian's csound-soundfont (LGPL-2.1+) and opl3-soundfont (an FM chip's sound, CC-BY-SA-4.0): the
# recording-like source's further soundfonts, where installed. MuseScore General is never trained on.
MORE_SOUNDFONTS = ("/usr/share/sounds/sf2/sf_GMbank.sf2", "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2")
RECORDING_TEMPI = (40.0, 200.0)  # quarters a minute at the first bar, drawn log-uniformly


def _soundfonts(more: bool = False) -> list[str]:
    """The General MIDI soundfonts installed: Debian's FluidR3 and pretty_midi's TimGM6mb, and with
    `more` MORE_SOUNDFONTS."""
    import pretty_midi

    from .scores import SOUNDFONTS
    cands = list(SOUNDFONTS[:1]) + [str(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2")]
    cands += list(MORE_SOUNDFONTS) if more else []
    return [c for c in cands if Path(c).is_file()]


def recording_jobs(works: int = 0, versions: int = 0, seed: int = 0, further: int = 0) -> Iterable[PieceJob]:
    """The corpus' works as recordings sound (build with --no-augment: the render is its own chain):
    orchestrated with doublings, percussion and textures (training/orchestra.py), every soundfont
    installed but MuseScore General, tempi from very slow to very fast, recorded in a hall and
    mastered (training/augment.record_audio). Each work keeps the split it has in `corpus_jobs`."""
    for job in corpus_jobs(works, versions, seed, further):
        yield PieceJob(job.item_id, job.work_id, functools.partial(job.render, recording=True))


def free_jobs(works: int = 0, versions: int = 0, seed: int = 0, further: int = 0) -> Iterable[PieceJob]:
    """recording_jobs with a passage in free time in every excerpt (a third to two thirds of its
    bars; scores.random_performance): no steady pulse there, each beat as it is played, which the
    labels follow — the beats as the conductor beats them, at the level the written tempo sets."""
    for job in corpus_jobs(works, versions, seed, further):
        yield PieceJob(job.item_id, job.work_id, functools.partial(job.render, recording=True, free=True))


def render_item(name: str, seed: int, recording: bool = False, free: bool = False) -> Piece:
    """An excerpt of `name` performed and conducted as drawn from `seed`; with `recording`, as
    recording_jobs describes, and with `free` as free_jobs does."""
    from backend.conducting.motion import beaten_strokes

    from .augment import record_audio
    from .orchestra import orchestrate
    from .scores import render_score
    rng = np.random.default_rng(seed)
    info = _score(name)
    last_start = max(0, len(info.bars) - MIN_BARS_LEFT)
    first = info.bars[int(rng.integers(0, last_start + 1))].number
    fonts = _soundfonts(more=recording)
    if recording:  # the FM chip's sound is far from an orchestra's: one item in ten or so
        weight = np.array([0.3 if "OPL" in f else 1.0 for f in fonts])
        font = fonts[int(rng.choice(len(fonts), p=weight / weight.sum()))]
    else:
        font = fonts[int(rng.integers(len(fonts)))]
    rubato = float(rng.choice([0.0, 0.0, 0.2, 0.4, 0.6]))
    dynamics = str(rng.choice(["auto", "auto", "random"]))
    transpose = int(rng.integers(-4, 5))
    tempo = float(np.exp(rng.uniform(*np.log(RECORDING_TEMPI)))) if recording else None
    free_share = float(rng.uniform(1 / 3, 2 / 3)) if free else 0.0  # drawn only here: other items stay as built
    r = render_score(name, first_bar=first, n_bars=200, rubato=rubato, seed=int(rng.integers(1 << 31)),
                     dynamics=dynamics, max_seconds=MAX_SECONDS, soundfont=font, info=info, transpose=transpose,
                     tempo_bpm=tempo, arrange=orchestrate if recording else None, free=free_share)
    style_seed = int(rng.integers(1 << 31))
    kp3d, _ = r.motion(style_seed)
    plan = r.plan
    beaten = beaten_strokes(plan)
    main = beaten & (plan.beat == 0) & (plan.sub == 0)
    arrays = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in plan.to_arrays().items()}
    plan_json = {"beats": plan.times[beaten].tolist(), "downbeats": plan.times[main].tolist(),
                 "score_beats": r.beats.tolist(), "score_downbeats": r.downbeats.tolist(), "strokes": arrays}
    prov = {"music": f"music21 corpus: {name}", **r.info, "soundfont": Path(font).name, "transpose": transpose,
            "dynamics": dynamics, "conductor": "backend.conducting.conduct_plan (plan from the score)",
            "conductor_seed": style_seed}
    audio = r.audio
    if recording:
        audio, prov["recording"] = record_audio(audio, r.sr, np.random.default_rng([seed, 0x4EC]))
    return Piece(audio, r.sr, kp3d, plan_json, prov)
