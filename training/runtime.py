"""What the training stages share: config from the command line, errors and exit codes, devices
and torchrun, seeded per-step randomness, resumable training state, and the progress bar with the
JSONL metrics log.

Distributed runs use PyTorch's own launcher: `torchrun --nproc_per_node=N -m training.train_stage1 …`
sets RANK/WORLD_SIZE/LOCAL_RANK; each rank draws its own crops (seeded by step and rank) and
DistributedDataParallel averages the gradients (NCCL on GPUs, gloo on CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from backend.errors import CheckpointError


class TrainingError(Exception):
    """A run that cannot start or go on (a bad option, a wrong file, broken distributed training).
    The stages raise it; only their main() turns it into "error: …" and a failing exit status."""


def exit_on_error(run: Callable[[], dict]) -> dict:
    """`run()`, with a TrainingError or an unusable checkpoint turned into a SystemExit naming it. A
    distributed run leaves torch.distributed only once `run` has returned: its DDP wrappers hold the
    process group's last work, and a group they outlive is destroyed as the interpreter shuts down,
    which can abort a rank ("terminate called without an active exception")."""
    try:
        result = run()
    except (TrainingError, CheckpointError) as e:
        raise SystemExit(f"error: {e}") from None
    teardown()
    return result


def config_from_args(cls, argv: list[str] | None = None, description: str = ""):
    """A dataclass instance from --field-name flags (bools as --x / --no-x); defaults from the class."""
    p = argparse.ArgumentParser(description=description)
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            kind = {"int": int, "float": float, int: int, float: float}.get(f.type, str)
            p.add_argument(flag, type=kind, default=default, metavar=kind.__name__.upper())
    return cls(**vars(p.parse_args(argv)))


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    """Start torch.distributed when launched by torchrun; pick the device ('auto': CUDA if any)."""
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    d = Dist()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        d.rank, d.world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        d.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(d.local_rank)
        d.device = torch.device("cuda", d.local_rank)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return d


def start_run(cfg) -> tuple[Dist, Path]:
    """(the processes and device, the run folder) of a stage about to train: torch.distributed
    started when launched by torchrun, torch seeded, the run folder made."""
    d = setup(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return d, out


def open_log(name: str, out: Path, d: Dist, step: int, resumed: bool, train, held) -> "MetricsLog":
    """The run's metrics log (kept up to `step` when resuming), and a line saying what trains on what."""
    log = MetricsLog(out / "log.jsonl", step if resumed else None, enabled=d.main)
    if d.main:
        print(f"{name}: train {train.describe()}, held out {held.describe()}, {d.world} process(es) on {d.device}"
              + (f", resuming at step {step}" if resumed else ""))
    return log


def teardown() -> None:
    """Leave torch.distributed together: what no longer holds the process group is collected, and
    each rank waits at a barrier first, so that none closes its connections while another may still
    be reading its last collective's messages."""
    if dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def all_mean(values: dict[str, float], d: Dist) -> dict[str, float]:
    """Average scalars over ranks (for logging)."""
    if d.world == 1:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return dict(zip(values, (t / d.world).tolist()))


def replicas_agree(model: torch.nn.Module, d: Dist) -> bool:
    """Whether every rank holds the same weights (what DistributedDataParallel must guarantee)."""
    if d.world == 1:
        return True
    with torch.no_grad():
        v = torch.cat([p.detach().flatten().double() for p in model.parameters()])
        lo, hi = v.clone(), v.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))


def finish_run(log: "MetricsLog", d: Dist, step: int, *models: torch.nn.Module) -> None:
    """End a run: log whether every rank holds the same weights, and fail loudly when they differ
    (distributed training would be broken), leaving torch.distributed first; a run that ends well
    leaves it in `exit_on_error`, once its wrappers are gone."""
    in_sync = all([replicas_agree(m, d) for m in models])
    log.write(step=step, kind="end", world=d.world, replicas_in_sync=in_sync)
    if not in_sync:
        teardown()
        raise TrainingError("the processes' weights differ at the end (distributed training is broken)")


