"""Beat and bar trackers: BeatNet (backend/beat_net.py) learns which 30 Hz frames a conductor
beats, or (`--target bars`) where in its bar each beat lies.

    python -m training.train_beats --corpus data/corpus --out-dir runs/beats
    python -m training.train_beats --corpus data/corpus --out-dir runs/bars --target bars
    python -m training.train_beats --corpus data/corpus,data/corpus2 --out-dir runs/beats   # several corpora
    torchrun --standalone --nproc_per_node=4 -m training.train_beats --corpus data/corpus --out-dir runs/beats

Why a stage of its own: the generator alone averaged the metrical levels the music allows (see
beat_net.py); a classifier of beat frames, decoded by the engine's dynamic-programming tracker,
commits to one. Stage 2 (`--beats`) stores the trained tracker inside the generator and conditions
the generator on the phase between its beats.

Labels: a clip's beats from its plan (the score's beats at the level the rule-based conductor beat
them — the corpus's motion strokes on exactly these), or, for data without plans such as
ConductorMotion100, the ictus of the clip's real motion (../shared/metrics.md). Targets are 1 on a
beat's frame and 0.5 on its neighbours (the ±70 ms tolerance is ±2 frames); the loss is binary cross
entropy with positives weighted `pos_weight`, the learning rate falling along a half cosine (the
held-out F of a constant rate swings by ±0.03 between checkpoints). Crops are augmented with a
random gain and a shift of the mel bands (a transposition of ±`band_shift` bands). Not with tempo
changes: the level a conductor beats depends on the tempo (fast triple time in one), so a stretched
crop carries the wrong labels — tried with ±25%: val F 0.72 against 0.76.

Every `eval_every` steps the beats decoded on the held-out split are scored against its labels
(F-measure, ±70 ms, better of two metrical levels). The run folder holds `state.pt` (resumable),
`log.jsonl` and `beatnet.pt` (what stage 2's `--beats` loads).

The bar tracker is the same network with one output per state of backend/bars.py's bar-position
state space (beats per bar as the conductor beats them, 1 for a bar in one, and the position in
the bar), trained with cross entropy on the frames of each labelled beat and beside it (the plans'
bar lines give the labels; a metre outside the space is left out). Its probabilities at the beats
are decoded over the beats by that state space (`bars.hear_bars`). Why classes and not a downbeat
activation: a downbeat activation says where bars begin but not how a conductor counts them — fast
triple time in one, slow four in eight depend on the tempo and the whole passage, which the
network's ±34 s of context hears (tried: a downbeat activation reached held-out downbeat F 0.55 and
metre accuracy 0.24 at 1000 steps). Every `eval_every` steps the held-out downbeat F (±70 ms) and
metre accuracy (labelled bars heard with their count of beats) are scored over the labelled beats.
It writes `barnet.pt`, what stage 2's `--bars` loads.
"""

from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from backend import metrics as M
from backend.bars import bar_positions, bar_states, beat_state_logp, hear_bars, state_labels
from backend.beat_net import BeatNet
from backend.checkpoint import checked_weights, load_generator, read_network, save_network
from backend.errors import CheckpointError
from baton_core.timebase import MEL_PER_MOTION, MOTION_FPS

from .dataset import Clip, Corpus
from .runtime import (Progress, TrainingError, command_line, config_from_args, exit_on_error, finish_run, open_log, resume,
                      save_state, start_run, step_rngs, versions)

FORMAT = "baton-beatnet-1"


@dataclass
class BeatsConfig:
    corpus: str = "data/corpus"
    out_dir: str = "runs/beats"
    target: str = "beats"  # or "bars": each beat's place in its bar
    init: str = ""  # a beat tracker (beatnet.pt, or a generator checkpoint holding one) whose body starts this one
    train_split: str = "train"
    eval_split: str = "val"
    clip_seconds: float = 20.0
    batch_size: int = 16  # crops per rank and step
    max_steps: int = 4000
    lr: float = 1e-3
    cosine: bool = True  # learning rate falls to 0 along a half cosine over max_steps
    weight_decay: float = 1e-4
    pos_weight: float = 5.0
    gain: float = 0.1  # ± added to the [0, 1] mel (±8 dB)
    band_shift: int = 4  # ± mel bands
    channels: int = 64
    layers: int = 9
    dropout: float = 0.1
    eval_every: int = 500
    save_every: int = 500
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"
    fresh: bool = False


# What may change when a run resumes. A new max_steps also stretches the cosine schedule from there.
TARGETS = {"beats": "beatnet.pt", "bars": "barnet.pt"}
FREE = ("max_steps", "eval_every", "save_every", "log_every", "device", "fresh")


