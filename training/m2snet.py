"""Stage 1 of the paper: M2S-Net, a network that tells whether music and motion are in sync.

Two encoders map their inputs to 64 features per 30 Hz frame:

* music: the generator's own music encoder (backend.model.MusicEncoder), so stage 2 can start from it;
* motion: a spatial-temporal graph convolution network (ST-GCN) over the 13-joint skeleton — per layer
  a graph convolution (a 1×1 conv, then mixing each joint with its neighbours through the normalised
  adjacency matrix scaled by a learnt edge importance) followed by a temporal conv (3 frames) with
  batch norm, ReLU and a residual; the 32 channels × 13 joints of each frame are then projected to 64.

A fusion head (1×1 convs 128 → 64 → 64 → 1) turns the concatenated features into a logit per frame;
a clip's probability of being in sync is the mean of the frames' sigmoids.

Module names follow the paper's released M2S-Net, so its file (../shared/reference/official/m2snet.pt)
loads here as an independent judge for evaluation (research use only; never trained on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from backend.checkpoint import checked_weights, official_to_baton, read_network, save_network
from backend.errors import CheckpointError
from backend.model import GeneratorConfig, music_encoder
from baton_core.timebase import MEL_PER_MOTION, MOTION_FPS
from baton_core.skeleton import (L_EAR, L_ELBOW, L_EYE, L_HIP, L_SHOULDER, L_WRIST, N_JOINTS, NOSE, R_EAR,
                                 R_ELBOW, R_EYE, R_HIP, R_SHOULDER, R_WRIST)

FORMAT = "baton-m2snet"
# The skeleton's edges: face, nose to shoulders (the neck COCO lacks), arms, torso outline.
EDGES = ((NOSE, L_EYE), (NOSE, R_EYE), (L_EYE, L_EAR), (R_EYE, R_EAR), (NOSE, L_SHOULDER), (NOSE, R_SHOULDER),
         (L_SHOULDER, R_SHOULDER), (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW),
         (R_ELBOW, R_WRIST), (L_HIP, R_HIP), (L_SHOULDER, L_HIP), (R_SHOULDER, R_HIP))


@dataclass(frozen=True)
class M2SNetConfig:
    encoder: str = "conv2d"  # the generator's music encoder: "conv2d" (the paper's) or "conv1d" (light)
    encoder_channels: tuple[int, int, int] = (16, 32, 32)
    feature_dim: int = 64  # per-frame features of both encoders (= the generator's decoder width)
    gcn_channels: int = 32
    gcn_layers: int = 10
    temporal_kernel: int = 3

    def generator_config(self) -> GeneratorConfig:
        """The generator whose music encoder is this network's."""
        return GeneratorConfig(encoder=self.encoder, encoder_channels=tuple(self.encoder_channels),
                               decoder_channels=self.feature_dim)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "M2SNetConfig":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "encoder_channels" in d:
            d["encoder_channels"] = tuple(d["encoder_channels"])
        return cls(**d)


def adjacency() -> torch.Tensor:
    """(1, 13, 13) adjacency with self-loops, each column divided by its degree."""
    a = np.eye(N_JOINTS)
    for i, j in EDGES:
        a[i, j] = a[j, i] = 1.0
    return torch.tensor(a / a.sum(axis=0, keepdims=True), dtype=torch.float32).unsqueeze(0)


