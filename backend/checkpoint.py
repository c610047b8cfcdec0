"""Loading and saving generator checkpoints, and the one writer and reader of every Baton network file.

Two formats are accepted:

* the project's own: one `torch.save`d dict with `format == "baton-generator"`, the architecture
  config, the weights, metadata (training data, evaluation numbers, software versions) and a SHA-256
  of config and weights that is checked on load, so a truncated or edited file is caught;
* the paper's released generator (a bare state_dict saved on CUDA), loaded unchanged from a path the
  user gives: its 96 alias keys are dropped and its weight-normed convs are folded to plain weights.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import CheckpointError
from .model import Generator, GeneratorConfig

FORMAT = "baton-generator"
FORMAT_VERSION = 1


@dataclass
class LoadedGenerator:
    model: Generator
    kind: str  # "baton" or "official"
    sha256: str  # of config and weights (content_sha256), as stored in takes' provenance
    path: str
    meta: dict = field(default_factory=dict)


def content_sha256(config: dict, state_dict: dict[str, torch.Tensor]) -> str:
    """Hash of the architecture config and the weights' names, shapes, dtypes and bytes, in key
    order: what the generator computes, independent of pickling details."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for k in sorted(state_dict):
        t = state_dict[k].detach().cpu().contiguous()
        h.update(f"{k}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def save_network(model: torch.nn.Module, path: str | Path, fmt: str, config: dict,
                 meta: dict | None = None, **header) -> str:
    """The one writer of Baton's network files (the generator, stage 1's M2S-Net, the beat
    tracker): a `torch.save`d dict of its format, `header` entries, architecture config, weights,
    their content hash and plain-JSON metadata, written whole or not at all. Returns the hash."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}  # copies: the model stays put
    digest = content_sha256(config, state)
    try:  # metadata is plain JSON, so any reader can load it (and torch's safe unpickler accepts it)
        meta = json.loads(json.dumps(dict(meta or {})))
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint metadata must be plain JSON values ({e})") from None
    payload = {"format": fmt, **header, "config": config, "state_dict": state, "sha256": digest, "meta": meta}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return digest


def read_network(path: str | Path, what: str = "checkpoint"):
    """What a network file holds (loaded with torch's safe unpickler on the CPU), or a
    CheckpointError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler raises many types on garbage input
        first_line = re.sub(r"\x1b\[[0-9;]*m", "", (str(e).strip().splitlines() or [""])[0])[:160]
        raise CheckpointError(f"{path}: unreadable or corrupt {what} ({type(e).__name__}"
                              f"{': ' + first_line if first_line else ''})") from None


def checked_weights(obj: dict, path: str | Path) -> tuple[dict, dict[str, torch.Tensor], str]:
    """(config, weights, content hash) of a file written by save_network, after checking that its
    entries are there and that config and weights still match the stored hash."""
    try:
        config, state, stored = obj["config"], obj["state_dict"], obj["sha256"]
    except KeyError as e:
        raise CheckpointError(f"{path}: checkpoint is missing its {e} entry") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: the checkpoint's state_dict is not a mapping of tensors")
    try:
        digest = content_sha256(config, state)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unusable architecture config ({e})") from None
    if digest != stored:
        raise CheckpointError(f"{path}: config and weights do not match the checkpoint's hash (file corrupt or edited)")
    return config, state, digest


def save_checkpoint(model: Generator, path: str | Path, meta: dict | None = None) -> str:
    """Write a project generator checkpoint; returns its content hash."""
    meta = dict(meta or {})
    meta.setdefault("versions", _versions())
    return save_network(model, path, FORMAT, model.cfg.to_dict(), meta, format_version=FORMAT_VERSION)


def load_generator(path: str | Path) -> LoadedGenerator:
    """Load either format into an eval-mode Generator, or raise CheckpointError saying why."""
    path = Path(path)
    obj = read_network(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        loaded = _load_baton(obj, path)
    elif isinstance(obj, dict) and any(str(k).startswith("music_encoder.conv1.") for k in obj):
        loaded = _load_official(obj, path)
    else:
        raise CheckpointError(f"{path}: not a generator checkpoint this version knows "
                              "(neither a Baton checkpoint nor the paper's M2S-GAN generator)")
    loaded.model.eval()
    return loaded


def _load_baton(obj: dict, path: Path) -> LoadedGenerator:
    if obj.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {obj.get('format_version')!r} "
                              f"is not supported (this version reads {FORMAT_VERSION})")
    config, state, digest = checked_weights(obj, path)
    try:
        cfg = GeneratorConfig.from_dict(config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: unusable architecture config ({e})") from None
    return LoadedGenerator(_fitted(cfg, state, path), "baton", digest, str(path), dict(obj.get("meta") or {}))


_OFFICIAL_ALIAS = re.compile(r"\.net\.\d+\.")
_ENCODER_BLOCK = {"conv1": 0, "conv2": 3, "conv3": 5}  # first block index of each paper stage
_ENCODER_PART = {("conv2d_layer", "0"): "conv", ("conv2d_layer", "1"): "bn",
                 ("residual", "0"): "res_conv", ("residual", "1"): "res_bn"}
# The paper's key → this module's key.
_OFFICIAL_KEYS = [
    (r"music_encoder\.(conv[123])\.(\d)\.(conv2d_layer|residual)\.([01])\.(\w+)",
     lambda m: f"encoder.blocks.{_ENCODER_BLOCK[m[1]] + int(m[2])}.{_ENCODER_PART[m[3], m[4]]}.{m[5]}"),
    (r"music_encoder\.conv4\.([01])\.(\w+)", lambda m: f"encoder.{('proj', 'proj_bn')[int(m[1])]}.{m[2]}"),
    (r"noise_convTranspose\.([0246])\.(\w+)", lambda m: f"noise.up.{int(m[1]) // 2}.{m[2]}"),
    (r"noise_BN\.(\w+)", lambda m: f"noise.bn.{m[1]}"),
    (r"tcn\.TCN\.tcn\.tcn\.network\.(\d)\.(conv1|conv2|bn1|bn2|downsample)\.(\w+)",
     lambda m: f"decoder.blocks.{m[1]}.{'down' if m[2] == 'downsample' else m[2]}.{m[3]}"),
    (r"tcn\.TCN\.tcn\.linear\.(\w+)", lambda m: f"decoder.linear.{m[1]}"),
    (r"tcn\.fc\.([024])\.(\w+)", lambda m: f"decoder.head.{m[1]}.{m[2]}"),
]


def official_to_baton(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the paper's keys to this module's, drop aliases and fold weight norm
    (weight = g · v / ‖v‖ per output channel)."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked") or _OFFICIAL_ALIAS.search(key):
            continue
        for pattern, rename in _OFFICIAL_KEYS:
            m = re.fullmatch(pattern, key)
            if m:
                renamed[rename(m)] = value
                break
        else:
            raise CheckpointError(f"unexpected key {key!r} in what looks like the paper's generator")
    for key in [k for k in renamed if k.endswith(".weight_v")]:
        v, g = renamed.pop(key), renamed.pop(key[:-1] + "g", None)
        if g is None:
            raise CheckpointError(f"the paper's generator has {key!r} without its weight_g")
        norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
        renamed[key[:-2]] = g * v / norm
    return renamed


def _load_official(state: dict, path: Path) -> LoadedGenerator:
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: state_dict holds non-tensor values")
    try:
        converted = official_to_baton(state)
    except RuntimeError as e:  # a weight-norm pair whose shapes do not fit together
        raise CheckpointError(f"{path}: malformed weights ({str(e).splitlines()[0][:160]})") from None
    cfg = GeneratorConfig()
    return LoadedGenerator(_fitted(cfg, converted, path), "official", content_sha256(cfg.to_dict(), converted), str(path),
                           {"source": "Liu et al., JCST 2022 released generator (research use only)"})


def _fitted(cfg: GeneratorConfig, state: dict, path: Path) -> Generator:
    """The generator `cfg` describes with `state` loaded — after checking on a shapes-only copy
    (torch's meta device) that every weight fits, so a small file whose config asks for a huge
    network is refused before anything is allocated: the model is never bigger than its weights."""
    with torch.device("meta"):
        probe = Generator(cfg)
    # BatchNorm's num_batches_tracked is bookkeeping for training, never used in eval.
    expected = {k: v.shape for k, v in probe.state_dict().items() if not k.endswith("num_batches_tracked")}
    given = {k for k in state if not k.endswith("num_batches_tracked")}
    if set(expected) != given:
        missing, extra = sorted(set(expected) - given), sorted(given - set(expected))
        raise CheckpointError(f"{path}: weights do not fit the architecture "
                              f"(missing {missing[:3]}{'…' if len(missing) > 3 else ''}, "
                              f"unexpected {extra[:3]}{'…' if len(extra) > 3 else ''})")
    wrong = [k for k, shape in expected.items() if state[k].shape != shape]
    if wrong:
        k = wrong[0]
        raise CheckpointError(f"{path}: weights do not fit the architecture ({k}: the file holds "
                              f"{tuple(state[k].shape)}, the config asks for {tuple(expected[k])})")
    model = Generator(cfg)
    model.load_state_dict(state, strict=False)
    return model


def _versions() -> dict:
    from baton_core import __version__
    return {"baton": __version__, "torch": str(torch.__version__)}
