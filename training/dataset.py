"""Reading a corpus in the ConductorMotion100 layout: ours (build_corpus.py) or the real data set.

    <root>/<split>/<n>/mel.npy      (T90, 128) at 90 Hz
                      motion.npy   (T30, 13, 2) at 30 Hz, image units
    and, in corpora we build: motion3d.npy, plan.json, provenance.json, audio.flac

Arrays are memory-mapped, so the 90 h of the real data set (about 15 GB of mel) need no RAM; a batch
reads only its crops. Sampling is nanoGPT-style: `sample_crops` draws random aligned crops (motion
frame k ↔ mel frames 3k..3k+2) from a numpy Generator the caller seeds per step and rank, so a
resumed or distributed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from baton_core.skeleton import N_JOINTS
from baton_core.timebase import MEL_BINS, MEL_FPS, MOTION_FPS

RATIO = MEL_FPS // MOTION_FPS


class CorpusError(ValueError):
    """A corpus path or file that cannot be used; the message names it and says why."""


@dataclass
class Clip:
    """One <split>/<n> folder."""

    path: Path
    frames: int  # usable motion frames (30 Hz) with their mel

    @cached_property
    def mel(self) -> np.ndarray:
        return np.load(self.path / "mel.npy", mmap_mode="r")

    @cached_property
    def motion(self) -> np.ndarray:
        return np.load(self.path / "motion.npy", mmap_mode="r")

    @cached_property
    def provenance(self) -> dict:
        p = self.path / "provenance.json"
        return json.loads(p.read_text()) if p.exists() else {}

    @property
    def work_id(self) -> str:
        """The work the clip renders (ConductorMotion100 has no work ids: each clip is its own)."""
        return self.provenance.get("work_id") or f"{self.path.parent.name}/{self.path.name}"

    @property
    def seconds(self) -> float:
        return self.frames / MOTION_FPS

    def motion_3d(self) -> np.ndarray | None:
        p = self.path / "motion3d.npy"
        return np.load(p)[: self.frames] if p.exists() else None

    def plan(self) -> dict | None:
        p = self.path / "plan.json"
        return json.loads(p.read_text()) if p.exists() else None

    def beats(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(beats, downbeats) in seconds from the clip's start, from the plan; None without one."""
        plan = self.plan()
        if plan is None or "beats" not in plan:
            return None
        a = float(plan.get("clip_start", 0.0))
        b = float(plan.get("clip_end", a + self.seconds))

        def inside(times) -> np.ndarray:
            t = np.asarray(times, dtype=np.float64)
            return t[(t >= a) & (t < b)] - a

        return inside(plan["beats"]), inside(plan.get("downbeats", []))

    def audio_path(self) -> Path | None:
        p = self.path / "audio.flac"
        return p if p.exists() else None

    def crop(self, start: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        """(mel (3·frames, 128), motion (frames, 13, 2)) float32 from motion frame `start`."""
        mel = np.asarray(self.mel[start * RATIO:(start + frames) * RATIO], dtype=np.float32)
        motion = np.asarray(self.motion[start:start + frames], dtype=np.float32)
        return mel, motion


class Corpus:
    """The clips of one split. Raises CorpusError for a path that is not such a split."""

    def __init__(self, root: str | Path, split: str):
        self.root, self.split = Path(root), split
        self.label = str(self.root)  # what describe() names: the root, or the roots joined
        d = self.root / split
        if not self.root.is_dir():
            raise CorpusError(f"{self.root}: no such corpus folder")
        if not d.is_dir():
            have = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise CorpusError(f"{d}: no '{split}' split in the corpus (it has: {', '.join(have) or 'nothing'})")
        folders = sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
        self.clips = [self._open(p) for p in folders if (p / "mel.npy").exists() or (p / "motion.npy").exists()]
        if not self.clips:
            raise CorpusError(f"{d}: no clips (expected {split}/<n>/mel.npy and motion.npy)")

    @staticmethod
    def _open(p: Path) -> Clip:
        for name in ("mel.npy", "motion.npy"):
            if not (p / name).exists():
                raise CorpusError(f"{p}: {name} is missing")
        try:
            mel = np.load(p / "mel.npy", mmap_mode="r")
            motion = np.load(p / "motion.npy", mmap_mode="r")
        except (ValueError, OSError) as e:
            raise CorpusError(f"{p}: unreadable array ({e})") from None
        if mel.ndim != 2 or mel.shape[1] != MEL_BINS:
            raise CorpusError(f"{p / 'mel.npy'}: shape {mel.shape}, expected (T, {MEL_BINS})")
        if motion.ndim != 3 or motion.shape[1:] != (N_JOINTS, 2):
            raise CorpusError(f"{p / 'motion.npy'}: shape {motion.shape}, expected (T, {N_JOINTS}, 2)")
        return Clip(p, min(len(motion), len(mel) // RATIO))

    @classmethod
    def joined(cls, roots: str, split: str) -> "Corpus":
        """One split of several corpora named "a,b,…" (more renders of the same works, say), as one."""
        names = [r for r in str(roots).split(",") if r.strip()]
        if not names:
            raise CorpusError(f"{roots!r}: no corpus folder named")
        first, *rest = [cls(r.strip(), split) for r in names]
        for other in rest:
            first.clips += other.clips
        first.label = ",".join(str(c.root) for c in [first, *rest])
        return first

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def hours(self) -> float:
        return sum(c.seconds for c in self.clips) / 3600

    def describe(self) -> dict:
        return {"root": self.label, "split": self.split, "clips": len(self.clips),
                "works": len({c.work_id for c in self.clips}), "hours": round(self.hours, 4)}

    def long_enough(self, frames: int) -> list[int]:
        """Indices of clips that hold at least `frames` motion frames."""
        return [i for i, c in enumerate(self.clips) if c.frames >= frames]

    def sample_crops(self, rng: np.random.Generator, n: int, frames: int) -> list[tuple[int, int]]:
        """n (clip index, start frame) pairs, clips drawn in proportion to their crop positions."""
        ok = self.long_enough(frames)
        if not ok:
            raise CorpusError(f"{self.label} [{self.split}]: no clip is {frames / MOTION_FPS:g} s long; "
                              "use shorter crops")
        weights = np.array([self.clips[i].frames - frames + 1 for i in ok], dtype=np.float64)
        picks = rng.choice(len(ok), size=n, p=weights / weights.sum())
        return [(ok[k], int(rng.integers(0, self.clips[ok[k]].frames - frames + 1))) for k in picks]

    def batch(self, crops: list[tuple[int, int]], frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mel (B, 3·frames, 128), motion (B, frames, 13, 2)) float32 tensors for the crops."""
        pairs = [self.clips[i].crop(s, frames) for i, s in crops]
        return (torch.from_numpy(np.stack([m for m, _ in pairs])),
                torch.from_numpy(np.stack([x for _, x in pairs])))
