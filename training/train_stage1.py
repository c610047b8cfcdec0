"""Stage 1: M2S-Net learns to tell music and motion in sync from shifted or mismatched pairs.

    python -m training.train_stage1 --corpus data/corpus --out-dir runs/stage1
    torchrun --standalone --nproc_per_node=4 -m training.train_stage1 --corpus data/corpus --out-dir runs/stage1

Each step draws `batch_size` anchor crops per rank (music a with its motion a). Each anchor gets a
partner crop b: from the same clip shifted by shift_min..shift_max seconds (a hard negative: same
music, same conductor, wrong time) or from another work (an easy negative: mismatched). Four pairings
per anchor are scored, as in the paper: (a, a) and (b, b) in sync, (music a, motion b) and
(music b, motion a) not. The first `easy_steps` use easy partners only — the paper pre-trains on them
because hard negatives are hard to learn from scratch — then `hard_fraction` of partners are hard.

Every `eval_every` steps the sync accuracy on a fixed draw of held-out pairs (`eval_split`: works
never trained on) goes to the log. The run folder holds `state.pt` (model, optimiser, step, RNG:
re-running the same command resumes), `log.jsonl` and `m2snet.pt` (the network stage 2 loads).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from backend.model import GeneratorConfig
from baton_core.timebase import MOTION_FPS

from .dataset import Corpus
from .m2snet import M2SNet, M2SNetConfig, draw_pairs, pair_accuracy, pair_batch, save_m2snet, sync_probability
from .runtime import (Progress, TrainingError, command_line, config_from_args, exit_on_error, finish_run, open_log,
                      resume, save_state, start_run, step_rngs, versions)


@dataclass
class Stage1Config:
    corpus: str = "data/corpus"
    out_dir: str = "runs/stage1"
    train_split: str = "train"
    eval_split: str = "val"
    clip_seconds: float = 10.0  # length of each crop (the paper's)
    batch_size: int = 10  # anchors per rank and step (4 pairings each)
    max_steps: int = 20000
    lr: float = 1e-3
    easy_steps: int = 1000
    hard_fraction: float = 0.5
    shift_min: float = 0.5  # seconds
    shift_max: float = 5.0
    eval_every: int = 500
    eval_pairs: int = 200
    save_every: int = 500
    log_every: int = 10
    # the network: Baton's light music encoder and a narrower ST-GCN by default (what trains on a
    # CPU); --encoder conv2d --encoder-channels 16,32,32 --gcn-channels 32 --gcn-layers 10 is the paper's
    encoder: str = "conv1d"
    encoder_channels: str = "64,64,64"
    gcn_channels: int = 16
    gcn_layers: int = 6
    seed: int = 1337
    device: str = "auto"  # auto, cpu or cuda
    fresh: bool = False  # ignore a saved state in out_dir and start over


FREE = ("max_steps", "eval_every", "eval_pairs", "save_every", "log_every", "device", "fresh")


def network_config(cfg: Stage1Config) -> M2SNetConfig:
    """The M2S-Net the config names, or a TrainingError saying which option is wrong."""
    try:
        channels = tuple(int(c) for c in cfg.encoder_channels.split(","))
        net = M2SNetConfig(encoder=cfg.encoder, encoder_channels=channels, gcn_channels=cfg.gcn_channels,
                           gcn_layers=cfg.gcn_layers)
        GeneratorConfig.from_dict(net.generator_config().to_dict())
    except ValueError as e:
        raise TrainingError(f"bad network options ({e})") from None
    if cfg.gcn_channels < 1 or cfg.gcn_layers < 1:
        raise TrainingError("--gcn-channels and --gcn-layers must be positive")
    return net


def main(argv: list[str] | None = None) -> dict:
    cfg = config_from_args(Stage1Config, argv, __doc__.split("\n\n")[0])
    return exit_on_error(lambda: train_m2snet(cfg, argv))


def train_m2snet(cfg: Stage1Config, argv: list[str] | None) -> dict:
    d, out = start_run(cfg)
    train, held = Corpus(cfg.corpus, cfg.train_split), Corpus(cfg.corpus, cfg.eval_split)
    frames = round(cfg.clip_seconds * MOTION_FPS)

    model = M2SNet(network_config(cfg)).to(d.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, state = resume(out, cfg, FREE, model=model, optimizer=opt)
    net = DDP(model) if d.world > 1 else model
    log = open_log("stage 1", out, d, step, bool(state), train, held)

    def save() -> None:
        if not d.main:
            return
        save_state(out / "state.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                      "config": asdict(cfg)})
        save_m2snet(model, out / "m2snet.pt", {"step": step, "train": train.describe(), "held_out": held.describe(),
                                               "held_out_sync": last_eval, "config": asdict(cfg),
                                               "command": command_line("training.train_stage1", argv),
                                               "versions": versions()})

    last_eval: dict = {}
    progress = Progress("stage 1", cfg, step, d, log)
    model.train()
    while step < cfg.max_steps:
        rng, _ = step_rngs(cfg.seed, step, d.rank, d.device)
        hard = cfg.hard_fraction if step >= cfg.easy_steps else 0.0
        pairs = draw_pairs(rng, train.clips, cfg.batch_size, frames, hard, cfg.shift_min, cfg.shift_max)
        mel, motion, index, labels = pair_batch(train.clips, pairs, frames)
        mel, motion = mel.to(d.device, non_blocking=True), motion.to(d.device, non_blocking=True)
        index, labels = index.to(d.device), labels.to(d.device)
        logits = net(mel, motion, index)
        loss = F.binary_cross_entropy_with_logits(logits, labels[:, None].expand_as(logits))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        with torch.no_grad():
            acc = ((sync_probability(logits) > 0.5).float() == labels).float().mean()
        stats = progress.step(step, {"hard_fraction": hard}, loss=loss.detach(), acc=acc)
        if stats:
            progress.bar.set_postfix(loss=f"{stats['loss']:.4f}", acc=f"{stats['acc']:.3f}")
        if d.main and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            last_eval = pair_accuracy(model, held.clips, frames, cfg.eval_pairs, cfg.seed, cfg.batch_size,
                                      cfg.shift_min, cfg.shift_max, d.device)
            progress.write(f"step {step}: held-out sync accuracy {last_eval['acc']:.3f} "
                           f"(in sync {last_eval.get('acc_sync', 0):.3f}, "
                           f"shifted {last_eval.get('acc_hard', float('nan')):.3f}, "
                           f"mismatched {last_eval.get('acc_easy', float('nan')):.3f})")
            log.write(step=step, kind="eval", split=cfg.eval_split, **last_eval)
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            save()
    progress.close()
    finish_run(log, d, step, model)
    return last_eval


if __name__ == "__main__":
    main()
