"""The bar reader (backend/bar_reader.py) learns how beats group into bars, over the beats.

    python -m training.train_bar_reader --corpus data/corpus,data/corpus_rec --bars runs/bars/barnet.pt --out-dir runs/reader
    python -m training.train_bar_reader --corpus … --bars backend/weights/baton_m2sgan.pt --out-dir runs/reader

The reader learns from the beats' measures alone (bar_reader.beat_features, computed once per clip);
`bars` is the bar tracker whose vote it is read with (bar_reader.with_tracker): a barnet.pt
(train_beats --target bars) or a generator checkpoint that holds one. The held-out scores are of the
two together, as the engine reads them. Stage 2 (`--bar-reader`) stores the reader in the generator
beside that tracker.

Labels: each clip's labelled beats and bar lines, as the bar tracker's (train_beats). A step draws
`batch_size` runs of 16–96 consecutive beats, so the reader learns to decide from a few bars as
from a whole piece; the loss is cross entropy over their beats' states (a metre outside the space is
left out), the learning rate rising over the first 5% of steps and falling along a half cosine.
The engine reads the beats its own tracker hears, which miss some and add some, most in the holds
and rests a conductor leaves unbeaten; bars read over such beats lost their count where the same
clips' labelled beats kept it. So `misheard_copies` copies of each clip's beats, misheard that way
(`misheard`), are learnt from beside them; where the conductor beats slowly a share `twice_share` of
them is heard at twice the conductor's rate first (`twice_as_fast`), as trackers hear slow beats.
Copies can only guess how a tracker errs. `heard_corpus` names corpora of works neither tracker
trained on; the beats the engine's own tracker (the one a generator checkpoint in `bars` holds) hears
in their train clips, labelled from their bars (`heard_labels`), are learnt from too, each
`heard_copies` times: there the reader meets the tracker's mistakes themselves, as it will in use.
Every `eval_every` steps the held-out downbeat F (±70 ms) and metre accuracy of the bars read over
the labelled beats are scored (train_beats.bar_scores). The run folder holds `state.pt`
(resumable), `log.jsonl` and `barreader.pt`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from backend.bar_reader import BarReader, reader_features, with_tracker
from backend.bars import bar_states, beat_state_logp, state_labels
from backend.beat_net import BeatNet
from backend.checkpoint import checked_weights, load_generator, read_network, save_network
from backend.engines import audible, within_sound
from backend.errors import CheckpointError
from baton_core.timebase import MEL_PER_MOTION, MOTION_FPS

from .dataset import Clip, Corpus
from .runtime import (Progress, TrainingError, command_line, config_from_args, exit_on_error, finish_run, open_log, resume,
                      save_state, start_run, step_rngs, versions)
from .train_beats import bar_scores, clip_beats, clip_downbeats, load_beatnet

FORMAT = "baton-barreader-1"
# A tracker hears twice the conductor's rate only where the conductor beats slowly (on val, where
# its beat lasts 0.82 s or more): faster clips heard twice as fast would teach bars of eight that
# no tracker hears.
TWICE_FROM_S = 0.8


@dataclass
class ReaderConfig:
    corpus: str = "data/corpus"
    bars: str = ""  # the bar tracker it is read with: barnet.pt, or a generator checkpoint holding one
    out_dir: str = "runs/reader"
    train_split: str = "train"
    eval_split: str = "val"
    hidden: int = 64
    spectrum: bool = False  # read each beat's spectrum as well (bar_reader.beat_spectra): the engine's second reader
    dropout: float = 0.3
    min_beats: int = 16
    max_beats: int = 96
    batch_size: int = 32
    max_steps: int = 3000
    lr: float = 2e-3
    weight_decay: float = 1e-3
    beat_errors: float = 0.08  # chance a beat is dropped, and an extra one put in a gap, in the misheard copies
    misheard_copies: int = 3  # copies of each clip's beats, misheard, trained on beside the labelled beats
    twice_share: float = 0.5  # share of the slow clips' misheard copies heard twice as fast first
    heard_corpus: str = ""  # corpora neither tracker trained on: the engine's heard beats over their train clips
    heard_copies: int = 3  # times each of those clips' heard beats is drawn from, beside the copies
    init: str = ""  # a reader to start from: a barreader.pt, or a generator checkpoint holding one of this kind
    eval_every: int = 250
    save_every: int = 250
    log_every: int = 10
    seed: int = 1337
    device: str = "cpu"
    fresh: bool = False


FREE = ("max_steps", "eval_every", "save_every", "log_every", "device", "fresh")


def load_bar_tracker(path: str) -> BeatNet:
    """The bar tracker in `path`: a barnet.pt, or the one a generator checkpoint holds."""
    try:
        model, meta = load_beatnet(path)
        if meta.get("target") != "bars":
            raise TrainingError(f"--bars {path} is a beat tracker, not a bar tracker (train_beats --target bars)")
        return model
    except CheckpointError:
        try:
            gen = load_generator(path).model
        except CheckpointError as e:
            raise TrainingError(f"--bars {path}: neither a bar tracker nor a generator with one ({e})") from None
        if not gen.cfg.bar_input:
            raise TrainingError(f"--bars {path}: a generator without a bar tracker") from None
        return gen.bar_net.eval()


def misheard(beats: np.ndarray, labels: np.ndarray, rate: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Beats as a tracker hears them at its worst moments: each beat dropped with chance `rate`
    (never the first), an extra beat halfway through a gap with chance `rate`, beats at the piece's
    period through the gaps the conductor leaves unbeaten (the extras labelled -1: no state), and
    every beat moved by a normal error of 3% of its period."""
    beats, labels = np.asarray(beats, np.float64), np.asarray(labels)
    kept = rng.random(len(beats)) >= rate
    kept[0] = True
    b, lab = beats[kept], labels[kept]
    gaps = np.flatnonzero(rng.random(len(b) - 1) < rate)
    extra = [(b[gaps] + b[gaps + 1]) / 2]
    if len(beats) > 1:  # a tracker beats on through the rests and holds the conductor leaves unbeaten
        period = np.median(np.diff(beats))
        for a, e in zip(beats[:-1], beats[1:]):
            if e - a > 1.5 * period:
                extra.append(np.arange(a + period, e - 0.5 * period, period))
    extra = np.concatenate(extra)
    t = np.r_[b, extra]
    lab = np.r_[lab, np.full(len(extra), -1, lab.dtype)]
    order = np.argsort(t, kind="stable")
    t, lab = t[order], lab[order]
    period = np.diff(t, append=t[-1] + np.median(np.diff(t))) if len(t) > 1 else np.full(1, 0.5)
    t = t + rng.normal(0, 0.03, len(t)) * period
    order = np.argsort(t, kind="stable")
    return t[order], lab[order]


