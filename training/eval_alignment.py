"""Conducting from the score, judged where the truth is known: excerpts of held-out works (the
corpus' test split), and a piece of our own with entrances to cue, rendered with a soundfont the
corpus never used, with rubato, reverb and a
silence before the music that the aligner is not told about, then aligned back from their audio
and their score, and conducted by both engines from the score and from the audio alone.

    python -m training.eval_alignment --json training/results/alignment.json   # → and alignment.md

Each excerpt is performed twice, by the instruments its parts name and by a brass choir (an
orchestration the corpus never uses for these works). `--keep DIR` keeps the performances for
tools/compare_aligners.py (synctoolbox and librosa on the same audio).

Tables: per excerpt, the aligned beats' error against the render's own (median and 95th
percentile, ms), downbeat F (±70 ms), metre (metre_accuracy: bars given whole, with their
beats) and cue timing (the plan's entrances against the true ones);
per engine, conducted from the score and from the audio: ictus F against the strokes the corpus'
conductor beats for the true performance (as the corpus evaluation judges), pattern
R² and downbeat accuracy against the true bars, dynamics r, and the share of entrances the left
hand cues in the beat before (metrics.cues_given). Then the wrong scores: another piece, another
movement of the same work, one part only, transposed, a corrupt file and an unsupported format,
each with what happened.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend import metrics as M
from backend.rules import plan_beats
from baton_core.errors import BatonError
from baton_core.timebase import MOTION_FPS

ROOT = Path(__file__).resolve().parents[1]
SOUNDFONT = Path("/usr/share/sounds/sf3/MuseScore_General.sf3")  # Debian musescore-general-soundfont-small (MIT)
# held-out works (the corpus' test split), one excerpt each: (corpus name, first bar, bars)
CASES = (("bach/bwv308.mxl", None, 12), ("bach/bwv174.5.mxl", None, 12), ("bach/bwv245.40.mxl", None, 12),
         ("monteverdi/madrigal.3.10.mxl", None, 16), ("monteverdi/madrigal.4.7.mxl", None, 16),
         ("mozart/k156/movement1.mxl", 1, 16), ("mozart/k156/movement2.mxl", 1, 12),
         ("palestrina/Agnus_I_56.krn", None, 12), ("ryansMammoth/BillyTheKids.abc", None, 16),
         ("entrances", None, 24))
ENTRANCES = "entrances"  # entrances_score(): a piece of our own, for the cues
# each excerpt is performed twice: by the instruments its parts name (as the corpus would choose
# them, with a soundfont it never used), and by an orchestration the corpus never uses for these
# works — a brass choir, its parts top to bottom on trumpet, horn, trombone and tuba
ORCHESTRATIONS = {"own": None, "brass": (56, 60, 57, 58)}
OFFSET_S = 2.7   # silence before the music, not told to the aligner
RUBATO = 0.3
REVERB_S = 1.2   # RT60 of the added room
SEED = 11


@dataclass
class Case:
    name: str
    orchestration: str      # a key of ORCHESTRATIONS
    audio: Path
    score: Path
    samples: np.ndarray
    sr: int
    beats: np.ndarray       # the render's notated beats, in the audio's time
    downbeats: np.ndarray
    strokes: np.ndarray     # the strokes the corpus' conductor beats for this performance (the ictus reference)
    entries: np.ndarray     # the true plan's entrances (s) and their beats' periods
    periods: np.ndarray


def reverb(x: np.ndarray, sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A room: the dry signal plus exponentially decaying noise convolved with it (wet 30%)."""
    from scipy.signal import fftconvolve
    t = np.arange(int(rt60 * sr)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    wet = fftconvolve(x, ir)[: len(x)]
    wet *= np.abs(x).max() / max(np.abs(wet).max(), 1e-9)
    y = 0.7 * x + 0.3 * wet
    return (y / max(np.abs(y).max(), 1e-9) * 0.89).astype(np.float32)


def entrances_score(path: Path) -> Path:
    """A piece of our own for the cues, since the held-out works hold almost none (an entrance is a
    family starting after a rest, and a quartet is all strings, a chorale all voices): 24 bars of 4/4
    in C, strings throughout (violin arpeggios, cello roots), a flute playing bars 5–8, 13–16 and
    21–24, a horn bars 9–12 and 17–20 — five entrances after rests of four bars."""
    from music21 import meter, note, stream, tempo
    chords = [("C4", "E4", "G4", "C5"), ("F3", "A3", "C4", "F4"), ("G3", "B3", "D4", "G4"), ("C4", "E4", "G4", "C5")]
    roots = ["C3", "F2", "G2", "C3"]
    parts = {name: stream.Part() for name in ("Violin", "Flute", "Horn", "Violoncello")}
    for name, part in parts.items():
        part.partName = name
    for bar in range(24):
        harmony = chords[bar % 4]
        measures = {name: stream.Measure(number=bar + 1) for name in parts}
        if bar == 0:
            measures["Violin"].insert(0, tempo.MetronomeMark(number=96))
            for m in measures.values():
                m.insert(0, meter.TimeSignature("4/4"))
        for pitch in harmony:
            measures["Violin"].append(note.Note(pitch, quarterLength=1.0))
        measures["Violoncello"].append(note.Note(roots[bar % 4], quarterLength=4.0))
        block = bar // 4
        for name, playing in (("Flute", block in (1, 3, 5)), ("Horn", block in (2, 4))):
            if playing:
                top = note.Note(harmony[-1], quarterLength=2.0)
                top.octave += 1 if name == "Flute" else -1
                measures[name].append([top, note.Note(harmony[1], quarterLength=2.0)])
            else:
                measures[name].append(note.Rest(quarterLength=4.0))
        for name, m in measures.items():
            parts[name].append(m)
    score = stream.Score(list(parts.values()))
    out = path / "entrances.musicxml"
    score.write("musicxml", fp=str(out))
    return out


def make_case(name: str, first: int | None, n_bars: int, folder: Path, orchestration: str = "own") -> Case:
    import soundfile as sf
    from music21 import converter, corpus

    from backend.score import read_score
    from .scores import render_score
    label = "entrances (ours)" if name == ENTRANCES else name
    if name == ENTRANCES:
        name = str(entrances_score(folder))
    info = read_score(name)
    r = render_score(name, first_bar=first, n_bars=n_bars, seed=SEED, rubato=RUBATO, max_seconds=60.0, info=info,
                     soundfont=SOUNDFONT, programs=ORCHESTRATIONS[orchestration])
    rng = np.random.default_rng(SEED)
    x = np.concatenate([np.zeros(int(OFFSET_S * r.sr), np.float32), reverb(r.audio, r.sr, REVERB_S, rng)])
    stem = Path(name).stem if Path(name).is_file() else name.replace("/", "_").rsplit(".", 1)[0]
    audio = folder / f"{stem}.{orchestration}.wav"
    sf.write(audio, x, r.sr)
    a, b = r.info["bars"]
    score = folder / f"{stem}.musicxml"
    (converter.parse(name) if Path(name).is_file() else corpus.parse(name)).measures(a, b).write("musicxml", fp=str(score))
    p = r.plan
    cued = [k for k in np.flatnonzero(p.entries.any(1)) if p.times[k] > p.start + 0.1]
    return Case(label, orchestration, audio, score, x, r.sr, r.beats + OFFSET_S, r.downbeats + OFFSET_S,
                plan_beats(p).times + OFFSET_S, p.times[cued] + OFFSET_S, np.array([p.period(k) for k in cued]))


def alignment_row(case: Case) -> dict:
    from backend.score import plan_from_score, read_score
    from backend.score.align import align_score
    from backend.engine import _tracked_beats
    from backend.features import mel_features
    info = read_score(str(case.score))
    al = align_score(info, case.samples, case.sr, heard=_tracked_beats(None, mel_features(case.samples)))
    n = min(len(al.beat_s), len(case.beats))
    err = np.abs(al.beat_s[:n] - case.beats[:n]) * 1000
    alone = align_score(info, case.samples, case.sr).beat_s  # the harmony alone, no heard beats (an ablation)
    err_alone = np.abs(alone[:n] - case.beats[:n]) * 1000
    plan = plan_from_score(info, al.performance)
    heard = plan.times[plan.entries.any(1) & (plan.times > plan.start + 0.1)]
    cue_err = [float(np.abs(heard - t).min() * 1000) for t in case.entries] if len(heard) else []
    return {"orchestration": case.orchestration, "errors_ms": [round(float(e), 1) for e in err],
            "errors_ms_harmony_alone": [round(float(e), 1) for e in err_alone],
            "beats": int(n), "median_ms": float(np.median(err)), "p95_ms": float(np.percentile(err, 95)),
            "downbeat_f": M.f_measure(al.beat_s[al.downbeat], case.downbeats),
            "metre": metre_accuracy(al.beat_s[al.downbeat], al.beat_s, case.downbeats, case.beats),
            "entries": len(case.entries), "cue_median_ms": float(np.median(cue_err)) if cue_err else None,
            "confidence": float(np.mean(al.bar_confidence)), "transpose": al.transpose}


def metre_accuracy(downbeats: np.ndarray, beats: np.ndarray, true_downbeats: np.ndarray,
                   true_beats: np.ndarray, tolerance: float = 0.07) -> float:
    """Share of the true bars that the alignment gives whole and with their metre: an aligned bar
    line within `tolerance` of the bar's start and of its end, and as many aligned beats between
    them as the bar has."""
    line = lambda t: bool(np.any(np.abs(downbeats - t) <= tolerance))
    count = lambda x, lo, hi: int(np.sum((x >= lo - tolerance) & (x < hi - tolerance)))
    ok = [line(a) and line(b) and count(beats, a, b) == count(true_beats, a, b)
          for a, b in zip(true_downbeats[:-1], true_downbeats[1:])]
    return float(np.mean(ok)) if ok else float("nan")


def conducting_row(case: Case, engine: str, from_score: bool) -> dict:
    from backend.engine import generate_take
    take = generate_take(case.audio, engine=engine, score=str(case.score) if from_score else None)
    m = take.keypoints_2d
    bars = M.bars_from_downbeats(case.beats, case.downbeats)
    r2, chance = M.pattern_legibility(m, bars)
    cues = M.cues_given(m, case.entries, case.periods)
    return {"F": M.ictus_f(M.ictus_times(m), case.strokes), "R2": r2, "R2_chance": chance,
            "downbeat": M.downbeat_accuracy(m, bars), "dyn_r": M.dynamics_correlation(m, case.samples, case.sr)[0],
            "cued": float(cues.mean()) if len(cues) else None}


def wrong_scores(cases: list[Case], folder: Path) -> dict:
    """What each kind of wrong score gives: refused (with its message) or aligned (and how well)."""
    from music21 import corpus

    from backend.engine import generate_take
    a, b = cases[0], cases[5]  # a chorale's recording; a quartet movement's recording
    one_part = folder / "one_part.musicxml"
    corpus.parse(b.name).parts[0].write("musicxml", fp=str(one_part))
    transposed = folder / "transposed.musicxml"
    corpus.parse(a.name).transpose(2).write("musicxml", fp=str(transposed))
    corrupt = folder / "corrupt.musicxml"
    corrupt.write_text("<score-partwise><part><measure><note>")
    unsupported = folder / "score.pdf"
    unsupported.write_bytes(b"%PDF-1.4\n")
    trials = {"another piece (the quartet's score, the chorale's recording)": (a, b.score),
              "another movement of the same work": (b, cases[6].score),
              "one part only (first violin)": (b, one_part),
              "the whole work's score for an excerpt of it": (a, Path(corpus.getWork(a.name))),
              "transposed up a tone (the recording as rendered)": (a, transposed),
              "a corrupt file": (a, corrupt), "an unsupported format (PDF)": (a, unsupported)}
    out = {}
    for label, (case, score) in trials.items():
        try:
            take = generate_take(case.audio, engine="rules", score=str(score))
            conf = take.provenance["score"]["bar_confidence"]
            out[label] = f"aligned (mean bar confidence {np.mean(conf):.2f}, transposition " \
                         f"{take.provenance['score']['transpose']}; ictus F {M.ictus_f(M.ictus_times(take.keypoints_2d), case.strokes):.2f})"
        except BatonError as e:
            out[label] = f"refused: {e}"
    return out


def keep(cases: list[Case], folder: Path) -> None:
    """Each performance as another aligner needs it: `NN.wav`, and `NN.npz` with the score's notes
    (start s, duration s, MIDI pitch) and beats as played at its marked tempo, and the true beats."""
    import shutil

    from backend.score import read_score
    from backend.score.perform import make_performance
    from backend.score.read import notated_beats
    folder.mkdir(parents=True, exist_ok=True)
    for k, case in enumerate(cases):
        info = read_score(str(case.score))
        bars = (0, len(info.bars))
        nominal = make_performance(info, bars, lead_in=0.0)
        notes = []
        for part in info.parts:
            on, du, pitch = part.onset, part.dur, part.pitch
            start, end = nominal.onset(on), nominal.offset(np.minimum(on + du, nominal.q[-1]))
            notes += [(a, max(b - a, 0.05), n) for a, b, n in zip(start, end, pitch)]
        beat_q, _ = notated_beats(info, bars)
        shutil.copy(case.audio, folder / f"{k:02d}.wav")
        np.savez(folder / f"{k:02d}.npz", notes=np.array(notes), written=nominal.onset(beat_q), truth=case.beats,
                 name=f"{case.name} · {case.orchestration}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the tables here (and a .md beside it)")
    p.add_argument("--keep", type=Path, help="keep each performance here for tools/compare_aligners.py: its audio, "
                                             "and its score's notes and beats as played at its marked tempo")
    args = p.parse_args(argv)
    if not SOUNDFONT.is_file():  # the point is a soundfont the corpus never heard
        print(f"error: {SOUNDFONT} is missing (apt-get install musescore-general-soundfont-small)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="baton-align-") as d:
        cases = [make_case(n, f, b, Path(d), o) for o in ORCHESTRATIONS for n, f, b in CASES]
        align = {f"{c.name} · {c.orchestration}": alignment_row(c) for c in cases}
        conduct = {}
        for engine in ("rules", "m2sgan"):
            for from_score in (True, False):
                rows = [conducting_row(c, engine, from_score) for c in cases]
                conduct[f"{engine}, {'from the score' if from_score else 'from the audio'}"] = {
                    k: float(np.nanmean([r[k] for r in rows if r[k] is not None])) for k in rows[0]}
        wrong = wrong_scores(cases, Path(d))
        if args.keep:
            keep(cases, args.keep)
    summary = {"excerpts": len(CASES), "performances": len(cases)}
    for label, rows in [("all", list(align.values()))] + [(o, [r for r in align.values() if r["orchestration"] == o])
                                                         for o in ORCHESTRATIONS]:
        summary[label] = {"median_ms": float(np.median([r["median_ms"] for r in rows])),
                          "p95_ms_mean": float(np.mean([r["p95_ms"] for r in rows])),
                          "p95_ms_pooled": float(np.percentile(np.concatenate([r["errors_ms"] for r in rows]), 95)),
                          "downbeat_f": float(np.mean([r["downbeat_f"] for r in rows])),
                          "metre": float(np.mean([r["metre"] for r in rows]))}
    doc = {"summary": summary, "alignment": align, "conducting": conduct, "wrong scores": wrong}
    text = format_tables(doc)
    print(text)
    if args.json:
        lists = re.compile(r"\[\s+([-\d.,\s]+?)\s+\]")  # a beat's numbers on one line
        args.json.write_text(lists.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", json.dumps(doc, indent=1)))
        args.json.with_suffix(".md").write_text(text)
    return 0


def format_tables(doc: dict) -> str:
    f = lambda v, d=0: "—" if v is None else f"{v:.{d}f}"
    lines = ["# Conducting from the score: alignment and conducting on held-out works", "",
             f"Made by `training/eval_alignment.py`: {doc['summary']['excerpts'] - 1} excerpts of the corpus' "
             f"test-split works and one piece of our own with five entrances (`entrances_score`), rendered with "
             f"MuseScore General (the corpus uses FluidR3 and TimGM6mb), rubato {RUBATO}, a {REVERB_S} s room, "
             f"{OFFSET_S} s of silence before the music; each performed twice: `own`, by the instruments its "
             f"parts name, and `brass`, by a brass choir (trumpet, horn, trombone, tuba, top part to bottom), "
             f"an orchestration the corpus never uses for them.", "",
             "| excerpt · orchestration | beats | median ms | p95 ms | downbeat F | metre | entries | cue ms | confidence | transposed |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in doc["alignment"].items():
        lines.append(f"| {name} | {r['beats']} | {f(r['median_ms'])} | {f(r['p95_ms'])} | {f(r['downbeat_f'], 2)} | {f(r['metre'], 2)} | "
                     f"{r['entries']} | {f(r['cue_median_ms'])} | {f(r['confidence'], 2)} | {r['transpose']} |")
    lines += ["", "| performances | median of medians ms | mean p95 ms | p95 of all beats ms | downbeat F | metre |",
              "| --- | --- | --- | --- | --- | --- |"]
    for label in ["all"] + list(ORCHESTRATIONS):
        s = doc["summary"][label]
        lines.append(f"| {label} | {s['median_ms']:.0f} | {s['p95_ms_mean']:.0f} | {s['p95_ms_pooled']:.0f} | {s['downbeat_f']:.2f} | "
                     f"{s['metre']:.2f} |")
    lines += ["", "Conducted (all performances):", "",
              "| engine | ictus F | pattern R² (chance) | downbeat | dyn r | entrances cued |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in doc["conducting"].items():
        lines.append(f"| {name} | {f(r['F'], 3)} | {f(r['R2'], 2)} ({f(r['R2_chance'], 2)}) | {f(r['downbeat'], 2)} | "
                     f"{f(r['dyn_r'], 2)} | {f(r['cued'], 2)} |")
    lines += ["", "| wrong score | what happened |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in doc["wrong scores"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
