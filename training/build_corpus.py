"""Build a training corpus in the ConductorMotion100 layout from a piece source.

    python -m training.build_corpus --out data/corpus --source demo --jobs 2
    python -m training.build_corpus --out data/corpus --source training.scores:corpus_jobs --source-opt works=200

Layout (the same commands then train on this or on the real ConductorMotion100):

    <out>/<split>/<n>/mel.npy         (T90, 128) float32, 90 Hz, the engine's mel recipe
                      motion.npy      (T30, 13, 2) float32, 30 Hz, image units (front view)
                      motion3d.npy    (T30, 13, 3) float32, metres, the engine's 3D conventions
                      plan.json       the piece's plan (times from the piece's start) + clip_start/clip_end
                      provenance.json item, work, source, render and augmentation parameters, versions
                      audio.flac      the clip's (augmented) audio, unless --no-audio
    <out>/index.jsonl                 one line per finished item: its split and folders
    <out>/corpus.json                 summary: hours, works and clips per split, build time

Pieces are cut into clips of whole seconds (60 s by default, as ConductorMotion100) after the mel is
computed over the whole piece, so a clip's features are what the engine computes on the whole file.
Splits go by work (a hash of the work id, so a work's split never changes as the corpus grows).

Resumable: a finished item is in index.jsonl and is skipped; an interrupted one leaves nothing
behind (clips are written to a staging folder and moved into place by this process only).
Parallel: items render in a process pool (--jobs); folders are numbered in the source's order
whatever order the workers finish in, so a build is the same however it was run.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .pieces import PieceJob, demo_jobs

SOURCES = {"demo": demo_jobs}
SPLITS = ("train", "val", "test")


@dataclass
class BuildConfig:
    out: str = "data/corpus"
    source: str = "demo"  # a name in SOURCES or module:function
    source_opt: list[str] = field(default_factory=list)  # key=value options for the source (values JSON or text)
    jobs: int = 1
    clip_seconds: int = 60  # 0: one clip per piece
    min_clip_seconds: int = 10  # a shorter tail is dropped
    val_fraction: float = 0.05
    test_fraction: float = 0.10
    augment: bool = True
    audio: bool = True
    seed: int = 0
    limit: int = 0  # build at most this many new items in this run (0: all)


def split_of(work_id: str, val_fraction: float, test_fraction: float) -> str:
    """A work's split from a hash of its id: stable, whatever else the corpus holds."""
    u = int.from_bytes(hashlib.sha256(work_id.encode()).digest()[:8], "big") / 2 ** 64
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def load_source(spec: str):
    if spec in SOURCES:
        return SOURCES[spec]
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"unknown source {spec!r}: use one of {', '.join(SOURCES)} or module:function")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load source {spec!r} ({e})") from None


