"""Stage 2: M2S-GAN — the generator learns to conduct, judged by a critic and by stage 1.

    python -m training.train_stage2 --corpus data/corpus --stage1 runs/stage1/m2snet.pt --out-dir runs/stage2
    torchrun --standalone --nproc_per_node=4 -m training.train_stage2 --corpus … --stage1 … --out-dir …

As in the paper: the generator (backend.model.Generator) starts from the stage-1 music encoder, kept
frozen by default; a temporal-convolution critic scores motion; Wasserstein loss with gradient
penalty (WGAN-GP, `n_critic` critic updates per generator update on the same batch); and the
perceptual ("sync") loss, the L1 distance between the frozen stage-1 motion encoder's features of
generated and real motion. Optional: `w_mse` (plain regression to the real motion, 0 in the paper),
`w_vel` (regression of the motion's frame-to-frame velocity, in image units per second: the stroke
styles in a corpus differ in size and shape, but every style reverses the baton hand's direction at
the ictus, and velocity errors weigh that reversal's timing far more than position errors do),
`best_draw` (the regression terms count only each clip's closer noise draw, so that the noise can
choose between motions the music allows instead of the generator averaging them),
`w_sync` (the frozen stage-1 network's verdict that music and generated motion are in sync),
`train_encoder` (the music encoder learns on, from stage 1's weights) and `init` (fine-tuning: start
every generator weight from a Baton checkpoint; the critic starts afresh).

Baton's beat input (`beats`, a tracker from training.train_beats): the tracker is stored inside the
generator, and the generator gets the phase between beats (backend/beat_net.py) added to its
decoder's input. In training the phase comes from each clip's labelled beats — its plan's, or its
real motion's ictus — the beats its motion strokes on; in the engine, from the stored tracker's
beats. `init` may then name a generator without the beat input: its weights are kept and the beat
input starts at zero, so fine-tuning begins from exactly that generator.

Baton's bar input (`bars`, a bar tracker from `training.train_beats --target bars`), the
same way: the tracker is stored in the generator, and where each frame sits in its bar
(beat_net.bar_features: the beat's place in a bar of its count, the bar's phase) is added to the
decoder's input through a layer that starts at zero. In training the bars are each clip's labelled
bar lines; in the engine the ones the stored tracker hears over its beats (backend/bars.py), or the
animator's. `bar_reader` (training.train_bar_reader's barreader.pt) stores the network that reads
the bars over the beats with that tracker (backend/bar_reader.py), and `spectrum_reader` (a barreader.pt
of train_bar_reader --spectrum) a second one, which reads each beat's spectrum too, its reading
averaged with the first's; with `--max-steps 0` nothing else changes, and stage 1's network is not
read (the generator `--init` names holds its encoder; the checkpoint records its stage 1). Fine-tuning keeps a
generator's readers unless `bars` names another tracker.

One addition, so that the noise matters (`w_div`): the paper's generator ignores its noise — two
seeds differ by 0.5% of the motion's spread — because nothing in its losses rewards using it, and
the perceptual loss against one real motion rewards ignoring it. Each step therefore draws two noises
per clip and adds a hinge on their diversity (`draw_diversity`: the distance between the two motions
per joint ÷ the real motion's spread around its mean pose — metrics.md's seed diversity with the real
motion as the yardstick): below `div_target` it pushes the draws apart, above it does nothing, so it
cannot trade realism for randomness.

The frozen music encoder runs once per clip, without gradients and in eval mode (its batch-norm
statistics stay stage 1's): its features are cached and cropped (EncodedCorpus), which halves a
CPU step. The run folder holds `state.pt` (resume by
re-running the command), `log.jsonl` and `generator.pt` — a Baton checkpoint (backend.checkpoint)
with metadata: corpus, stage-1 file, config, command, versions and held-out evaluation numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import autograd, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from backend.audio import file_sha256
from backend.bars import bar_states
from backend.beat_net import BEAT_FEATURES, bar_features, beat_phase_features
from backend.checkpoint import load_generator, save_checkpoint
from backend.errors import CheckpointError
from backend.model import Generator, GeneratorConfig
from baton_core.skeleton import N_JOINTS
from baton_core.timebase import MEL_FPS, MEL_PER_MOTION, MOTION_FPS

from .dataset import Corpus
from .m2snet import load_m2snet
from .runtime import (Progress, TrainingError, command_line, config_from_args, exit_on_error, finish_run,
                      has_saved_run, open_log, resume, save_state, start_run, step_rngs, versions)
from .train_bar_reader import load_reader
from .train_beats import clip_beats, clip_downbeats, load_beatnet


@dataclass
class Stage2Config:
    corpus: str = "data/corpus"
    stage1: str = "runs/stage1/m2snet.pt"
    out_dir: str = "runs/stage2"
    train_split: str = "train"
    eval_split: str = "val"
    seconds: int = 30  # crop length (the paper's); whole seconds, one noise vector each
    batch_size: int = 20  # clips per rank and step
    max_steps: int = 20000
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    n_critic: int = 5
    w_adv: float = 1.0
    w_gp: float = 10.0
    w_perc: float = 0.05
    w_mse: float = 0.0
    w_sync: float = 0.0
    w_vel: float = 0.0
    best_draw: bool = False  # regression (mse, vel) counts only each clip's closer noise draw
    w_div: float = 1.0
    div_target: float = 0.5
    train_encoder: bool = False
    init: str = ""  # a Baton generator checkpoint to start from (fine-tuning), else stage 1's encoder
    beats: str = ""  # a beat tracker (training.train_beats' beatnet.pt): the generator conducts its beats
    bars: str = ""  # a bar tracker (train_beats --target bars' barnet.pt): the generator draws the bars it hears
    bar_reader: str = ""  # a bar reader (train_bar_reader's barreader.pt) of that tracker, stored beside it
    spectrum_reader: str = ""  # a second reader of it, one that reads the beats' spectra (train_bar_reader --spectrum)
    eval_every: int = 500
    eval_crops: int = 8
    final_eval_items: int = 20  # held-out clips evaluated into the checkpoint's metadata (0: none)
    save_every: int = 500
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"
    fresh: bool = False


FREE = ("max_steps", "eval_every", "eval_crops", "final_eval_items", "save_every", "log_every", "device", "fresh")


class Critic(nn.Module):
    """(N, T, 13, 2) → (N,) Wasserstein scores: three conv(k5) + LeakyReLU + max-pool stages over
    time (÷3, ÷2, ÷2), a per-frame MLP, and the mean over frames (the paper's critic; no batch norm,
    which the gradient penalty forbids)."""

    def __init__(self, channels: int = 64):
        super().__init__()
        c = channels
        layers: list[nn.Module] = []
        for cin, stride in ((2 * N_JOINTS, 3), (c, 2), (c, 2)):
            layers += [nn.Conv1d(cin, c, 5, padding=2), nn.LeakyReLU(0.2), nn.MaxPool1d(5, stride)]
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c, c // 2), nn.LeakyReLU(0.2), nn.Linear(c // 2, c // 2),
                                  nn.LeakyReLU(0.2), nn.Linear(c // 2, 1))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        h = self.convs(motion.flatten(2).transpose(1, 2))
        return self.head(h.transpose(1, 2)).mean(dim=(1, 2))


class Draws(nn.Module):
    """The generator run on K noises per clip in one call (one forward per step, as DDP needs):
    music (B, T90, 128) mel when the encoder trains, else its features (B, T30, C) from
    EncodedCorpus; noise (B, K, s, d) → motion (B, K, T30, 13, 2)."""

    def __init__(self, gen: Generator, train_encoder: bool):
        super().__init__()
        self.gen, self.train_encoder = gen, train_encoder

    def forward(self, music: torch.Tensor, noise: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
        b, k = noise.shape[:2]
        h = self.gen.encoder(music) if self.train_encoder else music
        z = self.gen.noise(noise.flatten(0, 1))
        h = torch.cat([h.repeat_interleave(k, 0), z], dim=2)
        if phase is not None:  # the beat input: (B, T30, 4) phase features, then the bar input's
            cond = self.gen.beat_proj(phase[..., :BEAT_FEATURES])
            if self.gen.cfg.bar_input:
                cond = cond + self.gen.bar_proj(phase[..., BEAT_FEATURES:])
            h = h + cond.repeat_interleave(k, 0)
        y = self.gen.decoder(h)
        return y.view(b, k, y.shape[1], N_JOINTS, 2)


class EncodedCorpus:
    """The frozen music encoder's features of each clip, computed once over the whole clip (in tiles
    with halos that cover the encoder's reach, so exactly as one pass) and cropped per batch. The
    encoder is about half of a step's cost on a CPU, and whole-clip features are what inference
    sees: no reflect padding at crop edges that the engine never produces."""

    TILE = 60 * MEL_FPS  # mel frames per tile (a multiple of MEL_PER_MOTION, as the halo)

    def __init__(self, encoder: nn.Module, corpus: Corpus, device: torch.device):
        self.encoder, self.corpus, self.device = encoder, corpus, device
        self.features: dict[int, torch.Tensor] = {}

    def crops(self, crops: list[tuple[int, int]], frames: int) -> torch.Tensor:
        for i, _ in crops:
            if i not in self.features:
                self.features[i] = self._encode(self.corpus.clips[i])
        return torch.stack([self.features[i][s:s + frames] for i, s in crops])

    @torch.no_grad()
    def _encode(self, clip) -> torch.Tensor:
        n = MEL_PER_MOTION * clip.frames
        mel = torch.from_numpy(np.array(clip.mel[:n], dtype=np.float32)).to(self.device)
        out = []
        for a in range(0, n, self.TILE):
            b = min(n, a + self.TILE)
            reach = self.encoder.reach_mel
            lo, hi = max(0, a - reach), min(n, b + reach)
            h = self.encoder(mel[lo:hi][None])[0]
            out.append(h[(a - lo) // MEL_PER_MOTION:(b - lo) // MEL_PER_MOTION])
        return torch.cat(out)


class BeatPhases:
    """Each clip's beat-phase features (beat_net.beat_phase_features of its labelled beats) and,
    with `bars`, its bar features after them (beat_net.bar_features of its labelled bar lines),
    computed once and cropped per batch."""

    def __init__(self, corpus: Corpus, bars: bool = False):
        self.corpus, self.bars = corpus, bars
        self.features: dict[int, np.ndarray] = {}

    def crops(self, crops: list[tuple[int, int]], frames: int) -> torch.Tensor:
        for i, _ in crops:
            if i not in self.features:
                clip = self.corpus.clips[i]
                beats = clip_beats(clip)
                f = beat_phase_features(beats, clip.frames)
                if self.bars:
                    f = np.concatenate([f, bar_features(beats, clip_downbeats(clip), clip.frames)], axis=1)
                self.features[i] = f
        return torch.from_numpy(np.stack([self.features[i][s:s + frames] for i, s in crops]))


def regression(fake: torch.Tensor, real: torch.Tensor, clips: int, best_draw: bool) -> torch.Tensor:
    """Mean squared error of the draws (clips·K, …) against their clips' real motion; with
    `best_draw`, of each clip's closer draw only (winner takes all): where the music allows several
    motions — beating a fast 3/4 in one or in three — plain regression teaches their average, a
    stroke between the two, while the closer draw lets each noise commit to one of them."""
    per_draw = (fake - real).pow(2).flatten(1).mean(dim=1).view(clips, -1)
    return (per_draw.min(dim=1).values if best_draw else per_draw).mean()


def draw_diversity(a: torch.Tensor, b: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(B,) mean per-joint distance between two draws ÷ the real motion's mean distance from its
    mean pose. metrics.seed_diversity divides by the first draw's own spread instead; against the
    real motion, a generator cannot raise its score by moving less."""
    between = (a - b).norm(dim=-1).mean(dim=(1, 2))
    spread = (real - real.mean(dim=1, keepdim=True)).norm(dim=-1).mean(dim=(1, 2))
    return between / spread.clamp_min(1e-6)