def twice_as_fast(beats: np.ndarray, downbeats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The beats as a tracker hears them at twice the conductor's rate (a beat between each two)
    and their states over the same bar lines: twice the beats to a bar (a four heard in eight)."""
    beats = np.asarray(beats, np.float64)
    t = np.sort(np.r_[beats, (beats[:-1] + beats[1:]) / 2])
    return t, state_labels(t, downbeats)


def heard_labels(heard: np.ndarray, beats: np.ndarray, downbeats: np.ndarray) -> np.ndarray | None:
    """Per beat a tracker heard, the state of the labelled beat it hears (the nearest within 30% of a
    period, one heard beat each), else -1 (a hold beaten through, an extra beat: no state to learn);
    heard at twice the conductor's rate, the states of the labelled beats heard twice as fast (a
    four in eight). None where it heard another level (half the rate, two thirds of it)."""
    heard, beats = np.asarray(heard, np.float64), np.asarray(beats, np.float64)
    if len(heard) < 2 or len(beats) < 2:
        return None
    rate = np.median(np.diff(heard)) / np.median(np.diff(beats))
    if 0.8 < rate < 1.25:
        ref, states = beats, state_labels(beats, downbeats)
    elif 0.4 < rate < 0.625:
        ref, states = twice_as_fast(beats, downbeats)
    else:
        return None
    reach = 0.3 * np.median(np.diff(ref))
    labels = np.full(len(heard), -1, np.int64)
    nearest = np.abs(heard[:, None] - ref[None, :]).argmin(axis=1)
    miss = np.abs(heard - ref[nearest])
    for i in np.unique(nearest):  # each labelled beat is heard by its closest heard beat, if near enough
        k = np.flatnonzero(nearest == i)
        k = k[np.argmin(miss[k])]
        if miss[k] <= reach:
            labels[k] = states[i]
    return labels


def heard_beats(tracker: BeatNet, mel: np.ndarray) -> np.ndarray:
    """The beats the engine hears in a mel with this beat tracker (engines.GeneratorEngine's own)."""
    return within_sound(tracker.track(mel), audible(mel)).times


def beat_copies(beats: np.ndarray, downbeats: np.ndarray, cfg: ReaderConfig,
                rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """A clip's (beats, states) to learn from: its labelled beats, then `misheard_copies` misheard
    copies; where its beats last TWICE_FROM_S or more, a share `twice_share` of them heard at twice
    the rate first."""
    labels = state_labels(beats, downbeats)
    slow = len(beats) > 1 and np.median(np.diff(beats)) >= TWICE_FROM_S
    out = [(np.asarray(beats, np.float64), labels)]
    for _ in range(cfg.misheard_copies):
        b, lab = beats, labels
        if cfg.twice_share and slow and rng.random() < cfg.twice_share:
            b, lab = twice_as_fast(b, downbeats)
        out.append(misheard(b, lab, cfg.beat_errors, rng))
    return out


def clip_mel(clip: Clip) -> np.ndarray:
    return np.asarray(clip.mel[: MEL_PER_MOTION * clip.frames], np.float32)


def load_beat_tracker(path: str) -> BeatNet:
    """The beat tracker of the generator checkpoint in `path` (heard copies need the engine's own)."""
    try:
        gen = load_generator(path).model
    except CheckpointError:
        raise TrainingError(f"--heard-corpus needs --bars to name a generator checkpoint (its beat tracker hears "
                            f"the beats); {path} is not one") from None
    if not gen.cfg.beat_input:
        raise TrainingError(f"--heard-corpus: {path} holds no beat tracker")
    return gen.beat_net.eval()


def tracker_logp(tracker: BeatNet, mel: np.ndarray, beats: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return beat_state_logp(tracker.activation(mel), beats, MOTION_FPS)


def save_reader(model: BarReader, cfg: ReaderConfig, path, meta: dict) -> str:
    return save_network(model, path, FORMAT, {"hidden": cfg.hidden, "spectrum": cfg.spectrum}, meta)


def load_reader(path) -> tuple[BarReader, dict]:
    """(the reader, its file's metadata), or a CheckpointError naming what is wrong with the file."""
    obj = read_network(path, "bar reader")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a bar reader from training.train_bar_reader (format {FORMAT})")
    config, state, digest = checked_weights(obj, path)
    model = BarReader(**config)
    model.load_state_dict(state)
    return model.eval(), dict(obj["meta"], sha256=digest, config=config)


def start_reader(cfg: ReaderConfig) -> BarReader:
    """The reader `--init` names (a barreader.pt, or the reader of this kind a generator holds: its
    spectrum reader with --spectrum), checked to be of this size and kind."""
    try:
        source = load_reader(cfg.init)[0]
    except CheckpointError:
        try:
            gen = load_generator(cfg.init).model
        except CheckpointError as e:
            raise TrainingError(f"--init {cfg.init}: neither a bar reader nor a generator with one ({e})") from None
        source = getattr(gen, "spectrum_reader" if cfg.spectrum else "bar_reader", None)
        if source is None:
            kind = "spectrum reader" if cfg.spectrum else "bar reader"
            raise TrainingError(f"--init {cfg.init}: a generator without a {kind}") from None
    if (source.spectrum is not None) != cfg.spectrum or source.gru.hidden_size != cfg.hidden:
        raise TrainingError(f"--init {cfg.init}: its reader is not of this kind and size (--spectrum, --hidden)")
    return source


def main(argv: list[str] | None = None) -> dict:
    cfg = config_from_args(ReaderConfig, argv, __doc__.split("\n\n")[0])
    return exit_on_error(lambda: train_reader(cfg, argv))


def train_reader(cfg: ReaderConfig, argv: list[str] | None) -> dict:
    if not cfg.bars:
        raise TrainingError("--bars is needed: the bar tracker the reader is read with")
    if not 2 <= cfg.min_beats <= cfg.max_beats:
        raise TrainingError(f"--min-beats {cfg.min_beats} and --max-beats {cfg.max_beats}: need 2 ≤ min ≤ max")
    if not (0 <= cfg.beat_errors < 0.5 and cfg.misheard_copies >= 0 and 0 <= cfg.twice_share <= 1
            and cfg.heard_copies >= 1):
        raise TrainingError(f"--beat-errors {cfg.beat_errors}, --misheard-copies {cfg.misheard_copies}, --twice-share "
                            f"{cfg.twice_share}, --heard-copies {cfg.heard_copies}: need 0 ≤ beat errors < 0.5, "
                            f"copies ≥ 0, 0 ≤ share ≤ 1 and heard copies ≥ 1")
    tracker = load_bar_tracker(cfg.bars)  # before the seeding: loading a generator draws its initial weights
    beat_tracker = load_beat_tracker(cfg.bars) if cfg.heard_corpus else None
    d, out = start_run(cfg)
    train, held = Corpus.joined(cfg.corpus, cfg.train_split), Corpus.joined(cfg.corpus, cfg.eval_split)
    beats = [clip_beats(c) for c in train.clips]
    keep = [i for i, b in enumerate(beats) if len(b) >= 2]
    if not keep:
        raise TrainingError(f"{cfg.corpus} [{cfg.train_split}]: no clip has two labelled beats")
    x, y = [], []
    misheard_rng = np.random.default_rng(cfg.seed)
    for i in keep:
        mel, downbeats = clip_mel(train.clips[i]), clip_downbeats(train.clips[i])
        for b, lab in beat_copies(beats[i], downbeats, cfg, misheard_rng):
            x.append(reader_features(mel, b, cfg.spectrum))
            y.append(lab)
    heard_from = Corpus.joined(cfg.heard_corpus, cfg.train_split) if cfg.heard_corpus else None
    for c in heard_from.clips if heard_from else []:
        mel = clip_mel(c)
        heard = heard_beats(beat_tracker, mel)
        labels = heard_labels(heard, clip_beats(c), clip_downbeats(c))
        if labels is None or np.sum(labels >= 0) < 4:  # heard at another level, or hardly at all
            continue
        x += [reader_features(mel, heard, cfg.spectrum)] * cfg.heard_copies
        y += [labels] * cfg.heard_copies
    held_beats = [clip_beats(c) for c in held.clips]
    held_downbeats = [clip_downbeats(c) for c in held.clips]
    # the held-out clips' measures and the frozen tracker's votes, once: only the reader changes
    held_inputs = {}
    for c, b in zip(held.clips, held_beats):
        mel = clip_mel(c)
        held_inputs[c.path] = (reader_features(mel, b, cfg.spectrum), tracker_logp(tracker, mel, b))

    model = BarReader(cfg.hidden, cfg.dropout, cfg.spectrum).to(d.device)
    if cfg.init:
        model.load_state_dict(start_reader(cfg).state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, state = resume(out, cfg, FREE, model=model, optimizer=opt)
    last_eval = state.get("last_eval", {})
    log = open_log("bar reader", out, d, step, bool(state), train, held)
    states = len(bar_states())

    def held_scores() -> dict:
        model.eval()
        try:
            return bar_scores(lambda c, b: with_tracker(model.read(held_inputs[c.path][0]), held_inputs[c.path][1]),
                              held.clips, held_beats, held_downbeats)
        finally:
            model.train()

    def save() -> None:
        save_state(out / "state.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                      "config": asdict(cfg), "last_eval": last_eval})
        save_reader(model, cfg, out / "barreader.pt",
                    {"step": step, "bars": cfg.bars, "train": train.describe(), "held_out": held.describe(),
                     "heard": heard_from.describe() if heard_from else None,
                     "held_out_bars": last_eval, "config": asdict(cfg),
                     "command": command_line("training.train_bar_reader", argv), "versions": versions()})

    progress = Progress("bar reader", cfg, step, d, log)
    model.train()
    warm = max(1, cfg.max_steps // 20)
    while step < cfg.max_steps:
        rng, _ = step_rngs(cfg.seed, step, d.rank, d.device)
        length = int(rng.integers(cfg.min_beats, cfg.max_beats + 1))
        xb = np.zeros((cfg.batch_size, length, x[0].shape[1]), np.float32)
        yb = np.full((cfg.batch_size, length), -100, np.int64)
        for j, i in enumerate(rng.integers(len(x), size=cfg.batch_size)):
            a = int(rng.integers(0, max(1, len(x[i]) - length + 1)))
            e = min(len(x[i]), a + length)
            xb[j, : e - a], yb[j, : e - a] = x[i][a:e], np.where(y[i][a:e] < 0, -100, y[i][a:e])
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / cfg.max_steps))
        logits = model(torch.from_numpy(xb).to(d.device))
        loss = F.cross_entropy(logits.reshape(-1, states), torch.from_numpy(yb).reshape(-1).to(d.device), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        stats = progress.step(step, loss=loss.detach())
        if stats:
            progress.bar.set_postfix(loss=f"{stats['loss']:.4f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            last_eval = held_scores()
            progress.held_out(step, cfg.eval_split, last_eval)
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            save()
    progress.close()
    finish_run(log, d, step, model)
    return last_eval


if __name__ == "__main__":
    main()