def parse_opts(pairs: list[str]) -> dict:
    opts = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ValueError(f"--source-opt expects key=value, got {pair!r}")
        try:
            opts[key] = json.loads(value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def build_item(job: PieceJob, staging: Path, cfg: BuildConfig) -> dict:
    """Render one item and write its clips to staging/<k>/; returns what the index needs."""
    import soundfile as sf
    import soxr
    import torch

    from baton_core import __version__
    from backend.audio import SAMPLE_RATE
    from backend.features import mel_features
    from baton_core.timebase import MEL_FPS, MOTION_FPS
    from baton_core.skeleton import project_front

    from .augment import augment_audio

    torch.set_num_threads(1)  # parallelism comes from the pool
    t0 = time.perf_counter()
    piece = job.render()
    piece.check(job.item_id)
    audio = np.asarray(piece.audio, dtype=np.float32)
    if piece.sr != SAMPLE_RATE:
        audio = soxr.resample(audio, piece.sr, SAMPLE_RATE).astype(np.float32)
    aug = {}
    if cfg.augment:
        rng = np.random.default_rng([cfg.seed, int(hashlib.sha256(job.item_id.encode()).hexdigest()[:12], 16)])
        audio, aug = augment_audio(audio, SAMPLE_RATE, rng)
    mel = mel_features(audio, SAMPLE_RATE)
    seconds = len(mel) // MEL_FPS
    motion3d = np.asarray(piece.motion_3d, dtype=np.float32)
    need = seconds * MOTION_FPS
    if len(motion3d) < need - 3:
        raise ValueError(f"{job.item_id}: motion has {len(motion3d)} frames, the audio needs {need}")
    motion3d = np.concatenate([motion3d, np.repeat(motion3d[-1:], max(0, need - len(motion3d)), 0)])[:need]
    motion2d = project_front(motion3d).astype(np.float32)
    length = cfg.clip_seconds or seconds
    bounds = [(a, min(a + length, seconds)) for a in range(0, seconds, length)]
    bounds = [(a, b) for a, b in bounds if b - a >= min(cfg.min_clip_seconds, seconds) and b > a]
    prov = {"item_id": job.item_id, "work_id": job.work_id, "source": cfg.source, "render": piece.provenance,
            "augmentation": aug, "seconds": seconds, "software": {"baton": __version__, "numpy": np.__version__},
            "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
    shutil.rmtree(staging, ignore_errors=True)
    for k, (a, b) in enumerate(bounds):
        d = staging / str(k)
        d.mkdir(parents=True)
        np.save(d / "mel.npy", mel[a * MEL_FPS: b * MEL_FPS])
        np.save(d / "motion.npy", motion2d[a * MOTION_FPS: b * MOTION_FPS])
        np.save(d / "motion3d.npy", motion3d[a * MOTION_FPS: b * MOTION_FPS])
        (d / "plan.json").write_text(json.dumps(piece.plan | {"clip_start": a, "clip_end": b}))
        if cfg.audio:
            sf.write(d / "audio.flac", audio[a * SAMPLE_RATE: b * SAMPLE_RATE], SAMPLE_RATE)
        (d / "provenance.json").write_text(json.dumps(prov | {"clip": k, "clip_start": a, "clip_end": b}, indent=1))
    return {"clips": len(bounds), "seconds": sum(b - a for a, b in bounds), "render_s": time.perf_counter() - t0}


def _run_item(job: PieceJob, staging: Path, cfg: BuildConfig) -> dict:
    try:
        return build_item(job, staging, cfg)
    except Exception as e:  # one bad item must not stop the build: report it, go on
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}


def read_index(out: Path) -> dict[str, dict]:
    index = {}
    path = out / "index.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                index[rec["item_id"]] = rec
    return index


def _clean(out: Path, index: dict[str, dict]) -> None:
    """Remove what an interrupted run left: the staging area and clip folders no index line names."""
    shutil.rmtree(out / ".staging", ignore_errors=True)
    listed = {(r["split"], str(n)) for r in index.values() for n in r["folders"]}
    for split in SPLITS:
        for d in (out / split).glob("*") if (out / split).is_dir() else []:
            if d.is_dir() and (split, d.name) not in listed and (d / "provenance.json").exists():
                shutil.rmtree(d)


def build(cfg: BuildConfig, progress: bool = True) -> dict:
    """Build (or finish building) the corpus; returns the summary written to corpus.json."""
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = list(load_source(cfg.source)(**parse_opts(cfg.source_opt)))
    ids = [j.item_id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"source {cfg.source!r} gave duplicate item ids")
    index = read_index(out)
    _clean(out, index)
    todo = [j for j in jobs if j.item_id not in index]
    if cfg.limit:
        todo = todo[: cfg.limit]
    next_n = {s: 1 + max([int(d.name) for d in (out / s).glob("*") if d.name.isdigit()], default=-1) for s in SPLITS}
    staging = out / ".staging"

    def stage(job: PieceJob) -> Path:  # a flat, safe folder name whatever the item id holds
        return staging / hashlib.sha256(job.item_id.encode()).hexdigest()[:20]

    failures: dict[str, str] = {}
    built_s = 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc="building", unit="item", disable=not progress)

    def commit(job: PieceJob, result: dict) -> None:
        nonlocal built_s
        bar.update(1)
        if "error" in result:
            failures[job.item_id] = result["error"]
            bar.write(f"failed: {job.item_id}: {result['error']}")
            return
        split = split_of(job.work_id, cfg.val_fraction, cfg.test_fraction)
        folders = []
        for k in range(result["clips"]):
            n = next_n[split]
            next_n[split] += 1
            (out / split).mkdir(exist_ok=True)
            (stage(job) / str(k)).rename(out / split / str(n))
            folders.append(n)
        rec = {"item_id": job.item_id, "work_id": job.work_id, "split": split, "folders": folders,
               "seconds": result["seconds"], "render_s": round(result["render_s"], 3)}
        with open(out / "index.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        index[job.item_id] = rec
        shutil.rmtree(stage(job), ignore_errors=True)
        built_s += result["render_s"]

    if cfg.jobs <= 1:
        for job in todo:
            commit(job, _run_item(job, stage(job), cfg))
    else:  # forkserver: workers start clean whatever this process has loaded (torch, OpenMP)
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(cfg.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_run_item, job, stage(job), cfg) for job in todo]
            for job, fut in zip(todo, futures):  # commit in the source's order: stable numbering
                commit(job, fut.result())
    bar.close()
    shutil.rmtree(staging, ignore_errors=True)
    summary = _summary(out, cfg, index, time.perf_counter() - t0, failures)
    (out / "corpus.json").write_text(json.dumps(summary, indent=1))
    return summary