def main(argv: list[str] | None = None) -> dict:
    cfg = config_from_args(Stage2Config, argv, __doc__.split("\n\n")[0])
    return exit_on_error(lambda: train_generator(cfg, argv))


def train_generator(cfg: Stage2Config, argv: list[str] | None) -> dict:
    if cfg.seconds < 3:
        raise TrainingError("--seconds must be at least 3 (the decoder's widest dilation needs 65 frames)")
    d, out = start_run(cfg)
    train, held = Corpus(cfg.corpus, cfg.train_split), Corpus(cfg.corpus, cfg.eval_split)
    frames = cfg.seconds * MOTION_FPS

    # ---- the networks: stage 1's judge and encoder, the tracker, the generator, the critic
    s1, gen = networks(cfg, resuming=has_saved_run(out, cfg))
    judge = s1.model.to(d.device).eval().requires_grad_(False) if s1 is not None else None
    gen.to(d.device)
    critic = Critic().to(d.device)
    opt_g = torch.optim.Adam([p for p in gen.parameters() if p.requires_grad], lr=cfg.lr_g, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr_d, betas=(0.5, 0.9))
    step, state = resume(out, cfg, FREE, generator=gen, critic=critic, opt_g=opt_g, opt_d=opt_d)
    draws = Draws(gen, cfg.train_encoder)
    encoded = None if cfg.train_encoder else EncodedCorpus(gen.encoder, train, d.device)
    phases = BeatPhases(train, gen.cfg.bar_input) if gen.cfg.beat_input else None
    g_net = DDP(draws) if d.world > 1 else draws
    d_net = DDP(critic) if d.world > 1 else critic
    log = open_log("stage 2", out, d, step, bool(state), train, held)

    def train_mode() -> None:
        gen.train()
        if not cfg.train_encoder:
            gen.encoder.eval()
        if gen.cfg.beat_input:
            gen.beat_net.eval()
        if gen.cfg.bar_input:
            gen.bar_net.eval()
        if gen.cfg.bar_reader:
            gen.bar_reader.eval()
        if gen.cfg.spectrum_reader:
            gen.spectrum_reader.eval()

    last_eval: dict = {}

    def save(final: bool) -> None:
        if not d.main:
            return
        save_state(out / "state.pt", {"generator": gen.state_dict(), "critic": critic.state_dict(),
                                      "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
                                      "config": asdict(cfg)})
        meta = checkpoint_meta(cfg, argv, s1, train, held, step, last_eval)
        gen.eval()
        if final and cfg.final_eval_items:
            from .evaluate import evaluate_checkpoint_model
            meta["evaluation"] = evaluate_checkpoint_model(gen, held, cfg.final_eval_items, judge)
        save_checkpoint(gen, out / "generator.pt", meta)
        train_mode()

    # ---- the loop: n_critic critic updates, then one generator update, on the same batch
    progress = Progress("stage 2", cfg, step, d, log)
    train_mode()
    while step < cfg.max_steps:
        rng, g = step_rngs(cfg.seed, step, d.rank, d.device)
        crops = train.sample_crops(rng, cfg.batch_size, frames)
        mel, real = train.batch(crops, frames)
        mel, real = mel.to(d.device, non_blocking=True), real.to(d.device, non_blocking=True)
        noise = torch.randn(len(real), 2, cfg.seconds, gen.cfg.noise_dim, generator=g, device=d.device)
        phase = None if phases is None else phases.crops(crops, frames).to(d.device, non_blocking=True)
        fake2 = g_net(mel if encoded is None else encoded.crops(crops, frames), noise, phase)
        for _ in range(cfg.n_critic):
            critic_stats = critic_step(d_net, opt_d, real, fake2[:, 0].detach(), cfg.w_gp, g)
        critic.requires_grad_(False)  # the generator's step reads the critic without training it
        losses, div = generator_losses(cfg, critic, judge, mel, real, fake2)
        weights = {"adv": cfg.w_adv, "perc": cfg.w_perc, "mse": cfg.w_mse, "vel": cfg.w_vel, "sync": cfg.w_sync,
                   "div": cfg.w_div}
        loss_g = sum(weights[k] * v for k, v in losses.items())
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        critic.requires_grad_(True)
        step += 1

        stats = progress.step(step, **critic_stats, loss_g=loss_g.detach(), diversity=div.mean().detach(),
                              **{k: v.detach() for k, v in losses.items()})
        if stats:
            progress.bar.set_postfix(w=f"{stats['w_dist']:.3f}", perc=f"{stats['perc']:.4f}",
                                     div=f"{stats['diversity']:.3f}")
        if d.main and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            last_eval = quick_eval(gen, judge, held, cfg)
            progress.write(f"step {step}: held-out " + ", ".join(f"{k} {v:.4f}" for k, v in last_eval.items()))
            log.write(step=step, kind="eval", split=cfg.eval_split, **last_eval)
            train_mode()
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            save(final=step == cfg.max_steps)
    if cfg.max_steps == 0:  # a generator given other trackers, every other weight as --init left it
        save(final=True)
    progress.close()
    finish_run(log, d, step, gen, critic)
    return last_eval


