"""One table for any generator checkpoint, the rule-based conductor and the paper's weights
(../shared/metrics.md), on held-out works of a corpus, on recordings and on the bundled demo piece.

    python -m training.evaluate --corpus data/corpus --split test --checkpoint runs/stage2/generator.pt \\
        --stage1 runs/stage1/m2snet.pt
    python -m training.evaluate --audio a.flac --audio b.ogg --checkpoint runs/stage2/generator.pt
    python -m training.evaluate --recordings data/recordings --checkpoint backend/weights/baton_m2sgan.pt
    python -m training.evaluate --demo --checkpoint backend/weights/baton_m2sgan.pt --official none
    python -m training.evaluate --corpus data/corpus --split test --checkpoint backend/weights/baton_m2sgan.pt \
        --reference-bars       # after: /tmp/madmom-env/bin/python tools/reference_beats.py data/corpus/test

Rows: `data` (the corpus's own motion, where there is one), `rules` (the rule-based conductor planned
from audio: the engine's beat tracker on the mel), each checkpoint, and `official` (the paper's
released generator, from ../shared/reference/official when present). Generators run as the engine
runs them (windowed inference, the engine's 5 Hz zero-phase smoothing; --no-smooth for raw output).

Reference beats: the plan's (the score's exact beats) for corpus clips; for recordings, the beats and
bar lines written beside them (`song.beats.txt`, `song.downbeats.txt`: tools/reference_beats.py, an
independent downbeat tracker), with librosa's dynamic-programming tracker on the engine's onset
envelope as the second reference (how well the two agree is printed, and the recordings where they
agree get a table of their own); for recordings without such files and clips without a plan,
librosa's tracker is the reference. With --reference-bars, a corpus clip whose audio has such files
beside it gets a row per generator conducting that tracker's beats and bars as given: how well the
engine would conduct with another tracker's hearing, and (its bar F and metre) how well that tracker
hears the score's bars. Columns, averaged over pieces:

  F / chance    ictus F-measure (±70 ms, lag 0, better of the two metrical levels) and its chance level
  BAS           Beat Align Score (σ 0.1 s), for comparison with dance papers only
  downbeat      share of bars whose largest downward stroke lands on the first beat (needs downbeats)
  pattern       share of bars whose strokes read as the metre's standard pattern (backend.metrics)
                (needs downbeats). A corpus clip's bars are its conductor's: each bar's main beats
                and its metre's pattern, a subdivided bar judged on its main beats, as issue 3's
                evaluation judges them (`conducted_bars`); other references' bars are the beats
                between their bar lines
  R² / R² c     pattern legibility: ictus positions explained by beat-in-bar, and with labels shuffled
  bar F / metre the engine's bar lines (the take's downbeats) against the score's: F-measure (±70 ms),
                and the share of the score's bars heard whole (both bar lines within ±70 ms, none
                between: the bar heard with its metre)
  dyn r / c95   Pearson r of 2 s averages of baton-hand speed and loudness (dB), and the 95th
                percentile of r under circular shifts of ≥ 10 s (its chance level)
  LH use / shp  share of 2 s windows the left hand travels > ½ shoulder width; r of its height with loudness
  prep / rel    share of the pieces that start (end) after silence whose baton hand prepares the first
                sound (releases the last: a cut-off, then no stroke): metrics.preparation, metrics.release
  face / hip    share of frames with either hand before the face, and with the left hand at the hip
                (front view: metrics.face_covered, metrics.left_hand_on_hip)
  jitter, seam  smoothness; seam at the generator's window joins (the others have none: a conductor's
                crisp ictus is a large single-frame step by design, not a seam)
  div           seed diversity between seeds 0 and 1
  RDE SCE SDP   the paper's rhythm-density and strength-contour errors and std ratio vs the real motion
  sync:<net>    stage-1 sync accuracy of (music, this motion) against shifted and mismatched pairings
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend import metrics as M
from backend.conducting.motion import beaten_strokes
from backend.conducting.plan import Plan
from backend.features import mel_level_db
from baton_core.timebase import MEL_FPS, MEL_PER_MOTION, MOTION_FPS

from .dataset import Corpus
from .eval_conductor import bars_of

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = ROOT.parent / "shared" / "reference" / "official"
FPS = MOTION_FPS


@dataclass
class Piece:
    """A piece to evaluate on: its features, loudness, reference beats and (maybe) real motion."""

    name: str
    work_id: str
    mel: np.ndarray  # (3T, 128)
    loudness_db: np.ndarray  # (T,) at 30 fps
    beats: np.ndarray
    downbeats: np.ndarray | None
    real: np.ndarray | None  # (T, 13, 2)
    reference: tuple[np.ndarray, np.ndarray] | None = None  # an independent tracker's beats and bar lines
    bars: list | None = None  # the bars as its conductor beats them (conducted_bars), where its plan says

    def judged_bars(self) -> list:
        """The bars downbeat, pattern and R² judge: the conductor's where known, else the beats
        between the reference's bar lines."""
        return self.bars if self.bars is not None else M.bars_from_downbeats(self.beats, self.downbeats)

    @property
    def frames(self) -> int:
        return len(self.mel) // MEL_PER_MOTION