def _summary(out: Path, cfg: BuildConfig, index: dict, wall_s: float, failures: dict) -> dict:
    splits = {}
    for s in SPLITS:
        recs = [r for r in index.values() if r["split"] == s]
        splits[s] = {"works": len({r["work_id"] for r in recs}), "items": len(recs),
                     "clips": sum(len(r["folders"]) for r in recs),
                     "hours": round(sum(r["seconds"] for r in recs) / 3600, 4)}
    previous = {}
    if (out / "corpus.json").exists():
        previous = json.loads((out / "corpus.json").read_text())
    return {"splits": splits, "hours": round(sum(v["hours"] for v in splits.values()), 4),
            "source": cfg.source, "source_opt": cfg.source_opt, "config": asdict(cfg),
            "render_cpu_s": round(sum(r.get("render_s", 0) for r in index.values()), 1),
            "last_run": {"wall_s": round(wall_s, 1), "jobs": cfg.jobs, "failures": failures},
            "runs": previous.get("runs", 0) + 1}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = BuildConfig()
    p.add_argument("--out", default=d.out)
    p.add_argument("--source", default=d.source, help=f"{', '.join(SOURCES)} or module:function")
    p.add_argument("--source-opt", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--jobs", type=int, default=d.jobs)
    p.add_argument("--clip-seconds", type=int, default=d.clip_seconds)
    p.add_argument("--min-clip-seconds", type=int, default=d.min_clip_seconds)
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--test-fraction", type=float, default=d.test_fraction)
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--no-audio", dest="audio", action="store_false")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit", type=int, default=d.limit)
    args = p.parse_args(argv)
    cfg = BuildConfig(**vars(args))
    try:
        summary = build(cfg, progress=sys.stderr.isatty())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for s, v in summary["splits"].items():
        print(f"{s:5s}: {v['works']} works, {v['items']} items, {v['clips']} clips, {v['hours']:.3f} h")
    run = summary["last_run"]
    print(f"total {summary['hours']:.3f} h; this run {run['wall_s']} s with {run['jobs']} jobs; "
          f"{len(run['failures'])} failed")
    return 1 if run["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