def stores_only(cfg: Stage2Config, resuming: bool) -> bool:
    """A new run that only stores other trackers or readers in the generator `init` names: no step
    is taken, so stage 1's judge and encoder are not needed (the generator holds its encoder), and
    its checkpoint's evaluation has no stage-1 sync column."""
    return cfg.max_steps == 0 and bool(cfg.init) and not resuming


def networks(cfg: Stage2Config, resuming: bool):
    """(stage 1's network, or None for a run that `stores_only`; the generator): the generator's
    encoder from stage 1 (frozen unless `train_encoder`), its beat and bar trackers from `beats` and
    `bars` (frozen: trained in their own stage; fine-tuning a generator that has them keeps them unless
    `beats` or `bars` names another), and, for a new run, every weight from `init` when fine-tuning."""
    start = _init_model(cfg.init).cfg if cfg.init else None
    s1 = None
    if stores_only(cfg, resuming):
        gen_cfg = _body(start)
    else:
        s1 = load_m2snet(cfg.stage1)
        if s1.kind != "baton":
            raise TrainingError(f"{cfg.stage1} is the paper's M2S-Net (research use only): "
                                "train stage 1 with training.train_stage1 and pass its m2snet.pt")
        gen_cfg = s1.model.cfg.generator_config()
    tracker = None
    if cfg.beats:
        tracker, tracker_meta = load_beatnet(cfg.beats)
        gen_cfg = replace(gen_cfg, beat_input=True, **{f"beat_{k}": v for k, v in tracker_meta["config"].items()})
    if start is not None and start.beat_input and not cfg.beats:
        gen_cfg = replace(gen_cfg, beat_input=True, beat_channels=start.beat_channels, beat_layers=start.beat_layers)
    if start is not None and start.bar_input and not cfg.bars:  # its reader too, unless --bars names another tracker
        gen_cfg = replace(gen_cfg, bar_input=True, bar_channels=start.bar_channels, bar_layers=start.bar_layers,
                          bar_reader=start.bar_reader, spectrum_reader=start.spectrum_reader)
    if cfg.bars and not gen_cfg.beat_input:
        raise TrainingError("--bars needs a beat input (--beats TRACKER, or --init a generator with one): "
                            "the bars are counted on its beats")
    bar_tracker = None
    if cfg.bars:
        bar_tracker, bar_meta = load_beatnet(cfg.bars)
        if bar_meta.get("target") != "bars" or bar_meta["config"].get("outputs") != len(bar_states()):
            raise TrainingError(f"--bars {cfg.bars} is not a bar tracker of this engine's {len(bar_states())} "
                                "states: train one with --target bars")
        gen_cfg = replace(gen_cfg, bar_input=True, bar_channels=bar_meta["config"]["channels"],
                          bar_layers=bar_meta["config"]["layers"])
    readers = {}
    for flag, slot, spectrum in (("--bar-reader", "bar_reader", False), ("--spectrum-reader", "spectrum_reader", True)):
        path = getattr(cfg, slot)
        if not path:
            continue
        if not gen_cfg.bar_input:
            raise TrainingError(f"{flag} needs a bar tracker (--bars TRACKER, or --init a generator with one): "
                                "it reads that tracker's states")
        reader, reader_meta = load_reader(path)
        if reader_meta["config"].get("spectrum", False) != spectrum:
            raise TrainingError(f"{flag} {path} is a reader {'without' if spectrum else 'of'} the beats' spectra: "
                                f"store it with {'--bar-reader' if spectrum else '--spectrum-reader'}")
        readers[slot] = reader
        gen_cfg = replace(gen_cfg, **{slot: reader_meta["config"]["hidden"]})
    if gen_cfg.spectrum_reader and not gen_cfg.bar_reader:
        raise TrainingError("--spectrum-reader reads beside a bar reader: give --bar-reader too, or --init a "
                            "generator with one")
    gen = Generator(gen_cfg)
    if s1 is not None:
        gen.encoder.load_state_dict(s1.model.music_encoder.state_dict())
    if cfg.init and not resuming:  # a resumed run's weights come from its state
        _start_from(gen, cfg.init)
    if tracker is not None:
        gen.beat_net.load_state_dict(tracker.state_dict())
    if gen_cfg.beat_input:
        gen.beat_net.requires_grad_(False)
    if bar_tracker is not None:
        gen.bar_net.load_state_dict(bar_tracker.state_dict())
    if gen_cfg.bar_input:
        gen.bar_net.requires_grad_(False)
    for slot, reader in readers.items():
        getattr(gen, slot).load_state_dict(reader.state_dict())
    if gen_cfg.bar_reader:
        gen.bar_reader.requires_grad_(False)
    if gen_cfg.spectrum_reader:
        gen.spectrum_reader.requires_grad_(False)
    gen.encoder.requires_grad_(cfg.train_encoder)
    return s1, gen