# -- pieces -----------------------------------------------------------------------------------------

def loudness_from_mel(mel: np.ndarray, frames: int) -> np.ndarray:
    """Level in dB (re the clip's loudest) from the scaled mel, when there is no audio."""
    level = mel_level_db(np.asarray(mel[: MEL_PER_MOTION * frames], np.float64))
    return level.reshape(frames, MEL_PER_MOTION).mean(axis=1)


def conducted_bars(plan: dict, start: float, end: float) -> list | None:
    """The bars of a corpus clip's plan (its `strokes`) in [start, end), in the clip's seconds, as
    its conductor beats them: each bar's main beats, subdivisions left out, with the metre's pattern
    (`eval_conductor.bars_of`); bars in one, like the metrics' own bars, are not judged. Counting
    every stroke as a beat would judge a subdivided two as a four and leave a slow four beaten in
    eight unjudged. None for a plan without strokes."""
    if "strokes" not in plan:
        return None
    strokes = Plan.from_arrays({k: np.asarray(v) for k, v in plan["strokes"].items()})
    return [M.Bar(b.beats - start, b.next_downbeat - start, b.pattern) for b in bars_of(strokes, beaten_strokes(strokes))
            if len(b.beats) >= 2 and b.beats[0] >= start - 1e-6 and b.next_downbeat < end]


def tracker_beats(mel: np.ndarray) -> np.ndarray:
    """librosa's beat tracker on the engine's onset envelope (90 Hz), shifted by the envelope's
    known latency like the engine's own beats."""
    import librosa

    from backend.beats import ONSET_LATENCY, onset_envelope
    _, frames = librosa.beat.beat_track(onset_envelope=onset_envelope(np.asarray(mel)), sr=22050, hop_length=245)
    return frames / MEL_FPS + ONSET_LATENCY


def pieces_from_corpus(corpus: Corpus, max_items: int = 0) -> list[Piece]:
    import soundfile as sf

    out = []
    for clip in corpus.clips[: max_items or None]:
        t = clip.frames
        mel = np.asarray(clip.mel[: MEL_PER_MOTION * t], dtype=np.float32)
        audio = clip.audio_path()
        if audio is not None:
            samples, sr = sf.read(audio, dtype="float32")
            loud = M.rms_db(samples, sr, FPS)[:t]
        else:
            loud = loudness_from_mel(mel, t)
        beats = clip.beats()
        ref, down = (beats[0], beats[1] if len(beats[1]) else None) if beats else (tracker_beats(mel), None)
        plan = clip.plan() or {}
        start = float(plan.get("clip_start", 0.0))
        bars = conducted_bars(plan, start, start + t / FPS) if down is not None else None
        out.append(Piece(f"{corpus.split}/{clip.path.name}", clip.work_id, mel, loud, ref, down,
                         np.asarray(clip.motion[:t], dtype=np.float32),
                         None if audio is None else reference_files(str(audio)), bars))
    return out


AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3", ".aiff", ".aif")
AGREE_F = 0.8  # the references agree on a recording when librosa's tracker finds its reference's beats at this F


def recordings_in(folder: str) -> list[str]:
    """The audio files of a recordings folder (tools/recordings_set.py makes one)."""
    files = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no audio files in {folder}")
    return files