class GraphConv(nn.Module):
    """x (N, C, T, V) → (N, C', T, V): a 1×1 conv per adjacency partition, then summed over each
    joint's neighbours: out[..., w] = Σ_k Σ_v conv_k(x)[..., v] · A[k, v, w]."""

    def __init__(self, cin: int, cout: int, partitions: int):
        super().__init__()
        self.partitions = partitions
        self.conv = nn.Conv2d(cin, cout * partitions, 1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        n, kc, t, v = h.shape
        h = h.view(n, self.partitions, kc // self.partitions, t, v)
        return torch.einsum("nkctv,kvw->nctw", h, a)


class STGCNBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, partitions: int, residual: bool):
        super().__init__()
        self.gcn = GraphConv(cin, cout, partitions)
        self.tcn = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, (kernel, 1), padding=((kernel - 1) // 2, 0)),
                                 nn.BatchNorm2d(cout))
        self.residual = residual and cin == cout

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        h = self.tcn(self.gcn(x, a))
        return F.relu(h + x if self.residual else h)


class STGCN(nn.Module):
    def __init__(self, cfg: M2SNetConfig):
        super().__init__()
        self.register_buffer("A", adjacency())
        c = cfg.gcn_channels
        self.data_bn = nn.BatchNorm1d(2 * N_JOINTS)
        self.st_gcn_networks = nn.ModuleList(
            STGCNBlock(2 if i == 0 else c, c, cfg.temporal_kernel, 1, residual=i > 0) for i in range(cfg.gcn_layers))
        self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones(1, N_JOINTS, N_JOINTS))
                                                for _ in range(cfg.gcn_layers))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        """(N, T, 13, 2) → (N, C, T, 13)."""
        n, t, v, c = motion.shape
        x = self.data_bn(motion.permute(0, 2, 3, 1).reshape(n, v * c, t))  # per joint and axis
        x = x.view(n, v, c, t).permute(0, 2, 3, 1)
        for block, importance in zip(self.st_gcn_networks, self.edge_importance):
            x = block(x, self.A * importance)
        return x


class MotionEncoder(nn.Module):
    """(N, T30, 13, 2) → (N, T30, feature_dim)."""

    def __init__(self, cfg: M2SNetConfig):
        super().__init__()
        self.st_gcn = STGCN(cfg)
        self.fc = nn.Sequential(nn.Conv1d(cfg.gcn_channels * N_JOINTS, cfg.feature_dim, 1),
                                nn.BatchNorm1d(cfg.feature_dim))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        h = self.st_gcn(motion)
        n, c, t, v = h.shape
        h = h.permute(0, 1, 3, 2).reshape(n, c * v, t)  # channel-major per frame, as the paper's
        return self.fc(h).transpose(1, 2)