def clip_beats(clip: Clip) -> np.ndarray:
    """The beats a clip is labelled with: its plan's, else its real motion's ictus."""
    b = clip.beats()
    return b[0] if b is not None else M.ictus_times(np.asarray(clip.motion[: clip.frames]))


def clip_downbeats(clip: Clip) -> np.ndarray:
    """The bar lines a clip is labelled with: its plan's; a clip without a plan has none to learn."""
    b = clip.beats()
    if b is None:
        raise TrainingError(f"{clip.path}: no plan.json, so no bar lines to learn downbeats from")
    return b[1]


def bar_scores(state_logp, clips: list[Clip], beats: list[np.ndarray], downbeats: list[np.ndarray]) -> dict:
    """Held-out downbeat F and metre accuracy of the bars heard over each clip's labelled beats,
    from `state_logp(clip, beats)`: each beat's state log-probabilities (a tracker's, or its reader's)."""
    f, right, bars = [], 0, 0
    for c, b, d in zip(clips, beats, downbeats):
        if len(b) < 2:
            continue
        heard = hear_bars(state_logp(c, b), b)
        f.append(M.f_measure(heard.downbeats, d))
        true_metre, true_pos = bar_positions(b, d)
        first = true_pos == 0
        right += int(np.sum(heard.metre[first] == true_metre[first]))
        bars += int(first.sum())
    return {"downbeat_f": float(np.mean(f)) if f else float("nan"), "metre_acc": right / max(bars, 1),
            "clips": len(f)}


def tracker_state_logp(model: BeatNet):
    """state_logp for bar_scores: a bar tracker's own state log-probabilities at each beat."""
    copy = deepcopy(model).cpu().eval()

    def read(clip: Clip, beats: np.ndarray) -> np.ndarray:
        act = copy.activation(np.asarray(clip.mel[: MEL_PER_MOTION * clip.frames], np.float32))
        return beat_state_logp(act, beats, MOTION_FPS)
    return read


def state_targets(beats: np.ndarray, labels: np.ndarray, start: int, frames: int) -> np.ndarray:
    """(frames,) class targets for motion frames start…start+frames: each beat's state on its
    frame and beside it, −100 (ignored) elsewhere and for beats of a metre outside the space."""
    y = np.full(frames, -100, np.int64)
    f = np.round(np.asarray(beats) * MOTION_FPS).astype(int) - start
    for d in (-1, 1, 0):
        g = f + d
        ok = (g >= 0) & (g < frames) & (labels >= 0)
        y[g[ok]] = labels[ok]
    return y


def beat_targets(beats: np.ndarray, start: int, frames: int) -> np.ndarray:
    """(frames,) targets for motion frames start…start+frames: 1 on a beat, 0.5 beside it."""
    y = np.zeros(frames, np.float32)
    f = np.round(np.asarray(beats) * MOTION_FPS).astype(int) - start
    for d, w in ((-1, 0.5), (1, 0.5), (0, 1.0)):
        g = f + d
        g = g[(g >= 0) & (g < frames)]
        y[g] = np.maximum(y[g], w)
    return y


def beat_f(model: BeatNet, clips: list[Clip], labels: list[np.ndarray]) -> float:
    """Mean F-measure of the decoded beats against the labels over whole clips (a CPU copy of the
    model in eval mode: moving a DDP-wrapped model's own weights would detach its gradient hooks)."""
    if not clips:
        return float("nan")
    copy = deepcopy(model).cpu().eval()
    return float(np.mean([M.ictus_f(copy.track(np.asarray(c.mel[: MEL_PER_MOTION * c.frames], np.float32)).times, b)
                          for c, b in zip(clips, labels)]))


def save_beatnet(model: BeatNet, cfg: BeatsConfig, path: Path, meta: dict) -> str:
    config = {"channels": cfg.channels, "layers": cfg.layers}
    if model.outputs > 1:
        config["outputs"] = model.outputs
    return save_network(model, path, FORMAT, config, meta)


def load_beatnet(path: str | Path) -> tuple[BeatNet, dict]:
    """(the tracker, its file's metadata), or a CheckpointError naming what is wrong with the file."""
    obj = read_network(path, "beat tracker")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a beat tracker from training.train_beats (format {FORMAT})")
    config, state, digest = checked_weights(obj, path)
    model = BeatNet(**config)
    model.load_state_dict(state)
    return model.eval(), dict(obj["meta"], sha256=digest, config=config)