def critic_step(d_net: nn.Module, opt_d, real: torch.Tensor, fake: torch.Tensor, w_gp: float,
                g: torch.Generator) -> dict[str, torch.Tensor]:
    """One WGAN-GP critic update: real, fake and random interpolates scored in one call."""
    b = len(real)
    alpha = torch.rand(b, 1, 1, 1, generator=g, device=real.device)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    s_real, s_fake, s_mix = d_net(torch.cat([real, fake, mix])).split(b)
    grad, = autograd.grad(s_mix.sum(), mix, create_graph=True)
    gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    loss_d = s_fake.mean() - s_real.mean() + w_gp * gp
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    return {"loss_d": loss_d.detach(), "w_dist": (s_real.mean() - s_fake.mean()).detach(), "gp": gp.detach()}


def generator_losses(cfg: Stage2Config, critic: nn.Module, judge, mel: torch.Tensor, real: torch.Tensor,
                     fake2: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(the generator's loss terms on both draws, each clip's draw diversity)."""
    b = len(real)
    both = fake2.flatten(0, 1)
    real2 = real.repeat_interleave(2, 0)
    with torch.no_grad():
        feat_real = judge.motion_encoder(real2)
    feat_fake = judge.motion_encoder(both)
    losses = {"adv": -critic(both).mean(), "perc": F.l1_loss(feat_fake, feat_real)}
    if cfg.w_mse:
        losses["mse"] = regression(both, real2, b, cfg.best_draw)
    if cfg.w_vel:  # frame-to-frame motion, per second: where and how sharply each stroke turns
        losses["vel"] = regression(both.diff(dim=1), real2.diff(dim=1), b, cfg.best_draw) * MOTION_FPS ** 2
    if cfg.w_sync:
        with torch.no_grad():
            music = judge.music_encoder(mel).repeat_interleave(2, 0)
        logits = judge.fuse(music, feat_fake)
        losses["sync"] = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    div = draw_diversity(fake2[:, 0], fake2[:, 1], real)
    losses["div"] = F.relu(cfg.div_target - div).mean()
    return losses, div


def checkpoint_meta(cfg: Stage2Config, argv: list[str] | None, s1, train: Corpus, held: Corpus, step: int,
                    last_eval: dict) -> dict:
    """What the generator's checkpoint records about how it was made (a run that `stores_only`
    reads no stage 1: it records the one its `init` records, and where it comes from)."""
    stage1 = {"read": False, "as_in_init": cfg.init, **(load_generator(cfg.init).meta.get("stage1") or {})} \
        if s1 is None else {"path": cfg.stage1, "file_sha256": file_sha256(cfg.stage1),
                            **{k: s1.meta[k] for k in ("step", "held_out_sync") if k in s1.meta}}
    return {"trained_on": {"train": train.describe(), "held_out": held.describe(),
                           "corpus_summary": _corpus_summary(cfg.corpus)},
            "stage1": stage1,
            "step": step, "config": asdict(cfg), "command": command_line("training.train_stage2", argv),
            "versions": versions(), "held_out_quick": last_eval}


@torch.no_grad()
def quick_eval(gen: Generator, judge, held: Corpus, cfg: Stage2Config) -> dict:
    """On fixed held-out crops: perceptual distance to the real motion, stage 1's sync probability
    for the generated motion, and the seed diversity between two noises."""
    from .m2snet import sync_probability

    gen.eval()
    frames = cfg.seconds * MOTION_FPS
    if not held.long_enough(frames):
        return {}
    dev = next(gen.parameters()).device
    crops = held.sample_crops(np.random.default_rng([cfg.seed, 99]), cfg.eval_crops, frames)
    mel, real = held.batch(crops, frames)
    mel, real = mel.to(dev), real.to(dev)
    phase = BeatPhases(held, gen.cfg.bar_input).crops(crops, frames).to(dev) if gen.cfg.beat_input else None
    g = torch.Generator(device=dev).manual_seed(cfg.seed)
    noise = torch.randn(len(mel), 2, cfg.seconds, gen.cfg.noise_dim, generator=g, device=dev)
    fake2 = Draws(gen, True)(mel, noise, phase)  # the held-out crop encoded as it is
    feat = judge.motion_encoder(fake2[:, 0])
    return {"perc": float(F.l1_loss(feat, judge.motion_encoder(real))),
            "sync_prob": float(sync_probability(judge.fuse(judge.music_encoder(mel), feat)).mean()),
            "diversity": float(draw_diversity(fake2[:, 0], fake2[:, 1], real).mean())}


def _init_model(path: str) -> Generator:
    """The generator `init` names, or a TrainingError (unreadable, or the paper's)."""
    try:
        start = load_generator(path)
    except CheckpointError as e:
        raise TrainingError(f"--init: {e}") from None
    if start.kind != "baton":
        raise TrainingError(f"--init {path} is the paper's generator (research use only): "
                            "Baton's weights never start from it")
    return start.model


def _body(c: GeneratorConfig) -> GeneratorConfig:
    """A generator's network without its beat and bar inputs: the part `init` must match."""
    plain = GeneratorConfig()
    return replace(c, **{k: getattr(plain, k) for k in ("beat_input", "beat_channels", "beat_layers", "bar_input",
                                                        "bar_channels", "bar_layers", "bar_reader", "spectrum_reader")})


def _start_from(gen: Generator, path: str) -> None:
    """Fine-tuning: every weight from a Baton generator checkpoint whose network matches stage 1's
    (with or without the beat and bar inputs, which start at zero when the checkpoint has none)."""
    start = _init_model(path)

    def beat_part(c):
        return replace(c, bar_input=False, bar_channels=0, bar_layers=0, bar_reader=0, spectrum_reader=0)

    if (_body(start.cfg) != _body(gen.cfg) or (start.cfg.beat_input and beat_part(start.cfg) != beat_part(gen.cfg))
            or (start.cfg.bar_input and replace(start.cfg, bar_reader=0, spectrum_reader=0)
                != replace(gen.cfg, bar_reader=0, spectrum_reader=0))):
        raise TrainingError(f"--init {path} is a {start.cfg} network; stage 1 makes {gen.cfg}")
    state = {k: v for k, v in start.state_dict().items()  # a reader of another tracker is not kept
             if (gen.cfg.bar_reader or not k.startswith("bar_reader."))
             and (gen.cfg.spectrum_reader or not k.startswith("spectrum_reader."))}
    missing, unexpected = gen.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(("beat_net.", "beat_proj.", "bar_net.", "bar_proj.", "bar_reader.",
                                                   "spectrum_reader.")) for k in missing):
        raise TrainingError(f"--init {path}: its weights do not fit the generator "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def _corpus_summary(root: str) -> dict:
    """What build_corpus recorded about the corpus (hours, works, sources), if it built it."""
    import json
    p = Path(root) / "corpus.json"
    if not p.exists():
        return {}
    s = json.loads(p.read_text())
    return {k: s[k] for k in ("splits", "hours", "source", "source_opt") if k in s}


if __name__ == "__main__":
    main()