class M2SNet(nn.Module):
    def __init__(self, cfg: M2SNetConfig | None = None):
        super().__init__()
        self.cfg = cfg or M2SNetConfig()
        d = self.cfg.feature_dim
        self.music_encoder = music_encoder(self.cfg.generator_config())
        self.motion_encoder = MotionEncoder(self.cfg)
        self.fuse_layer = nn.Sequential(nn.Conv1d(2 * d, d, 1), nn.ReLU(), nn.Conv1d(d, d, 1), nn.ReLU(),
                                        nn.Conv1d(d, 1, 1))

    def fuse(self, music_feat: torch.Tensor, motion_feat: torch.Tensor) -> torch.Tensor:
        """(P, T, d) × (P, T, d) → (P, T) sync logits per frame."""
        h = torch.cat([music_feat, motion_feat], dim=2).transpose(1, 2)
        return self.fuse_layer(h)[:, 0]

    def forward(self, mel: torch.Tensor, motion: torch.Tensor, pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (P, T30) for pairs (music i, motion j) given as rows of `pairs` (P, 2) — every
        pairing of a batch in one call (one call per step is what DistributedDataParallel needs);
        without `pairs`, mel i goes with motion i."""
        hm, hx = self.music_encoder(mel), self.motion_encoder(motion)
        if pairs is None:
            return self.fuse(hm, hx)
        return self.fuse(hm[pairs[:, 0]], hx[pairs[:, 1]])


def sync_probability(logits: torch.Tensor) -> torch.Tensor:
    """(P, T) per-frame logits → (P,) probability that each clip is in sync."""
    return torch.sigmoid(logits).mean(dim=1)


# -- files ----------------------------------------------------------------------------------------

def save_m2snet(model: M2SNet, path: str | Path, meta: dict | None = None) -> str:
    return save_network(model, path, FORMAT, model.cfg.to_dict(), meta)


@dataclass
class LoadedM2SNet:
    model: M2SNet
    kind: str  # "baton" or "official"
    path: str
    meta: dict


def load_m2snet(path: str | Path) -> LoadedM2SNet:
    """A stage-1 network in eval mode: ours, or the paper's released M2S-Net."""
    path = Path(path)
    obj = read_network(path, "stage-1 checkpoint")
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        config, state, _ = checked_weights(obj, path)
        model = M2SNet(M2SNetConfig.from_dict(config))
        model.load_state_dict(state)
        return LoadedM2SNet(model.eval(), "baton", str(path), obj.get("meta", {}))
    if isinstance(obj, dict) and "motion_encoder.st_gcn.A" in obj:
        model = M2SNet()
        missing, unexpected = model.load_state_dict(official_m2snet_to_baton(obj), strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise CheckpointError(f"{path}: weights do not fit M2S-Net (missing {missing[:3]}, unexpected {unexpected[:3]})")
        return LoadedM2SNet(model.eval(), "official", str(path),
                            {"source": "Liu et al., JCST 2022 released M2S-Net (research use only)"})
    raise CheckpointError(f"{path}: neither a Baton stage-1 checkpoint nor the paper's M2S-Net")


def official_m2snet_to_baton(state: dict) -> dict:
    """The paper's keys → ours: its music encoder renamed as the generator's, its unused ST-GCN
    classifier (`fcn`) dropped; everything else already has our names."""
    music = {k: v for k, v in state.items() if k.startswith("music_encoder.")}
    out = {"music_" + k: v for k, v in official_to_baton(music).items()}  # encoder.* → music_encoder.*
    for k, v in state.items():
        if not k.startswith("music_encoder.") and not k.startswith("motion_encoder.st_gcn.fcn."):
            out[k] = v
    return out


# -- the contrastive task -------------------------------------------------------------------------

@dataclass
class Track:
    """Music with the motion to judge against it (a corpus clip has the same interface)."""

    work_id: str
    mel: np.ndarray  # (3·frames, 128)
    motion: np.ndarray  # (frames, 13, 2)
    key: str | None = None  # names the music, for pair_accuracy's cache

    @property
    def frames(self) -> int:
        return min(len(self.motion), len(self.mel) // MEL_PER_MOTION)

    def crop(self, start: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(self.mel[MEL_PER_MOTION * start:MEL_PER_MOTION * (start + frames)], dtype=np.float32),
                np.asarray(self.motion[start:start + frames], dtype=np.float32))


def draw_pairs(rng: np.random.Generator, tracks: list, n: int, frames: int, hard_fraction: float,
               shift_min: float, shift_max: float, fps: int = MOTION_FPS) -> list[tuple[int, int, int, int, str]]:
    """n (anchor track, anchor start, partner track, partner start, kind) with kind 'hard' (the
    same track shifted by shift_min..shift_max seconds) or 'easy' (a track of another work).
    Anchors are drawn in proportion to the crop positions each track offers."""
    ok = [i for i, t in enumerate(tracks) if t.frames >= frames]
    if not ok:
        raise ValueError(f"no track holds {frames / fps:g} s; use shorter clips")
    w = np.array([tracks[i].frames - frames + 1 for i in ok], dtype=np.float64)
    w /= w.sum()
    out = []
    for _ in range(n):
        i = ok[rng.choice(len(ok), p=w)]
        last = tracks[i].frames - frames
        a = int(rng.integers(0, last + 1))
        if rng.random() < hard_fraction:
            s = _shifted(rng, a, last, int(round(shift_min * fps)), int(round(shift_max * fps)))
            if s is not None:
                out.append((i, a, i, s, "hard"))
                continue
        j = i
        for _ in range(20):  # a partner from another work (or at least another track)
            j = ok[rng.choice(len(ok), p=w)]
            if tracks[j].work_id != tracks[i].work_id:
                break
        out.append((i, a, j, int(rng.integers(0, tracks[j].frames - frames + 1)), "easy"))
    return out


def _shifted(rng: np.random.Generator, a: int, last: int, lo: int, hi: int) -> int | None:
    """A start in [0, last] whose distance from a is within [lo, hi], or None."""
    spans = [(a + lo, min(a + hi, last)), (max(a - hi, 0), a - lo)]
    spans = [(x, y) for x, y in spans if y >= x]
    if not spans:
        return None
    sizes = np.array([y - x + 1 for x, y in spans], dtype=np.float64)
    x, y = spans[rng.choice(len(spans), p=sizes / sizes.sum())]
    return int(rng.integers(x, y + 1))


def pair_batch(tracks: list, pairs: list, frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mel (2B, …), motion (2B, …), index (4B, 2), labels (4B,)) for B drawn pairs, the paper's
    four pairings each: (a, a) and (b, b) in sync, (music a, motion b) and (music b, motion a) not."""
    crops = [tracks[i].crop(s, frames) for i, s, _, _, _ in pairs] + [tracks[j].crop(s, frames) for _, _, j, s, _ in pairs]
    mel = torch.from_numpy(np.stack([m for m, _ in crops]))
    motion = torch.from_numpy(np.stack([x for _, x in crops]))
    return (mel, motion) + _pairings(len(pairs))[2:]


def _pairings(b: int) -> tuple[None, None, torch.Tensor, torch.Tensor]:
    """Index (4b, 2) into [anchors; partners] and labels (4b,) of the four pairings per anchor."""
    r = torch.arange(b)
    index = torch.cat([torch.stack([r, r], 1), torch.stack([r + b, r + b], 1),
                       torch.stack([r, r + b], 1), torch.stack([r + b, r], 1)])
    return None, None, index, torch.cat([torch.ones(2 * b), torch.zeros(2 * b)])


@torch.no_grad()
def pair_accuracy(net: M2SNet, tracks: list, frames: int, n: int = 200, seed: int = 0, batch: int = 16,
                  shift_min: float = 0.5, shift_max: float = 5.0, device: torch.device | str = "cpu",
                  music_cache: dict | None = None) -> dict:
    """Sync accuracy on a fixed draw of n anchors (half with hard, half with easy partners): the
    share of the 4n pairings judged right (probability > 0.5), and per kind of pairing.

    `music_cache` (a dict the caller keeps) holds the music features of each crop, keyed by the
    tracks' `key`: judging many conductors on the same music encodes it once."""
    was_training = net.training
    net.eval()
    pairs = draw_pairs(np.random.default_rng([seed, 7]), tracks, n, frames, 0.5, shift_min, shift_max)
    right = {"sync": [], "hard": [], "easy": []}
    for k in range(0, len(pairs), batch):
        chunk = pairs[k:k + batch]
        crops = [(i, s) for i, s, _, _, _ in chunk] + [(j, s) for _, _, j, s, _ in chunk]
        motion = torch.from_numpy(np.stack([tracks[i].crop(s, frames)[1] for i, s in crops])).to(device)
        keys = [(getattr(tracks[i], "key", None), s, frames) for i, s in crops]
        if music_cache is not None and all(key[0] is not None and key in music_cache for key in keys):
            music = torch.stack([music_cache[key] for key in keys]).to(device)
        else:
            mel = torch.from_numpy(np.stack([tracks[i].crop(s, frames)[0] for i, s in crops])).to(device)
            music = net.music_encoder(mel)
            if music_cache is not None:
                music_cache.update({key: f.cpu() for key, f in zip(keys, music) if key[0] is not None})
        _, _, index, labels = _pairings(len(chunk))
        p = sync_probability(net.fuse(music[index[:, 0]], net.motion_encoder(motion)[index[:, 1]])).cpu()
        ok = ((p > 0.5).float() == labels).tolist()
        m = len(chunk)
        right["sync"] += ok[:2 * m]
        for q, (*_, kind) in enumerate(chunk):
            right[kind] += [ok[2 * m + q], ok[3 * m + q]]
    net.train(was_training)
    out = {f"acc_{k}": float(np.mean(v)) for k, v in right.items() if v}
    out["acc"] = float(np.mean(sum(right.values(), [])))
    return out