def start_body(model: BeatNet, path: str) -> None:
    """Start `model` from the tracker in `path` (a beatnet.pt, or a generator checkpoint's stored
    tracker): every weight of the same name and shape — all but the head when the outputs differ."""
    try:
        source = load_beatnet(path)[0]
    except CheckpointError:
        try:
            gen = load_generator(path).model
        except CheckpointError as e:
            raise TrainingError(f"--init {path}: neither a beat tracker nor a generator with one ({e})") from None
        if not getattr(gen.cfg, "beat_input", False):
            raise TrainingError(f"--init {path}: neither a beat tracker nor a generator with one") from None
        source = gen.beat_net
    own = model.state_dict()
    same = {k: v for k, v in source.state_dict().items() if k in own and own[k].shape == v.shape}
    if len(same) < len(own) - 2:  # at most the head's weight and bias differ
        raise TrainingError(f"--init {path}: its tracker is not of this size (--channels, --layers)")
    model.load_state_dict(same, strict=False)


def main(argv: list[str] | None = None) -> dict:
    cfg = config_from_args(BeatsConfig, argv, __doc__.split("\n\n")[0])
    return exit_on_error(lambda: train_tracker(cfg, argv))


def train_tracker(cfg: BeatsConfig, argv: list[str] | None) -> dict:
    d, out = start_run(cfg)
    train, held = Corpus.joined(cfg.corpus, cfg.train_split), Corpus.joined(cfg.corpus, cfg.eval_split)
    frames = round(cfg.clip_seconds * MOTION_FPS)
    if cfg.target not in TARGETS:
        raise TrainingError(f"--target {cfg.target!r}: one of {', '.join(TARGETS)}")
    bars = cfg.target == "bars"
    train_beats = [clip_beats(c) for c in train.clips]
    train_states = [state_labels(b, clip_downbeats(c)) for b, c in zip(train_beats, train.clips)] if bars else None
    held_beats = [clip_beats(c) for c in held.clips]
    held_downbeats = [clip_downbeats(c) for c in held.clips] if bars else None

    model = BeatNet(cfg.channels, cfg.layers, cfg.dropout, outputs=len(bar_states()) if bars else 1).to(d.device)
    if cfg.init:
        start_body(model, cfg.init)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, state = resume(out, cfg, FREE, model=model, optimizer=opt)
    last_eval = state.get("last_eval", {})
    net = DDP(model) if d.world > 1 else model
    log = open_log("beats", out, d, step, bool(state), train, held)
    pos_weight = torch.tensor(cfg.pos_weight, device=d.device)

    def save() -> None:
        if not d.main:
            return
        save_state(out / "state.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                      "config": asdict(cfg), "last_eval": last_eval})
        save_beatnet(model, cfg, out / TARGETS[cfg.target],
                     {"step": step, "target": cfg.target, "train": train.describe(), "held_out": held.describe(), "held_out_beats": last_eval,
                      "config": asdict(cfg), "command": command_line("training.train_beats", argv),
                      "versions": versions()})

    progress = Progress("beats", cfg, step, d, log)
    model.train()
    while step < cfg.max_steps:
        rng, _ = step_rngs(cfg.seed, step, d.rank, d.device)
        crops = train.sample_crops(rng, cfg.batch_size, frames)
        mel = torch.from_numpy(np.stack([train.clips[i].crop(s, frames)[0] for i, s in crops]))
        if bars:
            y = torch.from_numpy(np.stack([state_targets(train_beats[i], train_states[i], s, frames) for i, s in crops]))
        else:
            y = torch.from_numpy(np.stack([beat_targets(train_beats[i], s, frames) for i, s in crops]))
        mel = mel + torch.from_numpy(rng.uniform(-cfg.gain, cfg.gain, (len(crops), 1, 1)).astype(np.float32))
        shift = int(rng.integers(-cfg.band_shift, cfg.band_shift + 1))
        if shift:  # transpose: move the bands, repeating the edge band into the gap
            mel = torch.roll(mel, shift, dims=2)
            edge = slice(0, shift) if shift > 0 else slice(shift, None)
            mel[:, :, edge] = mel[:, :, shift:shift + 1] if shift > 0 else mel[:, :, shift - 1:shift]
        mel, y = mel.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * (0.5 * (1 + math.cos(math.pi * step / cfg.max_steps)) if cfg.cosine else 1.0)
        if bars:
            loss = F.cross_entropy(net(mel), y, ignore_index=-100)
        else:
            loss = F.binary_cross_entropy_with_logits(net(mel), y, pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        stats = progress.step(step, loss=loss.detach())
        if stats:
            progress.bar.set_postfix(loss=f"{stats['loss']:.4f}")
        if d.main and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            if cfg.target == "beats":
                last_eval = {"beat_f": beat_f(model, held.clips, held_beats), "clips": len(held.clips)}
            else:
                last_eval = bar_scores(tracker_state_logp(model), held.clips, held_beats, held_downbeats)
            progress.held_out(step, cfg.eval_split, last_eval)
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            save()
    progress.close()
    finish_run(log, d, step, model)
    return last_eval


if __name__ == "__main__":
    main()