def reference_files(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The reference beats and bar lines written beside a recording (`song.beats.txt`,
    `song.downbeats.txt`: tools/reference_beats.py), or None when there are none."""
    stem = Path(path).with_suffix("")
    beats, down = Path(f"{stem}.beats.txt"), Path(f"{stem}.downbeats.txt")
    if not beats.is_file():
        return None
    return np.atleast_1d(np.loadtxt(beats)), (np.atleast_1d(np.loadtxt(down)) if down.is_file() else np.zeros(0))


def pieces_from_audio(paths: list[str]) -> tuple[list[Piece], dict[str, float]]:
    """The recordings as pieces, referenced by the beats and bars written beside them where there
    are (else by librosa's tracker), and where there are, how well librosa's tracker agrees with
    them per recording (F, ±70 ms): the second reference."""
    from backend.audio import load_audio
    from backend.features import mel_features

    out, agreement = [], {}
    for p in paths:
        audio = load_audio(p)
        mel = mel_features(audio.samples)
        t = len(mel) // MEL_PER_MOTION
        second = tracker_beats(mel)
        given = reference_files(p)
        if given is None:
            beats, down = second, None
        else:
            beats, down = given[0], (given[1] if len(given[1]) >= 2 else None)
            agreement[Path(p).name] = M.f_measure(second, beats)
        out.append(Piece(Path(p).name, Path(p).name, mel[: MEL_PER_MOTION * t], M.rms_db(audio.samples, audio.sr, FPS)[:t],
                         beats, down, None))
    return out, agreement


def pieces_from_demo() -> list[Piece]:
    """The bundled demo piece (backend/demo_music.py, 4/4), with the beats and bar lines it was made with."""
    from backend.demo_music import demo_piece
    from backend.features import mel_features

    demo = demo_piece()
    mel = mel_features(demo.samples)
    t = len(mel) // MEL_PER_MOTION
    return [Piece("demo", "demo", mel[: MEL_PER_MOTION * t], M.rms_db(demo.samples, demo.sr, FPS)[:t],
                  demo.beats, demo.downbeats, None)]


# -- what conducts ------------------------------------------------------------------------------------

class EngineConductor:
    """An engine exactly as `generate_take` runs it (backend/engines.py), on the piece's mel; with
    `given`, on the piece's own beats and bar lines, as an animator gives them; with `reference`, on
    the independent tracker's beats and bar lines beside its audio (None for a piece without them).
    `downbeats` holds the bar lines it conducted, where they were not the piece's own."""

    seeded = True

    def __init__(self, engine, given: bool = False, reference: bool = False):
        self.engine, self.given, self.reference = engine, given, reference
        self.downbeats = None

    def __call__(self, piece: Piece, seed: int) -> np.ndarray | None:
        from backend.engines import Music
        beats = bars = None
        if self.reference:
            if piece.reference is None or len(piece.reference[1]) < 2:
                return None
            beats, bars = piece.reference
        elif self.given and piece.downbeats is not None:
            beats, bars = piece.beats, piece.downbeats
        motion = self.engine.conduct(Music(piece.mel, beats=beats, downbeats=bars), seed)
        self.downbeats = motion.downbeats if self.reference or bars is None else None  # not the score's own
        return motion.keypoints_2d[: piece.frames]

    def joins(self, frames: int) -> np.ndarray | None:
        return self.engine.joins(frames)


def generator_conductor(model, smooth: bool = True, given: bool = False, reference: bool = False) -> EngineConductor:
    from backend.engines import GeneratorEngine
    return EngineConductor(GeneratorEngine.from_model(model, smooth), given, reference)


def bars_heard_whole(heard: np.ndarray, downbeats: np.ndarray, window: float = M.ICTUS_WINDOW) -> float:
    """Share of the reference bars [d0, d1) whose two bar lines are both heard within ±window and
    no heard bar line lies between them."""
    heard = np.sort(np.asarray(heard, dtype=np.float64))
    ok = []
    for d0, d1 in zip(downbeats, downbeats[1:]):
        near = lambda t: len(heard) and np.min(np.abs(heard - t)) <= window
        inner = np.sum((heard > d0 + window) & (heard < d1 - window))
        ok.append(bool(near(d0) and near(d1) and inner == 0))
    return float(np.mean(ok)) if ok else float("nan")


class DataConductor:
    """The corpus's own motion."""

    seeded = False

    def __call__(self, piece: Piece, seed: int) -> np.ndarray:
        return piece.real

    def joins(self, frames: int) -> None:
        return None


# -- metrics ------------------------------------------------------------------------------------------

def _mean(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def row(conductor, pieces: list[Piece], judges: dict | None = None, sync_pairs: int = 32) -> dict:
    """The table's columns for one conductor, averaged over the pieces it conducts."""
    cols: dict[str, list] = {k: [] for k in ("F", "chance", "BAS", "downbeat", "pattern", "R2", "R2_chance",
                                             "bar_f", "metre", "dyn_r", "dyn_c95", "lh_use", "lh_shape", "prep", "rel", "jitter", "face", "hip", "seam", "div",
                                             "RDE", "SCE", "SDP")}
    motions, judged = [], []
    for piece in pieces:
        m = conductor(piece, 0)
        if m is None:  # a piece it cannot conduct (no real motion, no reference bars) is left out of its row
            continue
        motions.append(m)
        judged.append(piece)
        ictus = M.ictus_times(m, FPS)
        cols["F"].append(M.ictus_f(ictus, piece.beats) if len(piece.beats) else None)
        cols["chance"].append(M.ictus_f_chance(ictus, piece.beats) if len(piece.beats) > 1 else None)
        cols["BAS"].append(M.beat_align_score(ictus, piece.beats) if len(piece.beats) else None)
        if piece.downbeats is not None:
            bars = piece.judged_bars()
            cols["downbeat"].append(M.downbeat_accuracy(m, bars, FPS) if bars else None)
            cols["pattern"].append(M.pattern_accuracy(m, bars, FPS) if bars else None)
            r2, r2_chance = M.pattern_legibility(m, bars, FPS) if bars else (None, None)
            cols["R2"].append(None if r2 != r2 else r2)
            cols["R2_chance"].append(None if r2_chance != r2_chance else r2_chance)
            heard = getattr(conductor, "downbeats", None)
            if heard is not None and len(piece.downbeats) > 1:
                cols["bar_f"].append(M.f_measure(heard, piece.downbeats))
                whole = bars_heard_whole(heard, piece.downbeats)
                cols["metre"].append(None if whole != whole else whole)
        r, c = M.loudness_correlation(m, piece.loudness_db, FPS)
        c = None if c != c else c  # NaN: too short for a chance level
        cols["dyn_r"].append(r)
        cols["dyn_c95"].append(c)
        cols["lh_use"].append(M.left_hand_use(m, FPS))
        shaping = M.left_hand_shaping(m, piece.loudness_db, FPS)
        cols["lh_shape"].append(None if shaping != shaping else shaping)
        for key, present in (("prep", M.preparation(m, piece.loudness_db, FPS)), ("rel", M.release(m, piece.loudness_db, FPS))):
            cols[key].append(None if present is None else float(present))
        cols["jitter"].append(M.jitter(m))
        cols["face"].append(M.face_covered(m))
        cols["hip"].append(M.left_hand_on_hip(m))
        joins = conductor.joins(len(m))
        cols["seam"].append(None if joins is None else M.seam(m, joins))
        if conductor.seeded:
            cols["div"].append(M.seed_diversity(m, conductor(piece, 1)))
        if piece.real is not None and not isinstance(conductor, DataConductor):
            cols["RDE"].append(M.rde(piece.real, m))
            cols["SCE"].append(M.sce(piece.real, m))
            cols["SDP"].append(M.sdp(piece.real, m))
    if not motions:
        return {}
    out = {k: _mean(v) for k, v in cols.items()}
    for name, net in (judges or {}).items():
        out[f"sync:{name}"] = sync_accuracy(net, judged, motions, sync_pairs)
    return out


_MUSIC_CACHE: dict = {}  # (judge, piece, crop) → music features: every row judges the same music


def sync_accuracy(net, pieces: list[Piece], motions: list[np.ndarray], n: int) -> float | None:
    """Stage-1 accuracy on (music, motion) pairings of up to 10 s: in sync, shifted, mismatched."""
    from .m2snet import Track, pair_accuracy
    tracks = [Track(p.work_id, p.mel, m, key=p.name) for p, m in zip(pieces, motions)]
    frames = min(10 * FPS, min(t.frames for t in tracks))
    if frames < FPS or n <= 0:
        return None
    shift_max = max(0.5, min(5.0, (max(t.frames for t in tracks) - frames) / FPS))
    device = next(net.parameters()).device
    cache = _MUSIC_CACHE.setdefault(id(net), {})
    return pair_accuracy(net, tracks, frames, n, seed=0, shift_max=shift_max, device=device, music_cache=cache)["acc"]


def evaluate_checkpoint_model(gen, corpus: Corpus, max_items: int, judge=None, sync_pairs: int = 32) -> dict:
    """The table's row for a generator in training (stage 2 stores it in the checkpoint)."""
    import copy
    pieces = pieces_from_corpus(corpus, max_items)
    model = copy.deepcopy(gen).cpu().eval()
    judges = {"stage1": copy.deepcopy(judge).cpu()} if judge is not None else None
    pairs = min(sync_pairs, 4 * len(pieces))
    return {"split": corpus.split, "pieces": len(pieces), "row": row(generator_conductor(model), pieces, judges, pairs)}


# -- the table ---------------------------------------------------------------------------------------

COLUMNS = [("F", "F", 3), ("chance", "chance", 3), ("BAS", "BAS", 2), ("downbeat", "downb", 2),
           ("pattern", "pattern", 2), ("R2", "R²", 2), ("R2_chance", "R² c", 2), ("bar_f", "bar F", 2),
           ("metre", "metre", 2), ("dyn_r", "dyn r", 2),
           ("dyn_c95", "c95", 2), ("lh_use", "LH use", 2), ("lh_shape", "LH shp", 2), ("prep", "prep", 2),
           ("rel", "rel", 2), ("jitter", "jitter", 2), ("face", "face", 3), ("hip", "hip", 3),
           ("seam", "seam", 2),
           ("div", "div", 3), ("RDE", "RDE", 3), ("SCE", "SCE", 3), ("SDP", "SDP%", 1)]


def format_table(title: str, rows: dict[str, dict]) -> str:
    extra = sorted({k for r in rows.values() for k in r if k.startswith("sync:")})
    cols = COLUMNS + [(k, k, 3) for k in extra]
    width = max([5] + [len(n) for n in rows])
    head = f"{'':{width}s} " + " ".join(f"{label:>{max(len(label), 6)}s}" for _, label, _ in cols)
    lines = [title, head, "-" * len(head)]
    for name, r in rows.items():
        cells = []
        for key, label, digits in cols:
            v = r.get(key)
            cells.append(f"{'—' if v is None else f'{v:.{digits}f}':>{max(len(label), 6)}s}")
        lines.append(f"{name:{width}s} " + " ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", help="corpus folder (our build or ConductorMotion100)")
    p.add_argument("--split", default="test")
    p.add_argument("--max-items", type=int, default=0, help="clips of the split to use (0: all)")
    p.add_argument("--audio", action="append", default=[], help="a recording (repeatable)")
    p.add_argument("--recordings", help="a folder of recordings (tools/recordings_set.py), each referenced by the "
                                        "beats and bars beside it (tools/reference_beats.py)")
    p.add_argument("--demo", action="store_true", help="also the bundled demo piece, with the beats and bars it was made with")
    p.add_argument("--checkpoint", action="append", default=[], help="a generator checkpoint (repeatable)")
    p.add_argument("--rules", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--official", default="auto", help="the paper's generator: auto (from ../shared), PATH or none")
    p.add_argument("--stage1", action="append", default=[], help="a stage-1 network to judge sync (repeatable)")
    p.add_argument("--official-stage1", default="auto", help="the paper's M2S-Net as a judge: auto, PATH or none")
    p.add_argument("--sync-pairs", type=int, default=32, help="anchors per stage-1 judgement (4 pairings each)")
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--given-bars", action="store_true",
                   help="also a row per engine conducting each clip's own beats and bar lines (an animator's)")
    p.add_argument("--reference-bars", action="store_true",
                   help="also a row per generator conducting the beats and bar lines written beside each corpus "
                        "clip's audio (tools/reference_beats.py: an independent tracker's); clips without them are "
                        "left out of that row")
    p.add_argument("--json", help="also write the tables here")
    p.add_argument("--store", action="store_true", help="store the corpus table in each Baton checkpoint's metadata")
    args = p.parse_args(argv)
    if not args.corpus and not args.audio and not args.recordings and not args.demo:
        p.error("give --corpus, --audio, --recordings and/or --demo")

    from backend.checkpoint import load_generator, save_checkpoint
    from backend.engines import engine_for
    from baton_core.errors import BatonError

    from .m2snet import load_m2snet

    torch.set_grad_enabled(False)
    try:
        conductors: dict[str, object] = {}
        if args.rules:
            conductors["rules"] = EngineConductor(engine_for("rules"))  # as users run it: the shipped model's ears
            if args.given_bars:
                conductors["rules (given bars)"] = EngineConductor(engine_for("rules"), given=True)
        loaded = {}
        for path in args.checkpoint:
            lg = load_generator(path)
            name = Path(path).stem if Path(path).stem not in conductors else path
            loaded[name] = lg
            conductors[name] = generator_conductor(lg.model, args.smooth)
            if args.given_bars and lg.model.cfg.beat_input:
                conductors[f"{name} (given bars)"] = generator_conductor(lg.model, args.smooth, given=True)
            if args.reference_bars and lg.model.cfg.beat_input:
                conductors[f"{name} (reference bars)"] = generator_conductor(lg.model, args.smooth, reference=True)
        official = OFFICIAL / "m2sgan_generator.pt" if args.official == "auto" else args.official
        if official != "none" and Path(official).is_file():
            conductors["official"] = generator_conductor(load_generator(official).model, args.smooth)
        judges = {Path(s).parent.name or Path(s).stem: load_m2snet(s).model for s in args.stage1}
        off_s1 = OFFICIAL / "m2snet.pt" if args.official_stage1 == "auto" else args.official_stage1
        if off_s1 != "none" and Path(off_s1).is_file():
            judges["official"] = load_m2snet(off_s1).model
        sets, references = {}, {}
        if args.corpus:
            sets[f"held-out works: {args.corpus} [{args.split}]"] = (pieces_from_corpus(Corpus(args.corpus, args.split), args.max_items), True)
        if args.demo:
            sets["the demo piece (its own beats and bars)"] = (pieces_from_demo(), False)
        audio = args.audio + (recordings_in(args.recordings) if args.recordings else [])
        if audio:
            pieces, agreement = pieces_from_audio(audio)
            if not agreement:
                sets["recordings (reference beats: librosa's tracker)"] = (pieces, False)
            else:
                sets["recordings (reference: the beats and bars beside them)"] = (pieces, False)
                agree = {k for k, f in agreement.items() if f >= AGREE_F}
                print(f"references: librosa's tracker agrees with the reference at F ≥ {AGREE_F} on {len(agree)} of "
                      f"{len(agreement)} recordings (mean F {np.mean(list(agreement.values())):.3f}):")
                print("  " + ", ".join(f"{k} {f:.2f}" for k, f in agreement.items()) + "\n")
                references["agreement (F of librosa's tracker against the reference)"] = agreement
                if agree:
                    sets[f"recordings where the references agree (F ≥ {AGREE_F})"] = (
                        [x for x in pieces if x.name in agree], False)
    except (BatonError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tables = {}
    for title, (pieces, with_data) in sets.items():
        rows = {}
        if with_data:
            rows["data"] = row(DataConductor(), pieces, judges, args.sync_pairs)
        for name, c in conductors.items():
            rows[name] = row(c, pieces, judges, args.sync_pairs)
        rows = {k: v for k, v in rows.items() if v}
        tables[title] = {"pieces": len(pieces), "seconds": round(sum(x.frames for x in pieces) / FPS, 1), "rows": rows}
        print(format_table(f"{title} — {len(pieces)} pieces, {tables[title]['seconds']:.0f} s", rows) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(tables | references, indent=1))
    if args.store:
        for name, lg in loaded.items():
            if lg.kind == "baton":
                meta = dict(lg.meta, evaluation_table=tables)
                save_checkpoint(lg.model, lg.path, meta)
                print(f"stored the table in {lg.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