def step_rngs(seed: int, step: int, rank: int, device: torch.device) -> tuple[np.random.Generator, torch.Generator]:
    """The randomness of one step on one rank (crops, pairings, noise), derived from the seed alone,
    so a resumed run continues exactly as an uninterrupted one."""
    rng = np.random.default_rng([seed, step, rank])
    g = torch.Generator(device=device)
    g.manual_seed(int(rng.integers(1 << 62)))
    return rng, g


def save_state(path: Path, state: dict) -> None:
    """Atomic write of a training state (models, optimisers, step, RNG, config)."""
    state = dict(state, torch_rng=torch.get_rng_state(), numpy_rng=np.random.get_state())
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: optimiser state, RNG
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state


def check_resumable(stored: dict, current: dict, free: tuple[str, ...]) -> None:
    """Refuse to resume a run whose settings differ, except the ones that may change (`free`)."""
    diff = [k for k in current if k not in free and stored.get(k) != current[k]]
    if diff:
        k = diff[0]
        raise TrainingError(f"the run folder holds a run with {k}={stored.get(k)!r}, not {current[k]!r}; "
                            "use another --out-dir, or --fresh to start over")


def has_saved_run(out: Path, cfg) -> bool:
    """Whether this run continues one saved in `out` (unless --fresh)."""
    return (out / "state.pt").exists() and not cfg.fresh


def resume(out: Path, cfg, free: tuple[str, ...], **parts) -> tuple[int, dict]:
    """(step, saved state) of the run saved in `out`, each of `parts` (its key in the state → a
    module or optimiser) loaded from it; (0, {}) for a new run."""
    if not has_saved_run(out, cfg):
        return 0, {}
    state = load_state(out / "state.pt")
    check_resumable(state["config"], asdict(cfg), free)
    for key, part in parts.items():
        part.load_state_dict(state[key])
    return state["step"], state


class MetricsLog:
    """One JSON object per line. On resume, lines beyond the resumed step are dropped: they belong
    to steps that will be run again."""

    def __init__(self, path: Path, resume_step: int | None, enabled: bool = True):
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        if resume_step is None:
            path.write_text("")
        elif path.exists():
            keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= resume_step]
            path.write_text("".join(ln + "\n" for ln in keep))

    def write(self, **record) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


class Progress:
    """A stage's progress: the bar, and every `log_every` steps the mean of the steps' values
    (over ranks too) with the seconds per step, written to the metrics log."""

    def __init__(self, name: str, cfg, step: int, d: Dist, log: MetricsLog):
        self.cfg, self.d, self.log = cfg, d, log
        self.bar = tqdm(total=cfg.max_steps, initial=step, desc=name, disable=not d.main)
        self.t_last, self.window = time.perf_counter(), []

    def step(self, step: int, extra: dict | None = None, **values: torch.Tensor) -> dict | None:
        """Count a finished step; at a logging step, log the means (with `extra`) and return them."""
        self.window.append(values)
        self.bar.update(1)
        if step % self.cfg.log_every and step != self.cfg.max_steps:
            return None
        now = time.perf_counter()
        stats = all_mean({k: float(torch.stack([w[k] for w in self.window]).mean()) for k in self.window[0]}, self.d)
        stats["step_s"] = (now - self.t_last) / len(self.window)
        self.t_last, self.window = now, []
        self.log.write(step=step, kind="train", **(extra or {}), **stats)
        return stats

    def write(self, text: str) -> None:
        self.bar.write(text)

    def held_out(self, step: int, split: str, scores: dict) -> None:
        """Print and log a step's held-out scores."""
        self.write(f"step {step}: held-out " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        self.log.write(step=step, kind="eval", split=split, **scores)

    def close(self) -> None:
        self.bar.close()


def versions() -> dict:
    from baton_core import __version__
    return {"baton": __version__, "torch": str(torch.__version__), "numpy": np.__version__,
            "python": platform.python_version()}


def command_line(module: str, argv: list[str] | None) -> str:
    """How this run was started, for the checkpoint's metadata."""
    return " ".join(["python", "-m", module] + list(sys.argv[1:] if argv is None else argv))
